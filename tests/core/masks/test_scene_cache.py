"""The disk cache of 4D Reconstruct (masks.scene_cache) and SceneRecord save / load (issue #11, point 3):
atomic writes, damaged entries recomputed with a warning, a key that covers every input, LRU under a cap."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from insertanywhere.errors import InsertAnywhereError
from insertanywhere.masks import scene as scene_module
from insertanywhere.masks.reconstruct import ReconstructOptions
from insertanywhere.masks.scene import SceneRecord
from insertanywhere.masks.scene_cache import SceneCache, reconstruct_settings, scene_key

ROOT = Path(__file__).resolve().parents[3]


def record(seed: int = 0, frames: int = 3, height: int = 16, width: int = 24) -> SceneRecord:
    """A small, complete scene record of random (incompressible) content."""
    rng = np.random.default_rng(seed)
    F, H, W = frames, height, width
    return SceneRecord(
        frames=rng.integers(0, 256, (F, H, W, 3), dtype=np.uint8),
        depth=rng.uniform(1, 5, (F, H, W)).astype(np.float32),
        K=np.array([[20.0, 0, W / 2], [0, 20.0, H / 2], [0, 0, 1]], np.float32),
        camera_from_world=np.repeat(np.eye(4, dtype=np.float32)[None], F, 0),
        moving=rng.random((F, H, W)) < 0.1,
        flow_fwd=rng.normal(size=(F - 1, H // 2, W // 2, 2)).astype(np.float16),
        flow_bwd=rng.normal(size=(F - 1, H // 2, W // 2, 2)).astype(np.float16),
        flow_valid=rng.random((F - 1, H // 2, W // 2)) < 0.9,
        flow_stride=2, fps=16.0, provenance={"seed": seed},
        lines=rng.uniform(0, 16, (4, 5)).astype(np.float32),
    )


def same(a: SceneRecord, b: SceneRecord) -> bool:
    names = ("frames", "depth", "K", "camera_from_world", "moving", "flow_fwd", "flow_bwd", "flow_valid", "lines")
    return all(np.array_equal(getattr(a, n), getattr(b, n)) for n in names) and a.fps == b.fps \
        and a.flow_stride == b.flow_stride


class Computer:
    """compute() for load_or_compute that counts its calls."""

    def __init__(self, scene: SceneRecord):
        self.scene, self.calls = scene, 0

    def __call__(self) -> SceneRecord:
        self.calls += 1
        return self.scene


# --- SceneRecord.save / load ----------------------------------------------------------------------

def test_save_round_trip_and_adds_suffix(tmp_path):
    rec = record()
    path = rec.save(tmp_path / "sub" / "scene")
    assert path == tmp_path / "sub" / "scene.npz" and path.is_file()
    assert same(SceneRecord.load(path), rec)
    assert [p.name for p in path.parent.iterdir()] == ["scene.npz"]  # no temporary file left


def test_format_2_record_with_world_to_camera_still_loads(tmp_path):
    rec = record(seed=3)
    rec.camera_from_world[:, :3, 3] = [[0.5, -1.0, 2.0], [0.4, -1.0, 2.1], [0.3, -1.1, 2.2]]
    path = rec.save(tmp_path / "scene")
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["world_to_camera"] = arrays.pop("camera_from_world")
    arrays["format_version"] = np.int32(2)
    with open(path, "wb") as file:
        np.savez_compressed(file, **arrays)
    assert same(SceneRecord.load(path), rec)


def test_interrupted_save_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    old, new = record(1), record(2)
    path = old.save(tmp_path / "scene.npz")

    def killed(file, **arrays):
        file.write(b"PK\x03\x04" + b"\0" * 1000)  # part of a zip, then the process "dies"
        raise KeyboardInterrupt

    monkeypatch.setattr(scene_module.np, "savez_compressed", killed)
    with pytest.raises(KeyboardInterrupt):
        new.save(path)
    assert same(SceneRecord.load(path), old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene.npz"]


def test_save_to_unwritable_place_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InsertAnywhereError, match="Cannot write scene record"):
        record().save(blocker / "scene.npz")


KILLER = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, str(Path(sys.argv[1]) / "tests" / "core" / "masks"))
from test_scene_cache import record
from insertanywhere.masks.scene_cache import SceneCache
recs = [record(1, frames=6, height=96, width=128), record(2, frames=6, height=96, width=128)]
cache = SceneCache(sys.argv[2], None)
n = 0
while True:
    cache.put(sys.argv[3], recs[n % 2])
    n += 1
    Path(sys.argv[4]).write_text(str(n))
"""


def test_killed_writer_process_never_leaves_a_corrupt_entry(tmp_path):
    """A process saving over and over is SIGKILLed mid-way: the entry is whole, the leftover temp file is
    no hit, and the cache removes it once it is stale."""
    folder = tmp_path / "cache"
    cache = SceneCache(folder, 10 ** 9)
    key = cache.key(np.zeros((2, 4, 4, 3), np.uint8), fps=16)
    counter = tmp_path / "count"
    proc = subprocess.Popen([sys.executable, "-c", KILLER, str(ROOT), str(folder), key, str(counter)])
    try:
        deadline = time.time() + 120
        while not (counter.exists() and counter.read_text() not in ("", "1", "2")) and time.time() < deadline:
            assert proc.poll() is None, "the writer died by itself"
            time.sleep(0.01)
    finally:
        proc.kill()
        proc.wait()
    assert int(counter.read_text()) >= 3
    whole = cache.get(key)
    assert cache.warnings == [] and (same(whole, record(1, 6, 96, 128)) or same(whole, record(2, 6, 96, 128)))
    temps = [p for p in folder.iterdir() if p.name.endswith(".tmp")]
    assert all(p.name.startswith(".scene_") for p in temps)
    # a leftover temporary file is never read as the entry, and goes once it is stale
    old = time.time() - 2 * 3600
    for p in temps:
        os.utime(p, (old, old))
    fresh = folder / f".{cache.path(key).name}.running.tmp"
    fresh.write_bytes(b"PK")
    cache.put(key, record(3))
    assert [p for p in folder.iterdir() if p.name.endswith(".tmp")] == [fresh]
    assert same(cache.get(key), record(3))


def test_leftover_temp_file_is_never_a_hit(tmp_path):
    cache = SceneCache(tmp_path, 10 ** 9)
    rec = record()
    key = cache.key(rec.frames, fps=rec.fps)
    full = rec.save(tmp_path / "elsewhere.npz").read_bytes()
    (tmp_path / f".{cache.path(key).name}.k1ll3d.tmp").write_bytes(full[: len(full) // 2])
    compute = Computer(rec)
    got, warnings = cache.load_or_compute(key, compute)
    assert compute.calls == 1 and warnings == [] and same(got, rec)
    got, warnings = cache.load_or_compute(key, compute)
    assert compute.calls == 1 and warnings == [] and same(got, rec)


def test_concurrent_reader_sees_no_entry_or_a_whole_one(tmp_path):
    """The issue's race: a reader polling while a writer rewrites the entry (it failed 74,810 of 74,811)."""
    writer, reader = SceneCache(tmp_path, 10 ** 9), SceneCache(tmp_path, 10 ** 9)
    recs = [record(1, frames=4, height=48, width=64), record(2, frames=4, height=48, width=64)]
    key = writer.key(recs[0].frames, fps=16)
    done = threading.Event()
    seen = {"none": 0, "whole": 0, "wrong": 0, "errors": []}

    def read():
        while not done.is_set():
            try:
                got = reader.get(key)
            except Exception as error:  # noqa: BLE001 - any exception is the failure counted here
                seen["errors"].append(repr(error))
                continue
            if got is None:
                seen["none"] += 1
            elif same(got, recs[0]) or same(got, recs[1]):
                seen["whole"] += 1
            else:
                seen["wrong"] += 1

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for n in range(150):
            writer.put(key, recs[n % 2])
            if n == 149:
                while seen["whole"] == 0 and thread.is_alive():  # let the reader see at least one entry
                    time.sleep(0.001)
    finally:
        done.set()
        thread.join()
    assert seen["errors"] == [] and seen["wrong"] == 0 and reader.warnings == [] and writer.warnings == []
    assert seen["whole"] >= 1
    assert [p.name for p in tmp_path.iterdir()] == [writer.path(key).name]


# --- damaged entries -----------------------------------------------------------------------------

def _flip_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))


def _old_format(path: Path) -> None:
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["format_version"] = np.int32(1)
    with open(path, "wb") as file:
        np.savez_compressed(file, **arrays)


def _drop_array(path: Path) -> None:
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files if k != "depth"}
    with open(path, "wb") as file:
        np.savez_compressed(file, **arrays)


def _wrong_shape(path: Path) -> None:
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["depth"] = arrays["depth"][:, :5]
    with open(path, "wb") as file:
        np.savez_compressed(file, **arrays)


def _other_scene(path: Path) -> None:  # a whole record of other inputs, copied or renamed onto this name
    record(7).save(path)


DAMAGE = {
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "not a scene record"),
    "zero-length": (lambda p: p.write_bytes(b""), "the file is empty"),
    "bit flip in the middle": (_flip_middle, "damaged"),
    "not an npz": (lambda p: p.write_text("hello, I am a text file\n"), "not an .npz archive: it starts with b'hell'"),
    "npz from elsewhere": (lambda p: open(p, "wb").write(_depth_npz()), "no format_version"),
    "old format": (_old_format, "has format 1, this pack reads"),
    "array missing": (_drop_array, "not a complete scene record .*depth"),
    "wrong shape": (_wrong_shape, "depth is float32 \\(3, 5, 24\\)"),
    "other inputs' scene": (_other_scene, "holds a scene of other inputs"),
}


def _depth_npz() -> bytes:
    import io

    buffer = io.BytesIO()
    np.savez(buffer, depth=np.ones((3, 16, 24), np.float32))
    return buffer.getvalue()


@pytest.mark.parametrize("damage", list(DAMAGE), ids=list(DAMAGE))
def test_damaged_entry_is_recomputed_with_a_warning_then_hit(tmp_path, damage):
    spoil, reason = DAMAGE[damage]
    rec = record()
    cache = SceneCache(tmp_path, 10 ** 9)
    key = cache.key(rec.frames, fps=rec.fps)
    cache.put(key, rec)
    spoil(cache.path(key))
    compute = Computer(rec)
    got, warnings = cache.load_or_compute(key, compute)
    assert compute.calls == 1 and same(got, rec)
    assert len(warnings) == 1 and warnings[0].startswith("disk cache: removed an unusable entry and recomputed")
    assert str(cache.path(key)) in warnings[0]
    import re

    assert re.search(reason, warnings[0]), warnings[0]
    got, warnings = cache.load_or_compute(key, compute)  # the damaged file was replaced: a hit now
    assert compute.calls == 1 and warnings == [] and same(got, rec)


@pytest.mark.parametrize("damage", [d for d in DAMAGE if d != "other inputs' scene"])
def test_load_turns_every_damage_into_insertanywhere_error(tmp_path, damage):
    path = record().save(tmp_path / "scene.npz")
    DAMAGE[damage][0](path)
    with pytest.raises(InsertAnywhereError, match="recompute it"):
        SceneRecord.load(path)


def test_bit_flip_anywhere_is_detected_or_harmless(tmp_path):
    """One bit flipped at 64 places through the file: load raises InsertAnywhereError or returns the
    very same record (a flip in a zip header field that nothing reads), never a wrong one or another error."""
    rec = record()
    path = rec.save(tmp_path / "scene.npz")
    clean = path.read_bytes()
    detected = 0
    for offset in np.linspace(0, len(clean) - 1, 64).astype(int):
        data = bytearray(clean)
        data[offset] ^= 0x04
        path.write_bytes(bytes(data))
        try:
            got = SceneRecord.load(path)
        except InsertAnywhereError:
            detected += 1
            continue
        assert same(got, rec), f"a flip at byte {offset} of {len(clean)} changed the record silently"
    assert detected >= 48, detected  # the arrays are most of the file and are CRC-checked


def test_zip_bad_crc_is_caught_at_load(tmp_path):
    """The issue's raw `BadZipFile: Bad CRC-32`, raised lazily when an array was read."""
    rec = record()
    path = rec.save(tmp_path / "scene.npz")
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("frames.npy")
    data = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + info.compress_size // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(InsertAnywhereError, match=r"(BadZipFile|error): .*recompute it"):
        SceneRecord.load(path)


# --- key -----------------------------------------------------------------------------------------

# a value other than the default for every ReconstructOptions field
OTHER_OPTIONS = dict(flow_stride=2, flow_preset="fast", refine_focal=False, ba_gaps=(1, 2), ba_points=64,
                     ba_iterations=10, depth_weight=2.0, motion_tolerance_px=1.0, motion_relative=0.05,
                     refine_depth=True, polish=False, sharpen_px=0, seed=1)


def test_key_covers_every_input(monkeypatch):
    rec = record()
    frames = rec.frames
    disparity = np.linspace(0.1, 1, 3 * 16 * 24, dtype=np.float32).reshape(3, 16, 24)
    K = np.array([[20.0, 0, 12], [0, 20, 8], [0, 0, 1]])
    base = dict(fps=16.0, depth_input={"disparity": disparity}, K=K, fov_deg=None)

    def key(frames=frames, **changes):
        return scene_key(frames, **{**base, **changes})

    pixel = frames.copy()
    pixel[2, 15, 23, 1] ^= 1
    value = disparity.copy()
    value[1, 2, 3] += 1e-3
    k2 = K.copy()
    k2[0, 2] += 0.5
    variants = {
        "one pixel": key(pixel),
        "frames shape": key(frames.reshape(3, 24, 16, 3)),
        "frames dtype": key(frames.view(np.int8)),
        "frame count": key(frames[:2]),
        "fps": key(fps=16.5),
        "no depth": key(depth_input={}),
        "depth key": key(depth_input={"depth": disparity}),
        "depth value": key(depth_input={"disparity": value}),
        "depth dtype": key(depth_input={"disparity": disparity.astype(np.float64)}),
        "depth shape": key(depth_input={"disparity": disparity.reshape(3, 24, 16)}),
        "no K": key(K=None),
        "K entry": key(K=k2),
        "fov given": key(fov_deg=60.0),
    }
    fields = {field.name for field in dataclasses.fields(ReconstructOptions)}
    assert set(OTHER_OPTIONS) == fields, "give every option another value in OTHER_OPTIONS"
    for name, other in OTHER_OPTIONS.items():
        variants[f"option {name}"] = key(options=ReconstructOptions(**{name: other}))
    reference = key()
    monkeypatch.setattr("insertanywhere.masks.scene_cache.SCENE_CONTENT_VERSION", 999)
    variants["scene format"] = key()
    monkeypatch.undo()
    monkeypatch.setattr("insertanywhere.masks.reconstruct.RECONSTRUCT_VERSION", 999)
    variants["reconstruct version"] = key()
    monkeypatch.undo()
    for name, value in variants.items():
        assert value != reference, f"changing {name} kept the key"
    assert len(set(variants.values())) == len(variants), "two different inputs share a key"
    # the same input, in fresh arrays, gives the same key; and fov 60 vs 61 differ
    assert key(frames.copy(), depth_input={"disparity": disparity.copy()}, K=K.tolist()) == reference
    assert key(fov_deg=60.0) != key(fov_deg=61.0)
    # options at their defaults are the same as leaving them out; equal options give equal keys
    assert key(options=ReconstructOptions(seed=0)) == key(options=ReconstructOptions()) == reference
    assert key(options=ReconstructOptions(ba_gaps=[1, 2])) == variants["option ba_gaps"]


def test_key_takes_an_options_object_and_lists_the_defaults():
    defaults = reconstruct_settings()
    assert defaults == dataclasses.asdict(ReconstructOptions()) and defaults["flow_preset"] == "medium"
    with pytest.raises(InsertAnywhereError, match="must be a ReconstructOptions"):
        scene_key(record().frames, fps=16, options={"flow_preset": "fast"})
    with pytest.raises(TypeError, match="flow_presets"):
        ReconstructOptions(flow_presets="fast")


def test_key_is_the_same_in_another_process(tmp_path):
    frames = record().frames
    np.save(tmp_path / "f.npy", frames)
    code = ("import sys, numpy as np; sys.path.insert(0, sys.argv[1]); "
            "from insertanywhere.masks.scene_cache import scene_key; "
            "print(scene_key(np.load(sys.argv[2]), fps=12.5, K=[[9, 0, 1], [0, 9, 1], [0, 0, 1]]))")
    out = subprocess.run([sys.executable, "-c", code, str(ROOT), str(tmp_path / "f.npy")], capture_output=True,
                         text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "123"}).stdout.strip()
    assert out == scene_key(frames, fps=12.5, K=[[9, 0, 1], [0, 9, 1], [0, 0, 1]])


# --- size cap, least recently used -----------------------------------------------------------------

def _entries(cache: SceneCache) -> list[str]:
    return sorted(p.name for p, _, _ in cache.entries())


def _set_mtime(path: Path, when: float) -> None:
    os.utime(path, (when, when))


def test_lru_eviction_order(tmp_path):
    recs = {name: record(seed) for seed, name in enumerate("ABCDE")}
    probe = SceneCache(tmp_path / "probe", None)
    sizes = [probe.put(probe.key(r.frames, fps=16), r).stat().st_size for r in recs.values()]
    cap = sum(sorted(sizes)[-3:]) + min(sizes) // 2  # room for three entries, not four
    cache = SceneCache(tmp_path / "cache", cap)
    keys = {name: cache.key(r.frames, fps=16) for name, r in recs.items()}
    name_of = {cache.path(k).name: n for n, k in keys.items()}
    t0 = time.time() - 1000
    for i, name in enumerate("ABC"):
        cache.put(keys[name], recs[name])
        _set_mtime(cache.path(keys[name]), t0 + 10 * i)  # A oldest, then B, then C
    assert cache.get(keys["A"]) is not None  # A is used again: now the most recent
    cache.put(keys["D"], recs["D"])
    assert sorted(name_of[n] for n in _entries(cache)) == ["A", "C", "D"]  # B, least recently used, went
    cache.put(keys["E"], recs["E"])
    assert sorted(name_of[n] for n in _entries(cache)) == ["A", "D", "E"]  # then C
    assert cache.total_bytes() <= cap and cache.warnings == []
    # the entry just written stays even when its mtime says it is the oldest
    future = time.time() + 1000
    for i, name in enumerate("ADE"):
        _set_mtime(cache.path(keys[name]), future + 10 * i)
    cache.put(keys["B"], recs["B"])
    assert sorted(name_of[n] for n in _entries(cache)) == ["B", "D", "E"]
    assert cache.total_bytes() <= cap


def test_entry_larger_than_the_cap_is_not_kept_and_says_so(tmp_path):
    small, big = record(1), record(2, frames=6, height=64, width=96)
    cache = SceneCache(tmp_path, 10 ** 9)
    cache.put(cache.key(small.frames, fps=16), small)
    size_small = cache.total_bytes()
    capped = SceneCache(tmp_path, size_small * 3)
    key = capped.key(big.frames, fps=16)
    compute = Computer(big)
    got, warnings = capped.load_or_compute(key, compute)
    assert same(got, big) and compute.calls == 1
    assert len(warnings) == 1 and "more than the whole cache cap" in warnings[0] and "cache_max_gb" in warnings[0]
    assert not capped.path(key).exists()
    assert capped.total_bytes() == size_small  # the small entry was not evicted for nothing


def test_eviction_removes_only_the_cache_files(tmp_path):
    rec = record()
    cache = SceneCache(tmp_path, 1)  # nothing fits
    for name in ("notes.txt", "scene_backup.json", "my_scene.npz", ".hidden.tmp"):
        (tmp_path / name).write_text("user file")
    old = time.time() - 7200
    _set_mtime(tmp_path / ".hidden.tmp", old)
    stale = tmp_path / ".scene_0123.npz.abc.tmp"
    stale.write_bytes(b"PK")
    _set_mtime(stale, old)
    legacy = tmp_path / "scene_0123456789abcdef0123.npz"  # an entry named by the old key scheme
    legacy.write_bytes(b"x" * 100)
    cache.put(cache.key(rec.frames, fps=16), rec)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hidden.tmp", "my_scene.npz", "notes.txt",
                                                          "scene_backup.json"]


def test_cap_must_be_positive(tmp_path):
    for bad in (0, -1.0, float("nan"), "lots", float("inf")):
        with pytest.raises(InsertAnywhereError, match="cache_max_gb must be a positive, finite number"):
            SceneCache.from_gb(tmp_path, bad)
    assert SceneCache.from_gb(tmp_path, 0.5).max_bytes == 500_000_000


def test_reconstruct_cached_keys_exactly_what_it_passes(tmp_path, monkeypatch):
    """The node and the CLI go through reconstruct_cached: every argument given to reconstruct() is in the key."""
    import insertanywhere.masks.reconstruct as module
    from insertanywhere.masks.scene_cache import reconstruct_cached

    calls = []

    def fake(frames, **kwargs):
        calls.append(kwargs)
        return record(len(calls))

    monkeypatch.setattr(module, "reconstruct", fake)
    cache = SceneCache(tmp_path, 10 ** 9)
    frames = record().frames
    disparity = np.ones((3, 16, 24), np.float32)
    first, warnings = reconstruct_cached(cache, frames, fps=16.0, depth_input={"disparity": disparity}, K=None,
                                         fov_deg=50.0, progress=None)
    assert warnings == [] and len(calls) == 1 and calls[0]["disparity"] is disparity and calls[0]["fov_deg"] == 50.0
    assert calls[0]["options"] is None
    again, _ = reconstruct_cached(cache, frames.copy(), fps=16.0, depth_input={"disparity": disparity.copy()},
                                  fov_deg=50.0, progress=lambda done, total: None)  # progress is not an input
    assert len(calls) == 1 and same(again, first)
    options = ReconstructOptions(seed=4)
    reconstruct_cached(cache, frames, fps=16.0, depth_input={"disparity": disparity}, fov_deg=50.0, options=options)
    assert len(calls) == 2 and calls[1]["options"] is options
    reconstruct_cached(cache, frames, fps=16.0, depth_input={"disparity": disparity}, fov_deg=50.0,
                       options=ReconstructOptions(seed=4))  # equal options: the same entry
    assert len(calls) == 2
    reconstruct_cached(None, frames, fps=16.0)  # no cache: always computed, nothing written
    assert len(calls) == 3 and len(cache.entries()) == 2
    cache.path(cache.key(frames, fps=16.0, depth_input={"disparity": disparity}, fov_deg=50.0)).write_bytes(b"")
    repaired, warnings = reconstruct_cached(cache, frames, fps=16.0, depth_input={"disparity": disparity},
                                            fov_deg=50.0)
    assert len(calls) == 4 and len(warnings) == 1 and repaired.warnings == warnings


def test_unwritable_cache_folder_computes_and_warns(tmp_path):
    (tmp_path / "taken").write_text("a file where the cache folder should be")
    cache = SceneCache(tmp_path / "taken", 10 ** 9)
    rec = record()
    compute = Computer(rec)
    got, warnings = cache.load_or_compute(cache.key(rec.frames, fps=16), compute)
    assert same(got, rec) and compute.calls == 1
    assert len(warnings) == 1 and warnings[0].startswith("disk cache: could not store the scene (Cannot write scene")
    assert warnings[0].endswith("it was computed but not cached.")
