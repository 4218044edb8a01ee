"""Tiny random-initialised models, built offline from configs, in the real file layouts.

No weights can be downloaded in CI, so every model loader of the pack is tested
against these: the same loading code then reads full checkpoints when users
have them. Each builder writes files exactly where and how the real model
would be (a diffusers folder, a ComfyUI single file, a SAM2 .pt + .yaml, a
LoRA in each key format) and returns the path. Builders are deterministic
(`seed`) and take well under a second on a CPU.

Used by tests/core/insertion, the LoRA training tests (issue 6) and the e2e
harness (`install_tiny_models` fills a temporary ComfyUI models folder).

| builder                      | writes                                                         |
| build_wan_vace_folder        | diffusers folder: transformer, vae, text_encoder, tokenizer, scheduler |
| write_wan_single_files       | diffusion_models / vae / text_encoders single files (ComfyUI layout)   |
| write_wan_lora               | one LoRA in "diffusers" | "comfy" | "musubi" key format                 |
| write_sam2                   | sam2/<name>.pt ({"model": state_dict}) + <name>.yaml config            |
| build_flux_kontext_folder    | diffusers folder for FluxKontextInpaintPipeline                        |
| install_tiny_models          | all of the above in a ComfyUI models/ tree, under the workflows' names |
| write_full_size_umt5_fp8     | not tiny: a random UMT5-XXL (5.7 GB), the one text encoder ComfyUI's    |
|                              | CLIPLoader takes for Wan; only the native template's e2e run needs it  |

Sizes: Wan transformer dim 128 (1 head of 128, as every Wan release has head
dim 128), 2 layers, VACE on layer 0, text dim 4096 and frequency dim 256 (the
values ComfyUI's Wan loader assumes, so the same file also runs in UNETLoader);
Wan VAE base_dim 4 with the real z_dim 16; UMT5 d_model 4096 but 2 layers with
4 heads of 8 (3M parameters); SAM2 Hiera embed 8, image_size 128.
"""

from __future__ import annotations

import io
from pathlib import Path

import torch

TEXT_DIM = 4096  # as umt5-xxl: ComfyUI's Wan model hard-codes it, so the tiny transformer also loads natively
WAN_TRANSFORMER_CONFIG = dict(
    patch_size=(1, 2, 2), num_attention_heads=1, attention_head_dim=128, in_channels=16, out_channels=16,
    text_dim=TEXT_DIM, freq_dim=256, ffn_dim=128, num_layers=2, cross_attn_norm=True,
    qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024, vace_layers=[0], vace_in_channels=96,
)
WAN_VAE_CONFIG = dict(base_dim=4, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
                      temperal_downsample=[False, True, True], dropout=0.0)
UMT5_CONFIG = dict(d_model=TEXT_DIM, d_kv=8, d_ff=64, num_layers=2, num_heads=4, relative_attention_num_buckets=8,
                   relative_attention_max_distance=128, feed_forward_proj="gated-gelu", dropout_rate=0.0,
                   pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
_CORPUS = [
    "a red mug on a wooden table", "a small blue bird on the ground", "the camera moves to the left",
    "a cat sits next to the lamp", "an object is inserted into the video", "bright tones, overexposed, blurred",
    "worst quality, low quality, static", "a green bottle stands on the floor", "shadows fall on the desk",
]


def _seeded(seed: int):
    torch.manual_seed(seed)


def _randomize(module: torch.nn.Module, seed: int, std: float = 0.05) -> torch.nn.Module:
    """Give every parameter small random values (zero-initialised layers would hide bugs)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in module.named_parameters():
            if name.endswith(("gamma", "norm.weight", "norm1.weight", "norm2.weight", "norm3.weight",
                              "norm_q.weight", "norm_k.weight", "layer_norm.weight", "final_layer_norm.weight")):
                param.copy_(1.0 + 0.1 * torch.randn(param.shape, generator=gen))
            else:
                param.copy_(std * torch.randn(param.shape, generator=gen))
    return module


# ----------------------------------------------------------------------------------------------- text encoder


def spiece_model_bytes(vocab_size: int = 96) -> bytes:
    """A SentencePiece unigram model trained on a tiny corpus: pad=0, eos=1, unk=2 like UMT5."""
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(_CORPUS * 4), model_writer=model, vocab_size=vocab_size, model_type="unigram",
        pad_id=0, eos_id=1, unk_id=2, bos_id=-1, hard_vocab_limit=False, minloglevel=2,
        character_coverage=1.0, num_threads=1,
    )
    return model.getvalue()


def build_umt5_tokenizer(spm_bytes: bytes):
    """The same unigram vocabulary as a transformers fast tokenizer (what a diffusers folder holds)."""
    import sentencepiece as spm
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    proc = spm.SentencePieceProcessor(model_proto=spm_bytes)
    vocab = [(proc.id_to_piece(i), proc.get_score(i)) for i in range(proc.get_piece_size())]
    tok = Tokenizer(models.Unigram(vocab, unk_id=2))
    tok.normalizer = normalizers.Sequence([normalizers.Replace(" {2,}", " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                   model_max_length=512)


def build_umt5(vocab_size: int, seed: int = 0):
    from transformers import UMT5Config, UMT5EncoderModel

    _seeded(seed)
    model = UMT5EncoderModel(UMT5Config(vocab_size=vocab_size, **UMT5_CONFIG)).eval()
    return _randomize(model, seed, std=0.2)


# ----------------------------------------------------------------------------------------------- Wan


def build_wan_transformer(seed: int = 0):
    from diffusers import WanVACETransformer3DModel

    _seeded(seed)
    return _randomize(WanVACETransformer3DModel(**WAN_TRANSFORMER_CONFIG).eval(), seed + 1)


def build_wan_vae(seed: int = 0):
    from diffusers import AutoencoderKLWan

    _seeded(seed)
    return _randomize(AutoencoderKLWan(**WAN_VAE_CONFIG).eval(), seed + 2, std=0.1)


def localize_vae(vae):
    """Zero the residual branches and the attention of a (tiny) Wan VAE, so its receptive field fits in
    a tile overlap; tiled and untiled coding then agree, as they do for the trained VAE."""
    with torch.no_grad():
        for name, param in vae.named_parameters():
            attention = "attentions" in name and ".proj." in name
            residual = ".conv2." in name and ("resnets" in name or "down_blocks" in name)
            if attention or residual:
                param.zero_()
    return vae


def build_wan_vace_folder(root: Path, seed: int = 0) -> Path:
    """A diffusers WanVACEPipeline folder (model_index.json + components) at `root`."""
    from diffusers import UniPCMultistepScheduler, WanVACEPipeline

    spm_bytes = spiece_model_bytes()
    tokenizer = build_umt5_tokenizer(spm_bytes)
    scheduler = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0,
                                        num_train_timesteps=1000)
    pipe = WanVACEPipeline(tokenizer=tokenizer, text_encoder=build_umt5(len(tokenizer), seed), vae=build_wan_vae(seed),
                           scheduler=scheduler, transformer=build_wan_transformer(seed))
    root = Path(root)
    pipe.save_pretrained(root, safe_serialization=True)
    return root


def wan_vae_original_state_dict(sd: dict) -> dict:
    """diffusers AutoencoderKLWan weights under the original Wan names (ComfyUI `vae` files)."""
    res = {"norm1": "residual.0", "conv1": "residual.2", "norm2": "residual.3", "conv2": "residual.6",
           "conv_shortcut": "shortcut"}

    def resnet(rest: str) -> str:
        first, _, tail = rest.partition(".")
        return f"{res.get(first, first)}.{tail}"

    out = {}
    for key, value in sd.items():
        parts = key.split(".")
        side = parts[0]
        if key.startswith(("quant_conv.", "post_quant_conv.")):
            new = ("conv1." if key.startswith("quant_conv.") else "conv2.") + parts[-1]
        elif parts[1] == "conv_in":
            new = f"{side}.conv1.{parts[-1]}"
        elif parts[1] == "norm_out":
            new = f"{side}.head.0.{parts[-1]}"
        elif parts[1] == "conv_out":
            new = f"{side}.head.2.{parts[-1]}"
        elif parts[1] == "mid_block":
            kind, index, rest = parts[2], int(parts[3]), ".".join(parts[4:])
            new = f"{side}.middle.1.{rest}" if kind == "attentions" else f"{side}.middle.{2 * index}.{resnet(rest)}"
        elif side == "encoder" and parts[1] == "down_blocks":
            new = f"encoder.downsamples.{parts[2]}.{resnet('.'.join(parts[3:]))}"
        elif side == "decoder" and parts[1] == "up_blocks":
            block = int(parts[2])
            if parts[3] == "upsamplers":
                new = f"decoder.upsamples.{4 * block + 3}.{'.'.join(parts[5:])}"
            else:
                new = f"decoder.upsamples.{4 * block + int(parts[4])}.{resnet('.'.join(parts[5:]))}"
        else:
            raise KeyError(f"unexpected Wan VAE key {key}")
        out[new] = value
    return out


def full_width_wan_vae_state_dict(seed: int = 0, dtype: torch.dtype = torch.float16) -> dict:
    """A random Wan 2.1 VAE at the real width (96, 127M parameters), original key names: ComfyUI's
    VAELoader builds that width whatever the file holds."""
    from diffusers import AutoencoderKLWan

    _seeded(seed)
    vae = AutoencoderKLWan(base_dim=96, z_dim=16)
    return {k: v.to(dtype).contiguous() for k, v in wan_vae_original_state_dict(vae.state_dict()).items()}


def write_wan_single_files(models_dir: Path, folder: Path, stem: str = "tiny_wan_vace") -> dict[str, Path]:
    """ComfyUI-style single files made from a diffusers folder built by `build_wan_vace_folder`.

    diffusion_models/<stem>.safetensors  transformer, original Wan names (as Comfy-Org repackages)
    vae/<stem>_vae.safetensors           Wan VAE, original names
    text_encoders/<stem>_umt5.safetensors UMT5 encoder + `spiece_model` tokenizer blob (ComfyUI layout)
    """
    from diffusers import AutoencoderKLWan, WanVACETransformer3DModel
    from safetensors.torch import save_file
    from transformers import UMT5EncoderModel

    from insertanywhere.insertion.wan_keys import original_state_dict

    models_dir, folder = Path(models_dir), Path(folder)
    paths = {
        "transformer": models_dir / "diffusion_models" / f"{stem}.safetensors",
        "vae": models_dir / "vae" / f"{stem}_vae.safetensors",
        "text_encoder": models_dir / "text_encoders" / f"{stem}_umt5.safetensors",
    }
    for path in paths.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    transformer = WanVACETransformer3DModel.from_pretrained(folder, subfolder="transformer")
    save_file({k: v.contiguous() for k, v in original_state_dict(transformer.state_dict()).items()},
              str(paths["transformer"]))
    vae = AutoencoderKLWan.from_pretrained(folder, subfolder="vae")
    save_file({k: v.contiguous() for k, v in wan_vae_original_state_dict(vae.state_dict()).items()}, str(paths["vae"]))
    encoder = UMT5EncoderModel.from_pretrained(folder, subfolder="text_encoder")
    sd = {k: v.contiguous() for k, v in encoder.state_dict().items() if k != "encoder.embed_tokens.weight"}
    sd["spiece_model"] = torch.frombuffer(bytearray(spiece_model_bytes()), dtype=torch.uint8)
    save_file(sd, str(paths["text_encoder"]))
    return paths


# UMT5-XXL as published (google/umt5-xxl): ComfyUI's CLIPLoader (type wan) builds exactly this encoder.
UMT5_XXL_CONFIG = dict(d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64,
                       relative_attention_num_buckets=32, vocab_size=256384, feed_forward_proj="gated-gelu")
_FP8_POOL = 1 << 24  # random fp8 values drawn once and tiled at random offsets (16 MiB)


def write_full_size_umt5_fp8(path: Path, seed: int = 0) -> Path:
    """A random UMT5-XXL encoder (5.7B parameters, float8_e4m3fn, 5.7 GB) plus the tiny `spiece_model`
    tokenizer, in ComfyUI's text_encoders layout: the only text encoder ComfyUI's CLIPLoader accepts for
    Wan, whatever the file holds. Streamed to disk (no 5.7 GB in memory); about 20 s."""
    import json
    import struct

    import numpy as np
    from transformers import UMT5Config, UMT5EncoderModel

    with torch.device("meta"):
        encoder = UMT5EncoderModel(UMT5Config(**UMT5_XXL_CONFIG))
    shapes = {k: tuple(v.shape) for k, v in encoder.state_dict().items() if k != "encoder.embed_tokens.weight"}
    spm = spiece_model_bytes()
    header, offset = {}, 0
    for key in sorted(shapes):
        size = int(np.prod(shapes[key]))
        header[key] = {"dtype": "F8_E4M3", "shape": list(shapes[key]), "data_offsets": [offset, offset + size]}
        offset += size
    header["spiece_model"] = {"dtype": "U8", "shape": [len(spm)], "data_offsets": [offset, offset + len(spm)]}
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    gen = torch.Generator().manual_seed(seed)
    pool = (0.05 * torch.randn(_FP8_POOL, generator=gen)).to(torch.float8_e4m3fn).view(torch.uint8).numpy()
    one = torch.ones(1).to(torch.float8_e4m3fn).view(torch.uint8).numpy()[0]
    rng = np.random.default_rng(seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for key in sorted(shapes):
            left = int(np.prod(shapes[key]))
            if key.endswith("layer_norm.weight"):
                f.write(np.full(left, one, np.uint8).tobytes())
                continue
            while left:
                take = min(left, _FP8_POOL)
                start = int(rng.integers(0, _FP8_POOL - take + 1))
                f.write(pool[start:start + take].tobytes())
                left -= take
        f.write(spm)
    return path


# ----------------------------------------------------------------------------------------------- LoRA

LORA_TARGETS = ("attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0", "attn2.to_q", "attn2.to_out.0",
                "ffn.net.0.proj", "ffn.net.2")


def random_lora(transformer, rank: int = 4, alpha: float = 2.0, seed: int = 0, scale: float = 0.2,
                vace: bool = True) -> dict[str, tuple[torch.Tensor, torch.Tensor, float]]:
    """{diffusers module name: (down [r, in], up [out, r], alpha)} over the usual Wan LoRA targets."""
    gen = torch.Generator().manual_seed(seed)
    prefixes = [f"blocks.{i}." for i in range(len(transformer.blocks))]
    if vace:
        prefixes += [f"vace_blocks.{i}." for i in range(len(transformer.vace_blocks))]
    lora = {}
    for prefix in prefixes:
        for target in LORA_TARGETS:
            layer = transformer.get_submodule(prefix + target)
            down = scale * torch.randn(rank, layer.in_features, generator=gen)
            up = scale * torch.randn(layer.out_features, rank, generator=gen)
            lora[prefix + target] = (down, up, alpha)
    return lora


def lora_state_dict(lora: dict, key_format: str) -> dict[str, torch.Tensor]:
    """Serialise `random_lora` output in one key format.

    diffusers: transformer.<module>.lora_A.weight / lora_B.weight, alpha folded into lora_A
    comfy:     diffusion_model.<original module>.lora_down.weight / lora_up.weight / alpha
    musubi:    lora_unet_<original module with '_'>.lora_down.weight / lora_up.weight / alpha
    """
    from insertanywhere.insertion.wan_keys import diffusers_to_original

    out = {}
    for module, (down, up, alpha) in lora.items():
        rank = down.shape[0]
        if key_format == "diffusers":
            out[f"transformer.{module}.lora_A.weight"] = down * (alpha / rank)
            out[f"transformer.{module}.lora_B.weight"] = up
            continue
        original = diffusers_to_original(module)
        base = f"diffusion_model.{original}" if key_format == "comfy" else "lora_unet_" + original.replace(".", "_")
        if key_format not in ("comfy", "musubi"):
            raise ValueError(key_format)
        out[f"{base}.lora_down.weight"] = down
        out[f"{base}.lora_up.weight"] = up
        out[f"{base}.alpha"] = torch.tensor(float(alpha))
    return out


def write_wan_lora(path: Path, lora: dict, key_format: str) -> Path:
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in lora_state_dict(lora, key_format).items()}, str(path))
    return path


# ----------------------------------------------------------------------------------------------- SAM2

SAM2_TINY_YAML = """\
# Tiny SAM2.1-style config for tests (same structure as sam2.1_hiera_t.yaml).
model:
  _target_: sam2.modeling.sam2_base.SAM2Base
  image_encoder:
    _target_: sam2.modeling.backbones.image_encoder.ImageEncoder
    scalp: 1
    trunk:
      _target_: sam2.modeling.backbones.hieradet.Hiera
      embed_dim: 8
      num_heads: 1
      stages: [1, 1, 2, 1]
      global_att_blocks: [3]
      window_pos_embed_bkg_spatial_size: [4, 4]
      window_spec: [8, 4, 4, 2]
    neck:
      _target_: sam2.modeling.backbones.image_encoder.FpnNeck
      position_encoding:
        _target_: sam2.modeling.position_encoding.PositionEmbeddingSine
        num_pos_feats: 32
        normalize: true
        scale: null
        temperature: 10000
      d_model: 32
      backbone_channel_list: [64, 32, 16, 8]
      fpn_top_down_levels: [2, 3]
      fpn_interp_model: nearest
  memory_attention:
    _target_: sam2.modeling.memory_attention.MemoryAttention
    d_model: 32
    pos_enc_at_input: true
    layer:
      _target_: sam2.modeling.memory_attention.MemoryAttentionLayer
      activation: relu
      dim_feedforward: 64
      dropout: 0.0
      pos_enc_at_attn: false
      self_attention:
        _target_: sam2.modeling.sam.transformer.RoPEAttention
        rope_theta: 10000.0
        feat_sizes: [8, 8]
        embedding_dim: 32
        num_heads: 1
        downsample_rate: 1
        dropout: 0.0
      d_model: 32
      pos_enc_at_cross_attn_keys: true
      pos_enc_at_cross_attn_queries: false
      cross_attention:
        _target_: sam2.modeling.sam.transformer.RoPEAttention
        rope_theta: 10000.0
        feat_sizes: [8, 8]
        rope_k_repeat: True
        embedding_dim: 32
        num_heads: 1
        downsample_rate: 1
        dropout: 0.0
        kv_in_dim: 16
    num_layers: 1
  memory_encoder:
    _target_: sam2.modeling.memory_encoder.MemoryEncoder
    out_dim: 16
    in_dim: 32
    position_encoding:
      _target_: sam2.modeling.position_encoding.PositionEmbeddingSine
      num_pos_feats: 16
      normalize: true
      scale: null
      temperature: 10000
    mask_downsampler:
      _target_: sam2.modeling.memory_encoder.MaskDownSampler
      embed_dim: 32
      kernel_size: 3
      stride: 2
      padding: 1
    fuser:
      _target_: sam2.modeling.memory_encoder.Fuser
      layer:
        _target_: sam2.modeling.memory_encoder.CXBlock
        dim: 32
        kernel_size: 7
        padding: 3
        layer_scale_init_value: 1e-6
        use_dwconv: True
      num_layers: 1
  num_maskmem: 3
  image_size: 128
  sigmoid_scale_for_mem_enc: 20.0
  sigmoid_bias_for_mem_enc: -10.0
  use_mask_input_as_output_without_sam: true
  directly_add_no_mem_embed: true
  no_obj_embed_spatial: true
  use_high_res_features_in_sam: true
  multimask_output_in_sam: true
  iou_prediction_use_sigmoid: True
  use_obj_ptrs_in_encoder: true
  add_tpos_enc_to_obj_ptrs: true
  proj_tpos_enc_in_obj_ptrs: true
  use_signed_tpos_enc_to_obj_ptrs: true
  only_obj_ptrs_in_the_past_for_eval: true
  pred_obj_scores: true
  pred_obj_scores_mlp: true
  fixed_no_obj_ptr: true
  multimask_output_for_tracking: true
  use_multimask_token_for_obj_ptr: true
  multimask_min_pt_num: 0
  multimask_max_pt_num: 1
  use_mlp_for_obj_ptr_proj: true
  compile_image_encoder: False
"""


def write_sam2(folder: Path, name: str = "tiny_sam2.1", seed: int = 0, safetensors: bool = False) -> Path:
    """<folder>/<name>.pt ({"model": state_dict}, as Meta ships) + <name>.yaml; returns the checkpoint path."""
    from omegaconf import OmegaConf

    from insertanywhere.insertion.sam2_refine import build_sam2_model

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / f"{name}.yaml"
    config.write_text(SAM2_TINY_YAML)
    _seeded(seed)
    model = build_sam2_model(OmegaConf.create(SAM2_TINY_YAML))
    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    if safetensors:
        from safetensors.torch import save_file

        path = folder / f"{name}.safetensors"
        save_file(sd, str(path))
    else:
        path = folder / f"{name}.pt"
        torch.save({"model": sd}, str(path))
    return path


# ----------------------------------------------------------------------------------------------- Flux Kontext


def build_flux_kontext_folder(root: Path, seed: int = 0) -> Path:
    """A diffusers FluxKontextInpaintPipeline folder with a tiny transformer, VAE, CLIP and T5."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxKontextInpaintPipeline
    from diffusers import FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    _seeded(seed)
    transformer = FluxTransformer2DModel(patch_size=1, in_channels=16, num_layers=1, num_single_layers=1,
                                         attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32,
                                         pooled_projection_dim=32, axes_dims_rope=[4, 6, 6])
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16),
                        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
                        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"), layers_per_block=1,
                        norm_num_groups=8, sample_size=32, shift_factor=0.0609, scaling_factor=1.5035,
                        use_quant_conv=False, use_post_quant_conv=False)
    clip_tokenizer = _tiny_clip_tokenizer()
    clip = CLIPTextModel(CLIPTextConfig(vocab_size=len(clip_tokenizer), hidden_size=32, intermediate_size=64,
                                        num_hidden_layers=1, num_attention_heads=2, projection_dim=32,
                                        max_position_embeddings=77, bos_token_id=0, eos_token_id=1, pad_token_id=1))
    t5_tokenizer = build_umt5_tokenizer(spiece_model_bytes())
    t5 = T5EncoderModel(T5Config(vocab_size=len(t5_tokenizer), d_model=32, d_kv=8, d_ff=64, num_layers=1,
                                 num_heads=4, relative_attention_num_buckets=8, feed_forward_proj="gated-gelu",
                                 decoder_start_token_id=0, pad_token_id=0, eos_token_id=1))
    for module, offset in ((transformer, 3), (vae, 4), (clip, 5), (t5, 6)):
        _randomize(module.eval(), seed + offset, std=0.05)
    pipe = FluxKontextInpaintPipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=clip,
                                      tokenizer=clip_tokenizer, text_encoder_2=t5, tokenizer_2=t5_tokenizer,
                                      transformer=transformer)
    root = Path(root)
    pipe.save_pretrained(root, safe_serialization=True)
    return root


def _tiny_clip_tokenizer():
    """A byte-level BPE tokenizer with CLIP's special tokens, as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<|endoftext|>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|startoftext|>", "<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_CORPUS, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<|startoftext|> $A <|endoftext|>", special_tokens=[("<|startoftext|>", 0), ("<|endoftext|>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|startoftext|>", eos_token="<|endoftext|>",
                                   pad_token="<|endoftext|>", unk_token="<|endoftext|>", model_max_length=77)


# ----------------------------------------------------------------------------------------------- models dir


# Names the shipped workflows use; the tiny models are installed under them for the e2e runs.
WORKFLOW_NAMES = {
    "wan_folder": "Wan2.1-VACE-1.3B-diffusers",
    "flux_folder": "FLUX.1-Kontext-dev",
    "sam2": "sam2.1_hiera_tiny.pt",
    "lora": "insertanywhere_vace_1.3b_lora.safetensors",
    "transformer": "wan2.1_vace_1.3B_fp16.safetensors",
    "vae": "wan_2.1_vae.safetensors",
    "text_encoder": "umt5_xxl_fp16.safetensors",
}


def install_tiny_models(models_dir: Path, seed: int = 0) -> dict[str, str]:
    """Fill a ComfyUI models/ folder with every tiny model under the names the shipped workflows use.

    diffusers/Wan2.1-VACE-1.3B-diffusers/, diffusers/FLUX.1-Kontext-dev/, diffusion_models/, vae/,
    text_encoders/ (Wan single files), loras/ (the insertion LoRA name plus one file per key format:
    tiny_wan_lora_{diffusers,comfy,musubi}.safetensors), sam2/sam2.1_hiera_tiny.pt + .yaml.
    Returns {role: file or folder name}. Idempotent: existing entries are kept.
    """
    import shutil

    from diffusers import WanVACETransformer3DModel

    models_dir = Path(models_dir)
    names = dict(WORKFLOW_NAMES)
    wan = models_dir / "diffusers" / names["wan_folder"]
    if not (wan / "model_index.json").is_file():
        build_wan_vace_folder(wan, seed)
    if not (models_dir / "vae" / names["vae"]).is_file():
        singles = write_wan_single_files(models_dir, wan)
        for role, path in singles.items():
            path.replace(path.with_name(names[role]))
    flux = models_dir / "diffusers" / names["flux_folder"]
    if not (flux / "model_index.json").is_file():
        build_flux_kontext_folder(flux, seed)
    loras = models_dir / "loras"
    if not (loras / names["lora"]).is_file():
        lora = random_lora(WanVACETransformer3DModel.from_pretrained(wan, subfolder="transformer"), seed=seed)
        for key_format in ("diffusers", "comfy", "musubi"):
            write_wan_lora(loras / f"tiny_wan_lora_{key_format}.safetensors", lora, key_format)
            names[f"lora_{key_format}"] = f"tiny_wan_lora_{key_format}.safetensors"
        shutil.copyfile(loras / "tiny_wan_lora_comfy.safetensors", loras / names["lora"])
    if not (models_dir / "sam2" / names["sam2"]).is_file():
        write_sam2(models_dir / "sam2", name=Path(names["sam2"]).stem, seed=seed)
    for key_format in ("diffusers", "comfy", "musubi"):
        names[f"lora_{key_format}"] = f"tiny_wan_lora_{key_format}.safetensors"
    return names
