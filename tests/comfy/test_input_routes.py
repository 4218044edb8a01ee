"""Tier (b), issue #12 points 4 and 5: the routes behind Load Video's file info and the placement editor's
scene lookup, served by aiohttp as ComfyUI serves them (the handlers of the pack ComfyUI loaded)."""

from __future__ import annotations

import asyncio
import importlib
import json

import numpy as np
import pytest


def _pack_module(node_classes, name: str):
    package = node_classes["IA_LoadVideo"].__module__.rsplit(".", 1)[0]
    return importlib.import_module(f"{package}.{name}")


def _get(routes: list[tuple[str, object]], path: str) -> tuple[int, dict]:
    """GET `path` from a test server holding `routes` ((route, handler) pairs)."""
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    async def fetch():
        app = web.Application()
        for route, handler in routes:
            app.router.add_get(route, handler)
        async with TestClient(TestServer(app)) as client:
            response = await client.get(path)
            return response.status, json.loads(await response.text())

    return asyncio.run(fetch())


@pytest.fixture(scope="module")
def clip(comfy):
    """A 23-frame 100x60 clip at 10 fps in the input folder."""
    import folder_paths

    from insertanywhere.video import write_video

    frames = np.zeros((23, 60, 100, 3), np.uint8)
    frames[:, :, :50] = 200
    write_video(f"{folder_paths.get_input_directory()}/info_clip.mp4", frames, 10.0)
    return "info_clip.mp4"


def test_video_info_gives_the_source_and_what_the_knobs_load(node_classes, clip):
    video = _pack_module(node_classes, "video")
    route = [(video.INFO_ROUTE, video._video_info)]
    status, body = _get(route, f"{video.INFO_ROUTE}?file={clip}&start_frame=2&frame_cap=81&stride=2&max_side=64"
                               "&fit=crop&frame_count=4k%2B1")
    assert status == 200, body
    assert (body["width"], body["height"], body["num_frames"]) == (100, 60, 23) and body["fps"] == pytest.approx(10)
    # frames 2, 4, ... 22: 11 kept, 4k+1 -> 9; 100x60 scaled to 64 on the long side -> 64x38 -> 64x32
    assert body["output"] == {"frames": 9, "frames_known": True, "width": 64, "height": 32, "fps": pytest.approx(5)}
    # what the node then loads is what the route announced
    frames, fps, count = node_classes["IA_LoadVideo"].execute(clip, 2, 81, 2, 64, "crop", "4k+1").result
    assert (count, *frames.shape[1:3]) == (9, 32, 64) and fps == pytest.approx(5)


@pytest.mark.parametrize("query, message", [
    ("file=../../etc/passwd", "paths outside that folder are refused"),
    ("file=%2Fetc%2Fpasswd", "paths outside that folder are refused"),
    ("file=missing.mp4", "is not a file in ComfyUI's input folder"),
    ("file=info_clip.mp4&stride=0", "'stride' = '0' is not a whole number from 1 to 100"),
    ("file=info_clip.mp4&frame_cap=-3", "'frame_cap' = '-3' is not a whole number"),
    ("file=info_clip.mp4&fit=zoom", "'fit' = 'zoom' is not one of crop, resize, none"),
])
def test_video_info_refuses_bad_requests_with_a_json_message(node_classes, clip, query, message):
    video = _pack_module(node_classes, "video")
    status, body = _get([(video.INFO_ROUTE, video._video_info)], f"{video.INFO_ROUTE}?{query}")
    assert status == 400 and message in body["error"], body


def test_video_info_of_a_file_that_is_no_video_is_a_400(node_classes, comfy):
    import folder_paths

    with open(f"{folder_paths.get_input_directory()}/not_a_video.mp4", "wb") as handle:
        handle.write(b"this is text, not a video container")
    video = _pack_module(node_classes, "video")
    status, body = _get([(video.INFO_ROUTE, video._video_info)], f"{video.INFO_ROUTE}?file=not_a_video.mp4")
    assert status == 400 and "Cannot open video" in body["error"]


def test_editor_scene_is_keyed_by_workflow_and_node(node_classes):
    """A never-run workflow whose Place Object node has the same id must not get another workflow's scene,
    and 'no scene yet' is a normal 200 answer (no console errors before the first run)."""
    from insertanywhere.masks.object3d import object_from_image
    from insertanywhere.sample_scene import make_scene

    editor = _pack_module(node_classes, "editor")
    scene = make_scene(kind="static", num_frames=5, width=96, height=64, seed=0)
    rgb = np.full((32, 32, 3), 180, np.uint8)
    obj = object_from_image(rgb, np.full((32, 32), 255, np.uint8))
    ran = "7b0c6a52-3f1e-4c1a-9e0e-1d2b3c4d5e6f"
    editor.remember(ran, "4", scene.to_scene_record(), obj)
    try:
        route = [(editor.ROUTE_PREFIX + "/{node_id}/info", editor._info)]
        status, body = _get(route, f"{editor.ROUTE_PREFIX}/4/info?workflow={ran}")
        assert status == 200 and body["available"] is True and (body["width"], body["height"]) == (96, 64)
        status, body = _get(route, f"{editor.ROUTE_PREFIX}/4/info?workflow=11111111-2222-3333-4444-555555555555")
        assert status == 200 and body["available"] is False and "queue the workflow once" in body["message"]
        status, body = _get(route, f"{editor.ROUTE_PREFIX}/4/info")  # no workflow id: not that scene either
        assert status == 200 and body["available"] is False
        status, body = _get(route, f"{editor.ROUTE_PREFIX}/4/info?workflow=..%2F..")
        assert status == 400 and "Bad workflow id" in body["error"]
        frame0 = [(editor.ROUTE_PREFIX + "/{node_id}/frame0", editor._frame0)]
        status, body = _get(frame0, f"{editor.ROUTE_PREFIX}/4/frame0?workflow=11111111-2222-3333-4444-555555555555")
        assert status == 404 and "has no computed scene yet" in body["error"]
    finally:
        editor.forget_all()


def test_place_object_remembers_its_scene_under_the_prompts_workflow(node_classes, run_node):
    from comfy_api.latest import io

    from insertanywhere.masks.object3d import object_from_image
    from insertanywhere.sample_scene import make_scene

    editor = _pack_module(node_classes, "editor")
    scene = make_scene(kind="static", num_frames=5, width=96, height=64, seed=0)
    obj = object_from_image(np.full((32, 32, 3), 180, np.uint8), np.full((32, 32), 255, np.uint8))
    workflow = "0f0e0d0c-0b0a-4908-8706-050403020100"
    hidden = {io.Hidden.unique_id: "12", io.Hidden.extra_pnginfo: {"workflow": {"id": workflow, "nodes": []}}}
    try:
        output = run_node("IA_PlaceObject", hidden=hidden, scene=scene.to_scene_record(), object=obj,
                          placement=json.dumps(scene.placement))
        assert not (output.ui or {}).get("images")  # no run picture under the live editor
        assert editor._session((workflow, "12")) is not None
        assert editor._session(("", "12")) is None
    finally:
        editor.forget_all()
