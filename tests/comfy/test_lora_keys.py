"""Tier (b): the ComfyUI-format insertion LoRA applied by core `LoraLoaderModelOnly` to a native Wan VACE.

A tiny VACE model is built with ComfyUI's own classes (comfy.ldm.wan.model.VaceWanModel via
supported_models.WAN21_Vace). The same weights go through diffusers' single-file converter into
a WanVACETransformer3DModel, which gets a LoRA (main and VACE blocks) exported by the trainer's
`export_lora`. Checked: every LoRA key is consumed by ComfyUI's key map, every patched weight
changes by exactly B @ A * alpha / rank of the diffusers layer it came from, and nothing else.
"""

from __future__ import annotations

import logging

import pytest
import torch

pytestmark = pytest.mark.comfy

TINY = {"image_model": "wan2.1", "model_type": "vace", "patch_size": (1, 2, 2), "in_dim": 16, "dim": 128,
        "ffn_dim": 128, "freq_dim": 32, "text_dim": 32, "out_dim": 16, "num_heads": 1, "num_layers": 2,
        "window_size": (-1, -1), "qk_norm": True, "cross_attn_norm": True, "eps": 1e-6, "vace_layers": 1,
        "vace_in_dim": 96}


def native_vace_patcher():
    """A ModelPatcher around a tiny native Wan VACE with random weights."""
    import comfy.model_patcher
    import comfy.supported_models

    config = comfy.supported_models.WAN21_Vace(dict(TINY))
    config.set_inference_dtype(torch.float32, None)
    model = config.get_model({})
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.diffusion_model.named_parameters():
            p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen) if "norm" in name
                    else 0.05 * torch.randn(p.shape, generator=gen))
    cpu = torch.device("cpu")
    return comfy.model_patcher.ModelPatcher(model, load_device=cpu, offload_device=cpu)


def test_exported_lora_maps_onto_native_wan_vace(comfy, tmp_path, caplog):
    import folder_paths
    from safetensors.torch import save_file

    from insertanywhere.insertion.wan import load_transformer_file
    from insertanywhere.insertion.wan_keys import diffusers_to_original
    from insertanywhere.training.export import export_lora, lora_pairs, peft_state_dict
    from insertanywhere.training.trainer import TrainConfig, add_lora

    patcher = native_vace_patcher()
    native = {k[len("diffusion_model."):]: v.clone() for k, v in patcher.model.state_dict().items()
              if k.startswith("diffusion_model.")}
    save_file({k: v.contiguous() for k, v in native.items()}, str(tmp_path / "native.safetensors"))
    transformer = load_transformer_file(tmp_path / "native.safetensors", torch.float32)  # diffusers' converter

    cfg = TrainConfig(dataset="-", model="-", output="-", rank=4, alpha=2.0, include_vace_blocks=True)
    add_lora(transformer, cfg)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in transformer.named_parameters():
            if "lora_B" in name:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
    state = peft_state_dict(transformer)
    pairs = lora_pairs(state)
    assert any(m.startswith("vace_blocks.") for m in pairs) and len(pairs) == 3 * 10

    loras = tmp_path / "loras"
    _, comfy_file = export_lora(transformer, loras, "insertion", comfy_dtype=torch.float32)
    folder_paths.folder_names_and_paths["loras"] = ([str(loras)], {".safetensors"})

    caplog.set_level(logging.WARNING)
    (patched,) = comfy.NODE_CLASS_MAPPINGS["LoraLoaderModelOnly"]().load_lora_model_only(
        patcher, comfy_file.name, 1.0)
    assert not [r for r in caplog.records if "not loaded" in r.getMessage().lower()], caplog.text
    patched.patch_model()
    after = {k[len("diffusion_model."):]: v for k, v in patched.model.state_dict().items()
             if k.startswith("diffusion_model.")}

    expected_changes = set()
    for module, (a, b) in pairs.items():
        original = diffusers_to_original(module) + ".weight"
        # the names mean the same layers: diffusers' converter put this native weight there
        assert torch.equal(transformer.get_submodule(module).base_layer.weight, native[original]), module
        delta = after[original] - native[original]
        assert torch.allclose(delta, b @ a * (cfg.alpha / cfg.rank), atol=1e-6), module
        expected_changes.add(original)
    changed = {k for k in native if not torch.equal(after[k], native[k])}
    assert changed == expected_changes
