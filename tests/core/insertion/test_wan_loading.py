"""Wan VACE loading: diffusers folder and ComfyUI single files give the same model; bad files fail clearly."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from insertanywhere.errors import InsertAnywhereError
from insertanywhere.insertion import wan
from insertanywhere.insertion.text_encoder import clean_prompt
from insertanywhere.insertion.wan_keys import original_state_dict


def _max_diff(a: torch.nn.Module, b: torch.nn.Module) -> float:
    sa, sb = a.state_dict(), b.state_dict()
    assert set(sa) == set(sb)
    return max((sa[k].float() - sb[k].float()).abs().max().item() for k in sa)


def test_transformer_names_round_trip_through_diffusers_converter(wan_model):
    from diffusers.loaders.single_file_utils import convert_wan_transformer_to_diffusers

    sd = wan_model.transformer.state_dict()
    original = original_state_dict(sd)
    assert "vace_blocks.0.before_proj.weight" in original and "head.modulation" in original
    assert "blocks.0.norm3.weight" in original  # diffusers' norm2 is the original cross-attention norm3
    back = convert_wan_transformer_to_diffusers(dict(original))
    assert set(back) == set(sd)
    assert all(torch.equal(back[k], sd[k]) for k in sd)


def test_vae_test_helper_round_trips(wan_model):
    """The tiny single-file VAE is written with an inverse of diffusers' converter; check that inverse."""
    from diffusers.loaders.single_file_utils import convert_wan_vae_to_diffusers
    from tiny_models import wan_vae_original_state_dict

    sd = wan_model.pipe.vae.state_dict()
    back = convert_wan_vae_to_diffusers(wan_vae_original_state_dict(sd))
    assert set(back) == set(sd) and all(torch.equal(back[k], sd[k]) for k in sd)


def test_config_read_off_shapes_matches_the_model(wan_model, wan_files):
    from tiny_models import WAN_TRANSFORMER_CONFIG

    config = wan.transformer_config(load_file(str(wan_files["transformer"])))
    for key in ("num_attention_heads", "attention_head_dim", "ffn_dim", "num_layers", "vace_layers", "text_dim",
                "freq_dim", "in_channels", "vace_in_channels"):
        assert config[key] == WAN_TRANSFORMER_CONFIG[key], key
    assert tuple(config["patch_size"]) == WAN_TRANSFORMER_CONFIG["patch_size"]


def test_single_files_load_the_same_weights_and_prompts_as_the_folder(wan_model, wan_files):
    single = wan.load_wan_vace(transformer_file=wan_files["transformer"], vae_file=wan_files["vae"],
                               text_encoder_file=wan_files["text_encoder"])
    assert _max_diff(single.transformer, wan_model.transformer) == 0.0
    assert _max_diff(single.pipe.vae, wan_model.pipe.vae) == 0.0
    prompts = ["a red mug on the wooden table", "Zebra &amp; xylophone"]
    a = single.prompts.encode(prompts)  # tokenizer from the file's spiece_model blob
    b = wan_model.prompts.encode(prompts)  # tokenizer.json of the diffusers folder
    assert a.shape == (2, 512, 4096)
    assert torch.equal(a, b)
    assert a[0, 20:].abs().max() == 0  # padding positions are zero, as Wan's pipelines make them
    assert clean_prompt("  a \n red&amp;amp;mug ") == "a red&mug"


def test_mixed_folder_and_file_sources(wan_folder, wan_files, wan_model):
    mixed = wan.load_wan_vace(folder=wan_folder, transformer_file=wan_files["transformer"])
    assert _max_diff(mixed.transformer, wan_model.transformer) == 0.0


def test_scaled_fp8_file_is_dequantized(tmp_path, wan_files, wan_model):
    sd = load_file(str(wan_files["transformer"]))
    scaled = {"scaled_fp8": torch.zeros(0, dtype=torch.float8_e4m3fn)}
    for key, value in sd.items():
        if key.endswith(".weight") and value.ndim == 2:
            scale = value.abs().max() / 448.0
            scaled[key] = (value / scale).to(torch.float8_e4m3fn)
            scaled[key[: -len("weight")] + "scale_weight"] = scale.reshape(1)
        else:
            scaled[key] = value
    path = tmp_path / "wan_fp8_scaled.safetensors"
    save_file(scaled, str(path))
    model = wan.load_transformer_file(path, torch.float32)
    ref = wan_model.transformer.state_dict()
    got = model.state_dict()
    weight = "blocks.0.attn1.to_q.weight"
    rel = (got[weight] - ref[weight]).abs().max() / ref[weight].abs().max()
    assert 0 < rel < 0.07  # fp8 e4m3 keeps ~3 significant bits


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(InsertAnywhereError, match="wan_missing.safetensors"):
        wan.load_wan_vace(transformer_file=tmp_path / "wan_missing.safetensors", vae_file=tmp_path / "v.safetensors",
                          text_encoder_file=tmp_path / "t.safetensors")


def test_no_source_is_a_clear_error():
    with pytest.raises(InsertAnywhereError, match="No source for the transformer, vae, text encoder"):
        wan.load_wan_vace()


def test_corrupt_file_names_the_file(tmp_path, wan_files):
    data = wan_files["transformer"].read_bytes()
    cut = tmp_path / "wan_truncated.safetensors"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InsertAnywhereError, match="wan_truncated.safetensors.*corrupt"):
        wan.load_transformer_file(cut, torch.float32)


@pytest.mark.parametrize("part, source, expected", [
    ("transformer", "vae", "looks like a Wan VAE"),
    ("vae", "transformer", "looks like a Wan VACE transformer"),
    ("text_encoder", "vae", "looks like a Wan VAE"),
])
def test_wrong_architecture_names_the_file(wan_files, part, source, expected):
    loaders = {"transformer": lambda p: wan.load_transformer_file(p, torch.float32),
               "vae": wan.load_vae_file,
               "text_encoder": lambda p: wan.load_text_encoder_file(p, torch.float32)}
    with pytest.raises(InsertAnywhereError, match=f"'{wan_files[source].name}' is not .*{expected}"):
        loaders[part](wan_files[source])


def test_wan22_vae_is_refused_with_the_fix(tmp_path):
    sd = {"encoder.conv1.weight": torch.zeros(160, 12, 3, 3, 3), "decoder.conv1.weight": torch.zeros(1),
          "conv1.weight": torch.zeros(96, 96, 1, 1, 1), "decoder.middle.0.residual.0.gamma": torch.zeros(1)}
    path = tmp_path / "wan2.2_vae.safetensors"
    save_file(sd, str(path))
    with pytest.raises(InsertAnywhereError, match="48 latent channels.*wan_2.1_vae"):
        wan.load_vae_file(path)


def test_folder_of_another_model_is_refused(tmp_path, wan_folder):
    import shutil

    other = tmp_path / "not-vace"
    shutil.copytree(wan_folder, other)
    config = json.loads((other / "transformer" / "config.json").read_text())
    config["_class_name"] = "WanTransformer3DModel"
    (other / "transformer" / "config.json").write_text(json.dumps(config))
    with pytest.raises(InsertAnywhereError, match="not a WanVACETransformer3DModel"):
        wan.load_wan_vace(folder=other)


def test_incomplete_folder_is_refused(tmp_path):
    (tmp_path / "half").mkdir()
    with pytest.raises(InsertAnywhereError, match="model_index.json missing"):
        wan.load_wan_vace(folder=tmp_path / "half")
