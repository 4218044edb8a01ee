"""The procedural sample scenes: exact flow, depth, placement and masks, and the bench bundle layout."""

import json
from functools import lru_cache

import numpy as np
import pytest

from insertanywhere.errors import InsertAnywhereError
from insertanywhere.masks.geometry import make_pose, rot_y, rotation_angle_deg
from insertanywhere.sample_scene import ALL_KINDS, KINDS, OBJECT_SHAPES, SUITE_KINDS, make_scene


@lru_cache(maxsize=None)
def scene(kind, seed=0):
    return make_scene(kind, num_frames=17, width=160, height=96, seed=seed)


def bilinear(img, u, v):
    """img [H, W, C] or [H, W] at float (u, v) arrays (inside the image)."""
    H, W = img.shape[:2]
    u0 = np.clip(np.floor(u).astype(int), 0, W - 2)
    v0 = np.clip(np.floor(v).astype(int), 0, H - 2)
    a, b = u - u0, v - v0
    if img.ndim == 3:
        a, b = a[..., None], b[..., None]
    return ((1 - a) * (1 - b) * img[v0, u0] + a * (1 - b) * img[v0, u0 + 1]
            + (1 - a) * b * img[v0 + 1, u0] + a * b * img[v0 + 1, u0 + 1])


@pytest.mark.parametrize("kind", [k for k in ALL_KINDS if k != "noise_blur"])  # its frames are blurred and noisy
def test_exact_flow_warps_next_frame_onto_current(kind):
    s = scene(kind)
    fwd, bwd, valid = s.flow()
    H, W = s.depth.shape[1:]
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    warped_err, still_err = [], []
    for t in range(0, s.num_frames - 1, 4):
        ok = valid[t]
        assert ok.mean() > 0.6
        warped = bilinear(s.frames[t + 1].astype(np.float64), u + fwd[t, ..., 0], v + fwd[t, ..., 1])
        cur = s.frames[t].astype(np.float64)
        warped_err.append(np.abs(warped - cur)[ok].mean())
        still_err.append(np.abs(s.frames[t + 1].astype(np.float64) - cur)[ok].mean())
        # Forward then backward returns to the start on valid pixels.
        back = bilinear(bwd[t].astype(np.float64), u + fwd[t, ..., 0], v + fwd[t, ..., 1])
        roundtrip = np.linalg.norm(fwd[t] + back, axis=-1)[ok]
        assert np.median(roundtrip) < 0.05
    assert np.mean(warped_err) < 3.0
    # the suite's slow cameras (dolly, small orbits) move the frames less, so the margin is smaller
    assert np.mean(warped_err) < (0.5 if kind in KINDS else 0.75) * np.mean(still_err)


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_depth_reprojects_through_poses_on_static_pixels(kind):
    s = scene(kind)
    H, W = s.depth.shape[1:]
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    fwd, _, valid = s.flow()
    for ta, tb in ((0, 1), (3, 9), (10, 16)):
        z = s.depth[ta].astype(np.float64)
        K, K_b = s.K_at(ta), s.K_at(tb)  # the focal changes on the zoom kind
        cam = np.stack([(u - K[0, 2]) / K[0, 0] * z, (v - K[1, 2]) / K[1, 1] * z, z], -1)
        rel = s.camera_from_world[tb] @ np.linalg.inv(s.camera_from_world[ta])
        pc = cam @ rel[:3, :3].T + rel[:3, 3]
        ub = K_b[0, 0] * pc[..., 0] / pc[..., 2] + K_b[0, 2]
        vb = K_b[1, 1] * pc[..., 1] / pc[..., 2] + K_b[1, 2]
        ok = ~s.dynamic[ta] & (ub >= 0) & (ub <= W - 1) & (vb >= 0) & (vb <= H - 1)
        if tb == ta + 1:  # agrees with the exact flow, computed from the renderer's own 3-D points
            err = np.hypot(ub - u - fwd[ta, ..., 0], vb - v - fwd[ta, ..., 1])[ok & valid[ta]]
            assert np.percentile(err, 99) < 0.02
        # On the room's planes, frame tb's depth (inverse depth is bilinear on a plane) matches exactly
        # wherever the same plane is seen around the reprojected point.
        prim = s.hit_prim[tb]
        u0 = np.clip(np.floor(ub).astype(int), 0, W - 2)
        v0 = np.clip(np.floor(vb).astype(int), 0, H - 2)
        same = ((prim[v0, u0] == prim[v0, u0 + 1]) & (prim[v0, u0] == prim[v0 + 1, u0])
                & (prim[v0, u0] == prim[v0 + 1, u0 + 1]) & (prim[v0, u0] == s.hit_prim[ta]))
        sel = ok & same & np.isin(s.hit_prim[ta], s.world.room_face_ids)
        zb = 1.0 / bilinear(1.0 / s.depth[tb].astype(np.float64), ub[sel], vb[sel])
        assert sel.sum() > 200
        assert np.abs(pc[..., 2][sel] - zb).max() < 1e-4 * zb.max()


def apply_placement(placement, depth0, K, camera_from_world0, up_world, mesh_height):
    """docs/FORMATS.md's rule, written independently of the generator: placement -> world_from_mesh."""
    au, av_ = placement["anchor"]
    z = 1.0 / bilinear(1.0 / depth0.astype(np.float64), np.array([au]), np.array([av_]))[0]
    p_cam = np.array([(au - K[0, 2]) / K[0, 0] * z, (av_ - K[1, 2]) / K[1, 1] * z, z])
    world_from_camera = np.linalg.inv(camera_from_world0)
    p = world_from_camera[:3, :3] @ p_cam + world_from_camera[:3, 3]
    eye = world_from_camera[:3, 3]
    up = up_world / np.linalg.norm(up_world)
    up = up if up @ (eye - p) > 0 else -up
    f = (eye - p) - ((eye - p) @ up) * up
    f /= np.linalg.norm(f)
    r = np.cross(up, f)
    R = np.stack([r, up, f], 1) @ rot_y(placement["yaw_deg"])
    height = placement["height_px"] * z / K[1, 1]
    return make_pose(R, p, height / mesh_height)


def fitted_normal(depth0, K, camera_from_world0, anchor, radius=3):
    """Surface normal from a plane fit to the depth around the anchor, in world coordinates."""
    cu, cv = int(round(anchor[0])), int(round(anchor[1]))
    v, u = np.mgrid[cv - radius:cv + radius + 1, cu - radius:cu + radius + 1].astype(np.float64)
    z = depth0[cv - radius:cv + radius + 1, cu - radius:cu + radius + 1].astype(np.float64)
    pts = np.stack([(u - K[0, 2]) / K[0, 0] * z, (v - K[1, 2]) / K[1, 1] * z, z], -1).reshape(-1, 3)
    normal = np.linalg.svd(pts - pts.mean(0))[2][-1]
    return np.linalg.inv(camera_from_world0)[:3, :3] @ normal


@pytest.mark.parametrize("kind,seed", [(k, s) for k in KINDS for s in (0, 3)] + [(k, 0) for k in SUITE_KINDS])
def test_placement_round_trip_recovers_true_pose(kind, seed):
    s = scene(kind, seed)
    mesh_height = float(s.object_mesh.vertices[:, 1].max())
    p = s.placement
    assert set(p) == {"anchor", "height_px", "yaw_deg", "pitch_deg", "roll_deg", "offset", "top_k"}
    assert p["pitch_deg"] == p["roll_deg"] == 0.0 and p["offset"] == [0.0, 0.0, 0.0]
    truth = s.object_world_from_mesh[0]
    exact = apply_placement(p, s.depth[0], s.K, s.camera_from_world[0], s.surface_normal, mesh_height)
    assert np.abs(exact - truth).max() < 1e-6
    # The support normal is also what the depth says (so a pipeline can recover it).
    n = fitted_normal(s.depth[0], s.K, s.camera_from_world[0], p["anchor"])
    assert np.degrees(np.arccos(min(1.0, abs(n @ s.surface_normal)))) < 0.1
    approx = apply_placement(p, s.depth[0], s.K, s.camera_from_world[0], n, mesh_height)
    assert np.abs(approx - truth).max() < 1e-3


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_masks_are_consistent(kind):
    s = scene(kind)
    assert not (s.gt_visible & ~s.gt_amodal).any()
    assert s.gt_amodal.sum(axis=(1, 2)).min() > 100  # the object stays in view
    assert s.gt_visible[0].sum() == s.gt_amodal[0].sum()  # placed where it is seen in frame 0
    changed = (s.composite != s.frames).any(-1)
    assert changed[s.gt_visible].mean() > 0.95  # the object is drawn where visible
    assert not changed[~s.gt_amodal & ~s.dynamic & (s.depth > s.depth.max() * 0.9)].any()


@pytest.mark.parametrize("shape", OBJECT_SHAPES)
def test_object_mesh_is_canonical_and_reference_shows_its_front(shape):
    s = make_scene("static", num_frames=2, width=64, height=48, seed=1, object_shape=shape)
    mesh = s.object_mesh
    lo, hi = mesh.vertices.min(0), mesh.vertices.max(0)
    assert abs(lo[1]) < 1e-12 and abs(lo[0] + hi[0]) < 1e-9 and abs(lo[2] + hi[2]) < 1e-9
    assert mesh.volume > 0  # closed parts with outward faces
    assert len(mesh.visual.vertex_colors) == len(mesh.vertices)
    assert shape in s.description
    mask = s.object_ref_mask
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 255}
    # The reference is a front view: its silhouette is as wide as the mesh's X extent is, relative to height.
    rows, cols = np.nonzero(mask)
    aspect = (cols.max() - cols.min() + 1) / (rows.max() - rows.min() + 1)
    assert abs(aspect - (hi[0] - lo[0]) / hi[1]) < 0.15
    assert (s.object_ref[mask == 0] == 255).all()


def test_occluder_hides_object_partly_then_fully():
    for seed in (0, 1, 2):
        s = scene("occluder", seed)
        vis = s.gt_visible.sum(axis=(1, 2))
        am = s.gt_amodal.sum(axis=(1, 2))
        ratio = vis / am
        partial = (ratio > 0.0) & (ratio < 0.9)
        full = ratio == 0.0
        assert full.sum() >= 2 and partial.sum() >= 2, ratio
        first_full = np.argmax(full)
        assert partial[:first_full].any()  # partial before full
        assert ratio[0] == 1.0 and ratio[-1] == 1.0
        assert s.dynamic[full].any()


def test_moving_support_carries_the_object():
    s = scene("moving_support")
    poses = s.object_world_from_mesh
    move = np.linalg.norm(poses[-1, :3, 3] - poses[0, :3, 3])
    scale = np.linalg.norm(poses[0, :3, 0])
    turn = rotation_angle_deg(poses[-1, :3, :3] @ poses[0, :3, :3].T / scale ** 2)
    assert move > 0.15 and turn > 10.0
    # Just in front of the base (towards the camera) the scene pixel is the moving tray in every frame.
    for t in range(s.num_frames):
        camera_from_world = s.camera_from_world[t]
        eye = np.linalg.inv(camera_from_world)[:3, 3]
        base = poses[t, :3, 3]
        toward = eye - base
        toward[2] = 0
        front = base + 0.5 * scale * np.linalg.norm(s.object_mesh.vertices[:, [0, 2]], axis=1).max() \
            * toward / np.linalg.norm(toward)
        pc = camera_from_world[:3, :3] @ front + camera_from_world[:3, 3]
        u = int(round(s.K[0, 0] * pc[0] / pc[2] + s.K[0, 2]))
        v = int(round(s.K[1, 1] * pc[1] / pc[2] + s.K[1, 2]))
        assert s.dynamic[t, v, u]


def test_static_scene_has_constant_pose_and_no_dynamic_pixels():
    s = scene("static")
    assert np.abs(s.object_world_from_mesh - s.object_world_from_mesh[0]).max() == 0.0
    assert not s.dynamic.any()


def test_deterministic_and_seed_dependent():
    a = make_scene("occluder", num_frames=3, width=64, height=48, seed=5)
    b = make_scene("occluder", num_frames=3, width=64, height=48, seed=5)
    c = make_scene("occluder", num_frames=3, width=64, height=48, seed=6)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.gt_visible, b.gt_visible)
    assert a.placement == b.placement
    assert not np.array_equal(a.frames, c.frames)


def test_bad_arguments_raise_user_errors():
    with pytest.raises(InsertAnywhereError, match="kind"):
        make_scene("flying")
    with pytest.raises(InsertAnywhereError, match="even"):
        make_scene("static", width=161)
    with pytest.raises(InsertAnywhereError, match="frames"):
        make_scene("static", num_frames=1)
    with pytest.raises(InsertAnywhereError, match="shape"):
        make_scene("static", object_shape="teapot")


def test_scene_record_is_exact_and_saves(tmp_path):
    s = scene("moving_support")
    rec = s.to_scene_record()
    F, H, W = s.depth.shape
    assert rec.flow_fwd.shape == (F - 1, H, W, 2) and rec.flow_fwd.dtype == np.float16
    assert rec.flow_valid.dtype == bool and rec.flow_stride == 1
    assert np.array_equal(rec.moving, s.dynamic) and rec.moving.any()
    loaded = type(rec).load(rec.save(tmp_path / "rec.npz"))
    assert np.array_equal(loaded.depth, rec.depth) and np.array_equal(loaded.flow_bwd, rec.flow_bwd)


def test_bundle_matches_bench_format(tmp_path):
    import av
    import trimesh
    from PIL import Image

    s = make_scene("occluder", num_frames=9, width=96, height=64, seed=2)
    out = s.write_bundle(tmp_path / "bundle")
    meta = json.loads((out / "scene.json").read_text())
    assert set(meta) == {"name", "fps", "width", "height", "num_frames", "intrinsics", "world_to_camera",
                         "object_world_from_mesh", "placement", "description"}
    assert (meta["width"], meta["height"], meta["num_frames"]) == (96, 64, 9)
    assert np.allclose(meta["object_world_from_mesh"], s.object_world_from_mesh)
    assert meta["placement"] == s.placement
    depth = np.load(out / "depth.npz")["depth"]
    assert depth.dtype == np.float16 and depth.shape == (9, 64, 96)
    assert np.allclose(depth, s.depth, rtol=1e-3)
    mono = np.load(out / "depth_mono.npz")["disparity"]
    assert mono.dtype == np.float16 and mono.shape == (9, 64, 96)
    assert mono.min() == 0.0 and mono.max() == 1.0
    near = s.depth < np.median(s.depth)
    assert mono[near].mean() > mono[~near].mean()  # still an inverse depth
    with av.open(str(out / "scene.mp4")) as container:
        stream = container.streams.video[0]
        decoded = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])
    assert decoded.shape == s.frames.shape
    mse = np.mean((decoded.astype(float) - s.frames) ** 2)
    assert 10 * np.log10(255 ** 2 / mse) > 30
    with av.open(str(out / "gt" / "composite.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 9
    mesh = trimesh.load(out / "object.ply", force="mesh", process=False)
    assert np.allclose(mesh.vertices, s.object_mesh.vertices, atol=1e-6)
    ref = np.asarray(Image.open(out / "object_ref.png"))
    ref_mask = np.asarray(Image.open(out / "object_ref_mask.png"))
    assert ref.ndim == 3 and ref.shape[2] == 3 and ref_mask.shape == ref.shape[:2]
    for name, truth in (("visible", s.gt_visible), ("amodal", s.gt_amodal), ("dynamic", s.dynamic)):
        for t in (0, 4, 8):
            m = np.asarray(Image.open(out / "gt" / name / f"{t:05d}.png"))
            assert m.dtype == np.uint8 and m.shape == (64, 96)
            assert np.array_equal(m >= 128, truth[t])
