"""4D-aware mask generation nodes: reconstruct -> object to 3D -> place -> propagate -> reproject."""

from __future__ import annotations

import json
import os

import numpy as np

from insertanywhere.masks import object3d as core_object
from insertanywhere.masks import placement as core_placement
from insertanywhere.jsontext import parse_json
from insertanywhere.masks.intrinsics import check_intrinsics_for_frame
from insertanywhere.masks.pipeline import K_EXAMPLE, coverage_warnings, grouped, load_depth, load_intrinsics
from insertanywhere.masks.propagate import propagate
from insertanywhere.masks.reproject import reproject
from insertanywhere.masks.scene_cache import DEFAULT_MAX_GB, SceneCache, reconstruct_cached
from insertanywhere.masks.vertical import UPRIGHT_MODES, scene_lines, use_upright

from ._comfy import (check_combos, check_input_file, file_combo, input_file_path, input_files, io, preview_image,
                     preview_video, progress_bar, validate_combos, with_warnings)
from .tensors import frames_to_image, image_to_frames, image_to_gray, mask_to_numpy, masks_to_tensor
from .types import CATEGORY, OBJECT_TIP, PLACEMENT_TIP, SCENE_TIP, TRACK_TIP, Object3D, Placement, Scene, Track

STAGE = f"{CATEGORY}/masks"
DEFAULT_PLACEMENT = json.dumps({"anchor": [160, 120], "height_px": 60, "yaw_deg": 0, "pitch_deg": 0,
                                "roll_deg": 0, "offset": [0, 0, 0], "top_k": 64}, indent=1)
DEPTH_NONE = "none (video only)"
DEPTH_SUFFIXES = (".npz",)
OBJECT_TO_PLACE = OBJECT_TIP + " Goes to Place Object and Reproject."


def _input_files(suffixes: tuple[str, ...]) -> list[str]:
    return input_files(suffixes)


def _input_path(name: str, what: str) -> str:
    return input_file_path(name, what)


# --- 4D Reconstruct --------------------------------------------------------------------------------

def _scene_cache(max_gb: float) -> SceneCache:
    import folder_paths

    return SceneCache.from_gb(os.path.join(folder_paths.get_output_directory(), "insertanywhere_cache"), max_gb)


def _check_memory(video, with_depth: bool) -> None:
    """Frames from any loader: refuse what the reconstruction could not hold before it starts (the
    frames are already in memory, so only the pipeline's own arrays count here)."""
    from insertanywhere import memory

    plan = memory.budget(None, with_depth=with_depth,
                         flag_hint=f"{memory.ENV_BUDGET}=<GiB> in the server's environment")
    memory.check_frames(len(video), *video.shape[1:3], plan, "The frames given to 4D Reconstruct")


class Reconstruct4D(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="IA_Reconstruct4D",
            display_name="4D Reconstruct",
            category=STAGE,
            description="Per-frame depth in one scale, intrinsics, camera poses, moving-object masks and dense "
                        "correspondences from a video (optical flow + PnP + bundle adjustment on CPU).",
            inputs=[
                io.Image.Input("frames", tooltip="The scene video as an IMAGE batch."),
                io.Float.Input("fps", default=16.0, min=0.1, max=240.0, step=0.1,
                               tooltip="Frame rate, carried to the previews and outputs."),
                file_combo("depth_file", [DEPTH_NONE, *_input_files(DEPTH_SUFFIXES)], DEPTH_SUFFIXES,
                           default=DEPTH_NONE,
                           tooltip="Optional .npz in the input folder with key 'depth' (metric camera z) or "
                                   "'disparity' (relative inverse depth), shaped [frames, H, W]. Upload one with "
                                   "the button or drop it on the node."),
                io.Float.Input("fov_deg", default=0.0, min=0.0, max=170.0, step=0.5,
                               tooltip="Horizontal field of view when K is not given; 0 = 60 degree guess, "
                                       "refined from the video."),
                io.String.Input("intrinsics", default="", multiline=False,
                                tooltip="Optional K in pixels as JSON, [[fx,0,cx],[0,fy,cy],[0,0,1]] or "
                                        "{\"K\": [[fx,0,cx],[0,fy,cy],[0,0,1]]} (the CLI's K.json); "
                                        "empty = estimate."),
                io.Boolean.Input("disk_cache", default=True,
                                 tooltip="Save the result under output/insertanywhere_cache and reuse it when "
                                         "the same frames and settings come again."),
                io.Image.Input("depth_map", optional=True,
                               tooltip="Optional depth from any ComfyUI depth node (bright = near, i.e. "
                                       "relative inverse depth). Overrides depth_file."),
                io.Float.Input("cache_max_gb", default=DEFAULT_MAX_GB, min=0.1, max=10_000.0, step=0.5, optional=True,
                               tooltip="Size cap of output/insertanywhere_cache in GB (about 0.2 GB per 81 frames "
                                       "at 832x480); the least recently used scenes are removed to stay under it."),
            ],
            outputs=[
                Scene.Output(display_name="scene",
                             tooltip=SCENE_TIP + " Goes to Place Object, Propagate and Reproject."),
                io.Mask.Output(display_name="moving", tooltip="Independently moving things per frame."),
                io.Image.Output(display_name="depth_preview", tooltip="Colour-mapped depth | moving overlay."),
            ],
        )

    @classmethod
    def execute(cls, frames, fps, depth_file, fov_deg, intrinsics, disk_cache, depth_map=None,
                cache_max_gb=DEFAULT_MAX_GB) -> io.NodeOutput:
        check_combos(cls, locals())
        from insertanywhere.masks.reconstruct import preview_frames

        video = image_to_frames(frames)
        _check_memory(video, depth_map is not None or depth_file != DEPTH_NONE)
        if depth_map is not None:
            depth_input = {"disparity": image_to_gray(depth_map)}
        elif depth_file != DEPTH_NONE:
            depth_input = load_depth(_input_path(depth_file, "Depth file"))
        else:
            depth_input = {}
        K = load_intrinsics(parse_json(intrinsics, "The intrinsics widget", K_EXAMPLE)) if intrinsics.strip() else None
        if K is not None:
            check_intrinsics_for_frame(K, video.shape[1], video.shape[2], "The intrinsics widget")
        scene, _ = reconstruct_cached(_scene_cache(cache_max_gb) if disk_cache else None, video, fps=fps,
                                      depth_input=depth_input, K=K, fov_deg=fov_deg or None,
                                      progress=progress_bar(len(video)))
        preview = preview_frames(scene)
        ui = with_warnings(preview_video(preview, scene.fps, "ia_reconstruct"),
                           grouped(scene.warnings), "4D Reconstruct")
        return io.NodeOutput(scene, masks_to_tensor(scene.moving), frames_to_image(preview), ui=ui)

    @classmethod
    def validate_inputs(cls, depth_file):  # names only depth_file: the other inputs keep ComfyUI's checks
        return validate_combos(cls, depth_file=depth_file)


# --- Object to 3D ----------------------------------------------------------------------------------

def _object_preview(obj) -> np.ndarray:
    """A front view of the canonical object on white, uint8 [256, 256, 3]."""
    from insertanywhere.masks.geometry import make_pose
    from insertanywhere.masks.reproject import render_object

    size, focal = 256, 600.0
    K = np.array([[focal, 0, size / 2], [0, focal, size / 2], [0, 0, 1]])
    # camera 4 units in front of the object (+Z) at mid height, looking back along -Z, image y down
    camera_from_object = make_pose(np.diag([1.0, -1.0, -1.0]), [0.0, 0.5, 4.0])
    render = render_object(obj, camera_from_object, K, (size, size))
    out = np.full((size, size, 3), 255, np.uint8)
    out[render.mask] = render.color[render.mask]
    return out


class ObjectFromImage(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="IA_ObjectFromImage",
            display_name="Object to 3D (Image)",
            category=STAGE,
            description="Lift a reference image + mask to a coloured 3D point cloud with plausible relief "
                        "(+Y up, front facing +Z, base at y = 0).",
            inputs=[
                io.Image.Input("image", tooltip="Reference image of the object."),
                io.Mask.Input("mask", tooltip="White where the object is."),
                io.Boolean.Input("invert_mask", default=False,
                                 tooltip="Turn on when the mask is white on the background - e.g. the MASK of "
                                         "core Load Image, which is 1 where the PNG is transparent."),
                io.Image.Input("depth", optional=True,
                               tooltip="Optional depth of the reference image (bright = near) for the relief; "
                                       "without it a rounded relief is made from the mask."),
            ],
            outputs=[Object3D.Output(display_name="object", tooltip=OBJECT_TO_PLACE)],
        )

    @classmethod
    def execute(cls, image, mask, invert_mask, depth=None) -> io.NodeOutput:
        rgb = image_to_frames(image[:1])[0]
        alpha = mask_to_numpy(mask[:1])[0]
        if invert_mask:
            alpha = ~alpha
        relief = image_to_gray(depth[:1])[0] if depth is not None else None
        obj = core_object.object_from_image(rgb, alpha.astype(np.uint8) * 255, disparity=relief)
        return io.NodeOutput(obj, ui=preview_image(_object_preview(obj), cls))


class ObjectFromMesh(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="IA_ObjectFromMesh",
            display_name="Object to 3D (Mesh)",
            category=STAGE,
            description="Load a mesh (.glb/.gltf/.obj/.ply/.stl) into the canonical object frame "
                        "(+Y up, +Z front, base at y = 0, unit height), with its colours. Meshes over the face "
                        "budget are simplified (the node says so).",
            inputs=[
                file_combo("mesh_file", _input_files(core_object.MESH_SUFFIXES), core_object.MESH_SUFFIXES,
                           tooltip="A mesh in ComfyUI's input folder (or input/3d): .glb, .gltf, .obj, .ply or "
                                   ".stl. Upload one with the button or drop it on the node."),
                io.Int.Input("max_faces", default=core_object.MAX_FACES, min=core_object.MIN_FACES,
                             max=10_000_000, step=1000, optional=True,  # prompts saved before it still run
                             tooltip="Face budget: a mesh with more triangles is simplified on load, as is a "
                                     "triangle soup. Every frame renders every triangle, so more costs time."),
            ],
            outputs=[Object3D.Output(display_name="object", tooltip=OBJECT_TO_PLACE)],
        )

    @classmethod
    def execute(cls, mesh_file, max_faces=core_object.MAX_FACES) -> io.NodeOutput:
        check_combos(cls, locals())
        obj = core_object.load_mesh(_input_path(mesh_file, "Mesh file"), max_faces)
        ui = with_warnings(preview_image(_object_preview(obj), cls), obj.warnings, "Object to 3D")
        return io.NodeOutput(obj, ui=ui)

    @classmethod
    def validate_inputs(cls, mesh_file):  # max_faces keeps ComfyUI's own min/max check
        listed = validate_combos(cls, mesh_file=mesh_file)
        return check_input_file(mesh_file, "Mesh file") if listed is True else listed


# --- Place Object ----------------------------------------------------------------------------------

class PlaceObject(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="IA_PlaceObject",
            display_name="Place Object",
            category=STAGE,
            description="Stand the object on the scene surface in frame 0 from a placement JSON (anchor pixel, "
                        "height_px, yaw/pitch/roll, offset, top_k). The canvas editor writes this JSON.",
            inputs=[
                Scene.Input("scene", tooltip=SCENE_TIP),
                Object3D.Input("object", tooltip=OBJECT_TIP),
                io.String.Input("placement", default=DEFAULT_PLACEMENT, multiline=True,
                                tooltip="Placement JSON: anchor [u, v] pixel of the base in frame 0, height_px "
                                        "(apparent height there), yaw/pitch/roll_deg, offset [dx, dy, dz] in "
                                        "object heights along right/up/front, top_k support points."),
                io.Combo.Input("stand_upright", options=list(UPRIGHT_MODES), default="auto",
                               tooltip="On a level surface, point the object's up at the scene's vertical "
                                       "vanishing point (from its straight vertical lines) instead of the depth "
                                       "normal, which monocular depth tilts by a degree or two. auto: on unless "
                                       "the depth is metric with a given K (measured geometry); off for objects "
                                       "on slopes."),
            ],
            outputs=[
                Placement.Output(display_name="placement", tooltip=PLACEMENT_TIP + " Goes to Propagate."),
                io.Image.Output(display_name="preview", tooltip="Frame 0 with the object rendered in."),
            ],
            hidden=[io.Hidden.unique_id, io.Hidden.extra_pnginfo],  # the editor's scene: workflow + node
        )

    @classmethod
    def execute(cls, scene, object, placement, stand_upright="auto") -> io.NodeOutput:
        check_combos(cls, locals())
        from .editor import remember, workflow_id

        plan = core_placement.parse_placement(placement)
        upright = use_upright(scene, stand_upright)
        # the editor previews before a rerun
        remember(workflow_id(cls.hidden.extra_pnginfo), str(cls.hidden.unique_id), scene, object, upright)
        pose, surface, preview = core_placement.place_object(
            plan, object, scene.frames[0], scene.depth[0], scene.K, scene.camera_from_world[0],
            scene_lines(scene) if upright else None, progress=progress_bar(1))
        placed = core_placement.PlacedObject(plan, pose, surface)
        # no image on the node: the editor above shows frame 0 with the object, live (a run's picture
        # under it would go stale with the first drag); the preview output feeds a Preview Image node
        return io.NodeOutput(placed, frames_to_image(preview[None]))


# --- Propagate -------------------------------------------------------------------------------------

class Propagate(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="IA_Propagate",
            display_name="Propagate",
            category=STAGE,
            description="Carry the object through the video with the rigid motion of its top-K nearest scene "
                        "points: fixed in the world on static ground, riding along on a moving support.",
            inputs=[
                Scene.Input("scene", tooltip=SCENE_TIP),
                Placement.Input("placement", tooltip=PLACEMENT_TIP),
                io.Boolean.Input("propagation", default=True,
                                 tooltip="Off keeps the frame-0 world pose in every frame (camera-only "
                                         "ablation)."),
            ],
            outputs=[Track.Output(display_name="track", tooltip=TRACK_TIP + " Goes to Reproject.")],
        )

    @classmethod
    def execute(cls, scene, placement, propagation) -> io.NodeOutput:
        from insertanywhere.masks.track_preview import track_preview

        track = propagate(scene, placement.world_from_object, placement.surface.point, placement.placement.top_k,
                          placement.placement.height_px, enabled=propagation,
                          progress=progress_bar(scene.num_frames))
        ui = with_warnings(preview_video(track_preview(scene, track), scene.fps, "ia_track"),
                           track.warnings, "Propagate")
        return io.NodeOutput(track, ui=ui)


# --- Reproject -------------------------------------------------------------------------------------

class Reproject(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="IA_Reproject",
            display_name="Reproject",
            category=STAGE,
            description="Render the tracked object into every frame with a z-test against scene depth: visible "
                        "and amodal masks plus the anchor video (object painted in).",
            inputs=[
                Scene.Input("scene", tooltip=SCENE_TIP),
                Object3D.Input("object", tooltip=OBJECT_TIP),
                Track.Input("track", tooltip=TRACK_TIP),
                io.Boolean.Input("occlusion", default=True,
                                 tooltip="Off ignores scene depth, so things in front do not hide the object "
                                         "(ablation)."),
                io.Int.Input("splat_px", default=0, min=0, max=8,
                             tooltip="Point splat radius in pixels for point-cloud objects; 0 = automatic."),
            ],
            outputs=[
                io.Mask.Output(display_name="visible", tooltip="Where the object is visible, per frame."),
                io.Mask.Output(display_name="amodal", tooltip="Where the object would be without occluders."),
                io.Image.Output(display_name="anchor_video", tooltip="Frames with the object rendered in."),
            ],
        )

    @classmethod
    def execute(cls, scene, object, track, occlusion, splat_px) -> io.NodeOutput:
        result = reproject(scene, object, track, occlusion=occlusion, splat_px=splat_px or None,
                           progress=progress_bar(scene.num_frames))
        ui = with_warnings(preview_video(result.anchor, scene.fps, "ia_anchor"),
                           coverage_warnings(result.visible, result.amodal), "Reproject")
        return io.NodeOutput(masks_to_tensor(result.visible), masks_to_tensor(result.amodal),
                             frames_to_image(result.anchor), ui=ui)


NODES = [Reconstruct4D, ObjectFromImage, ObjectFromMesh, PlaceObject, Propagate, Reproject]
