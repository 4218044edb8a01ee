"""Both export formats load in the pack's sampler, reproduce the trained model and change its output."""

import json

import numpy as np
import pytest
import torch
from train_helpers import fresh_model, train_config
from safetensors import safe_open
from safetensors.torch import load_file

from insertanywhere.insertion import vace
from insertanywhere.insertion.lora import applied_loras, read_lora
from insertanywhere.insertion.options import VACEOptions
from insertanywhere.training.conditioning import inference_inputs
from insertanywhere.training.dataset import TripletDataset
from insertanywhere.training.export import export_checkpoint, export_lora, peft_state_dict, to_comfy
from insertanywhere.training.trainer import LoraTrainer


def forward(transformer, trainer, seed=0):
    """The transformer's velocity for sample 0 at sigma 0.5 with fixed noise."""
    x0, control, _, text = trainer.batch(0, 0)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return transformer(hidden_states=0.5 * x0 + 0.5 * noise, timestep=torch.tensor([500.0]),
                           encoder_hidden_states=text, control_hidden_states=control, return_dict=False)[0]


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    trainer, result = trained
    out = tmp_path_factory.mktemp("export")
    fp32 = export_lora(trainer.transformer, out, "fp32", comfy_dtype=torch.float32)
    return trainer, result, fp32


def test_both_formats_reproduce_the_trained_model(exported, wan_folder):
    trainer, result, (diffusers_fp32, comfy_fp32) = exported
    trained_out = forward(trainer.transformer, trainer)
    model = fresh_model(wan_folder)
    base_out = forward(model.transformer, trainer)
    change = (trained_out - base_out).norm() / base_out.norm()
    assert change > 0.05
    for path, tol in [(result["diffusers"], 1e-4), (comfy_fp32, 1e-4), (diffusers_fp32, 1e-4),
                      (result["comfyui"], 0.02)]:  # the default ComfyUI file stores bfloat16
        spec = read_lora(path, model.transformer)
        with applied_loras(model.transformer, [spec]):
            out = forward(model.transformer, trainer)
        error = ((out - trained_out).norm() / (trained_out - base_out).norm()).item()
        assert error < tol, (path.name, error)
    assert torch.equal(forward(model.transformer, trainer), base_out)  # adapters removed again


def test_diffusers_pipeline_loads_the_diffusers_export(exported, wan_folder):
    """Plain diffusers users: WanVACEPipeline.load_lora_weights reads rank/alpha from the metadata."""
    trainer, result, _ = exported
    assert trainer.cfg.alpha != trainer.cfg.rank  # the scale alpha / rank must survive
    model = fresh_model(wan_folder)
    model.pipe.load_lora_weights(str(result["diffusers"].parent))
    trained_out = forward(trainer.transformer, trainer)
    assert torch.allclose(forward(model.transformer, trainer), trained_out, atol=1e-5, rtol=1e-4)


def test_the_sampler_output_changes(exported, wan_folder, dataset_dir):
    trainer, result, _ = exported
    model = fresh_model(wan_folder)
    s = TripletDataset(dataset_dir).load(0)
    prepared = inference_inputs(s.inputs, s.region, s.references[0], "gray")
    embeds = model.prompts.encode([s.prompt])
    outputs = []
    for handle in (model, model.with_lora(read_lora(result["comfyui"], model.transformer)),
                   model.with_lora(read_lora(result["diffusers"], model.transformer))):
        frames = vace.sample_window(handle, prepared.video, prepared.masks, prepared.reference, embeds, None,
                                    VACEOptions(seed=0, steps=2, cfg=1.0, scheduler="unipc", shift=3.0,
                                                conditioning_scale=1.0))
        outputs.append(frames.astype(int))
    base, comfy, diffusers = outputs
    assert np.abs(comfy - base).mean() > 0.5 and np.abs(diffusers - base).mean() > 0.5
    assert np.abs(comfy - diffusers).mean() < 0.1 * np.abs(comfy - base).mean()


def test_comfy_keys_and_values(exported):
    trainer, result, _ = exported
    rank, alpha = trainer.cfg.rank, trainer.cfg.alpha
    sd = load_file(str(result["comfyui"]))
    modules = {k.rsplit(".", 2)[0] if "lora_" in k else k.rsplit(".", 1)[0] for k in sd}
    assert len(modules) == 2 * 10  # 2 blocks x (self_attn q/k/v/o, cross_attn q/k/v/o, ffn.0, ffn.2)
    expected_tail = {f"{a}.{p}" for a in ("self_attn", "cross_attn") for p in "qkvo"} | {"ffn.0", "ffn.2"}
    for block in (0, 1):
        tails = {m.split(f"diffusion_model.blocks.{block}.", 1)[1] for m in modules
                 if m.startswith(f"diffusion_model.blocks.{block}.")}
        assert tails == expected_tail
    for module in modules:
        assert sd[f"{module}.lora_A.weight"].shape[0] == rank and float(sd[f"{module}.alpha"]) == alpha
    state = peft_state_dict(trainer.transformer)
    a, b = state["blocks.1.attn2.to_out.0.lora_A.weight"], state["blocks.1.attn2.to_out.0.lora_B.weight"]
    comfy = to_comfy(state, alpha)
    ca, cb = comfy["diffusion_model.blocks.1.cross_attn.o.lora_A.weight"], \
        comfy["diffusion_model.blocks.1.cross_attn.o.lora_B.weight"]
    assert torch.equal(cb @ ca, b @ a)
    with safe_open(str(result["comfyui"]), framework="pt") as f:
        info = json.loads(f.metadata()["insertanywhere"])
    assert info["mask_fill"] == "gray" and info["steps"] == 40


def test_vace_blocks_option_and_checkpoint_export(dataset_dir, wan_folder, tmp_path):
    cfg = train_config(dataset_dir, wan_folder, tmp_path / "run", steps=2, save_every=2, include_vace_blocks=True)
    trainer = LoraTrainer(cfg, model=fresh_model(wan_folder))
    result = trainer.run()
    sd = load_file(str(result["comfyui"]))
    assert "diffusion_model.vace_blocks.0.self_attn.q.lora_A.weight" in sd
    assert "diffusion_model.vace_blocks.0.ffn.2.alpha" in sd
    read_lora(result["comfyui"], fresh_model(wan_folder).transformer)  # the sampler accepts VACE-block keys
    again = export_checkpoint(tmp_path / "run" / "checkpoints" / "step-000002", tmp_path / "again")
    for new, old in zip(again, (result["diffusers"], result["comfyui"])):
        a, b = load_file(str(new)), load_file(str(old))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
