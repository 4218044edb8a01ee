"""Issue #11 point 3: the disk scene cache of 4D Reconstruct (masks.scene_cache, used by the node and
`insertanywhere masks --cache`). Each damaged entry must be recomputed with a warning and be a hit
on the next run; each bad cache setting gets an error naming it."""

from __future__ import annotations

import io
import os
import threading
import time
from pathlib import Path

import numpy as np

from table import Case

from insertanywhere import cli
from insertanywhere.masks.scene import SceneRecord
from insertanywhere.masks.scene_cache import SceneCache


def _record(seed: int = 0, frames: int = 3) -> SceneRecord:
    rng = np.random.default_rng(seed)
    F, H, W = frames, 16, 24
    return SceneRecord(
        frames=rng.integers(0, 256, (F, H, W, 3), dtype=np.uint8),
        depth=rng.uniform(1, 5, (F, H, W)).astype(np.float32),
        K=np.array([[20.0, 0, 12], [0, 20, 8], [0, 0, 1]], np.float32),
        camera_from_world=np.repeat(np.eye(4, dtype=np.float32)[None], F, 0), moving=rng.random((F, H, W)) < 0.1,
        flow_fwd=rng.normal(size=(F - 1, H, W, 2)).astype(np.float16),
        flow_bwd=rng.normal(size=(F - 1, H, W, 2)).astype(np.float16), flow_valid=rng.random((F - 1, H, W)) < 0.9,
        fps=16.0)


def _same(a: SceneRecord, b: SceneRecord) -> bool:
    return all(np.array_equal(getattr(a, n), getattr(b, n)) for n in ("frames", "depth", "camera_from_world", "moving"))


def _rerun_with(spoil):
    """Cache a scene, spoil its entry, run again (recomputed, warnings returned), and check the run after is a hit."""

    def run(tmp: Path):
        rec = _record()
        cache = SceneCache(tmp / "cache", 10 ** 9)
        key = cache.key(rec.frames, fps=rec.fps)
        cache.put(key, rec)
        spoil(cache.path(key))
        computed = []
        scene, warnings = cache.load_or_compute(key, lambda: computed.append(1) or rec)
        assert computed == [1] and _same(scene, rec), "the damaged entry was not recomputed"
        scene, after = cache.load_or_compute(key, lambda: computed.append(1) or rec)
        assert computed == [1] and after == [] and _same(scene, rec), "the repaired entry is not a hit"
        return warnings

    return run


def _rewrite(path: Path, change) -> None:
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    change(arrays)
    with open(path, "wb") as file:
        np.savez_compressed(file, **arrays)


def _flip(path: Path) -> None:
    """One bit flipped in the middle of the largest array's stored bytes (where nearly all of a big
    entry's bytes are; a flip in a zip header field that is never read is harmless)."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        member = max(archive.infolist(), key=lambda i: i.compress_size)
    start = member.header_offset + 30 + len(member.filename.encode()) + len(member.extra)
    data = bytearray(path.read_bytes())
    data[start + member.compress_size // 2] ^= 0x10
    path.write_bytes(bytes(data))


def _depth_npz(path: Path) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, depth=np.ones((3, 16, 24), np.float32))
    path.write_bytes(buffer.getvalue())


def _temp_left_by_killed_save(tmp: Path):
    rec = _record()
    cache = SceneCache(tmp / "cache", 10 ** 9)
    key = cache.key(rec.frames, fps=rec.fps)
    whole = rec.save(tmp / "whole.npz").read_bytes()
    cache.folder.mkdir()
    (cache.folder / f".{cache.path(key).name}.x7Kq.tmp").write_bytes(whole[: len(whole) // 3])
    assert cache.get(key) is None
    scene, warnings = cache.load_or_compute(key, lambda: rec)
    assert cache.get(key) is not None
    return warnings


def _read_while_rewritten(tmp: Path):
    writer, reader = SceneCache(tmp, 10 ** 9), SceneCache(tmp, 10 ** 9)
    recs = [_record(1), _record(2)]
    key = writer.key(recs[0].frames, fps=16)
    done, failures, whole = threading.Event(), [], []

    def read():
        while not done.is_set():
            try:
                got = reader.get(key)
            except Exception as error:  # noqa: BLE001
                failures.append(repr(error))
                continue
            if got is not None:
                whole.append(_same(got, recs[0]) or _same(got, recs[1]))

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for n in range(60):
            writer.put(key, recs[n % 2])
        while not whole and thread.is_alive():
            time.sleep(0.001)
    finally:
        done.set()
        thread.join()
    assert failures == [] and whole and all(whole), (failures[:3], len(whole))
    return reader.warnings + writer.warnings


def _too_big_for_cap(tmp: Path):
    rec = _record(frames=8)
    cache = SceneCache(tmp, 20_000)
    key = cache.key(rec.frames, fps=16)
    scene, warnings = cache.load_or_compute(key, lambda: rec)
    assert not cache.path(key).exists() and _same(scene, rec)
    return warnings


def _over_cap(tmp: Path):
    recs = [_record(seed) for seed in range(4)]
    sizes = []
    for rec in recs:
        probe = SceneCache(tmp / "probe", None)
        sizes.append(probe.put(probe.key(rec.frames, fps=16), rec).stat().st_size)
    cache = SceneCache(tmp / "cache", sum(sizes[:2]) + min(sizes) // 2)  # room for two
    keys = [cache.key(rec.frames, fps=16) for rec in recs]
    for n, (key, rec) in enumerate(zip(keys, recs)):
        cache.put(key, rec)
        os.utime(cache.path(key), (time.time() - 1000 + n, time.time() - 1000 + n))
    kept = {p.name for p, _, _ in cache.entries()}
    assert kept == {cache.path(keys[2]).name, cache.path(keys[3]).name}, "not the two most recent"
    return cache.warnings


def _cli(*extra: str):
    def run(tmp: Path):
        (tmp / "a_file").write_text("x")
        args = cli.build_parser().parse_args(
            ["masks", "--video", str(tmp / "v.mp4"), "--object-mesh", "m.ply", "--placement", "p.json",
             "--out", str(tmp / "out"), *[e.replace("TMP", str(tmp)) for e in extra]])
        args.run(args)

    return run


WARNING = r"^warning: disk cache: removed an unusable entry and recomputed the scene: "
ENTRY = r"'[^']*scene_[0-9a-f]{40}\.npz' "
REMOVED = WARNING + ENTRY
DAMAGED = REMOVED + r"is not a scene record saved by this pack, or it is damaged "

CASES = [
    Case("disk cache: entry cut short by a killed save",
         _rerun_with(lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])),
         DAMAGED + r"\(BadZipFile: File is not a zip file\); recompute it\.$"),
    Case("disk cache: empty (zero-length) entry", _rerun_with(lambda p: p.write_bytes(b"")),
         DAMAGED + r"\(ValueError: the file is empty\); recompute it\.$"),
    Case("disk cache: one bit flipped inside an entry's data", _rerun_with(_flip),
         DAMAGED + r"\((BadZipFile: Bad CRC-32|error: Error -3)[^)]*\); recompute it\.$"),
    Case("disk cache: a text file saved under the entry's name",
         _rerun_with(lambda p: p.write_text("not numpy\n")),
         DAMAGED + r"\(ValueError: not an \.npz archive: it starts with b'not '\); recompute it\.$"),
    Case("disk cache: a depth .npz copied over the entry", _rerun_with(_depth_npz),
         DAMAGED + r"\(ValueError: no format_version; it holds \['depth'\]\); recompute it\.$"),
    Case("disk cache: entry written by an older pack (scene format 1)",
         _rerun_with(lambda p: _rewrite(p, lambda a: a.update(format_version=np.int32(1)))),
         WARNING + "Scene record " + ENTRY + r"has format 1, this pack reads 2, 3; recompute it\.$"),
    Case("disk cache: entry without its depth array",
         _rerun_with(lambda p: _rewrite(p, lambda a: a.pop("depth"))),
         REMOVED + r"is not a complete scene record \(KeyError: 'depth'\); recompute it\.$"),
    Case("disk cache: entry whose depth has the wrong shape",
         _rerun_with(lambda p: _rewrite(p, lambda a: a.update(depth=a["depth"][:, :5]))),
         REMOVED + r"is not a complete scene record \(ValueError: SceneRecord\.depth is float32 \(3, 5, 24\), "
                   r"expected \(3, 16, 24\)\); recompute it\.$"),
    Case("disk cache: another scene's entry renamed onto this one",
         _rerun_with(lambda p: _record(9).save(p)),
         REMOVED + r"holds a scene of other inputs \(it was saved outside the cache\)$"),
    Case("disk cache: temporary file left by a killed save", _temp_left_by_killed_save, r"^ok$"),
    Case("disk cache: entry rewritten by another run while this one reads it", _read_while_rewritten, r"^ok$"),
    Case("disk cache: one scene larger than the whole cap", _too_big_for_cap,
         r"^warning: disk cache: this scene takes [0-9.]+ kB, more than the whole cache cap \(20 kB\), so it was not "
         r"kept; raise the cap \(cache_max_gb / --cache-max-gb\) or use fewer / smaller frames\.$"),
    Case("disk cache: folder over its cap", _over_cap, r"^ok$"),
    Case("node setting cache_max_gb: NaN (API prompt)", lambda tmp: SceneCache.from_gb(tmp, float("nan")),
         r"^error: cache_max_gb must be a positive, finite number of GB, got nan\.$"),
    Case("CLI: --cache-max-gb 0", _cli("--cache", "TMP/c", "--cache-max-gb", "0"),
         r"^error: --cache-max-gb must be a positive, finite number of GB, got 0\.0\.$"),
    Case("CLI: --cache-max-gb without --cache", _cli("--cache-max-gb", "4"),
         r"^error: --cache-max-gb needs --cache DIR"),
    Case("CLI: --cache names a file", _cli("--cache", "TMP/a_file"),
         r"^error: --cache '.*a_file' is a file; give a folder\.$"),
    Case("scene record .npz with one bit flipped inside its data, loaded directly",
         lambda tmp: (_flip(_record().save(tmp / "s.npz")), SceneRecord.load(tmp / "s.npz"))[1] and None,
         r"^error: '.*s\.npz' is not a scene record saved by this pack, or it is damaged \((BadZipFile: Bad CRC-32|"
         r"error: Error -3)[^)]*\); recompute it\.$"),
]
