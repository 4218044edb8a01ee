"""A rendered sample scene (`SampleScene`) and `make_scene`, which lays out, renders and records one."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import InsertAnywhereError
from ..masks.geometry import make_pose
from ..masks.scene import SceneRecord
from ..progress import Progress, report
from .bundle import write_bundle
from .layouts import KINDS, _build_layout
from .meshes import OBJECT_SHAPES, _make_object_mesh
from .placement_inverse import derive_placement
from .raster import _render_object, _render_reference
from .raycast import _per_prim, _raycast, _rotate
from .suite import DESCRIPTIONS, SUITE_KINDS, build_layout
from .textures import _shade
from .truth import _exact_flow, _mono_disparity, _sample_nearest
from .world import _DEFAULT_LIGHT, _UP, _Light, _World

ALL_KINDS = KINDS + SUITE_KINDS  # the index seeds the generator: append only
BACKGROUND_DEPTH = 100.0


@dataclass
class SampleScene:
    """A rendered sample scene with exact ground truth. Shapes: F frames, H x W pixels.

    frames uint8 [F, H, W, 3] (scene without the object); depth float32 [F, H, W] camera z
    (capped at 100); K float64 [3, 3]; camera_from_world float64 [F, 4, 4]; dynamic bool [F, H, W];
    object_mesh trimesh.Trimesh (canonical frame); object_ref uint8 [h, w, 3]; object_ref_mask
    uint8 [h, w] 0/255; placement dict (docs/FORMATS.md); object_world_from_mesh float64 [F, 4, 4];
    gt_visible, gt_amodal bool [F, H, W]; composite uint8 [F, H, W, 3]; surface_normal float64 [3]
    (exact world normal of the support at the anchor in frame 0).
    """

    kind: str
    seed: int
    name: str
    description: str
    fps: float
    frames: np.ndarray
    depth: np.ndarray
    K: np.ndarray
    camera_from_world: np.ndarray
    dynamic: np.ndarray
    object_mesh: object
    object_ref: np.ndarray
    object_ref_mask: np.ndarray
    placement: dict
    object_world_from_mesh: np.ndarray
    gt_visible: np.ndarray
    gt_amodal: np.ndarray
    composite: np.ndarray
    surface_normal: np.ndarray
    world: _World = field(repr=False)
    hit_prim: np.ndarray = field(repr=False)  # int16 [F, H, W] primitive id per pixel
    hit_local: np.ndarray = field(repr=False)  # float32 [F, H, W, 3] hit point in the primitive's frame
    K_per_frame: Optional[np.ndarray] = field(default=None, repr=False)  # float64 [F, 3, 3] when the focal changes
    _flow: Optional[tuple] = field(default=None, repr=False)

    def K_at(self, t: int) -> np.ndarray:
        """Frame t's K [3, 3] (`K` is frame 0's)."""
        return self.K if self.K_per_frame is None else self.K_per_frame[t]

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    def flow(self) -> tuple:
        """Exact dense flow: (fwd float32 [F-1, H, W, 2], bwd float32 [F-1, H, W, 2], valid bool [F-1, H, W]).

        fwd[t] moves frame t's pixels to frame t+1, bwd[t] frame t+1's to frame t. valid[t] marks
        frame-t pixels whose surface point is visible and inside frame t+1 (and back).
        """
        if self._flow is None:
            F, H, W = self.depth.shape
            fwd = np.zeros((F - 1, H, W, 2), np.float32)
            bwd = np.zeros_like(fwd)
            valid = np.zeros((F - 1, H, W), bool)
            for t in range(F - 1):
                fwd[t], ok_f = _exact_flow(self, t, t + 1)
                bwd[t], ok_b = _exact_flow(self, t + 1, t)
                valid[t] = ok_f & _sample_nearest(ok_b, fwd[t])
            self._flow = (fwd, bwd, valid)
        return self._flow

    def to_scene_record(self) -> SceneRecord:
        """The scene as the reconstruction stage would produce it, but exact (ground-truth depth and flow)."""
        fwd, bwd, valid = self.flow()
        return SceneRecord(
            frames=self.frames, depth=self.depth.astype(np.float32), K=self.K.astype(np.float32),
            camera_from_world=self.camera_from_world.astype(np.float32), moving=self.dynamic.copy(),
            flow_fwd=fwd.astype(np.float16), flow_bwd=bwd.astype(np.float16), flow_valid=valid, flow_stride=1,
            fps=float(self.fps), provenance={"source": "sample_scene", "kind": self.kind, "seed": self.seed,
                                       "depth": "ground truth", "flow": "ground truth"},
        )

    def mono_disparity(self) -> np.ndarray:
        """Simulated monocular depth network output: float16 [F, H, W], relative inverse depth in 0..1."""
        return _mono_disparity(self.depth, self.seed)

    def scene_json(self) -> dict:
        F, H, W = self.depth.shape
        return {
            "name": self.name, "fps": self.fps, "width": W, "height": H, "num_frames": F,
            "intrinsics": self.K.tolist(), "world_to_camera": self.camera_from_world.tolist(),
            "object_world_from_mesh": self.object_world_from_mesh.tolist(), "placement": self.placement,
            "description": self.description,
        } | ({} if self.K_per_frame is None else {"intrinsics_per_frame": self.K_per_frame.tolist()})

    def write_bundle(self, directory: str | Path) -> Path:
        """Write the scene bundle layout (docs/FORMATS.md) into `directory`; returns it."""
        return write_bundle(self, directory)


def _describe(kind: str, support: str, shape: str) -> str:
    if kind in SUITE_KINDS:
        return DESCRIPTIONS[kind].format(s=support, o=shape)
    text = {
        "static": "Procedural room; the camera orbits; the {o} stands on the {s} and stays put.",
        "moving_support": "Procedural room; a tray slides and turns on the table while the camera dollies; "
                          "the {o} stands on the tray and moves with it.",
        "occluder": "Procedural room; the camera pans; a box-shaped walker crosses in front of the {o} "
                    "standing on the {s} (partial, then full occlusion).",
    }[kind]
    return text.format(s=support, o=shape)


def make_scene(kind: str = "static", num_frames: int = 17, width: int = 160, height: int = 96, seed: int = 0,
               fps: float = 16.0, object_shape: Optional[str] = None,
               progress: Optional[Progress] = None) -> SampleScene:
    """Render a sample scene with exact ground truth (deterministic for its arguments).

    kind: one of KINDS; object_shape: one of OBJECT_SHAPES, or None to let the seed choose.
    progress(done, total) is called after each frame.
    """
    if kind not in ALL_KINDS:
        raise InsertAnywhereError(f"Unknown sample scene kind '{kind}'; use one of {', '.join(ALL_KINDS)}.")
    if object_shape is not None and object_shape not in OBJECT_SHAPES:
        raise InsertAnywhereError(
            f"Unknown sample object shape '{object_shape}'; use one of {', '.join(OBJECT_SHAPES)} or leave it empty.")
    if num_frames < 2:
        raise InsertAnywhereError(f"num_frames={num_frames} is too small; a sample scene needs at least 2 frames.")
    if width < 32 or height < 32 or width % 2 or height % 2 or width > 4096 or height > 4096:
        raise InsertAnywhereError(
            f"Sample scene size {width}x{height} is not supported; use even sizes between 32 and 4096 "
            "(H.264 needs even sizes).")
    F, H, W = int(num_frames), int(height), int(width)
    rng = np.random.default_rng([int(seed), ALL_KINDS.index(kind)])

    shape = object_shape or str(rng.choice(OBJECT_SHAPES))
    mesh = _make_object_mesh(rng, shape)
    mesh_height = float(np.asarray(mesh.vertices)[:, 1].max())
    obj_height = rng.uniform(0.22, 0.34)
    scale = obj_height / mesh_height
    obj_radius = scale * float(np.linalg.norm(np.asarray(mesh.vertices)[:, [0, 2]], axis=1).max())

    if kind in KINDS:
        layout = _build_layout(kind, F, rng, obj_height, obj_radius)
    else:
        layout = build_layout(kind, F, rng, obj_height, obj_radius, fps)
    world, cams = layout.world, layout.cams
    pose0 = _object_pose(rng, cams[0], layout.p0, scale)
    object_poses = layout.support_motion @ pose0
    K = np.array([[0.89 * W, 0.0, (W - 1) / 2.0], [0.0, 0.89 * W, (H - 1) / 2.0], [0.0, 0.0, 1.0]])
    Ks = _zoomed(K, layout.zoom, F)
    placement = derive_placement(pose0, mesh_height, _UP, cams[0], Ks[0])
    noise_rng = np.random.default_rng([int(seed), ALL_KINDS.index(kind), 1])

    frames = np.empty((F, H, W, 3), np.uint8)
    composite = np.empty_like(frames)
    depth = np.empty((F, H, W), np.float32)
    prim_img = np.empty((F, H, W), np.int16)
    local_img = np.empty((F, H, W, 3), np.float32)
    visible = np.empty((F, H, W), bool)
    amodal = np.empty((F, H, W), bool)
    mats = world.material_arrays()
    v_px, u_px = (g.reshape(-1) for g in np.mgrid[0:H, 0:W].astype(np.float64))
    salt, light = int(seed) * 13 + 5, layout.light
    for t in range(F):
        prim, z, local, color, points = _render_scene(world, mats, t, cams[t], Ks[t], u_px, v_px, salt, light)
        if layout.blur_cams is not None:  # the shutter stays open while the camera moves
            color = np.mean([_render_scene(world, mats, t, c, Ks[t], u_px, v_px, salt, light)[3]
                             for c in layout.blur_cams[t]], axis=0)
        color = color.reshape(H, W, 3)
        depth[t] = np.minimum(z, BACKGROUND_DEPTH).reshape(H, W)
        prim_img[t] = prim.reshape(H, W)
        local_img[t] = local.reshape(H, W, 3)

        obj_z, obj_rgb = _render_object(mesh, object_poses[t], cams[t], Ks[t], H, W, light)
        amodal[t] = np.isfinite(obj_z)
        visible[t] = amodal[t] & (obj_z < z.reshape(H, W))
        shadow = _contact_shadow(points, object_poses[t], obj_radius).reshape(H, W, 1)
        with_object = np.where(visible[t][..., None], obj_rgb, color * (1.0 - shadow))
        if layout.noise_std > 0:  # the same sensor noise on the input and on the target
            noise = noise_rng.normal(0.0, layout.noise_std, color.shape)
            color, with_object = np.clip(color + noise, 0.0, 1.0), np.clip(with_object + noise, 0.0, 1.0)
        frames[t] = _to_uint8(color)
        composite[t] = _to_uint8(with_object)
        report(progress, t + 1, F)

    ref, ref_mask = _render_reference(mesh)
    support_name = world.names[layout.support_pid].replace("_top", "")
    return SampleScene(
        kind=kind, seed=int(seed), name=f"sample_{kind}_{seed}", description=_describe(kind, support_name, shape),
        fps=float(fps), frames=frames, depth=depth, K=Ks[0].copy(), camera_from_world=cams,
        dynamic=world.dynamic[prim_img], object_mesh=mesh, object_ref=ref, object_ref_mask=ref_mask,
        placement=placement, object_world_from_mesh=object_poses, gt_visible=visible, gt_amodal=amodal,
        composite=composite, surface_normal=_UP.copy(), world=world, hit_prim=prim_img, hit_local=local_img,
        K_per_frame=None if layout.zoom is None else Ks,
    )


def _zoomed(K: np.ndarray, zoom: Optional[np.ndarray], num_frames: int) -> np.ndarray:
    """Per-frame K [F, 3, 3]: K with its focal lengths times zoom[t] (the same K without zoom)."""
    if zoom is None:
        return np.broadcast_to(K, (num_frames, 3, 3))
    Ks = np.repeat(K[None], num_frames, axis=0)
    Ks[:, 0, 0] *= zoom
    Ks[:, 1, 1] *= zoom
    return Ks


def _to_uint8(color: np.ndarray) -> np.ndarray:
    return (color * 255 + 0.5).astype(np.uint8)


def _object_pose(rng: np.random.Generator, camera_from_world0: np.ndarray, p0: np.ndarray, scale: float):
    """The object's true frame-0 pose [4, 4]: upright on the support at p0, facing roughly (not exactly)
    the first camera (10-40 degrees off)."""
    to_cam = -camera_from_world0[:3, :3].T @ camera_from_world0[:3, 3] - p0
    heading = math.atan2(to_cam[1], to_cam[0]) + math.radians(rng.choice([-1, 1]) * rng.uniform(10, 40))
    front = np.array([math.cos(heading), math.sin(heading), 0.0])
    return make_pose(np.stack([np.cross(_UP, front), _UP, front], axis=1), p0, scale)


def _render_scene(world: _World, mats: dict, t: int, camera_from_world: np.ndarray, K: np.ndarray,
                  u: np.ndarray, v: np.ndarray, salt: int, light: _Light = _DEFAULT_LIGHT):
    """Ray-cast and shade pixels (u, v) [N] of frame t.

    Returns prim [N], depth [N], local [N, 3] (hit in the prim's frame), colour [N, 3] in 0..1,
    world points [N, 3].
    """
    prim, z, local, n_local, eye, dirs = _raycast(world, t, camera_from_world, K, u, v)
    n_world = _per_prim(world.poses[:, t], prim, n_local, rotate_only=True)
    ray_len = np.sqrt(dirs[:, 0] ** 2 + dirs[:, 1] ** 2 + dirs[:, 2] ** 2)
    facing = np.abs(n_world[:, 0] * dirs[:, 0] + n_world[:, 1] * dirs[:, 1] + n_world[:, 2] * dirs[:, 2]) / ray_len
    footprint = z * ray_len / K[0, 0] / np.maximum(facing, 0.2)  # pixel size on the surface, metres
    color = _shade(prim, local, n_local, n_world, footprint, mats, salt, light)
    return prim, z, local, color, eye + z[:, None] * dirs


def _contact_shadow(points: np.ndarray, world_from_mesh: np.ndarray, foot_radius: float) -> np.ndarray:
    """Soft darkening [N] in 0..0.5 of scene points near the object's base (a blob shadow)."""
    scale = float(np.linalg.norm(world_from_mesh[:3, 0]))
    R = world_from_mesh[:3, :3] / scale
    q = _rotate(points - world_from_mesh[:3, 3], R.T)  # world-unit offsets in the object's axes
    radial2 = (q[:, 0] ** 2 + q[:, 2] ** 2) / (1.3 * foot_radius) ** 2
    near = np.clip(1.0 - np.abs(q[:, 1]) / (0.05 + 0.2 * foot_radius), 0.0, 1.0)
    return 0.5 * np.exp(-radial2) * near
