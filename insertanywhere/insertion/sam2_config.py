"""SAM2 architecture configs read as data, never as code.

A SAM2 YAML in the sam2 package's format names a Python class at every node (`_target_`), and
`hydra.utils.instantiate` would import and call whatever a file names there (`os.makedirs`,
`builtins.exec`, or Hiera's `weights_path`, which `torch.load`s a pickle). So no `_target_`, key or
string from a file is ever used to choose code. The architecture's structure is the fixed schema
below: which class sits at each node and which plain settings it takes. A file (one of the sam2
package's own configs, or a user's `.yaml` beside a checkpoint for a custom size) may only give
values for those settings: ints, floats, bools, short lists of numbers, `null` where the class
allows it, and a few words from fixed lists (`activation: relu`). Everything else is refused with
an `InsertAnywhereError` naming the key: a `_target_` other than the schema's class at that node,
an unknown key (`_args_`, `_partial_`, `weights_path`, ...), an interpolation or resolver
(`${...}`, `${oc.env:...}`), a YAML anchor or alias, or a file that is not small plain YAML.

`load_config_file(path)` / `parse_sam2_config(data)` check a config and return a `SAM2Config` (plain
values, no `_target_`); `build_sam2(config)` constructs the modules by calling the schema's classes directly (no Hydra).
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Union

from ..errors import InsertAnywhereError

MAX_CONFIG_BYTES = 64 * 1024   # the packaged configs are ~4 KB
MAX_LIST = 16                  # longest list a SAM2 setting takes (Hiera stages, strides, ...)
MAX_ABS = 1_000_000            # no SAM2 setting is larger (theta 10000, image_size 1024, dims <= 2048)
FIX = ("Classes and code are never taken from a config file: a SAM2 config may only change the numbers "
       "of the packaged architecture. Pick config 'auto' or a packaged config (e.g. sam2.1/sam2.1_hiera_l.yaml), "
       "or fix that key in the .yaml beside the checkpoint (compare with the sam2 package's configs).")

# value kinds
INT, NUM, BOOL, INTS = "an int", "a number", "a bool (true/false)", "a list of ints"
OPT_NUM, OPT_INT, OPT_INTS = "a number or null", "an int or null", "a list of ints or null"


@dataclass(frozen=True)
class Part:
    """One node of the architecture: its class (fixed here) and what a file may set there."""

    target: str                                   # dotted class path, e.g. sam2.modeling.sam2_base.SAM2Base
    values: dict = field(default_factory=dict)    # setting -> kind (INT, ...) or a tuple of allowed words
    parts: dict = field(default_factory=dict)     # sub-module argument -> Part (required)


_POSITION = Part("sam2.modeling.position_encoding.PositionEmbeddingSine", {
    "num_pos_feats": INT, "temperature": NUM, "normalize": BOOL, "scale": OPT_NUM, "warmup_cache": BOOL,
    "image_size": INT, "strides": INTS})
_ROPE = Part("sam2.modeling.sam.transformer.RoPEAttention", {
    "rope_theta": NUM, "rope_k_repeat": BOOL, "feat_sizes": INTS, "embedding_dim": INT, "num_heads": INT,
    "downsample_rate": INT, "dropout": NUM, "kv_in_dim": OPT_INT})

SCHEMA = Part(
    "sam2.modeling.sam2_base.SAM2Base",
    {
        "num_maskmem": INT, "image_size": INT, "backbone_stride": INT, "sigmoid_scale_for_mem_enc": NUM,
        "sigmoid_bias_for_mem_enc": NUM, "binarize_mask_from_pts_for_mem_enc": BOOL,
        "use_mask_input_as_output_without_sam": BOOL, "max_cond_frames_in_attn": INT,
        "directly_add_no_mem_embed": BOOL, "use_high_res_features_in_sam": BOOL, "multimask_output_in_sam": BOOL,
        "multimask_min_pt_num": INT, "multimask_max_pt_num": INT, "multimask_output_for_tracking": BOOL,
        "use_multimask_token_for_obj_ptr": BOOL, "iou_prediction_use_sigmoid": BOOL,
        "memory_temporal_stride_for_eval": INT, "non_overlap_masks_for_mem_enc": BOOL,
        "use_obj_ptrs_in_encoder": BOOL, "max_obj_ptrs_in_encoder": INT, "add_tpos_enc_to_obj_ptrs": BOOL,
        "proj_tpos_enc_in_obj_ptrs": BOOL, "use_signed_tpos_enc_to_obj_ptrs": BOOL,
        "only_obj_ptrs_in_the_past_for_eval": BOOL, "pred_obj_scores": BOOL, "pred_obj_scores_mlp": BOOL,
        "fixed_no_obj_ptr": BOOL, "soft_no_obj_ptr": BOOL, "use_mlp_for_obj_ptr_proj": BOOL,
        "no_obj_embed_spatial": BOOL, "compile_image_encoder": BOOL,
    },
    {
        "image_encoder": Part("sam2.modeling.backbones.image_encoder.ImageEncoder", {"scalp": INT}, {
            "trunk": Part("sam2.modeling.backbones.hieradet.Hiera", {  # never weights_path: it torch.loads a pickle
                "embed_dim": INT, "num_heads": INT, "drop_path_rate": NUM, "q_pool": INT, "q_stride": INTS,
                "stages": INTS, "dim_mul": NUM, "head_mul": NUM, "window_pos_embed_bkg_spatial_size": INTS,
                "window_spec": INTS, "global_att_blocks": INTS, "return_interm_layers": BOOL}),
            "neck": Part("sam2.modeling.backbones.image_encoder.FpnNeck", {
                "d_model": INT, "backbone_channel_list": INTS, "kernel_size": INT, "stride": INT, "padding": INT,
                "fpn_interp_model": ("nearest", "bilinear", "bicubic"), "fuse_type": ("sum", "avg"),
                "fpn_top_down_levels": OPT_INTS}, {"position_encoding": _POSITION}),
        }),
        "memory_attention": Part("sam2.modeling.memory_attention.MemoryAttention", {
            "d_model": INT, "pos_enc_at_input": BOOL, "num_layers": INT, "batch_first": BOOL}, {
            "layer": Part("sam2.modeling.memory_attention.MemoryAttentionLayer", {
                "activation": ("relu", "gelu", "glu"), "d_model": INT, "dim_feedforward": INT, "dropout": NUM,
                "pos_enc_at_attn": BOOL, "pos_enc_at_cross_attn_keys": BOOL,
                "pos_enc_at_cross_attn_queries": BOOL}, {"self_attention": _ROPE, "cross_attention": _ROPE}),
        }),
        "memory_encoder": Part("sam2.modeling.memory_encoder.MemoryEncoder", {"out_dim": INT, "in_dim": INT}, {
            "position_encoding": _POSITION,
            "mask_downsampler": Part("sam2.modeling.memory_encoder.MaskDownSampler", {  # activation: a class, no
                "embed_dim": INT, "kernel_size": INT, "stride": INT, "padding": INT, "total_stride": INT}),
            "fuser": Part("sam2.modeling.memory_encoder.Fuser", {
                "num_layers": INT, "dim": OPT_INT, "input_projection": BOOL}, {
                "layer": Part("sam2.modeling.memory_encoder.CXBlock", {
                    "dim": INT, "kernel_size": INT, "padding": INT, "drop_path": NUM,
                    "layer_scale_init_value": NUM, "use_dwconv": BOOL}),
            }),
        }),
    },
)
VIDEO_PREDICTOR = "sam2.sam2_video_predictor.SAM2VideoPredictor"  # SAM2Base plus the video settings below
VIDEO_SETTINGS = {"fill_hole_area", "non_overlap_masks", "clear_non_cond_mem_around_input",
                  "add_all_frames_to_correct_as_cond", "sam_mask_decoder_extra_args"}


# --------------------------------------------------------------------------------------------- reading


def _refuse(source: str, key: str, problem: str) -> InsertAnywhereError:
    return InsertAnywhereError(f"SAM2 config '{source}': {problem} at '{key}'. {FIX}")


def load_config_file(path: Union[str, Path]) -> "SAM2Config":
    """Read a SAM2 YAML as plain data (nothing resolved, nothing instantiated) and check it.

    Returns the checked tree of `parse_sam2_config`."""
    import yaml
    from omegaconf import OmegaConf

    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise InsertAnywhereError(f"SAM2 config '{path}' is {size} bytes; a SAM2 config is a few KB "
                                      f"(at most {MAX_CONFIG_BYTES}). {FIX}")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InsertAnywhereError(f"SAM2 config '{path}' cannot be read ({exc}).") from exc
    try:  # anchors and aliases can multiply a small file into a huge tree: not used by SAM2 configs
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise InsertAnywhereError(f"SAM2 config '{path}' uses YAML anchors or aliases (& / *); write the "
                                          f"values out. {FIX}")
        # OmegaConf's safe loader (floats such as 1e-6); to_container(resolve=False) leaves ${...} as text
        data = OmegaConf.to_container(OmegaConf.create(text), resolve=False)
    except InsertAnywhereError:
        raise
    except Exception as exc:
        raise InsertAnywhereError(f"SAM2 config '{path}' is not valid YAML ({exc}).") from exc
    return parse_sam2_config(data, str(path))


@dataclass(frozen=True)
class SAM2Config:
    """A config that passed the schema: `model` holds only allowed plain values and sub-trees."""

    model: dict
    source: str


def parse_sam2_config(data: Any, source: str = "<config>") -> SAM2Config:
    """Check a loaded SAM2 config ({"model": {...}} as plain data or an OmegaConf DictConfig) against the
    schema."""
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(data, DictConfig):
            data = OmegaConf.to_container(data, resolve=False)
    except ImportError:  # pragma: no cover - omegaconf comes with the sam2 requirements
        pass
    if not isinstance(data, Mapping):
        raise InsertAnywhereError(f"SAM2 config '{source}' is not a YAML mapping with a 'model' section. {FIX}")
    extra = [k for k in data if k != "model"]
    if extra:
        raise _refuse(source, str(extra[0]), "unknown top-level key (only 'model' is read)")
    if "model" not in data:
        raise InsertAnywhereError(f"SAM2 config '{source}' has no 'model' section; it is not a SAM2 config. {FIX}")
    return SAM2Config(_parse_part(data["model"], SCHEMA, "model", source), source)


def _parse_part(node: Any, part: Part, key: str, source: str) -> dict:
    if not isinstance(node, Mapping):
        raise _refuse(source, key, f"expected a section for {part.target.rsplit('.', 1)[1]}, got {_show(node)}")
    out: dict = {}
    for name, value in node.items():
        path = f"{key}.{name}"
        if not isinstance(name, str):
            raise _refuse(source, f"{key}.{name!r}", "a key that is not a word")
        if name == "_target_":
            if value != part.target:
                raise _refuse(source, path, f"_target_ {_show(value)} is not accepted (only {part.target} "
                                            "belongs there)")
            continue
        if name in part.parts:
            out[name] = _parse_part(value, part.parts[name], path, source)
        elif name in part.values:
            out[name] = _parse_value(value, part.values[name], path, source)
        else:
            raise _refuse(source, path, f"unknown key '{name}' (not a setting of "
                                        f"{part.target.rsplit('.', 1)[1]} that a config may change)")
    missing = [name for name in part.parts if name not in out]
    if missing:
        raise _refuse(source, f"{key}.{missing[0]}", "missing section")
    return out


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _number(value: Any, integer: bool) -> bool:
    if isinstance(value, bool):
        return False
    if integer:
        return isinstance(value, int) and abs(value) <= MAX_ABS
    return isinstance(value, (int, float)) and math.isfinite(value) and abs(value) <= MAX_ABS


def _parse_value(value: Any, kind, key: str, source: str):
    if isinstance(value, str) and "${" in value:
        raise _refuse(source, key, f"interpolation or resolver {_show(value)} is not accepted; write the value")
    if isinstance(kind, tuple):
        if value in kind and isinstance(value, str):
            return value
        raise _refuse(source, key, f"{_show(value)} is not one of {list(kind)}")
    if value is None and kind in (OPT_NUM, OPT_INT, OPT_INTS):
        return None
    if kind == BOOL and isinstance(value, bool):
        return value
    if kind in (INT, OPT_INT) and _number(value, True):
        return int(value)
    if kind in (NUM, OPT_NUM) and _number(value, False):
        return value
    if kind in (INTS, OPT_INTS) and isinstance(value, (list, tuple)) and len(value) <= MAX_LIST \
            and all(_number(v, True) for v in value):
        return [int(v) for v in value]
    raise _refuse(source, key, f"{_show(value)} is not {kind}")


# --------------------------------------------------------------------------------------------- building


def _class(target: str):
    module, name = target.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


def _build(tree: dict, part: Part, target: Optional[str] = None, extra: Optional[dict] = None):
    kwargs = {name: _build(tree[name], sub) for name, sub in part.parts.items()}
    kwargs.update({name: value for name, value in tree.items() if name in part.values})
    kwargs.update(extra or {})
    return _class(target or part.target)(**kwargs)


def build_sam2(config: Union["SAM2Config", Mapping], *, video: bool = True, overrides: Optional[dict] = None):
    """Construct SAM2 from a checked config (`SAM2Config`; raw data is checked here first) by calling the
    schema's classes. video=True builds SAM2VideoPredictor; `overrides` are the caller's own settings
    (image_size, the video post-processing), applied over the file's."""
    if not isinstance(config, SAM2Config):
        config = parse_sam2_config(config)
    extra = dict(overrides or {})
    unknown = [k for k in extra if k not in SCHEMA.values and not (video and k in VIDEO_SETTINGS)]
    if unknown:
        raise ValueError(f"not a SAM2 setting: {unknown}")
    return _build(config.model, SCHEMA, VIDEO_PREDICTOR if video else None, extra)
