"""SAM2 configs are data, never code (issue #11 point 1).

A `_target_` in a YAML used to reach `hydra.utils.instantiate`, so a file could call any function
(`os.makedirs` created a folder on the server). Now every config goes through a fixed schema: these
tests show hostile files are refused with the key named and leave no side effect, config names other
than the packaged ones are refused, and the configs that are allowed build exactly what Hydra built.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from insertanywhere.errors import InsertAnywhereError
from insertanywhere.insertion import sam2_refine
from insertanywhere.insertion.sam2_config import MAX_CONFIG_BYTES, load_config_file, parse_sam2_config
from insertanywhere.insertion.sam2_refine import load_sam2, refine_masks

from insertion_helpers import box_masks, scene_video
from tiny_models import SAM2_TINY_YAML


def _nested(target_line: str, extra: str, where: str = "    trunk:\n") -> str:
    """The tiny config with the whole section under the header line `where` replaced by another
    `_target_` and its arguments."""
    lines = SAM2_TINY_YAML.splitlines()
    start = lines.index(where.rstrip("\n"))
    depth = len(where) - len(where.lstrip())
    end = start + 1
    while end < len(lines) and len(lines[end]) - len(lines[end].lstrip()) > depth:
        end += 1
    section = [" " * (depth + 2) + line for line in (target_line, *extra.splitlines())]
    return "\n".join(lines[:start + 1] + section + lines[end:]) + "\n"


def _hostile(kind: str, victim) -> str:
    """Configs that ran code through Hydra before the fix (nested sections are instantiated first)."""
    return {
        "makedirs": _nested("_target_: os.makedirs", f"name: {victim}\nexist_ok: true",
                            where="  image_encoder:\n"),
        "exec": _nested("_target_: builtins.exec", f"_args_: [\"open(r'{victim}', 'w').write('x')\"]"),
        "subprocess": _nested("_target_: subprocess.run", f"args: [touch, {victim}]",
                              where="    neck:\n"),
        "model_makedirs": f"model:\n  _target_: os.makedirs\n  name: {victim}\n",
        "top_makedirs": f"_target_: os.makedirs\nname: {victim}\n",
    }[kind]


@pytest.fixture
def checkpoint_dir(tmp_path, sam2_checkpoint):
    """A copy of the tiny checkpoint in its own folder, so a yaml can be put beside it."""
    folder = tmp_path / "sam2"
    folder.mkdir()
    return shutil.copy(sam2_checkpoint, folder / "tiny.pt")


@pytest.mark.parametrize("kind, key, target", [
    ("makedirs", "model.image_encoder._target_", "os.makedirs"),
    ("exec", "model.image_encoder.trunk._target_", "builtins.exec"),
    ("subprocess", "model.image_encoder.neck._target_", "subprocess.run"),
    ("model_makedirs", "model._target_", "os.makedirs"),
])
def test_hostile_target_beside_checkpoint_is_refused_and_never_runs(tmp_path, checkpoint_dir, kind, key, target):
    from pathlib import Path

    victim = tmp_path / "created_by_yaml"
    Path(checkpoint_dir).with_suffix(".yaml").write_text(_hostile(kind, victim))
    with pytest.raises(InsertAnywhereError) as error:
        load_sam2(checkpoint_dir)  # config 'auto' reads the yaml beside the checkpoint
    message = str(error.value)
    assert f"at '{key}'" in message and f"'{target}' is not accepted" in message
    assert "Classes and code are never taken from a config file" in message and "auto" in message
    assert not victim.exists()


def test_hostile_top_level_target_is_refused(tmp_path):
    victim = tmp_path / "created_by_yaml"
    path = tmp_path / "evil.yaml"
    path.write_text(_hostile("top_makedirs", victim))
    with pytest.raises(InsertAnywhereError, match=r"unknown top-level key .* at '_target_'"):
        load_config_file(path)
    assert not victim.exists()


@pytest.mark.parametrize("change, message", [
    # Hiera's weights_path torch.loads (unpickles) a file: not a setting a config may give
    (("      embed_dim: 8\n", "      embed_dim: 8\n      weights_path: /tmp/evil.pt\n"),
     r"unknown key 'weights_path' .* at 'model.image_encoder.trunk.weights_path'"),
    (("      embed_dim: 8\n", "      embed_dim: ${oc.env:HOME}\n"),
     r"interpolation or resolver '\$\{oc.env:HOME\}' is not accepted.* at 'model.image_encoder.trunk.embed_dim'"),
    (("      embed_dim: 8\n", "      embed_dim: ${model.image_size}\n"), r"interpolation or resolver"),
    (("      embed_dim: 8\n", "      embed_dim: 8\n      _partial_: true\n"), r"unknown key '_partial_'"),
    (("  num_maskmem: 3\n", "  num_maskmem: 3\n  _convert_: all\n"),
     r"unknown key '_convert_' .* at 'model._convert_'"),
    (("      activation: relu\n", "      activation: os.system\n"),
     r"'os.system' is not one of \['relu', 'gelu', 'glu'\] at 'model.memory_attention.layer.activation'"),
    (("      embed_dim: 8\n", "      embed_dim: 8.5\n"), r"8.5 is not an int at 'model.image_encoder.trunk.embed_dim'"),
    (("      embed_dim: 8\n", "      embed_dim: true\n"), r"True is not an int"),
    (("      stages: [1, 1, 2, 1]\n", "      stages: [1, 1, [2], 1]\n"),
     r"is not a list of ints .* 'model.image_encoder.trunk.stages'"),
    (("  image_size: 128\n", "  image_size: 1e300\n"), r"is not an int"),
    (("  memory_encoder:\n", "  memory_encoder: oops\n  unused:\n"), r"expected a section for MemoryEncoder"),
])
def test_only_plain_values_at_known_keys(tmp_path, change, message):
    old, new = change
    assert old in SAM2_TINY_YAML
    path = tmp_path / "custom.yaml"
    path.write_text(SAM2_TINY_YAML.replace(old, new, 1))
    with pytest.raises(InsertAnywhereError, match=message):
        load_config_file(path)


def test_missing_section_anchors_size_and_bad_yaml_are_refused(tmp_path):
    path = tmp_path / "custom.yaml"
    head, rest = SAM2_TINY_YAML.split("  memory_encoder:\n", 1)
    path.write_text(head + "  num_maskmem: 3\n")
    with pytest.raises(InsertAnywhereError, match="missing section at 'model.memory_encoder'"):
        load_config_file(path)
    path.write_text(SAM2_TINY_YAML.replace("      stages: [1, 1, 2, 1]", "      stages: &s [1, 1, 2, 1]\n"
                                           "      window_spec: *s"))
    with pytest.raises(InsertAnywhereError, match="anchors or aliases"):
        load_config_file(path)
    path.write_text(SAM2_TINY_YAML + "#" * MAX_CONFIG_BYTES)
    with pytest.raises(InsertAnywhereError, match="a SAM2 config is a few KB"):
        load_config_file(path)
    path.write_text("model: [unclosed\n")
    with pytest.raises(InsertAnywhereError, match="is not valid YAML"):
        load_config_file(path)
    path.write_text("- just\n- a list\n")
    with pytest.raises(InsertAnywhereError, match="not a YAML mapping"):
        load_config_file(path)
    path.write_bytes(b"model: \xff\xfe\n")
    with pytest.raises(InsertAnywhereError, match="cannot be read"):
        load_config_file(path)


@pytest.mark.parametrize("config", [
    "/tmp/evil.yaml", "evil.yaml", "../../input/evil.yaml", "sam2.1/../../../input/evil.yaml",
    "sam2.1_training/sam2.1_hiera_b+_MOSE_finetune.yaml", "sam2.1/sam2.1_hiera_x.yaml", "",
])
def test_config_names_outside_the_list_are_refused(tmp_path, checkpoint_dir, config):
    victim = tmp_path / "created_by_yaml"
    evil = tmp_path / "evil.yaml"
    evil.write_text(_hostile("makedirs", victim))
    name = str(evil) if config == "/tmp/evil.yaml" else config
    with pytest.raises(InsertAnywhereError, match="is not one of the packaged configs .* file paths are not accepted"):
        load_sam2(checkpoint_dir, config=name)
    assert not victim.exists()


def test_packaged_list_is_the_model_configs_only():
    names = sam2_refine.packaged_configs()
    assert len(names) == 8 and all(n.split("/")[0] in ("sam2", "sam2.1") for n in names)
    root = sam2_refine._package_config_dir()
    for name in names:  # the schema covers every packaged config, and resolves it by name
        assert load_config_file(root / name).model["image_size"] == 1024


def _hydra_reference(yaml_text: str):
    """How SAM2 was built before the fix (Hydra instantiate), for trusted configs only."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    model = OmegaConf.create(OmegaConf.to_container(OmegaConf.create(yaml_text).model, resolve=True))
    model["_target_"] = "sam2.sam2_video_predictor.SAM2VideoPredictor"
    return instantiate(OmegaConf.merge(model, sam2_refine._VIDEO_OVERRIDES), _recursive_=True)


def _settings(model) -> dict:
    """Every plain attribute of every sub-module (what the config set), lists and tuples alike."""
    from omegaconf import OmegaConf

    out = {}
    for name, module in model.named_modules():
        for key, value in vars(module).items():
            if key.startswith("_") or isinstance(value, (torch.Tensor, torch.nn.Module)) or callable(value):
                continue
            if OmegaConf.is_config(value):
                value = OmegaConf.to_container(value)
            out[(name, key)] = list(value) if isinstance(value, tuple) else value
    return out


@pytest.mark.parametrize("name", ["tiny", "sam2.1/sam2.1_hiera_t.yaml", "sam2/sam2_hiera_t.yaml"])
def test_allowed_configs_build_exactly_what_hydra_built(name):
    root = sam2_refine._package_config_dir()
    text = SAM2_TINY_YAML if name == "tiny" else (root / name).read_text()
    torch.manual_seed(0)
    reference = _hydra_reference(text)
    torch.manual_seed(0)
    from omegaconf import OmegaConf

    built = sam2_refine.build_sam2_model(parse_sam2_config(OmegaConf.create(text)))
    assert type(built) is type(reference) and repr(built) == repr(reference)
    a, b = reference.state_dict(), built.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # same modules built in the same order
    assert _settings(built) == _settings(reference)


def test_tiny_checkpoint_from_its_yaml_gives_the_former_outputs(sam2_checkpoint):
    """The whitelisted tiny yaml beside its checkpoint loads, and refines masks bit for bit as the
    Hydra-built model with the same weights does."""
    model = load_sam2(sam2_checkpoint)
    assert model.config.endswith("tiny_sam2.1.yaml") and model.image_size == 128
    reference = _hydra_reference(SAM2_TINY_YAML)
    reference.load_state_dict(torch.load(sam2_checkpoint, weights_only=True)["model"])
    reference = reference.eval()
    reference.memory_attention.register_forward_pre_hook(sam2_refine._memory_in_model_dtype, with_kwargs=True)
    old = sam2_refine.SAM2Model(reference, "ref", "hydra", 128, torch.device("cpu"))
    a, b = model.predictor.state_dict(), reference.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    frames, proj = scene_video(5), box_masks(5)
    new_result, old_result = refine_masks(model, frames, proj), refine_masks(old, frames, proj)
    assert np.array_equal(new_result.masks, old_result.masks) and new_result.frames == old_result.frames
    assert new_result.summary()["sam2"] > 0  # SAM2's masks were used, so the comparison covers the model
