"""The bench: the scoring of docs/FORMATS.md, and run_bench over sample-scene bundles written in the bench layout."""

import json

from dataclasses import replace

import numpy as np
import pytest

import insertanywhere.masks.reconstruct as reconstruct_module
from insertanywhere.bench import format_table, frame_ious, main, run_bench, score
from insertanywhere.errors import InsertAnywhereError
from insertanywhere.sample_scene import make_scene


def test_score_follows_the_format_rules():
    gt = np.zeros((3, 4, 4), bool)
    gt[1, :2, :2] = True             # frame 1: 4 px visible of 8 amodal -> occluded
    gt[2, :, :2] = True              # frame 2: fully visible
    amodal = gt.copy()
    amodal[1, :2, :4] = True
    pred = np.zeros_like(gt)
    pred[1, :2, :1] = True           # IoU 2 / 4
    pred[2, :, :2] = True            # IoU 1
    np.testing.assert_allclose(frame_ious(pred, gt), [1.0, 0.5, 1.0])  # both empty counts as 1
    s = score(pred, gt, amodal)
    assert s == {"mean": pytest.approx(2.5 / 3), "min": 0.5, "occluded": 0.5, "n_occluded": 1}
    assert score(gt, gt, gt)["occluded"] is None
    with pytest.raises(InsertAnywhereError, match="shape"):
        frame_ious(pred[:2], gt)


FRAMES = {"static": 11, "occluder": 13}  # different lengths tell the scenes apart below


@pytest.fixture(scope="module")
def samples():
    return {kind: make_scene(kind, num_frames=n, width=160, height=96, seed=2) for kind, n in FRAMES.items()}


@pytest.fixture(scope="module")
def scenes(tmp_path_factory, samples):
    root = tmp_path_factory.mktemp("scenes")
    for kind, sample in samples.items():
        sample.write_bundle(root / kind)
    return root


@pytest.fixture
def exact_reconstruction(monkeypatch, samples):
    """The bench's plumbing is under test here, so the reconstruction is the scenes' exact record
    (the reconstruction's own accuracy is measured on the real bench)."""
    records = {len(s.frames): s.to_scene_record() for s in samples.values()}

    def fake(frames, *, K=None, fps=16.0, progress=None, depth=None, disparity=None, **_):
        assert depth is not None and K is not None  # oracle mode passes the metric depth and the true K
        return replace(records[len(frames)], frames=frames)

    monkeypatch.setattr(reconstruct_module, "reconstruct", fake)


def test_run_bench_scores_every_scene_and_writes_results(scenes, tmp_path, exact_reconstruction):
    rows = run_bench(scenes, modes=["oracle"], out=tmp_path)
    assert [(r["scene"], r["mode"]) for r in rows] == [("occluder", "oracle"), ("static", "oracle")]
    for row in rows:
        assert "error" not in row, row
        assert row["mean"] > 0.97 and row["frames"] == FRAMES[row["scene"]]
        assert {"reconstruct", "place", "propagate", "reproject", "total"} <= set(row["timings"])
        assert (tmp_path / row["scene"] / "oracle" / "visible" / "00010.png").is_file()
    occluder = rows[0]
    # the camera-only ablation ignores the walker, so it is far worse on the occluded frames
    assert occluder["n_occluded"] > 0 and occluder["camera_only"]["occluded"] < occluder["occluded"] - 0.3
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved == json.loads(json.dumps(rows))
    table = format_table(rows)
    assert "occluder" in table and "cam-only" in table
    assert "| static | oracle |" in (tmp_path / "results.md").read_text()


def test_bench_main_and_bad_arguments(scenes, tmp_path, capsys):
    with pytest.raises(InsertAnywhereError, match="Unknown bench mode"):
        run_bench(scenes, modes=["magic"])
    with pytest.raises(InsertAnywhereError, match="No scene bundles"):
        run_bench(tmp_path)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "scene.json").write_text(json.dumps({"placement": {"anchor": [1, 1], "height_px": 5}}))
    assert main(tmp_path, modes=["oracle"]) == 1  # a failed run is reported, not raised
    captured = capsys.readouterr()
    assert "failed" in captured.out
    assert captured.err.splitlines()[-1] == "insertanywhere bench: no warnings"  # the summary line ends every run
