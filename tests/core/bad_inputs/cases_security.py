"""Issue #11 point 1 (security): SAM2 configs are read as data, never as code.

Each hostile row puts the file where a user (or a downloaded model) would, loads through the same
core call the node makes (`load_sam2`), and checks afterwards that the file's code did not run.
Combo inputs of the nodes (paths in mesh_file, depth_file, lora, ...) need ComfyUI: their rows are in
tests/e2e/bad_prompts/cases_security.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

from table import Case

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/, for tiny_models

FIX = "Classes and code are never taken from a config file"


def _checkpoint(tmp: Path) -> Path:
    from tiny_models import write_sam2

    return write_sam2(tmp / "models" / "sam2", name="user_sam2")


def _section(header: str, lines: list[str]) -> str:
    """The tiny SAM2 yaml with the whole section under `header` replaced by `lines`."""
    from tiny_models import SAM2_TINY_YAML

    text = SAM2_TINY_YAML.splitlines()
    start = text.index(header)
    depth = len(header) - len(header.lstrip())
    end = start + 1
    while end < len(text) and len(text[end]) - len(text[end].lstrip()) > depth:
        end += 1
    return "\n".join(text[:start + 1] + [" " * (depth + 2) + line for line in lines] + text[end:]) + "\n"


def _beside(yaml_text, victim_name: str = "made_by_yaml"):
    """Put `yaml_text(victim)` beside a tiny checkpoint, load with config 'auto', and check the victim
    path (what the file's code would create) does not exist afterwards."""

    def run(tmp: Path):
        from insertanywhere.insertion.sam2_refine import load_sam2

        victim = tmp / victim_name
        checkpoint = _checkpoint(tmp)
        checkpoint.with_suffix(".yaml").write_text(yaml_text(victim))
        try:
            load_sam2(checkpoint)
        finally:
            assert not victim.exists(), f"the config's code ran: {victim} exists"

    return run


def _named(config_of):
    """Load a tiny checkpoint with the node's config value `config_of(tmp, evil_yaml_path)`, where an
    uploaded hostile yaml waits in tmp/input."""

    def run(tmp: Path):
        from insertanywhere.insertion.sam2_refine import load_sam2

        victim = tmp / "made_by_yaml"
        evil = tmp / "input" / "evil.yaml"
        evil.parent.mkdir(parents=True, exist_ok=True)
        evil.write_text(_section("  image_encoder:", ["_target_: os.makedirs", f"name: {victim}"]))
        try:
            load_sam2(_checkpoint(tmp), config=config_of(tmp, evil))
        finally:
            assert not victim.exists(), f"the config's code ran: {victim} exists"

    return run


def _tiny_yaml_loads(tmp: Path):
    from insertanywhere.insertion.sam2_refine import load_sam2

    model = load_sam2(_checkpoint(tmp))
    assert model.config.endswith("user_sam2.yaml") and model.image_size == 128


CASES = [
    Case("SAM2 config: yaml beside the checkpoint with _target_ os.makedirs (nested section)",
         _beside(lambda v: _section("  image_encoder:", ["_target_: os.makedirs", f"name: {v}", "exist_ok: true"])),
         rf"error: SAM2 config '.*user_sam2.yaml': _target_ 'os.makedirs' is not accepted \(only "
         rf"sam2.modeling.backbones.image_encoder.ImageEncoder belongs there\) at 'model.image_encoder._target_'. "
         rf"{FIX}"),
    Case("SAM2 config: yaml beside the checkpoint with _target_ builtins.exec",
         _beside(lambda v: _section("    trunk:", ["_target_: builtins.exec",
                                                   f"_args_: [\"open(r'{v}', 'w').write('x')\"]"])),
         rf"error: .*_target_ 'builtins.exec' is not accepted .* at 'model.image_encoder.trunk._target_'. {FIX}"),
    Case("SAM2 config: yaml beside the checkpoint with _target_ subprocess.run",
         _beside(lambda v: _section("    neck:", ["_target_: subprocess.run", f"args: [touch, {v}]"])),
         rf"error: .*_target_ 'subprocess.run' is not accepted .* at 'model.image_encoder.neck._target_'. {FIX}"),
    Case("SAM2 config: yaml whose model itself is _target_ os.makedirs",
         _beside(lambda v: f"model:\n  _target_: os.makedirs\n  name: {v}\n"),
         r"error: .*_target_ 'os.makedirs' is not accepted .* at 'model._target_'"),
    Case("SAM2 config: yaml with a top-level _target_ os.makedirs and no model",
         _beside(lambda v: f"_target_: os.makedirs\nname: {v}\n"),
         r"error: .*unknown top-level key \(only 'model' is read\) at '_target_'"),
    Case("SAM2 config: Hiera weights_path (a pickle torch.load would run) in the yaml",
         _beside(lambda v: _section("    trunk:", ["embed_dim: 8", "num_heads: 1", "stages: [1, 1, 2, 1]",
                                                   f"weights_path: {v}.pt"])),
         r"error: .*unknown key 'weights_path' \(not a setting of Hiera that a config may change\) "
         r"at 'model.image_encoder.trunk.weights_path'"),
    Case("SAM2 config: ${oc.env:HOME} interpolation in the yaml",
         _beside(lambda v: _section("    trunk:", ["_target_: sam2.modeling.backbones.hieradet.Hiera",
                                                   "embed_dim: ${oc.env:HOME}"])),
         r"error: .*interpolation or resolver '\$\{oc.env:HOME\}' is not accepted; write the value at "
         r"'model.image_encoder.trunk.embed_dim'"),
    Case("SAM2 config: YAML anchors and aliases (&a / *a) in the yaml",
         _beside(lambda v: _section("    trunk:", ["_target_: sam2.modeling.backbones.hieradet.Hiera",
                                                   "stages: &s [1, 1, 2, 1]", "window_spec: *s"])),
         r"error: .*uses YAML anchors or aliases"),
    Case("SAM2 config name: absolute path of an uploaded yaml",
         _named(lambda tmp, evil: str(evil)),
         r"error: SAM2 config '/.*evil.yaml' is not one of the packaged configs \[.*'sam2.1/sam2.1_hiera_l.yaml'.*\] "
         r"or 'auto'; file paths are not accepted. For a custom architecture put its .yaml beside the checkpoint"),
    Case("SAM2 config name: bare name of an uploaded yaml",
         _named(lambda tmp, evil: "evil.yaml"),
         r"error: SAM2 config 'evil.yaml' is not one of the packaged configs .* file paths are not accepted"),
    Case("SAM2 config name: ../ path out of the sam2 configs folder",
         _named(lambda tmp, evil: "sam2.1/../../../../" + str(evil).lstrip("/")),
         r"error: SAM2 config 'sam2.1/\.\./.*evil.yaml' is not one of the packaged configs"),
    Case("SAM2 config name: the sam2 package's training recipe",
         _named(lambda tmp, evil: "sam2.1_training/sam2.1_hiera_b+_MOSE_finetune.yaml"),
         r"error: SAM2 config 'sam2.1_training/.*' is not one of the packaged configs"),
    Case("SAM2 config: custom tiny architecture beside its checkpoint (numbers only)", _tiny_yaml_loads, r"^ok$"),
]
