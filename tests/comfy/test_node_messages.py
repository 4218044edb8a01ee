"""Tier (b), issue #11 points 5 and 6: the nodes show their warnings as UI text on the node, accept
both forms of the intrinsics widget, and give clear errors for bad JSON; the editor routes refuse a
chunked body past the cap (413) without reading it to its end."""

from __future__ import annotations

import asyncio
import importlib
import json

import numpy as np
import pytest

from insertanywhere.errors import InsertAnywhereError

FRAMES, WIDTH, HEIGHT = 9, 160, 96


@pytest.fixture(scope="module")
def small(comfy):
    import folder_paths

    from insertanywhere.sample_scene import make_scene

    scene = make_scene(kind="static", num_frames=FRAMES, width=WIDTH, height=HEIGHT, seed=0)
    bundle = scene.write_bundle(f"{folder_paths.get_input_directory()}/messages_bundle")
    depth = scene.depth.astype(np.float32).copy()
    depth[:, 10:14, 10:14] = np.nan  # filled from neighbours, with a warning
    np.savez(bundle / "holes.npz", depth=depth)
    return scene, bundle


@pytest.fixture(scope="module")
def frames(small, run_node):
    frames, fps, _ = run_node("IA_LoadVideo", file="messages_bundle/scene.mp4", start_frame=0, frame_cap=FRAMES,
                              stride=1, max_side=0, fit="none", frame_count="any").result
    return frames, fps


def _reconstruct(run_node, frames, intrinsics, depth_file="messages_bundle/holes.npz"):
    return run_node("IA_Reconstruct4D", frames=frames[0], fps=frames[1], depth_file=depth_file, fov_deg=0.0,
                    intrinsics=intrinsics, disk_cache=False)


def test_intrinsics_widget_takes_the_cli_form_and_shows_warnings(small, frames, run_node):
    scene, _ = small
    K = np.asarray(scene.K, np.float64)
    wrapped = _reconstruct(run_node, frames, json.dumps({"K": K.tolist()}))
    bare = _reconstruct(run_node, frames, json.dumps(K.tolist()))
    for output in (wrapped, bare):
        np.testing.assert_allclose(output.result[0].K, K, rtol=1e-6)  # a given K is kept as given
    text = wrapped.ui["text"][0]
    assert f"depth: filled {16 * FRAMES} invalid pixels in {FRAMES} frames" in text, text
    assert wrapped.ui["animated"] == (True,) and wrapped.ui["images"]  # the preview is still there


@pytest.mark.parametrize("widget, message", [
    ("fx=500", r"The intrinsics widget is not valid JSON \(Expecting value at line 1 column 1\)"),
    ('{"K": [[1e12, 0, 79.5], [0, 1e12, 47.5], [0, 0, 1]]}', r"field of view of 9\.17e-09 degrees"),
    ("[[200, 0, 900], [0, 200, 47.5], [0, 0, 1]]", r"principal point at \(900, 47\.5\), outside the 160x96"),
    ("[" * 5000, r"nested more than 32 levels"),
])
def test_bad_intrinsics_widget_is_one_clear_error(frames, run_node, widget, message):
    with pytest.raises(InsertAnywhereError, match=message):
        _reconstruct(run_node, frames, widget, depth_file="none (video only)")


def test_deeply_nested_placement_is_a_clear_error(small, run_node):
    scene, bundle = small
    (obj,) = run_node("IA_ObjectFromMesh", mesh_file="messages_bundle/object.ply").result
    with pytest.raises(InsertAnywhereError, match=r"The placement is nested more than 32 levels deep"):
        run_node("IA_PlaceObject", scene=scene.to_scene_record(), object=obj, placement='{"anchor": ' + "[" * 100000)


def test_reproject_warns_on_the_node_when_the_object_leaves_the_view(small, run_node):
    scene, _ = small
    record = scene.to_scene_record()
    poses = record.camera_from_world.astype(np.float64).copy()
    poses[:, 0, 3] += np.linspace(0, 40.0, FRAMES) * (np.arange(FRAMES) > 1)  # the camera slides away
    record.camera_from_world = poses.astype(np.float32)
    (obj,) = run_node("IA_ObjectFromMesh", mesh_file="messages_bundle/object.ply").result
    placed, _ = run_node("IA_PlaceObject", scene=record, object=obj, placement=json.dumps(scene.placement)).result
    (track,) = run_node("IA_Propagate", scene=record, placement=placed, propagation=False).result
    output = run_node("IA_Reproject", scene=record, object=obj, track=track, occlusion=True, splat_px=0)
    assert output.ui["text"] == (f"1 warning: the object is visible in only 2 of {FRAMES} frames (frames 0..1); "
                                 "the masks are empty in the others",)
    visible = output.result[0].numpy()
    assert visible[:2].any(axis=(1, 2)).all() and not visible[2:].any()


# --- editor routes: chunked bodies ------------------------------------------------------------------

def _editor_module(node_classes):
    """nodes/editor.py as ComfyUI loaded it (a module of the pack's package)."""
    package = node_classes["IA_PlaceObject"].__module__.rsplit(".", 1)[0]
    return importlib.import_module(package + ".editor")


async def _post_chunked(editor, pieces: list[bytes], finish: bool) -> tuple[int, bytes]:
    """POST a chunked body (no Content-Length) to a preview route; without `finish` the final empty
    chunk is never sent, so an answer proves the server did not wait for the whole body."""
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    app = web.Application()
    app.router.add_post(editor.ROUTE_PREFIX + "/{node_id}/preview", editor._preview)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(f"POST {editor.ROUTE_PREFIX}/7/preview HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n".encode())
        for piece in pieces:
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        if finish:
            writer.write(b"0\r\n\r\n")
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=60)
        status = int(head.split(b" ", 2)[1])
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length")))
        body = await asyncio.wait_for(reader.readexactly(length), timeout=60)
        writer.close()
        return status, body
    finally:
        await server.close()


@pytest.fixture()
def editor(small, node_classes):
    from insertanywhere.masks.object3d import load_mesh

    scene, bundle = small
    module = _editor_module(node_classes)
    module.remember("", "7", scene.to_scene_record(), load_mesh(bundle / "object.ply"))
    yield module
    module.forget_all()


def test_chunked_body_past_the_cap_is_refused_before_its_end(editor):
    piece = b" " * 8192
    count = editor.MAX_BODY_BYTES // len(piece) + 4  # 96 KiB, over the 64 KiB cap, and never finished
    status, body = asyncio.run(_post_chunked(editor, [piece] * count, finish=False))
    assert status == 413 and json.loads(body)["error"] == f"Request body is larger than {editor.MAX_BODY_BYTES} bytes."


def test_chunked_body_under_the_cap_is_read(editor, small):
    scene, _ = small
    body = json.dumps({"placement": scene.placement, "frame": 0}).encode()
    status, jpeg = asyncio.run(_post_chunked(editor, [body[:10], body[10:]], finish=True))
    assert status == 200 and jpeg[:2] == b"\xff\xd8"


def test_deeply_nested_body_is_a_400(editor):
    status, body = asyncio.run(_post_chunked(editor, [b'{"placement": ' + b"[" * 50000], finish=True))
    assert status == 400 and "nested more than 32 levels" in json.loads(body)["error"]
