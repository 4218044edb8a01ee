"""`insertanywhere masks --cache DIR --cache-max-gb N`: the CLI reuses, repairs and caps the scene cache
(the reconstruction itself is replaced by the scene's exact record: the cache is under test here)."""

from __future__ import annotations

import json
from dataclasses import replace
from functools import lru_cache

import numpy as np
import pytest

import insertanywhere.masks.reconstruct as reconstruct_module
from insertanywhere import cli
from insertanywhere.errors import InsertAnywhereError

FRAMES, WIDTH, HEIGHT = 9, 96, 64


@lru_cache(maxsize=None)
def sample():
    from insertanywhere.sample_scene import make_scene

    s = make_scene("static", num_frames=FRAMES, width=WIDTH, height=HEIGHT, seed=3)
    return s, s.to_scene_record()


@pytest.fixture
def files(tmp_path):
    s, _ = sample()
    folder = s.write_bundle(tmp_path / "bundle")
    (folder / "placement.json").write_text(json.dumps(s.placement))
    (folder / "K.json").write_text(json.dumps({"K": np.asarray(s.K).tolist()}))
    return folder


@pytest.fixture
def reconstructions(monkeypatch):
    """Counts the reconstructions that really ran."""
    calls = []
    _, record = sample()

    def fake(frames, *, K=None, fps=16.0, progress=None, depth=None, disparity=None, **_):
        calls.append(len(frames))
        return replace(record, frames=frames, fps=fps, warnings=[])

    monkeypatch.setattr(reconstruct_module, "reconstruct", fake)
    return calls


def masks(folder, out, *extra):
    return cli.main(["masks", "--video", str(folder / "scene.mp4"), "--object-mesh", str(folder / "object.ply"),
                     "--placement", str(folder / "placement.json"), "--depth", str(folder / "depth.npz"),
                     "--intrinsics", str(folder / "K.json"), "--out", str(out), *extra])


def test_cli_cache_reuses_repairs_and_caps(files, reconstructions, tmp_path, capsys):
    cache = tmp_path / "cache"
    assert masks(files, tmp_path / "a", "--cache", str(cache)) == 0
    assert reconstructions == [FRAMES]
    entries = sorted(cache.glob("scene_*.npz"))
    assert len(entries) == 1
    first = capsys.readouterr()
    assert "warning:" not in first.err and "no warnings" in first.err

    assert masks(files, tmp_path / "b", "--cache", str(cache)) == 0  # a hit: no reconstruction
    assert reconstructions == [FRAMES]
    assert (tmp_path / "a" / "track.json").read_text() == (tmp_path / "b" / "track.json").read_text()

    entries[0].write_bytes(entries[0].read_bytes()[:1000])  # a save killed by the old code
    assert masks(files, tmp_path / "c", "--cache", str(cache)) == 0
    assert reconstructions == [FRAMES, FRAMES]
    err = capsys.readouterr().err
    assert err.count("insertanywhere masks: warning: disk cache: removed an unusable entry") == 1
    assert "not a scene record saved by this pack" in err
    track = json.loads((tmp_path / "c" / "track.json").read_text())
    assert any("disk cache: removed an unusable entry" in w for w in track["warnings"])
    assert masks(files, tmp_path / "d", "--cache", str(cache)) == 0  # repaired: a hit again
    assert reconstructions == [FRAMES, FRAMES]
    assert "warning:" not in capsys.readouterr().err

    tiny = tmp_path / "tiny"
    assert masks(files, tmp_path / "e", "--cache", str(tiny), "--cache-max-gb", "0.000001") == 0  # 1 kB
    assert "more than the whole cache cap (1 kB), so it was not kept" in capsys.readouterr().err
    assert list(tiny.glob("scene_*.npz")) == []


def test_cli_without_cache_writes_none(files, reconstructions, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert masks(files, tmp_path / "a") == 0
    assert list(tmp_path.rglob("scene_*.npz")) == []


@pytest.mark.parametrize("extra, message", [
    (["--cache-max-gb", "5"], "--cache-max-gb needs --cache DIR"),
    (["--cache", "CACHE", "--cache-max-gb", "0"], "--cache-max-gb must be a positive, finite number of GB, got 0.0"),
    (["--cache", "CACHE", "--cache-max-gb", "nan"], "--cache-max-gb must be a positive, finite number"),
    (["--cache", "FILE"], "is a file; give a folder"),
])
def test_cli_cache_options_are_checked_first(tmp_path, extra, message):
    (tmp_path / "FILE").write_text("x")
    extra = [str(tmp_path / e) if e in ("CACHE", "FILE") else e for e in extra]
    args = cli.build_parser().parse_args(["masks", "--video", "missing.mp4", "--object-mesh", "m.ply",
                                          "--placement", "p.json", "--out", str(tmp_path / "out"), *extra])
    with pytest.raises(InsertAnywhereError, match=message):
        args.run(args)
    assert not (tmp_path / "CACHE").exists()
