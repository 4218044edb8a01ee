"""Data for the in-browser placement editor: frame 0, the surface under the anchor, and fast
per-frame previews of the placed, propagated, occluded object.

Everything here is pure core (numpy/cv2); `nodes/editor.py` serves it over HTTP. The
editor's own placement math (js/placement_math.js) repeats `placement_pose` given the
surface returned by `EditorSession.surface`, so what the canvas draws is what the graph
computes.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from typing import Any, Optional

import numpy as np

from ..errors import InsertAnywhereError
from .geometry import transform, unproject
from .object3d import Object3D
from .placement import (PLANE_TOLERANCE, Placement, check_in_front, parse_placement, placement_pose, plane_radius,
                        surface_frame, surface_normal)
from .propagate import propagate
from .reproject import composite, contact_scales, render_object, visible_mask
from .scene import ObjectTrack, SceneRecord
from .vertical import LineEvidence, scene_lines

EDITOR_FORMAT = 1
OBJECT_POINTS = 1500        # canonical object points sent to the browser for its overlay
SURFACE_SAMPLES = 300       # scene points near the anchor sent with a surface
DEFAULT_MAX_SIDE = 512
MIN_MAX_SIDE, MAX_MAX_SIDE = 64, 4096
JPEG_QUALITY = 85
TRACKS_KEPT = 4             # propagated tracks cached per session (one per recent placement)
POSES_KEPT = 16
HIDDEN_TINT = np.array([255, 64, 200], np.float32)  # colour mixed into the hidden part of the object
HIDDEN_MIX = 0.45


def scaled_intrinsics(K: np.ndarray, scale: float) -> np.ndarray:
    """K [3, 3] for the image resized by `scale` (pixel centres at integers stay consistent)."""
    out = np.asarray(K, np.float64).copy()
    out[0, 0] *= scale
    out[1, 1] *= scale
    out[0, 2] = (out[0, 2] + 0.5) * scale - 0.5
    out[1, 2] = (out[1, 2] + 0.5) * scale - 0.5
    return out


def encode_jpeg(image: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """uint8 RGB [H, W, 3] -> JPEG bytes."""
    import cv2

    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(image[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("OpenCV could not encode the preview as JPEG")
    return buf.tobytes()


def _int_field(body: dict, name: str, default: int, lo: int, hi: int) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InsertAnywhereError(f"'{name}' is {value!r}; it must be an integer from {lo} to {hi}.")
    return value


class EditorSession:
    """One Place Object node's scene and object, with caches for the editor.

    scene: SceneRecord (frames [F, H, W, 3], depth [F, H, W], K, camera_from_world [F, 4, 4]);
    object3d: Object3D in the canonical unit-height frame.
    """

    def __init__(self, scene: SceneRecord, object3d: Object3D, upright: bool = True):
        self.scene = scene
        self.object3d = object3d
        self.upright = upright
        self._lines: Optional[LineEvidence] = None
        self._lock = threading.Lock()
        self.token = uuid.uuid4().hex[:12]  # changes whenever the node runs again: the browser reloads frame 0
        self._frame0_jpeg: Optional[bytes] = None
        self._tracks: "OrderedDict[Placement, ObjectTrack]" = OrderedDict()
        self._poses: OrderedDict = OrderedDict()
        self._jobs: dict[Placement, _TrackJob] = {}

    @property
    def size(self) -> tuple[int, int]:
        """(H, W)"""
        return self.scene.size

    # ------------------------------------------------------------------ static data

    def info(self) -> dict:
        """Scene size, intrinsics, frame count, and a sample of the object's canonical points."""
        height, width = self.size
        vertices = np.asarray(self.object3d.vertices, np.float64)
        colors = np.asarray(self.object3d.colors, np.uint8)
        if len(vertices) > OBJECT_POINTS:
            pick = np.random.default_rng(0).choice(len(vertices), OBJECT_POINTS, replace=False)
            vertices, colors = vertices[np.sort(pick)], colors[np.sort(pick)]
        return {
            "format": EDITOR_FORMAT,
            "token": self.token,
            "width": width,
            "height": height,
            "num_frames": self.scene.num_frames,
            "fps": float(self.scene.fps),
            "K": np.asarray(self.scene.K, np.float64).tolist(),
            "object": {
                "points": np.round(vertices, 5).tolist(),
                "colors": colors.tolist(),
                "bbox": [np.asarray(self.object3d.vertices).min(0).tolist(),
                         np.asarray(self.object3d.vertices).max(0).tolist()],
            },
        }

    def frame0_jpeg(self) -> bytes:
        with self._lock:
            if self._frame0_jpeg is None:
                self._frame0_jpeg = encode_jpeg(np.asarray(self.scene.frames[0]))
            return self._frame0_jpeg

    # ------------------------------------------------------------------ surface under the anchor

    def surface(self, anchor, height_px) -> dict:
        """The surface `placement_pose` finds under `anchor` for an object `height_px` tall.

        Returns camera-0 coordinates: point p [3], normal [3], right/up/forward [3],
        depth (z of p), radius (px of the fit window), inlier_ratio, and `samples`: up to
        SURFACE_SAMPLES scene pixels [u, v, on_plane] from the fit window.
        """
        placement = parse_placement({"anchor": anchor, "height_px": height_px})
        depth0 = np.asarray(self.scene.depth[0], np.float64)
        K = np.asarray(self.scene.K, np.float64)
        radius = plane_radius(placement.height_px)
        point, normal, inlier_ratio, up_source = surface_normal(
            depth0, K, placement.anchor, placement.height_px, self.scene.camera_from_world[0], self.lines())
        right, up, forward = surface_frame(point, normal)
        return {
            "anchor": list(placement.anchor),
            "radius": radius,
            "point": point.tolist(),
            "normal": normal.tolist(),
            "right": right.tolist(),
            "up": up.tolist(),
            "forward": forward.tolist(),
            "depth": float(point[2]),
            "inlier_ratio": inlier_ratio,
            "up_source": up_source,
            "samples": self._window_samples(depth0, K, placement.anchor, radius, point, normal),
        }

    @staticmethod
    def _window_samples(depth0, K, anchor, radius, point, normal) -> list[list[float]]:
        """Scene pixels in the fit window, flagged 1 when within the plane tolerance."""
        height, width = depth0.shape
        u, v = anchor
        step = max(1, int(round(2 * radius / np.sqrt(SURFACE_SAMPLES))))
        ys, xs = np.mgrid[max(0, round(v) - radius):min(height, round(v) + radius + 1):step,
                          max(0, round(u) - radius):min(width, round(u) + radius + 1):step]
        z = depth0[ys, xs]
        keep = ((xs - u) ** 2 + (ys - v) ** 2 <= radius ** 2) & np.isfinite(z) & (z > 0)
        xs, ys, z = xs[keep], ys[keep], z[keep]
        pts = unproject(xs.astype(np.float64), ys.astype(np.float64), z, K)
        on_plane = np.abs((pts - point) @ normal) < PLANE_TOLERANCE * point[2]
        return [[int(x), int(y), int(f)] for x, y, f in zip(xs, ys, on_plane)][:SURFACE_SAMPLES]

    # ------------------------------------------------------------------ previews

    def preview_request(self, body: dict[str, Any]) -> tuple[bytes, dict]:
        """Validate an editor request {"placement": dict|str, "frame": int, "max_side": int,
        "prefetch": bool} and answer (JPEG bytes, meta). With prefetch (the default) the
        placement's track is then propagated in the background for later frames."""
        if "placement" not in body:
            raise InsertAnywhereError("The preview request lacks 'placement' (the placement JSON).")
        placement = parse_placement(body["placement"])
        frame = _int_field(body, "frame", 0, 0, self.scene.num_frames - 1)
        max_side = _int_field(body, "max_side", DEFAULT_MAX_SIDE, MIN_MAX_SIDE, MAX_MAX_SIDE)
        prefetch = body.get("prefetch", True)
        if not isinstance(prefetch, bool):
            raise InsertAnywhereError(f"'prefetch' is {prefetch!r}; it must be true or false.")
        image, meta = self.preview(placement, frame, max_side)
        if prefetch:
            self.prefetch(placement)
        meta["track_ready"] = self.track_ready(placement)
        return encode_jpeg(image), meta

    def preview(self, placement: Placement | dict | str, frame: int = 0,
                max_side: int = DEFAULT_MAX_SIDE) -> tuple[np.ndarray, dict]:
        """Frame `frame` downscaled to at most `max_side` px, with the object drawn where the
        placement puts it (propagated from frame 0): visible part in its colours, the part the
        scene hides tinted. Returns (uint8 [h, w, 3], meta with pixel counts and timing)."""
        import cv2

        start = time.perf_counter()
        placement = parse_placement(placement)
        scene = self.scene
        if not 0 <= frame < scene.num_frames:
            raise InsertAnywhereError(f"Frame {frame} is outside the scene's 0..{scene.num_frames - 1}.")
        world_from_object, surface = self._pose(placement)
        check_in_front(self.object3d, np.asarray(scene.camera_from_world[0], np.float64) @ world_from_object)
        track_info: dict = {}
        contact = 1.0
        anchor_world = np.asarray(surface.point, np.float64)
        if frame > 0:
            track = self._track(placement, world_from_object, surface.point)
            cameras = np.asarray(scene.camera_from_world, np.float64) @ np.asarray(track.world_from_object, np.float64)
            contact = float(contact_scales(scene, cameras, track.support)[frame])  # as reproject does
            motion = track.world_from_object[frame] @ np.linalg.inv(world_from_object)  # frame 0 -> frame t
            anchor_world = transform(motion, anchor_world[None])[0]
            world_from_object = track.world_from_object[frame]
            track_info = {"support": int(track.support_count[frame]), "moving": bool(track.moving[frame]),
                          "warnings": list(track.warnings)}
        height, width = scene.size
        scale = min(1.0, max_side / max(height, width))
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        K = scaled_intrinsics(scene.K, scale)
        camera_from_object = np.asarray(scene.camera_from_world[frame], np.float64) @ world_from_object
        render = render_object(self.object3d, camera_from_object, K, size)
        render.depth *= np.float32(contact)
        depth = cv2.resize(np.asarray(scene.depth[frame], np.float32), size[::-1], interpolation=cv2.INTER_NEAREST)
        image = cv2.resize(np.asarray(scene.frames[frame]), size[::-1], interpolation=cv2.INTER_AREA)
        visible = visible_mask(render, depth)
        out = composite(image, render, visible)
        hidden = render.mask & ~visible
        out[hidden] = ((1 - HIDDEN_MIX) * out[hidden] + HIDDEN_MIX * HIDDEN_TINT).astype(np.uint8)
        anchor_uv = self._project(transform(np.asarray(scene.camera_from_world[frame], np.float64),
                                            anchor_world[None])[0], K)
        meta = {
            "frame": frame,
            "width": size[1],
            "height": size[0],
            "scale": scale,
            "visible_px": int(visible.sum()),
            "amodal_px": int(render.mask.sum()),
            "anchor_px": anchor_uv,
            "ms": round(1000 * (time.perf_counter() - start), 1),
            **track_info,
        }
        return out, meta

    @staticmethod
    def _project(point: np.ndarray, K: np.ndarray) -> Optional[list[float]]:
        if point[2] <= 1e-9:
            return None
        return [float(K[0, 0] * point[0] / point[2] + K[0, 2]), float(K[1, 1] * point[1] / point[2] + K[1, 2])]

    def _track(self, placement: Placement, world_from_object0: np.ndarray, anchor_world: np.ndarray) -> ObjectTrack:
        """The propagated track for this placement: cached, or awaited from a running job, or computed."""
        with self._lock:
            track = self._tracks.get(placement)
            if track is not None:
                self._tracks.move_to_end(placement)
                return track
            job = self._jobs.get(placement)
            if job is None:
                job = self._jobs[placement] = _TrackJob()
                owner = True
            else:
                owner = False
        if owner:
            self._compute(placement, job, world_from_object0, anchor_world)
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.track

    def prefetch(self, placement: Placement | dict | str) -> bool:
        """Start propagating `placement` in a background thread, cancelling stale prefetches,
        so that scrubbing to later frames finds the track ready. True when a job started."""
        placement = parse_placement(placement)
        if self.scene.num_frames < 2:
            return False
        with self._lock:
            for other, job in self._jobs.items():
                if other != placement and job.background:
                    job.cancelled = True
            if placement in self._tracks or placement in self._jobs:
                return False
            job = self._jobs[placement] = _TrackJob(background=True)
        try:
            pose, surface = self._pose(placement)
        except InsertAnywhereError as exc:
            job.error = exc
            self._finish(placement, job)
            return False
        threading.Thread(target=self._compute, args=(placement, job, pose, surface.point),
                         name="ia-editor-propagate", daemon=True).start()
        return True

    def lines(self) -> Optional[LineEvidence]:
        """The scene's vertical lines when the node stands objects upright, else None."""
        if not self.upright:
            return None
        with self._lock:
            if self._lines is None:
                self._lines = scene_lines(self.scene)
            return self._lines

    def _pose(self, placement: Placement):
        """placement_pose on frame 0 (world_from_object [4, 4], SurfaceFrame), memoised."""
        with self._lock:
            hit = self._poses.get(placement)
        if hit is None:
            scene = self.scene
            hit = placement_pose(placement, scene.depth[0], scene.K, scene.camera_from_world[0], self.lines())
            with self._lock:
                self._poses[placement] = hit
                while len(self._poses) > POSES_KEPT:
                    self._poses.popitem(last=False)
        return hit

    def track_ready(self, placement: Placement) -> bool:
        with self._lock:
            return placement in self._tracks

    def _compute(self, placement: Placement, job: "_TrackJob", world_from_object0, anchor_world) -> None:
        def check(done: int, total: int) -> None:
            if job.cancelled:
                raise _Cancelled()

        try:
            job.track = propagate(self.scene, world_from_object0, anchor_world, placement.top_k,
                                  placement.height_px, progress=check)
        except _Cancelled as exc:
            job.error = InsertAnywhereError("The preview was superseded by a newer placement; request it again.")
            job.error.__cause__ = exc
        except Exception as exc:  # handed to whoever waits for this job
            job.error = exc
        self._finish(placement, job)

    def _finish(self, placement: Placement, job: "_TrackJob") -> None:
        with self._lock:
            if job.track is not None:
                self._tracks[placement] = job.track
                while len(self._tracks) > TRACKS_KEPT:
                    self._tracks.popitem(last=False)
            if self._jobs.get(placement) is job:
                del self._jobs[placement]
        job.done.set()


class _Cancelled(Exception):
    """Raised inside a prefetch's progress callback when a newer placement superseded it."""


class _TrackJob:
    def __init__(self, background: bool = False):
        self.done = threading.Event()
        self.track: Optional[ObjectTrack] = None
        self.error: Optional[BaseException] = None
        self.cancelled = False
        self.background = background
