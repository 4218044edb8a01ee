"""`build-triplets`, `train` and `export-lora` as the CLI runs them."""

import json

from train_helpers import CLIP_FRAMES, WIDTH

from insertanywhere.training.commands import build_triplets_main, export_lora_main, train_main


def test_cli_builds_trains_and_exports(removal_data, wan_folder, tmp_path, capsys):
    root, _ = removal_data
    data = tmp_path / "ds"
    assert build_triplets_main(["--data", str(root), "--out", str(data), "--layout", "simple",
                                "--frames", str(CLIP_FRAMES), "--max-side", str(WIDTH),
                                "--reference-variants", "1", "--prompt", "a vase"]) == 0
    manifest = [json.loads(x) for x in (data / "manifest.jsonl").read_text().splitlines()]
    assert [m["id"] for m in manifest] == ["clip0", "clip1"] and manifest[0]["prompt"] == "a vase"

    run = tmp_path / "run"
    args = ["--dataset", str(data), "--model", str(wan_folder), "--out", str(run), "--rank", "4", "--alpha", "4",
            "--lr", "1e-3", "--steps", "3", "--warmup", "0", "--precision", "fp32", "--device", "cpu",
            "--save-every", "2", "--log-every", "1", "--no-gradient-checkpointing"]
    assert train_main(args) == 0
    err = capsys.readouterr().err
    assert "step 3: loss" in err and "[checkpoint] step=2" in err
    assert (run / "insertion_lora_comfyui.safetensors").is_file()
    assert (run / "insertion_lora_diffusers" / "pytorch_lora_weights.safetensors").is_file()
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-000002", "step-000003"]

    assert export_lora_main(["--checkpoint", str(run / "checkpoints" / "step-000002"), "--out",
                             str(tmp_path / "exp"), "--name", "early"]) == 0
    assert (tmp_path / "exp" / "early_comfyui.safetensors").is_file()


def test_cli_reports_user_errors(tmp_path, capsys):
    assert build_triplets_main(["--data", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert train_main(["--dataset", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "diffusers folder, or the transformer" in capsys.readouterr().err
