"""UMT5 prompt encoding for Wan, from a diffusers folder or a ComfyUI single file.

Prompts are encoded here and handed to the pipeline as `prompt_embeds`, so the
text encoder can come from either source, embeddings of repeated prompts are
cached, and the (11 GB) encoder is on the GPU only while it encodes.

Encoding matches diffusers' Wan pipelines: ftfy + HTML unescape + whitespace
cleaning, tokens padded / cut to `max_length` (512) with the EOS token,
hidden states of the real tokens kept and the padding positions zeroed.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Callable, Optional, Union

import torch

from ..errors import InsertAnywhereError
from .checkpoints import dequantize_scaled_fp8, read_state_dict, require_keys

MAX_LENGTH = 512
Tokenize = Callable[[list, int], "tuple[torch.Tensor, torch.Tensor]"]  # (texts, max_length) -> (ids, mask) [B, L]
_REQUIRED = ("encoder.block.0.layer.0.SelfAttention.q.weight", "encoder.final_layer_norm.weight")


def clean_prompt(text: str) -> str:
    """Fix mojibake (ftfy), unescape HTML twice and collapse whitespace, as Wan's pipelines do."""
    try:
        import ftfy
    except ImportError as exc:
        raise InsertAnywhereError("Wan text prompts need the 'ftfy' package: pip install ftfy") from exc
    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    return re.sub(r"\s+", " ", text).strip()


def hf_tokenizer(folder: Union[str, Path]) -> Tokenize:
    """Tokenizer of a diffusers folder (its `tokenizer/` subfolder or the folder itself)."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except Exception as exc:
        raise InsertAnywhereError(
            f"Cannot load the tokenizer from '{folder}' ({exc}); the folder is incomplete.") from exc

    def tokenize(texts: list, max_length: int):
        enc = tok(texts, padding="max_length", max_length=max_length, truncation=True, add_special_tokens=True,
                  return_attention_mask=True, return_tensors="pt")
        return enc.input_ids, enc.attention_mask

    return tokenize


def spm_tokenizer(model_proto: bytes, eos_id: int = 1, pad_id: int = 0) -> Tokenize:
    """Tokenizer from SentencePiece model bytes (the `spiece_model` blob of ComfyUI UMT5 files)."""
    try:
        import sentencepiece as spm
    except ImportError as exc:
        raise InsertAnywhereError(
            "Single-file UMT5 text encoders need 'sentencepiece': pip install sentencepiece") from exc
    proc = spm.SentencePieceProcessor(model_proto=model_proto)

    def tokenize(texts: list, max_length: int):
        ids = torch.full((len(texts), max_length), pad_id, dtype=torch.long)
        mask = torch.zeros((len(texts), max_length), dtype=torch.long)
        for row, text in enumerate(texts):
            tokens = proc.encode(text)[: max_length - 1] + [eos_id]
            ids[row, : len(tokens)] = torch.tensor(tokens)
            mask[row, : len(tokens)] = 1
        return ids, mask

    return tokenize


class PromptEncoder:
    """Tokenizer + UMT5 encoder; `encode` returns [B, max_length, D] with zeros after each prompt."""

    def __init__(self, tokenize: Tokenize, model: torch.nn.Module, source: str):
        self.tokenize = tokenize
        self.model = model.eval()
        self.source = source
        self._cache: dict[tuple, torch.Tensor] = {}

    @torch.inference_mode()
    def encode(self, prompts: list, device: Union[str, torch.device] = "cpu", max_length: int = MAX_LENGTH
               ) -> torch.Tensor:
        key = (tuple(prompts), max_length)
        if key not in self._cache:
            ids, mask = self.tokenize([clean_prompt(p) for p in prompts], max_length)
            home = next(self.model.parameters()).device
            self.model.to(device)
            try:
                hidden = self.model(input_ids=ids.to(device), attention_mask=mask.to(device)).last_hidden_state
            finally:
                self.model.to(home)
            hidden = hidden.float().cpu() * mask[..., None].to(hidden.dtype).cpu()
            self._cache = {key: hidden}  # keep only the latest prompts
        return self._cache[key]


def load_text_encoder_folder(folder: Union[str, Path], dtype: torch.dtype) -> PromptEncoder:
    """UMT5 encoder + tokenizer from a diffusers pipeline folder (`text_encoder/`, `tokenizer/`)."""
    from transformers import UMT5EncoderModel

    folder = Path(folder)
    for sub in ("text_encoder", "tokenizer"):
        if not (folder / sub).is_dir():
            raise InsertAnywhereError(
                f"'{folder}' has no '{sub}' subfolder; pick a text encoder file or use a complete diffusers folder."
            )
    try:
        model = UMT5EncoderModel.from_pretrained(str(folder / "text_encoder"), local_files_only=True, dtype=dtype)
    except Exception as exc:
        raise InsertAnywhereError(f"Cannot load the UMT5 text encoder in '{folder / 'text_encoder'}': {exc}") from exc
    return PromptEncoder(hf_tokenizer(folder / "tokenizer"), model, str(folder))


def umt5_config_from_state_dict(sd: dict):
    """UMT5 config read off the weight shapes (umt5-xxl: d_model 4096, 24 layers, 64 heads)."""
    from transformers import UMT5Config

    embed = sd.get("shared.weight", sd.get("encoder.embed_tokens.weight"))
    bias = sd.get("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight")
    if embed is None or bias is None:
        raise InsertAnywhereError("The text encoder has no token embedding or relative attention bias; "
                                  "it is not a UMT5 encoder.")
    layers = len({k.split(".")[2] for k in sd if k.startswith("encoder.block.")})
    heads = int(bias.shape[1])
    inner = int(sd["encoder.block.0.layer.0.SelfAttention.q.weight"].shape[0])
    gated = "encoder.block.0.layer.1.DenseReluDense.wi_0.weight" in sd
    d_ff = sd["encoder.block.0.layer.1.DenseReluDense." + ("wi_0" if gated else "wi") + ".weight"].shape[0]
    return UMT5Config(vocab_size=int(embed.shape[0]), d_model=int(embed.shape[1]), d_kv=inner // heads,
                      d_ff=int(d_ff), num_layers=layers, num_heads=heads,
                      relative_attention_num_buckets=int(bias.shape[0]), relative_attention_max_distance=128,
                      feed_forward_proj="gated-gelu" if gated else "relu", dropout_rate=0.0,
                      pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, tie_word_embeddings=False)


def load_text_encoder_file(path: Union[str, Path], dtype: torch.dtype, tokenizer_folder: Optional[Path] = None
                           ) -> PromptEncoder:
    """UMT5 encoder from a single file (ComfyUI `text_encoders`, incl. scaled fp8).

    The tokenizer is the file's own `spiece_model` blob (ComfyUI layout) or, when the file has
    none, `tokenizer_folder` (a diffusers folder's tokenizer).
    """
    from transformers import UMT5EncoderModel

    path = Path(path)
    sd = read_state_dict(path, "UMT5 text encoder")
    blob = sd.pop("spiece_model", None)
    require_keys(sd, _REQUIRED, path, "a UMT5 text encoder")
    if "encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight" not in sd and any(
            k.startswith("encoder.block.1.") for k in sd):
        raise InsertAnywhereError(f"'{path.name}' is a T5 encoder, not UMT5; Wan needs umt5-xxl "
                                  "(e.g. umt5_xxl_fp16.safetensors).")
    sd = dequantize_scaled_fp8(sd, dtype)
    if "shared.weight" not in sd:
        sd["shared.weight"] = sd["encoder.embed_tokens.weight"]
    config = umt5_config_from_state_dict(sd)
    with torch.device("meta"):
        model = UMT5EncoderModel(config)
    sd.setdefault("encoder.embed_tokens.weight", sd["shared.weight"])
    missing, unexpected = model.load_state_dict(sd, strict=False, assign=True)
    if missing or unexpected:
        raise InsertAnywhereError(
            f"'{path.name}' does not fit a UMT5 encoder ({len(missing)} missing keys e.g. {missing[:2]}, "
            f"{len(unexpected)} unexpected e.g. {unexpected[:2]}); the file is damaged or another model."
        )
    model.encoder.embed_tokens = model.shared
    model.to(dtype)
    if blob is not None:
        tokenize = spm_tokenizer(blob.to(torch.uint8).numpy().tobytes())
    elif tokenizer_folder is not None:
        tokenize = hf_tokenizer(Path(tokenizer_folder) / "tokenizer")
    else:
        raise InsertAnywhereError(
            f"'{path.name}' holds no tokenizer ('spiece_model'); use ComfyUI's umt5 file or also pick a diffusers "
            "folder, whose tokenizer is then used."
        )
    return PromptEncoder(tokenize, model, str(path))
