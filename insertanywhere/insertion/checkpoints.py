"""Reading model files safely, with errors that name the file and the fix.

Only safetensors and `torch.load(weights_only=True)` are used, so a
checkpoint can never run code. Every loader of the generative half goes
through `read_state_dict`, then checks the keys it needs with
`require_keys`, so a missing, corrupt or wrong-architecture file fails with
one clear message instead of a deep library traceback.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Union

import torch

from ..errors import InsertAnywhereError

PathLike = Union[str, Path]
STATE_DICT_SUFFIXES = (".safetensors", ".pt", ".pth", ".ckpt", ".bin")
_WRAPPER_KEYS = ("model", "state_dict", "module", "params_ema")


def check_file(path: PathLike, what: str) -> Path:
    """The path as a Path, or an error naming it when it is not a file."""
    path = Path(path)
    if not path.is_file():
        raise InsertAnywhereError(
            f"{what} file '{path}' does not exist. Put it into the right ComfyUI models folder or fix the path."
        )
    return path


def check_folder(path: PathLike, what: str, required: Iterable[str] = ()) -> Path:
    """The path as a Path, or an error when it is not a folder holding `required` entries."""
    path = Path(path)
    if not path.is_dir():
        raise InsertAnywhereError(f"{what} folder '{path}' does not exist; download the diffusers folder there first.")
    missing = [name for name in required if not (path / name).exists()]
    if missing:
        raise InsertAnywhereError(
            f"'{path}' is not a complete {what} folder: {', '.join(missing)} missing. "
            "Copy the whole diffusers repository folder (with model_index.json and every subfolder)."
        )
    return path


def read_state_dict(path: PathLike, what: str) -> dict[str, torch.Tensor]:
    """All tensors of a .safetensors / .pt / .pth / .ckpt / .bin file, on the CPU.

    Wrapped checkpoints ({"model": {...}}, {"state_dict": {...}}) are unwrapped.
    A ComfyUI tokenizer blob such as `spiece_model` is kept (it is a uint8 tensor).
    """
    path = check_file(path, what)
    suffix = path.suffix.lower()
    if suffix not in STATE_DICT_SUFFIXES:
        raise InsertAnywhereError(
            f"{what} file '{path.name}' has an unsupported extension '{suffix}'; use one of {STATE_DICT_SUFFIXES}."
        )
    try:
        if suffix == ".safetensors":
            from safetensors.torch import load_file

            data = load_file(str(path), device="cpu")
        else:
            data = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # safetensors, zipfile and unpickler errors have no common base
        raise InsertAnywhereError(
            f"Cannot read {what} file '{path.name}' ({type(exc).__name__}: {exc}). The file is corrupt or was "
            "cut off while downloading; download it again (only safetensors or plain tensor .pt files are accepted)."
        ) from exc
    for key in _WRAPPER_KEYS:
        if isinstance(data, dict) and isinstance(data.get(key), dict) and len(data) <= 4:
            data = data[key]
            break
    if not isinstance(data, dict) or not data:
        raise InsertAnywhereError(f"{what} file '{path.name}' holds no tensors; it is not a model checkpoint.")
    tensors = {k: v for k, v in data.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise InsertAnywhereError(f"{what} file '{path.name}' holds no tensors; it is not a model checkpoint.")
    return tensors


def strip_prefix(state_dict: dict[str, torch.Tensor], prefixes: Iterable[str]) -> dict[str, torch.Tensor]:
    """Remove the first of `prefixes` that every key starting with it shares (e.g. 'model.diffusion_model.')."""
    for prefix in prefixes:
        if any(k.startswith(prefix) for k in state_dict):
            return {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in state_dict.items()}
    return state_dict


def dequantize_scaled_fp8(state_dict: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Undo ComfyUI's "scaled fp8" storage: weight * scale_weight, in `dtype`.

    Files such as `umt5_xxl_fp8_e4m3fn_scaled.safetensors` store fp8 weights plus a
    per-tensor `<name>.scale_weight`; plain fp8 files have no scales and are only cast.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if key == "scaled_fp8" or key.endswith((".scale_weight", ".scale_input")):
            continue
        if value.dtype in (torch.float8_e4m3fn, torch.float8_e5m2):
            scale = state_dict.get(key[: -len("weight")] + "scale_weight") if key.endswith("weight") else None
            value = value.to(torch.float32)
            if scale is not None:
                value = value * scale.to(torch.float32)
        out[key] = value.to(dtype) if value.is_floating_point() else value
    return out


def describe(state_dict: dict[str, torch.Tensor]) -> str:
    """A best guess of what a checkpoint is, for error messages."""
    keys = state_dict.keys()

    def has(fragment: str) -> bool:
        return any(fragment in k for k in keys)

    if has("lora_A") or has("lora_down") or has("lora_up"):
        return "a LoRA"
    if has("vace_patch_embedding") or has("vace_blocks"):
        return "a Wan VACE transformer"
    if (has("blocks.0.self_attn.q") or has("blocks.0.attn1.to_q")) and has("patch_embedding"):
        return "a Wan transformer without VACE blocks"
    if has("decoder.middle.0.residual") or has("decoder.mid_block.resnets.0.norm1.gamma"):
        return "a Wan VAE"
    if has("encoder.block.0.layer.0.SelfAttention"):
        return "a T5/UMT5 text encoder"
    if has("image_encoder.trunk") and has("sam_mask_decoder"):
        return "a SAM2 model"
    if has("double_blocks") or has("transformer_blocks.0.attn.add_q_proj") or has("single_transformer_blocks"):
        return "a Flux transformer"
    if has("input_blocks.") or has("down_blocks.0.resnets") or has("model.diffusion_model.input_blocks"):
        return "a Stable Diffusion UNet"
    if has("text_model.encoder.layers"):
        return "a CLIP text encoder"
    return f"an unknown model (first keys: {', '.join(list(keys)[:3])})"


def require_keys(state_dict: dict[str, torch.Tensor], required: Iterable[str], path: PathLike, what: str) -> None:
    """Raise a wrong-architecture error naming the file when any required key is missing."""
    missing = [k for k in required if k not in state_dict]
    if missing:
        raise InsertAnywhereError(
            f"'{os.path.basename(str(path))}' is not {what} checkpoint: it lacks '{missing[0]}' and looks like "
            f"{describe(state_dict)}. Pick {what} file for this input."
        )
