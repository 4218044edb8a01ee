"""Wan LoRA files in every common key format, applied as PEFT adapters with a strength each.

Formats (detected per key, mixed files are fine):
  diffusers / PEFT   `transformer.blocks.0.attn1.to_q.lora_A.weight` (also `base_model.model.`,
                     no prefix), alpha from diffusers' `lora_adapter_metadata` or 1:1
  ComfyUI / original `diffusion_model.blocks.0.self_attn.q.lora_down.weight` (or lora_A/lora_B)
                     + `.alpha`, `.diff_b` bias deltas
  kohya / Musubi     `lora_unet_blocks_0_self_attn_q.lora_down.weight` + `.alpha`
Every key is resolved against the loaded transformer's own Linear layers, so a LoRA for another
model (or another Wan size) fails with an error naming the file instead of being half applied.
The result is a diffusers/PEFT state dict with alpha / rank folded into lora_A, loaded with
`load_lora_adapter` and weighted with `set_adapters`.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Iterator, Sequence, Union

import torch

from ..errors import InsertAnywhereError
from .checkpoints import describe, read_state_dict
from .wan import LoRASpec
from .wan_keys import diffusers_to_original

_KINDS = (("lora_A.weight", "down"), ("lora_down.weight", "down"), ("lora_B.weight", "up"), ("lora_up.weight", "up"),
          ("lora_B.bias", "bias"), ("diff_b", "bias"), ("alpha", "alpha"))
_UNSUPPORTED = ("lora_mid", "hada_", "lokr_", ".diff", "dora_scale", "lora_magnitude")
_PREFIXES = ("base_model.model.", "transformer.", "model.diffusion_model.", "diffusion_model.", "lora_unet_",
             "unet.")


def _module_table(transformer: torch.nn.Module) -> dict[str, str]:
    """Every accepted spelling of each Linear layer -> its diffusers name."""
    table: dict[str, str] = {}
    for name, module in transformer.named_modules():
        module = getattr(module, "base_layer", module)  # a layer still wrapped by PEFT
        if isinstance(module, torch.nn.Linear) and ".lora_" not in name and "base_layer" not in name:
            original = diffusers_to_original(name)
            for alias in (name, original, name.replace(".", "_"), original.replace(".", "_")):
                table.setdefault(alias, name)
    return table


def _split(key: str) -> tuple[str, str]:
    for suffix, kind in _KINDS:
        if key.endswith("." + suffix):
            return key[: -len(suffix) - 1], kind
    return key, ""


def _strip(module_key: str) -> str:
    for prefix in _PREFIXES:
        if module_key.startswith(prefix):
            return module_key[len(prefix):]
    return module_key


def _metadata_alphas(path: Path) -> tuple[float | None, dict]:
    """lora_alpha (+ per-module alpha_pattern) stored by diffusers / PEFT, if any."""
    config = None
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            raw = (handle.metadata() or {}).get("lora_adapter_metadata")
        config = json.loads(raw) if raw else None
    beside = path.with_name("adapter_config.json")
    if config is None and beside.is_file():
        config = json.loads(beside.read_text())
    if not config:
        return None, {}
    # diffusers' save_lora_weights prefixes each entry with the component: "transformer.lora_alpha"
    config = {k.removeprefix("transformer."): v for k, v in config.items()}
    return config.get("lora_alpha"), {k.lstrip("^"): v for k, v in (config.get("alpha_pattern") or {}).items()}


def read_lora(path: Union[str, Path], transformer: torch.nn.Module, strength: float = 1.0) -> LoRASpec:
    """Parse and check a LoRA file against `transformer`; returns a spec ready for `applied_loras`."""
    path = Path(path)
    sd = read_state_dict(path, "LoRA")
    bad = [k for k in sd if any(tag in k for tag in _UNSUPPORTED) and _split(k)[1] == ""]
    if bad:
        raise InsertAnywhereError(
            f"LoRA '{path.name}' uses a variant this loader does not apply ('{bad[0]}': LoCon/LoHa/LoKr/DoRA or "
            "full weight diffs). Convert it to a plain LoRA (lora_A/lora_B or lora_down/lora_up)."
        )
    groups: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in sd.items():
        module_key, kind = _split(key)
        if not kind:
            raise InsertAnywhereError(
                f"'{path.name}' has a key '{key}' that is not a LoRA weight; it looks like {describe(sd)}."
            )
        groups.setdefault(_strip(module_key), {})[kind] = value
    table = _module_table(transformer)
    default_alpha, alpha_pattern = _metadata_alphas(path)
    weights: dict[str, torch.Tensor] = {}
    unknown = [m for m in groups if m not in table]
    if unknown:
        raise InsertAnywhereError(
            f"LoRA '{path.name}' targets '{unknown[0]}' ({len(unknown)} of {len(groups)} layers), which this Wan VACE "
            "transformer does not have: the LoRA is for another model or another Wan size (1.3B vs 14B)."
        )
    for module_key, parts in groups.items():
        name = table[module_key]
        layer = transformer.get_submodule(name)
        layer = getattr(layer, "base_layer", layer)
        if "down" not in parts or "up" not in parts:
            if set(parts) <= {"bias", "alpha"} and "bias" in parts:
                raise InsertAnywhereError(f"LoRA '{path.name}' has a bias-only entry for '{module_key}'; "
                                          "bias-only LoRAs are not supported.")
            raise InsertAnywhereError(
                f"LoRA '{path.name}' has no down/up pair for '{module_key}'; the file is damaged.")
        down, up = parts["down"].float(), parts["up"].float()
        rank = down.shape[0]
        fits = down.ndim == 2 and up.ndim == 2 and down.shape[1] == layer.in_features
        if not fits or up.shape != (layer.out_features, rank):
            raise InsertAnywhereError(
                f"LoRA '{path.name}' layer '{module_key}' has shapes {tuple(down.shape)}/{tuple(up.shape)} but the "
                f"model's layer is {layer.out_features}x{layer.in_features}: the LoRA is for another Wan size."
            )
        alpha = parts.get("alpha")
        alpha = float(alpha) if alpha is not None else alpha_pattern.get(name, default_alpha)
        scale = float(alpha) / rank if alpha is not None else 1.0
        weights[f"{name}.lora_A.weight"] = down * scale
        weights[f"{name}.lora_B.weight"] = up
        if "bias" in parts:
            weights[f"{name}.lora_B.bias"] = parts["bias"].float()
    return LoRASpec(path.name, float(strength), weights)


def lora_delta(spec: LoRASpec, module: str) -> torch.Tensor:
    """The weight change [out, in] one LoRA makes to `module` at strength 1 (B @ A with alpha folded in)."""
    return spec.weights[f"{module}.lora_B.weight"] @ spec.weights[f"{module}.lora_A.weight"]


@contextlib.contextmanager
def applied_loras(transformer, loras: Sequence[LoRASpec]) -> Iterator[None]:
    """Load `loras` as PEFT adapters with their strengths for the duration of the block, then remove them,
    so the cached base model is never changed (`unload_lora` puts the original layers back)."""
    names = []
    try:
        for index, spec in enumerate(loras):
            name = f"ia_lora_{index}"
            dtype = next(transformer.parameters()).dtype
            dtype = torch.float32 if dtype == torch.float8_e4m3fn else dtype  # fp8 storage: LoRA stays precise
            weights = {k: v.to(dtype) for k, v in spec.weights.items()}
            transformer.load_lora_adapter(weights, adapter_name=name, prefix=None)
            names.append(name)
        if names:
            transformer.set_adapters(names, [spec.strength for spec in loras])
        yield
    finally:
        if names:
            transformer.unload_lora()
