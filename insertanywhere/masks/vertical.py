"""The scene's vertical from its straight lines (the vertical vanishing point).

A monocular depth map bends planes by a degree or two, and a thin upright object shows such a
tilt at once. Man-made scenes are full of vertical edges (walls, doors, legs, tiles) whose images
all meet in one vanishing point; its direction is the world vertical, with no depth involved.
Near-vertical segments are collected from a few frames (cv2 LSD) and turned into constraints on a
world direction v through each frame's camera: a segment's image line l in frame t passes
through the vanishing point K R_t v, so (R_t^T K^T l) . v = 0. A RANSAC over segment pairs,
limited to directions near a given surface normal, then a length-weighted least-squares refit
gives v. It is trusted only when the lines clearly agree on it: enough segments, tightly (most
of those within WIDE_DEG are within INLIER_DEG) and a good share of all of them (MIN_SHARE).

Even with a wrong focal length the result keeps the object's edges pointed at the true vanishing
point, which is what the eye checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from ..errors import InsertAnywhereError

MIN_LENGTH = 0.04        # segments shorter than this share of the image diagonal are ignored
MAX_IMAGE_TILT = 25.0    # degrees from the image's vertical a candidate segment may lean
FRAMES_USED = 8          # frames spread over the video that contribute segments
MAX_DEVIATION = 20.0     # degrees the vertical may differ from the surface normal it replaces
INLIER_DEG = 0.75        # a segment supports a vanishing point when it points at it within this
WIDE_DEG = 3.0           # ... and the support within this is the reference for the peak test
MIN_PEAK = 0.4           # share of the wide support that must be tight (random texture gives ~0.25)
MIN_SHARE = 0.18         # share of all candidate segments' length it must gather (chance alignments of
                         # texture strokes gather about a tenth, scenes with verticals a quarter or more)
MIN_INLIERS = 6
RANSAC_TRIALS = 600


@dataclass
class Vertical:
    """A vertical direction found from lines: direction [3] (world, unit), its support: inlier
    segments, frames they come from, peak (tight / wide support), share of all segments' length."""

    direction: np.ndarray
    inliers: int
    frames: int
    peak: float
    share: float


def detect_segments(frames: np.ndarray, count: int = FRAMES_USED) -> np.ndarray:
    """Near-vertical line segments float32 [N, 5] (frame, x0, y0, x1, y1) from `count` frames
    spread over frames uint8 [F, H, W, 3]."""
    num, height, width = frames.shape[:3]
    min_length = MIN_LENGTH * float(np.hypot(height, width))
    detector = cv2.createLineSegmentDetector()
    rows = []
    for t in np.unique(np.linspace(0, num - 1, min(count, num)).round().astype(int)):
        gray = cv2.cvtColor(np.ascontiguousarray(frames[t]), cv2.COLOR_RGB2GRAY)
        found = detector.detect(gray)[0]
        if found is None:
            continue
        seg = found.reshape(-1, 4).astype(np.float64)
        d = seg[:, 2:] - seg[:, :2]
        length = np.hypot(d[:, 0], d[:, 1])
        tilt = np.degrees(np.arctan2(np.abs(d[:, 0]), np.abs(d[:, 1])))
        keep = (length >= min_length) & (tilt <= MAX_IMAGE_TILT)
        rows.append(np.c_[np.full(keep.sum(), t), seg[keep]])
    return np.concatenate(rows).astype(np.float32) if rows else np.zeros((0, 5), np.float32)


class LineEvidence:
    """Segments [N, 5] of a video with its K [3, 3] and camera_from_world [F, 4, 4]."""

    def __init__(self, segments: np.ndarray, K: np.ndarray, camera_from_world: np.ndarray):
        segments = np.asarray(segments, np.float64).reshape(-1, 5)
        frame = segments[:, 0].astype(np.int64)
        ends_a, ends_b = segments[:, 1:3], segments[:, 3:5]
        self.K = np.asarray(K, np.float64)
        self.R = np.asarray(camera_from_world, np.float64)[frame, :3, :3]
        self.frame = frame
        self.KR = self.K @ self.R
        d = ends_b - ends_a
        self.length = np.hypot(d[:, 0], d[:, 1])
        self.dirs = d / np.maximum(self.length, 1e-12)[:, None]
        self.mid = (ends_a + ends_b) / 2
        lines = np.cross(np.c_[ends_a, np.ones(len(frame))], np.c_[ends_b, np.ones(len(frame))])
        constraints = np.einsum("nji,nj->ni", self.R, lines @ self.K)  # R_t^T K^T l
        self.constraints = constraints / np.maximum(np.linalg.norm(constraints, axis=1), 1e-12)[:, None]

    def __len__(self) -> int:
        return len(self.frame)

    def deviation_deg(self, direction: np.ndarray) -> np.ndarray:
        """[..., N] angle between each segment and the line from its middle to the vanishing point
        of world direction(s) [..., 3] in its frame."""
        vp = np.einsum("nij,...j->...ni", self.KR, direction)
        to = vp[..., :2] - self.mid * vp[..., 2:3]
        cos = np.abs((to * self.dirs).sum(-1)) / np.maximum(np.linalg.norm(to, axis=-1), 1e-12)
        return np.degrees(np.arccos(np.clip(cos, 0.0, 1.0)))

    def vertical_near(self, normal: np.ndarray, max_deviation_deg: float = MAX_DEVIATION,
                      seed: int = 0) -> Optional[Vertical]:
        """The lines' vanishing direction within max_deviation_deg of normal [3] (world), signed
        like it, or None when no such direction is clearly supported."""
        if len(self) < MIN_INLIERS:
            return None
        normal = np.asarray(normal, np.float64) / np.linalg.norm(normal)
        best = self._ransac(normal, np.cos(np.radians(max_deviation_deg)), seed)
        if best is None:
            return None
        direction = best
        for _ in range(3):
            tight = self.deviation_deg(direction) <= INLIER_DEG
            weighted = self.constraints[tight] * self.length[tight, None]
            direction = np.linalg.eigh(weighted.T @ self.constraints[tight])[1][:, 0]
        if direction @ normal < 0:
            direction = -direction
        deviation = self.deviation_deg(direction)
        tight, wide = deviation <= INLIER_DEG, deviation <= WIDE_DEG
        support = self.length[tight].sum()
        peak = float(support / max(self.length[wide].sum(), 1e-12))
        share = float(support / self.length.sum())
        found = Vertical(direction, int(tight.sum()), len(np.unique(self.frame[tight])), peak, share)
        ok = (found.inliers >= MIN_INLIERS and peak >= MIN_PEAK and share >= MIN_SHARE
              and abs(direction @ normal) >= np.cos(np.radians(max_deviation_deg)))
        return found if ok else None

    def _ransac(self, normal: np.ndarray, min_cos: float, seed: int) -> Optional[np.ndarray]:
        rng = np.random.default_rng(seed)
        pairs = rng.choice(len(self), size=(RANSAC_TRIALS, 2), p=self.length / self.length.sum())
        pairs = pairs[pairs[:, 0] != pairs[:, 1]]
        candidates = np.cross(self.constraints[pairs[:, 0]], self.constraints[pairs[:, 1]])
        norms = np.linalg.norm(candidates, axis=1)
        candidates = candidates[norms > 1e-9] / norms[norms > 1e-9, None]
        candidates = candidates[np.abs(candidates @ normal) >= min_cos]
        if len(candidates) == 0:
            return None
        scores = [(self.deviation_deg(chunk) <= INLIER_DEG) @ self.length for chunk in np.array_split(
            candidates, max(1, len(candidates) // 128))]
        return candidates[int(np.argmax(np.concatenate(scores)))]


UPRIGHT_MODES = ("auto", "on", "off")


def use_upright(scene, mode: str = "auto") -> bool:
    """Whether the placement takes up from the scene's vertical lines (mode "on"), from the depth
    alone ("off"), or ("auto") from the lines unless the depth was given metric with the camera's
    K: measured geometry (LiDAR, a calibrated rig) is trusted for the surface normal, while a
    depth network's relative depth or an estimated focal length bend it by degrees."""
    if mode not in UPRIGHT_MODES:
        raise InsertAnywhereError(f"Upright mode '{mode}' is unknown; use one of {', '.join(UPRIGHT_MODES)}.")
    if mode != "auto":
        return mode == "on"
    measured = scene.depth_source == "metric" and scene.intrinsics_source == "given"
    return not measured


def scene_lines(scene) -> LineEvidence:
    """LineEvidence of a SceneRecord, from its segments, or detected now when it has none (the
    record is left as it is: callers that reuse the evidence keep it)."""
    segments = detect_segments(scene.frames) if scene.lines is None else scene.lines
    return LineEvidence(segments, scene.K, scene.camera_from_world)
