"""Saving a trained insertion LoRA in the two formats the pack and ComfyUI load.

diffusers / PEFT   `<folder>/pytorch_lora_weights.safetensors`, keys
                   `transformer.blocks.0.attn1.to_q.lora_A.weight` / `lora_B`, the PEFT config
                   (rank, targets) in the file's metadata as diffusers writes it and in
                   adapter_config.json; alpha / rank is folded into lora_A (lora_alpha = r);
                   `WanVACEPipeline.load_lora_weights(folder)` loads it.
ComfyUI            one `.safetensors` with original Wan names:
                   `diffusion_model.blocks.0.self_attn.q.lora_A.weight`, `.lora_B.weight` and
                   `.alpha` (a scalar); core `LoraLoaderModelOnly` applies it to a native Wan model.

Both hold the same numbers: delta W = B @ A * alpha / rank.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import torch

from ..errors import InsertAnywhereError
from ..insertion.wan_keys import diffusers_to_original

DIFFUSERS_WEIGHT_NAME = "pytorch_lora_weights.safetensors"
COMFY_PREFIX = "diffusion_model."


def peft_state_dict(transformer) -> dict[str, torch.Tensor]:
    """The transformer's LoRA weights under diffusers module names, float32 on the CPU:
    `blocks.0.attn1.to_q.lora_A.weight` [rank, in] and `...lora_B.weight` [out, rank]."""
    from peft.utils import get_peft_model_state_dict

    state = get_peft_model_state_dict(transformer)
    if not state:
        raise InsertAnywhereError("The transformer carries no LoRA adapter; nothing to export.")
    return {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in state.items()}


def lora_pairs(state: dict[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """module name -> (A [rank, in], B [out, rank]) of a PEFT-style state dict."""
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        for part in ("lora_A", "lora_B"):
            tail = f".{part}.weight"
            if key.endswith(tail):
                pairs.setdefault(key[: -len(tail)], {})[part] = value
    broken = [m for m, p in pairs.items() if len(p) != 2]
    if broken or not pairs:
        raise InsertAnywhereError(f"LoRA weights are incomplete (modules {broken[:3]} lack lora_A or lora_B).")
    return {m: (p["lora_A"], p["lora_B"]) for m, p in sorted(pairs.items())}


def to_comfy(state: dict[str, torch.Tensor], alpha: float) -> dict[str, torch.Tensor]:
    """ComfyUI-format tensors (original Wan names, `diffusion_model.` prefix, `.alpha` per module)."""
    out = {}
    for module, (a, b) in lora_pairs(state).items():
        name = COMFY_PREFIX + diffusers_to_original(module)
        out[f"{name}.lora_A.weight"] = a
        out[f"{name}.lora_B.weight"] = b
        out[f"{name}.alpha"] = torch.tensor(float(alpha))
    return out


def save_comfy_lora(state: dict[str, torch.Tensor], path: str | Path, alpha: float, rank: int,
                    dtype: torch.dtype = torch.bfloat16, info: Optional[dict] = None) -> Path:
    """Write the ComfyUI-format file (`info`: training settings kept in its metadata); returns its path."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: (v if k.endswith(".alpha") else v.to(dtype)).contiguous() for k, v in to_comfy(state, alpha).items()}
    metadata = {"format": "insertanywhere-lora", "rank": str(rank), "alpha": str(alpha)}
    if info:
        metadata["insertanywhere"] = json.dumps(info, default=json_default)
    save_file(tensors, str(path), metadata=metadata)
    return path


def save_diffusers_lora(state: dict[str, torch.Tensor], folder: str | Path, peft_config: dict,
                        dtype: torch.dtype = torch.float32, info: Optional[dict] = None) -> Path:
    """Write the diffusers/PEFT folder (weights + adapter_config.json, and `info` as
    insertanywhere.json); returns the weights path.

    alpha / rank is folded into lora_A and the stored config says lora_alpha = r, so loaders
    that ignore the metadata (older diffusers, other tools) apply the same scale.
    """
    from diffusers import WanVACEPipeline

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = json.loads(json.dumps(peft_config, default=json_default))
    if config.get("rank_pattern") or config.get("alpha_pattern"):
        raise InsertAnywhereError("Per-layer rank/alpha patterns are not supported by the export.")
    scale = float(config["lora_alpha"]) / int(config["r"])
    config["lora_alpha"] = config["r"]
    folded = {k: (v * scale if ".lora_A." in k else v).to(dtype) for k, v in state.items()}
    WanVACEPipeline.save_lora_weights(folder, transformer_lora_layers=folded, weight_name=DIFFUSERS_WEIGHT_NAME,
                                      transformer_lora_adapter_metadata=config)
    (folder / "adapter_config.json").write_text(json.dumps(config, indent=2))
    if info:
        (folder / "insertanywhere.json").write_text(json.dumps(info, indent=2, default=json_default))
    return folder / DIFFUSERS_WEIGHT_NAME


def json_default(value):
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if hasattr(value, "value"):  # enums
        return value.value
    return str(value)


def export_lora(transformer, out_dir: str | Path, name: str = "insertion_lora",
                comfy_dtype: Optional[torch.dtype] = torch.bfloat16, info: Optional[dict] = None) -> tuple[Path, Path]:
    """Save the transformer's LoRA in both formats under `out_dir`:
    `<name>_diffusers/pytorch_lora_weights.safetensors` and `<name>_comfyui.safetensors`.
    `info` (e.g. the sampler settings it was trained for) goes into both."""
    config = transformer.peft_config["default"]
    state = peft_state_dict(transformer)
    out_dir = Path(out_dir)
    diffusers_path = save_diffusers_lora(state, out_dir / f"{name}_diffusers", config.to_dict(), info=info)
    comfy_path = save_comfy_lora(state, out_dir / f"{name}_comfyui.safetensors", config.lora_alpha, config.r,
                                 comfy_dtype or torch.float32, info)
    return diffusers_path, comfy_path


def export_checkpoint(checkpoint: str | Path, out_dir: str | Path, name: str = "insertion_lora") -> tuple[Path, Path]:
    """Export a training checkpoint folder (adapter.safetensors + state.json) in both formats."""
    from safetensors.torch import load_file

    checkpoint = Path(checkpoint)
    weights, info = checkpoint / "adapter.safetensors", checkpoint / "state.json"
    if not (weights.is_file() and info.is_file()):
        raise InsertAnywhereError(
            f"'{checkpoint}' is not a training checkpoint (needs adapter.safetensors and state.json).")
    state = load_file(str(weights))
    saved = json.loads(info.read_text())
    peft_config, settings = saved["peft_config"], saved.get("lora_info")
    out_dir = Path(out_dir)
    diffusers_path = save_diffusers_lora(state, out_dir / f"{name}_diffusers", peft_config, info=settings)
    comfy_path = save_comfy_lora(state, out_dir / f"{name}_comfyui.safetensors", peft_config["lora_alpha"],
                                 peft_config["r"], info=settings)
    return diffusers_path, comfy_path
