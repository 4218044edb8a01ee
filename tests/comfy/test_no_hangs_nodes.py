"""Tier (b), issue #11 point 4: Object to 3D (Mesh) simplifies a heavy mesh and says so; Place
Object and Reproject stop on Cancel in the middle of a render (the server's progress hook raises
ComfyUI's interrupt on the next progress update, as it does after /interrupt)."""

import json

import numpy as np
import pytest


@pytest.fixture(scope="module")
def scene_inputs(comfy):
    import folder_paths

    from insertanywhere.sample_scene import make_scene, write_triangle_soup

    scene = make_scene(kind="static", num_frames=5, width=160, height=96)
    folder = scene.write_bundle(f"{folder_paths.get_input_directory()}/hangs_bundle")
    write_triangle_soup(folder / "soup.stl", 5000, 0.01)
    return scene, folder


@pytest.fixture
def cancel_pressed(comfy):
    """The server's progress hook (main.hijack_progress checks the interrupt flag, and clears it
    when it raises); press() presses Cancel."""
    import comfy.model_management as mm
    import comfy.utils

    saved = comfy.utils.PROGRESS_BAR_HOOK
    comfy.utils.set_progress_bar_global_hook(lambda *_, **__: mm.throw_exception_if_processing_interrupted())
    yield mm.InterruptProcessingException, lambda: mm.interrupt_current_processing(True)
    mm.interrupt_current_processing(False)
    comfy.utils.set_progress_bar_global_hook(saved)


def test_object_from_mesh_simplifies_over_max_faces_and_says_so(scene_inputs, run_node):
    output = run_node("IA_ObjectFromMesh", mesh_file="hangs_bundle/soup.stl", max_faces=1000)
    (obj,) = output.result
    assert 0 < len(obj.faces) <= 1000
    (note,) = output.ui["text"]
    assert "Mesh 'soup.stl' has 5000 triangles over the face budget of 1000; simplified to" in note
    assert "images" in output.ui  # the preview is still shown
    (plain,) = run_node("IA_ObjectFromMesh", mesh_file="hangs_bundle/object.ply").result  # default budget
    assert not plain.warnings


def test_place_and_reproject_stop_on_cancel(scene_inputs, run_node, monkeypatch, request):
    import insertanywhere.masks.reproject as reproject_module
    from insertanywhere.masks.scene import ObjectTrack

    scene, _ = scene_inputs
    record = scene.to_scene_record()
    (obj,) = run_node("IA_ObjectFromMesh", mesh_file="hangs_bundle/object.ply").result
    placed, _ = run_node("IA_PlaceObject", scene=record, object=obj, placement=json.dumps(scene.placement)).result
    rendered = []
    original = reproject_module._raster_pixels
    monkeypatch.setattr(reproject_module, "_raster_pixels", lambda *a: (rendered.append(1), original(*a)))
    monkeypatch.setattr(reproject_module, "MAX_CANDIDATES", 200)  # many chunks per frame
    interrupted, press = request.getfixturevalue("cancel_pressed")
    press()
    with pytest.raises(interrupted):
        run_node("IA_PlaceObject", scene=record, object=obj, placement=json.dumps(scene.placement))
    assert len(rendered) == 1  # stopped after the first chunk of the preview
    rendered.clear()
    track = ObjectTrack(np.repeat(placed.world_from_object[None], scene.num_frames, 0))
    press()
    with pytest.raises(interrupted):
        run_node("IA_Reproject", scene=record, object=obj, track=track, occlusion=True, splat_px=0)
    assert len(rendered) == 1  # inside frame 0
