"""The trainer: conditioning identical to the pipeline, masked loss falling, exact resume."""

import json

import numpy as np
import pytest
import torch
from train_helpers import fresh_model, train_config

from insertanywhere.errors import InsertAnywhereError
from insertanywhere.training.conditioning import assemble_control, encode_sample, latent_region, mask_channels
from insertanywhere.training.dataset import LatentCache, TripletDataset
from insertanywhere.training.trainer import LoraTrainer, TrainConfig, masked_loss, sample_sigma, target_modules


def captured_control(model, s, reference, mask_fill):
    """control_hidden_states the sampler (`insertion.vace.sample_window`) gives the transformer."""
    from insertanywhere.insertion import vace
    from insertanywhere.insertion.options import VACEOptions
    from insertanywhere.training.conditioning import inference_inputs

    seen = []
    hook = model.pipe.transformer.register_forward_pre_hook(
        lambda _m, _a, kwargs: seen.append(kwargs["control_hidden_states"].clone()), with_kwargs=True)
    prepared = inference_inputs(s.inputs, s.region, reference, mask_fill)
    embeds = model.prompts.encode([s.prompt])
    try:
        vace.sample_window(model, prepared.video, prepared.masks, prepared.reference, embeds, None,
                           VACEOptions(seed=0, steps=1, cfg=1.0, scheduler="unipc", shift=3.0, conditioning_scale=1.0))
    finally:
        hook.remove()
    return seen[0][0]


@pytest.mark.parametrize("mask_fill", ["gray", "keep"])
def test_control_latents_equal_what_the_sampler_feeds(dataset_dir, wan_folder, mask_fill):
    """The trainer conditions the transformer exactly as the pack's sampler does at inference."""
    model = fresh_model(wan_folder)
    s = TripletDataset(dataset_dir).load(0)
    expected = captured_control(model, s, s.references[1], mask_fill)
    latents = encode_sample(model.pipe, s.target, s.inputs, s.region, s.references, mask_fill)
    control = assemble_control(latents["video_cond"], latents["references"][1],
                               mask_channels(model.pipe, s.region, 1))
    assert control.shape == expected.shape == (96, 1 + 2, 4, 6)
    assert torch.allclose(control, expected.float(), atol=1e-5)
    # the reference slot is never generated; the video's latent frames carry the region
    assert control[32:, 0].abs().sum() == 0 and control[32:, 2].sum() > 0


def test_mask_fill_changes_the_reactive_latents(dataset_dir, wan_folder):
    model = fresh_model(wan_folder)
    s = TripletDataset(dataset_dir).load(0)
    gray = encode_sample(model.pipe, s.target, s.inputs, s.region, [], "gray")["video_cond"]
    keep = encode_sample(model.pipe, s.target, s.inputs, s.region, [], "keep")["video_cond"]
    assert torch.allclose(gray[:16], keep[:16], atol=1e-5)         # inactive part: identical
    assert (gray[16:] - keep[16:]).abs().mean() > 1e-3              # reactive part: grey vs background


def test_latent_region_maps_pixels_to_cells():
    region = np.zeros((5, 32, 48), bool)
    region[3, 9, 20] = True   # frame 3 -> latent frame 1 (frames 1-4), cell (1, 2)
    cells = latent_region(region, num_refs=1)
    assert cells.shape == (3, 4, 6)
    assert cells.sum() == 1 and cells[2, 1, 2]


def test_masked_loss_weights():
    err = torch.tensor([[[4.0, 1.0], [1.0, 1.0]]])
    region = torch.tensor([[[True, False], [False, False]]])
    loss, l_mask, l_rest = masked_loss(err, region, 0.75)
    assert (l_mask, l_rest) == (4.0, 1.0) and float(loss) == pytest.approx(0.75 * 4 + 0.25 * 1)
    loss, _, _ = masked_loss(err, torch.zeros_like(region), 0.75)
    assert float(loss) == pytest.approx(7 / 4)  # no region: plain mean


def test_sigma_shift_and_targets():
    u = torch.tensor([0.0, 0.5, 1.0])
    assert torch.allclose(sample_sigma(u, 3.0), torch.tensor([0.0, 0.75, 1.0]))
    import re

    main, vace = target_modules(False), target_modules(True)
    assert re.fullmatch(main, "blocks.3.attn1.to_out.0") and re.fullmatch(main, "blocks.0.ffn.net.0.proj")
    assert not re.fullmatch(main, "vace_blocks.0.attn1.to_q") and re.fullmatch(vace, "vace_blocks.0.attn1.to_q")
    assert not re.fullmatch(vace, "blocks.0.attn1.norm_q") and not re.fullmatch(vace, "vace_blocks.0.proj_out")


def test_masked_loss_falls(trained):
    trainer, result = trained
    before, after = result["eval_before"], result["eval_after"]
    print(f"\neval L_mask {before['loss_mask']:.4f} -> {after['loss_mask']:.4f}, "
          f"L_rest {before['loss_rest']:.4f} -> {after['loss_rest']:.4f}")
    assert after["loss_mask"] < 0.85 * before["loss_mask"]
    history = [h["loss_mask"] for h in result["history"]]
    assert len(history) == 40 and np.mean(history[-10:]) < np.mean(history[:10])
    log = [json.loads(x) for x in (trainer.output / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 41)) and all(np.isfinite(r["loss"]) for r in log)


def test_only_lora_weights_change(trained, wan_folder):
    trainer, _ = trained
    base = fresh_model(wan_folder).transformer.state_dict()
    current = trainer.transformer.state_dict()
    lora = [k for k in current if "lora_" in k]
    assert lora and all("vace_blocks" not in k for k in lora)
    for key, value in base.items():
        peft_key = key.replace(".weight", ".base_layer.weight").replace(".bias", ".base_layer.bias")
        tensor = current.get(key, current.get(peft_key))
        assert tensor is not None and torch.equal(tensor, value), key


def test_latents_and_prompts_are_cached(trained, dataset_dir):
    trainer, _ = trained
    cache = LatentCache(trainer.dataset, trainer.pipe, "gray")
    assert cache.missing() == []
    latents = cache.load(0)
    assert latents["target"].shape == (16, 2, 4, 6) and latents["references"].shape == (2, 16, 1, 4, 6)
    # one file per text encoder: other tests' fresh models share this session's dataset folder
    keys = [f.stem.split("-", 1)[1] for f in cache.folder.glob("prompts-*.safetensors")]
    used = trainer.prompts["a vase on the table"]
    mine = [k for k in keys if torch.equal(cache.load_prompts(k).get("a vase on the table", torch.empty(0)), used)]
    assert len(mine) == 1, keys
    prompts = cache.load_prompts(mine[0])
    text_dim = trainer.transformer.config.text_dim
    assert list(prompts) == ["a vase on the table"] and prompts["a vase on the table"].shape == (512, text_dim)


def test_resume_repeats_the_uninterrupted_run(dataset_dir, wan_folder, tmp_path):
    full = LoraTrainer(train_config(dataset_dir, wan_folder, tmp_path / "full", steps=8, save_every=4),
                       model=fresh_model(wan_folder)).run()
    cut = LoraTrainer(train_config(dataset_dir, wan_folder, tmp_path / "cut", steps=4, save_every=4),
                      model=fresh_model(wan_folder))
    cut.run()
    resumed = LoraTrainer(train_config(dataset_dir, wan_folder, tmp_path / "cut", steps=8, save_every=4),
                          model=fresh_model(wan_folder))
    result = resumed.run()
    assert resumed.latest_checkpoint().name == "step-000008"
    expected = [h["loss"] for h in full["history"]]
    got = [h["loss"] for h in result["history"]]
    assert len(got) == 8
    assert np.allclose(got, expected, rtol=1e-5, atol=1e-6), (got, expected)
    a = json.loads((tmp_path / "full" / "checkpoints" / "step-000008" / "state.json").read_text())
    assert a["step"] == 8
    log = [json.loads(x)["step"] for x in (tmp_path / "cut" / "train_log.jsonl").read_text().splitlines()]
    assert log == list(range(1, 9))


def test_resume_drops_log_rows_after_the_checkpoint(dataset_dir, wan_folder, tmp_path):
    LoraTrainer(train_config(dataset_dir, wan_folder, tmp_path, steps=2, save_every=2),
                model=fresh_model(wan_folder)).run()
    with open(tmp_path / "train_log.jsonl", "a") as log:  # a crashed run logged step 3 but saved nothing
        log.write(json.dumps({"step": 3, "loss": 9.0}) + "\n")
    LoraTrainer(train_config(dataset_dir, wan_folder, tmp_path, steps=3, save_every=2),
                model=fresh_model(wan_folder)).run()
    rows = [json.loads(x) for x in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3] and rows[-1]["loss"] != 9.0


def test_resume_refuses_other_settings(dataset_dir, wan_folder, tmp_path):
    LoraTrainer(train_config(dataset_dir, wan_folder, tmp_path, steps=1, save_every=1),
                model=fresh_model(wan_folder)).run()
    other = LoraTrainer(train_config(dataset_dir, wan_folder, tmp_path, steps=2, rank=4),
                        model=fresh_model(wan_folder))
    with pytest.raises(InsertAnywhereError, match="same settings"):
        other.run()


def test_config_and_dataset_errors(tmp_path, wan_folder):
    with pytest.raises(InsertAnywhereError, match="precision"):
        TrainConfig(dataset="d", model="m", output="o", precision="fp8")
    with pytest.raises(InsertAnywhereError, match="mask_weight"):
        TrainConfig(dataset="d", model="m", output="o", mask_weight=2)
    with pytest.raises(InsertAnywhereError, match="build-triplets"):
        TripletDataset(tmp_path)
    (tmp_path / "manifest.jsonl").write_text('{"id": "x", "target": "../etc/passwd", "input": "a", "masks": "b", '
                                             '"references": ["c"], "prompt": ""}\n')
    with pytest.raises(InsertAnywhereError, match="outside the dataset"):
        TripletDataset(tmp_path)
    with pytest.raises(InsertAnywhereError, match="diffusers folder, or the transformer"):
        TrainConfig(dataset="d", output="o")
    with pytest.raises(InsertAnywhereError, match="mask_fill"):
        TrainConfig(dataset="d", model="m", output="o", mask_fill="blur")


def test_bf16_training_keeps_lora_weights_in_float32(dataset_dir, wan_folder, tmp_path):
    from insertanywhere.insertion.wan import load_wan_vace

    model = load_wan_vace(folder=wan_folder, device="cpu", dtype="bfloat16")
    trainer = LoraTrainer(train_config(dataset_dir, wan_folder, tmp_path, steps=3, precision="bf16",
                                       save_every=0), model=model)
    result = trainer.run()
    assert all(np.isfinite(h["loss"]) for h in result["history"])
    assert all(p.dtype == torch.float32 for p in trainer.params)
    assert trainer.transformer.blocks[0].attn1.to_q.base_layer.weight.dtype == torch.bfloat16
