"""Loading Wan2.1 VACE for diffusers' `WanVACEPipeline`, with the memory options 24 GB cards need.

Sources (any mix):
  - a local diffusers folder (`Wan2.1-VACE-1.3B-diffusers`, `...-14B-diffusers`): transformer/, vae/,
    text_encoder/, tokenizer/
  - single files as ComfyUI keeps them: `diffusion_models/wan2.1_vace_*.safetensors` (original or
    `model.diffusion_model.` keys, fp16/bf16/fp8/scaled fp8), `vae/wan_2.1_vae.safetensors`,
    `text_encoders/umt5_xxl_*.safetensors`.
Single files load with `from_single_file(..., config=<local dir>, local_files_only=True)`; the
config is read off the weight shapes (head dim 128 as in every Wan release), so nothing is fetched.

Memory options (`MemoryOptions`): model CPU offload (one model on the GPU at a time), group offload
(blocks streamed to the GPU), layerwise fp8 storage of the transformer weights, VAE tiling.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional, Union

import torch

from ..errors import InsertAnywhereError
from .checkpoints import check_folder, dequantize_scaled_fp8, read_state_dict, require_keys, strip_prefix
from .text_encoder import PromptEncoder, load_text_encoder_file, load_text_encoder_folder
from .wan_keys import original_state_dict

OFFLOAD_MODES = ("none", "model", "group")
DTYPES = {"auto": None, "bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
SCHEDULERS = ("unipc", "euler", "dpm++")
_TRANSFORMER_REQUIRED = ("patch_embedding.weight", "vace_patch_embedding.weight", "blocks.0.self_attn.q.weight",
                         "head.head.weight", "text_embedding.0.weight", "time_embedding.0.weight")
_VAE_REQUIRED = ("encoder.conv1.weight", "decoder.conv1.weight", "conv1.weight", "decoder.middle.0.residual.0.gamma")
_HEAD_DIM = 128


@dataclass(frozen=True)
class MemoryOptions:
    offload: str = "none"          # none | model | group
    fp8_layerwise: bool = False    # store transformer weights as float8_e4m3fn, compute in the model dtype
    vae_tiling: bool = False
    vae_tile: int = 256            # tile size in pixels when tiling (stride = 3/4 of it)
    group_blocks: int = 1          # blocks per group for group offload (block level)


@dataclass(frozen=True)
class LoRASpec:
    name: str
    strength: float
    weights: dict = field(repr=False, hash=False, compare=False)  # diffusers/PEFT keys -> tensors


@dataclass
class WanVACEModel:
    """A ready WanVACEPipeline (without text encoder) + prompt encoder + stacked LoRAs."""

    pipe: object
    prompts: PromptEncoder
    device: torch.device
    dtype: torch.dtype
    memory: MemoryOptions
    description: str
    loras: tuple = ()

    def with_lora(self, spec: LoRASpec) -> "WanVACEModel":
        """A new handle sharing the pipeline with one more LoRA (the original is left as it was)."""
        return replace(self, loras=self.loras + (spec,))

    @property
    def transformer(self):
        return self.pipe.transformer


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name not in DTYPES:
        raise InsertAnywhereError(f"Unknown dtype '{name}'; use one of {list(DTYPES)}.")
    if DTYPES[name] is not None:
        return DTYPES[name]
    return torch.bfloat16 if device.type == "cuda" else torch.float32


# --------------------------------------------------------------------------------------------- transformer


def transformer_config(sd: dict) -> dict:
    """WanVACETransformer3DModel config from original-layout weight shapes."""
    dim, in_channels, *patch = sd["patch_embedding.weight"].shape
    if dim % _HEAD_DIM:
        raise InsertAnywhereError(f"Transformer width {dim} is not a multiple of {_HEAD_DIM}; not a Wan model.")
    layers = len({k.split(".")[1] for k in sd if k.startswith("blocks.")})
    vace = len({k.split(".")[1] for k in sd if k.startswith("vace_blocks.")})
    if vace == 0 or layers % vace:
        raise InsertAnywhereError(
            f"{vace} VACE blocks do not divide {layers} transformer blocks; not a Wan VACE model.")
    volume = patch[0] * patch[1] * patch[2]
    return {
        "_class_name": "WanVACETransformer3DModel",
        "patch_size": list(patch),
        "num_attention_heads": dim // _HEAD_DIM,
        "attention_head_dim": _HEAD_DIM,
        "in_channels": int(in_channels),
        "out_channels": int(sd["head.head.weight"].shape[0] // volume),
        "text_dim": int(sd["text_embedding.0.weight"].shape[1]),
        "freq_dim": int(sd["time_embedding.0.weight"].shape[1]),
        "ffn_dim": int(sd["blocks.0.ffn.0.weight"].shape[0]),
        "num_layers": layers,
        "cross_attn_norm": "blocks.0.norm3.weight" in sd,
        "qk_norm": "rms_norm_across_heads" if "blocks.0.self_attn.norm_q.weight" in sd else None,
        "eps": 1e-6,
        "rope_max_seq_len": 1024,
        "vace_layers": list(range(0, layers, layers // vace)),
        "vace_in_channels": int(sd["vace_patch_embedding.weight"].shape[1]),
    }


def _from_single_file(cls, sd: dict, config: dict, dtype: torch.dtype, path: Path, what: str):
    """`cls.from_single_file` with the config written to a local folder; no download is possible."""
    with tempfile.TemporaryDirectory(prefix="ia_config_") as tmp:
        Path(tmp, "config.json").write_text(json.dumps(config))
        try:
            model = cls.from_single_file(sd, config=tmp, local_files_only=True, torch_dtype=dtype)
        except InsertAnywhereError:
            raise
        except Exception as exc:
            raise InsertAnywhereError(f"Cannot build the {what} from '{path.name}': {exc}") from exc
    meta = [name for name, p in model.named_parameters() if p.device.type == "meta"]
    if meta:
        raise InsertAnywhereError(
            f"'{path.name}' lacks {len(meta)} {what} weights (e.g. '{meta[0]}'); the file is incomplete or for a "
            "different model."
        )
    return model.eval()


def load_transformer_file(path: Union[str, Path], dtype: torch.dtype):
    """WanVACETransformer3DModel from one .safetensors (original, ComfyUI or diffusers names)."""
    from diffusers import WanVACETransformer3DModel

    path = Path(path)
    sd = read_state_dict(path, "Wan VACE transformer")
    sd = strip_prefix(sd, ("model.diffusion_model.", "diffusion_model."))
    if "condition_embedder.time_embedder.linear_1.weight" in sd:  # diffusers names
        sd = original_state_dict(sd)
    require_keys(sd, _TRANSFORMER_REQUIRED, path, "a Wan VACE transformer")
    sd = dequantize_scaled_fp8(sd, dtype)
    return _from_single_file(WanVACETransformer3DModel, sd, transformer_config(sd), dtype, path,
                             "Wan VACE transformer")


def load_transformer_folder(folder: Path, dtype: torch.dtype):
    from diffusers import WanVACETransformer3DModel

    check_folder(folder / "transformer", "Wan VACE transformer", ["config.json"])
    config = json.loads((folder / "transformer" / "config.json").read_text())
    if config.get("_class_name") != "WanVACETransformer3DModel":
        raise InsertAnywhereError(
            f"'{folder.name}' holds a {config.get('_class_name')}, not a WanVACETransformer3DModel; use a Wan2.1 "
            "VACE diffusers folder (e.g. Wan2.1-VACE-1.3B-diffusers)."
        )
    try:
        return WanVACETransformer3DModel.from_pretrained(str(folder), subfolder="transformer", torch_dtype=dtype,
                                                         local_files_only=True).eval()
    except Exception as exc:
        raise InsertAnywhereError(f"Cannot load the transformer of '{folder}': {exc}") from exc


# --------------------------------------------------------------------------------------------- VAE


def vae_config(sd: dict) -> dict:
    z_dim = int(sd["conv1.weight"].shape[0]) // 2
    if z_dim != 16:
        raise InsertAnywhereError(
            f"This VAE has {z_dim} latent channels; Wan2.1 VACE needs the Wan 2.1 VAE (16 channels, "
            "wan_2.1_vae.safetensors), not the Wan 2.2 one."
        )
    return {"_class_name": "AutoencoderKLWan", "base_dim": int(sd["encoder.conv1.weight"].shape[0]), "z_dim": z_dim,
            "dim_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_scales": [],
            "temperal_downsample": [False, True, True], "dropout": 0.0}


def load_vae_file(path: Union[str, Path], dtype: torch.dtype = torch.float32):
    from diffusers import AutoencoderKLWan

    path = Path(path)
    sd = read_state_dict(path, "Wan VAE")
    sd = strip_prefix(sd, ("first_stage_model.", "vae."))
    require_keys(sd, _VAE_REQUIRED, path, "a Wan 2.1 VAE")
    sd = dequantize_scaled_fp8(sd, dtype)
    return _from_single_file(AutoencoderKLWan, sd, vae_config(sd), dtype, path, "Wan VAE")


def load_vae_folder(folder: Path, dtype: torch.dtype = torch.float32):
    from diffusers import AutoencoderKLWan

    check_folder(folder / "vae", "Wan VAE", ["config.json"])
    try:
        return AutoencoderKLWan.from_pretrained(str(folder), subfolder="vae", torch_dtype=dtype,
                                                local_files_only=True).eval()
    except Exception as exc:
        raise InsertAnywhereError(f"Cannot load the VAE of '{folder}': {exc}") from exc


# --------------------------------------------------------------------------------------------- assembly


def make_scheduler(name: str, shift: float):
    """Flow-matching scheduler for Wan with the given shift (3 for 480p, 5 for 720p)."""
    from diffusers import DPMSolverMultistepScheduler, FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler

    if name == "unipc":
        return UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=shift,
                                       num_train_timesteps=1000)
    if name == "euler":
        return FlowMatchEulerDiscreteScheduler(shift=shift, num_train_timesteps=1000)
    if name == "dpm++":
        return DPMSolverMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=shift,
                                           algorithm_type="dpmsolver++", solver_order=2, num_train_timesteps=1000)
    raise InsertAnywhereError(f"Unknown scheduler '{name}'; use one of {SCHEDULERS}.")


def apply_memory_options(pipe, memory: MemoryOptions, device: torch.device, dtype: torch.dtype) -> None:
    """Place the pipeline on `device` with the chosen offload / fp8 / tiling settings."""
    if memory.offload not in OFFLOAD_MODES:
        raise InsertAnywhereError(f"Unknown offload mode '{memory.offload}'; use one of {OFFLOAD_MODES}.")
    if memory.fp8_layerwise:
        pipe.transformer.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=dtype)
    if memory.vae_tiling:
        tile, stride = memory.vae_tile, memory.vae_tile * 3 // 4
        pipe.vae.enable_tiling(tile_sample_min_height=tile, tile_sample_min_width=tile,
                               tile_sample_stride_height=stride, tile_sample_stride_width=stride)
    if memory.offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif memory.offload == "group":
        stream = device.type == "cuda"
        pipe.transformer.enable_group_offload(onload_device=device, offload_device=torch.device("cpu"),
                                              offload_type="block_level", num_blocks_per_group=memory.group_blocks,
                                              use_stream=stream)
        pipe.vae.enable_group_offload(onload_device=device, offload_device=torch.device("cpu"),
                                      offload_type="leaf_level", use_stream=stream)
    else:
        pipe.to(device)


def load_wan_vace(*, folder: Optional[Union[str, Path]] = None, transformer_file: Optional[Union[str, Path]] = None,
                  vae_file: Optional[Union[str, Path]] = None, text_encoder_file: Optional[Union[str, Path]] = None,
                  device: Union[str, torch.device] = "cpu", dtype: str = "auto",
                  memory: MemoryOptions = MemoryOptions()) -> WanVACEModel:
    """Assemble Wan VACE from a diffusers folder and/or single files (a file wins over the folder's part).

    The VAE runs in float32 (as Wan recommends); transformer and text encoder in `dtype`
    (auto: bfloat16 on CUDA, float32 on CPU).
    """
    from diffusers import WanVACEPipeline

    device = torch.device(device)
    torch_dtype = resolve_dtype(dtype, device)
    folder = Path(folder) if folder else None
    if folder is not None:
        check_folder(folder, "Wan VACE diffusers", ["model_index.json"])
    parts = {"transformer": transformer_file, "vae": vae_file, "text encoder": text_encoder_file}
    missing = [name for name, value in parts.items() if value is None and folder is None]
    if missing:
        raise InsertAnywhereError(
            f"No source for the {', '.join(missing)}: pick a diffusers folder or the single file(s) for it."
        )
    transformer = (load_transformer_file(transformer_file, torch_dtype) if transformer_file
                   else load_transformer_folder(folder, torch_dtype))
    vae = load_vae_file(vae_file) if vae_file else load_vae_folder(folder)
    prompts = (load_text_encoder_file(text_encoder_file, torch_dtype, folder) if text_encoder_file
               else load_text_encoder_folder(folder, torch_dtype))
    if transformer.config.in_channels != vae.config.z_dim:
        raise InsertAnywhereError(
            f"The transformer expects {transformer.config.in_channels} latent channels but the VAE makes "
            f"{vae.config.z_dim}; use the VAE that belongs to this Wan model."
        )
    text_dim = prompts.model.config.d_model
    if transformer.config.text_dim != text_dim:
        raise InsertAnywhereError(
            f"The transformer expects {transformer.config.text_dim}-dim text features but the text encoder makes "
            f"{text_dim}; use the umt5-xxl encoder that belongs to Wan."
        )
    pipe = WanVACEPipeline(tokenizer=None, text_encoder=None, vae=vae, scheduler=make_scheduler("unipc", 3.0),
                           transformer=transformer)
    pipe.set_progress_bar_config(disable=True)
    apply_memory_options(pipe, memory, device, torch_dtype)
    sources = [str(p) for p in (folder, transformer_file, vae_file, text_encoder_file) if p]
    return WanVACEModel(pipe, prompts, device, torch_dtype, memory, " + ".join(Path(s).name for s in sources))
