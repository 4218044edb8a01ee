"""`insertanywhere bench --suite procedural`: seed sets, the per-kind summary, and a tiny real run."""

import json

import numpy as np
import pytest

from insertanywhere import bench_suite
from insertanywhere.cli import main as cli_main
from insertanywhere.errors import InsertAnywhereError
from insertanywhere.sample_scene import SUITE_KINDS


def test_dev_and_check_seed_sets_are_fixed_and_disjoint():
    dev, check = bench_suite.seeds_of("dev", 1000), bench_suite.seeds_of("check", 1000)
    assert not set(dev) & set(check)
    assert bench_suite.seeds_of("dev", 3) == [0, 1, 2] and bench_suite.seeds_of("check", 2) == [1000, 1001]
    with pytest.raises(InsertAnywhereError, match="out of range"):
        bench_suite.seeds_of("dev", 1001)
    with pytest.raises(InsertAnywhereError, match="seed set"):
        bench_suite.seeds_of("test", 3)
    with pytest.raises(InsertAnywhereError, match="kinds"):
        bench_suite.check_kinds(["orbit", "flying"])


def fake_row(kind, mode, ious, occluded, seconds=2.0, floor=0.5):
    return {"kind": kind, "mode": mode, "mean": float(np.mean(ious)), "frame_iou": ious,
            "frame_occluded": occluded, "seconds": seconds, "floor_seconds": floor}


def test_summary_pools_frames_per_kind_and_scenes_over_all_kinds():
    rows = [fake_row("pan", "mono", [1.0, 0.5, 0.0, 1.0], [False, True, True, False]),
            fake_row("pan", "mono", [0.9, 0.9, 0.9, 0.9], [False] * 4, seconds=4.0, floor=0.5),
            fake_row("zoom", "mono", [0.6] * 4, [False] * 4),
            {"kind": "zoom", "mode": "mono", "error": "no"}]
    by = {(s["kind"], s["mode"]): s for s in bench_suite.summarize(rows, ["mono"], ["pan", "zoom"])}
    pan = by["pan", "mono"]
    assert pan["scenes"] == 2 and pan["failed"] == 0
    assert pan["mean"] == pytest.approx((0.625 + 0.9) / 2)
    assert pan["p10"] == pytest.approx(np.percentile([1, .5, 0, 1, .9, .9, .9, .9], 10))  # over frames
    assert pan["min"] == 0.0 and pan["worst_scene"] == 0.625
    assert pan["occluded"] == pytest.approx(0.25) and pan["n_occluded"] == 2
    assert pan["seconds"] == 3.0 and pan["x_floor"] == pytest.approx(6.0)
    assert by["zoom", "mono"]["failed"] == 1 and by["zoom", "mono"]["occluded"] is None
    everything = by["all", "mono"]
    assert everything["scenes"] == 4 and everything["failed"] == 1
    assert everything["p10"] == pytest.approx(np.percentile([0.625, 0.9, 0.6], 10))  # over scenes


def test_suite_runs_every_kind_once_and_prints_the_tables(tmp_path, capsys):
    code = bench_suite.main(seeds=1, seed_set="dev", modes=["oracle"], frames=9, size=(128, 80), out=tmp_path)
    printed = capsys.readouterr().out
    rows = json.loads((tmp_path / "suite.json").read_text())["dev"]["rows"]
    assert sorted(r["kind"] for r in rows) == sorted(SUITE_KINDS) and {r["seed"] for r in rows} == {0}
    assert code == (1 if any("error" in r for r in rows) else 0)
    ran = [r for r in rows if "error" not in r]
    assert len(ran) == len(SUITE_KINDS)  # true depth and K: every kind runs
    for r in ran:
        assert len(r["frame_iou"]) == 9 and r["mean"] == pytest.approx(np.mean(r["frame_iou"]), abs=1e-3)
        # both times are stored to 1 ms: a floor of a few ms carries that rounding into the ratio
        assert r["floor_seconds"] > 0 and r["seconds"] > 0
        rounding = 0.0005 / r["floor_seconds"] + 0.0005 / r["seconds"]
        assert r["x_floor"] == pytest.approx(r["seconds"] / r["floor_seconds"], rel=0.01 + rounding)
        assert (sum(r["frame_occluded"]) > 0) == (r["kind"] in ("one_occluder", "crossing_occluders",
                                                                  "occluder_stops"))
    summary = printed.split("summary, seed set dev:")[1]
    for kind in SUITE_KINDS + ("all",):
        assert f"\n{kind} " in summary
    assert "x floor" in summary and "seed set dev: seeds 0..0" in printed
    assert "| kind | mode |" in (tmp_path / "suite.md").read_text()


def test_cli_refuses_suite_options_with_scenes_and_bad_sizes(tmp_path, capsys):
    assert cli_main(["bench", "--scenes", str(tmp_path), "--kinds", "pan"]) != 0
    assert "only apply with --suite" in capsys.readouterr().err
    assert cli_main(["bench", "--suite", "procedural", "--size", "big"]) != 0
    assert "WxH" in capsys.readouterr().err
    assert cli_main(["bench", "--suite", "procedural", "--kinds", "flying"]) != 0
    assert "flying" in capsys.readouterr().err


def test_a_pipeline_crash_is_a_failed_row_not_the_end_of_the_suite(monkeypatch):
    def crash(folder, mode, ablation=True):
        raise ValueError("zero-size array")

    monkeypatch.setattr(bench_suite, "run_scene", crash)
    rows = bench_suite.run_case("pan", 0, ["oracle", "mono"], frames=3, width=64, height=48)
    assert [r["mode"] for r in rows] == ["oracle", "mono"] and all(r["kind"] == "pan" for r in rows)
    assert rows[0]["error"].startswith("crashed: ValueError: zero-size array (at bench_suite.py:")  # in the pack
