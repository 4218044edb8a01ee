"""LoRA files in the three key formats load, change the model by exactly strength * alpha/rank * B @ A,
stack, leave the base model untouched, and wrong files fail with the file's name."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from insertanywhere.errors import InsertAnywhereError
from insertanywhere.insertion import vace
from insertanywhere.insertion.lora import applied_loras, lora_delta, read_lora
from insertanywhere.insertion.options import VACEOptions

FORMATS = ("diffusers", "comfy", "musubi")
PROBE = "blocks.1.attn1.to_q"


@pytest.fixture(scope="module")
def lora(wan_model):
    from tiny_models import random_lora

    return random_lora(wan_model.transformer, rank=4, alpha=2.0, seed=3)


@pytest.fixture(scope="module")
def lora_files(tmp_path_factory, lora):
    from tiny_models import write_wan_lora

    folder = tmp_path_factory.mktemp("loras")
    return {fmt: write_wan_lora(folder / f"lora_{fmt}.safetensors", lora, fmt) for fmt in FORMATS}


def _layer_output(transformer, x):
    with torch.no_grad():
        return transformer.get_submodule(PROBE)(x)


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_resolves_to_the_expected_deltas(wan_model, lora, lora_files, fmt):
    spec = read_lora(lora_files[fmt], wan_model.transformer)
    assert len(spec.weights) == 2 * len(lora)  # every targeted layer, incl. the VACE blocks
    for module, (down, up, alpha) in lora.items():
        expected = (alpha / down.shape[0]) * up @ down
        assert torch.allclose(lora_delta(spec, module), expected, atol=1e-6), module


@pytest.mark.parametrize("fmt", FORMATS)
def test_strength_scales_the_layer_output_exactly(wan_model, lora, lora_files, fmt):
    transformer = wan_model.transformer
    spec = read_lora(lora_files[fmt], transformer)
    x = torch.randn(3, transformer.get_submodule(PROBE).in_features)
    base = _layer_output(transformer, x)
    down, up, alpha = lora[PROBE]
    delta = x @ ((alpha / 4) * up @ down).T
    for strength in (0.0, 0.5, 1.0):
        with applied_loras(transformer, [spec.__class__(spec.name, strength, spec.weights)]):
            out = _layer_output(transformer, x)
        assert torch.allclose(out - base, strength * delta, atol=1e-5), strength
    assert torch.equal(_layer_output(transformer, x), base)  # adapters removed afterwards
    assert not any("lora" in name for name, _ in transformer.named_modules())


def test_stacked_loras_add_up(wan_model, lora_files):
    transformer = wan_model.transformer
    a = read_lora(lora_files["comfy"], transformer, strength=0.7)
    b = read_lora(lora_files["musubi"], transformer, strength=-0.3)
    x = torch.randn(2, transformer.get_submodule(PROBE).in_features)
    base = _layer_output(transformer, x)
    with applied_loras(transformer, [a, b]):
        out = _layer_output(transformer, x)
    expected = x @ (0.7 * lora_delta(a, PROBE) + -0.3 * lora_delta(b, PROBE)).T
    assert torch.allclose(out - base, expected, atol=1e-5)


@pytest.mark.parametrize("metadata", [{"r": 4, "lora_alpha": 2.0},  # PEFT adapter config
                                      {"transformer.r": 4, "transformer.lora_alpha": 2.0}])  # save_lora_weights
def test_diffusers_metadata_alpha_is_used(tmp_path, wan_model, lora, metadata):
    from tiny_models import lora_state_dict

    sd = lora_state_dict({PROBE: lora[PROBE]}, "diffusers")
    sd[f"transformer.{PROBE}.lora_A.weight"] = lora[PROBE][0]  # unscaled, alpha only in the metadata
    path = tmp_path / "meta.safetensors"
    save_file(sd, str(path), metadata={"lora_adapter_metadata": json.dumps(metadata)})
    spec = read_lora(path, wan_model.transformer)
    down, up, _ = lora[PROBE]
    assert torch.allclose(lora_delta(spec, PROBE), 0.5 * up @ down, atol=1e-6)


def test_pipeline_output_at_strength_zero_is_the_base_and_one_changes_it(wan_model, lora_files, video, masks,
                                                                         first_frame):
    def run(model):
        return vace.insert_object(model, video, masks, first_frame, None, "a red mug",
                                  options=VACEOptions(steps=2, cfg=1.0, seed=1))

    base = run(wan_model)
    spec = read_lora(lora_files["comfy"], wan_model.transformer)
    off = run(wan_model.with_lora(spec.__class__(spec.name, 0.0, spec.weights)))
    on = run(wan_model.with_lora(spec))
    assert np.array_equal(off, base)
    change = np.abs(on.astype(int) - base).mean()
    assert change > 1.0, change
    assert wan_model.loras == ()  # with_lora made a new handle
    assert np.array_equal(run(wan_model), base)  # and the cached base model was not modified


def test_lora_for_a_bigger_model_is_refused(tmp_path, wan_model, lora):
    from tiny_models import write_wan_lora

    bigger = dict(lora)
    down, up, alpha = lora[PROBE]
    bigger["blocks.7.attn1.to_q"] = (down.clone(), up.clone(), alpha)  # the tiny model has 2 blocks
    path = write_wan_lora(tmp_path / "wan14b_lora.safetensors", bigger, "comfy")
    with pytest.raises(InsertAnywhereError, match="wan14b_lora.safetensors.*blocks.7.self_attn.q.*another Wan size"):
        read_lora(path, wan_model.transformer)


def test_lora_with_wrong_shapes_is_refused(tmp_path, wan_model, lora):
    from tiny_models import write_wan_lora

    down, up, alpha = lora[PROBE]
    path = write_wan_lora(tmp_path / "wide.safetensors", {PROBE: (torch.cat([down, down], 1), up, alpha)}, "musubi")
    with pytest.raises(InsertAnywhereError, match="wide.safetensors.*shapes.*another Wan size"):
        read_lora(path, wan_model.transformer)


def test_locon_and_non_lora_files_are_refused(tmp_path, wan_model, wan_files):
    path = tmp_path / "locon.safetensors"
    save_file({"lora_unet_blocks_0_self_attn_q.lora_mid.weight": torch.zeros(2, 2)}, str(path))
    with pytest.raises(InsertAnywhereError, match="locon.safetensors.*LoCon"):
        read_lora(path, wan_model.transformer)
    with pytest.raises(InsertAnywhereError, match="tiny_wan_vace_vae.safetensors.*not a LoRA weight.*Wan VAE"):
        read_lora(wan_files["vae"], wan_model.transformer)
