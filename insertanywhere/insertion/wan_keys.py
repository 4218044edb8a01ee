"""Names of Wan transformer weights in the diffusers layout vs the original layout.

The original layout (Wan-AI `generate.py`, ComfyUI's `diffusion_models` files,
LoRAs with `diffusion_model.` keys, kohya/Musubi `lora_unet_` keys) names
modules e.g. `blocks.3.self_attn.q`; diffusers names the same module
`blocks.3.attn1.to_q`. diffusers converts original -> diffusers when loading
single files; LoRA files need the other direction, which is done here.
"""

from __future__ import annotations

import re

# Applied in order to a dotted diffusers name (with a leading '.' so every part is '.x.').
_RENAMES = [
    (".condition_embedder.time_embedder.linear_1.", ".time_embedding.0."),
    (".condition_embedder.time_embedder.linear_2.", ".time_embedding.2."),
    (".condition_embedder.text_embedder.linear_1.", ".text_embedding.0."),
    (".condition_embedder.text_embedder.linear_2.", ".text_embedding.2."),
    (".condition_embedder.time_proj.", ".time_projection.1."),
    (".condition_embedder.image_embedder.norm1.", ".img_emb.proj.0."),
    (".condition_embedder.image_embedder.ff.net.0.proj.", ".img_emb.proj.1."),
    (".condition_embedder.image_embedder.ff.net.2.", ".img_emb.proj.3."),
    (".condition_embedder.image_embedder.norm2.", ".img_emb.proj.4."),
    (".attn1.", ".self_attn."),
    (".attn2.", ".cross_attn."),
    (".to_out.0.", ".o."),
    (".to_q.", ".q."),
    (".to_k.", ".k."),
    (".to_v.", ".v."),
    (".add_k_proj.", ".k_img."),
    (".add_v_proj.", ".v_img."),
    (".norm_added_k.", ".norm_k_img."),
    (".ffn.net.0.proj.", ".ffn.0."),
    (".ffn.net.2.", ".ffn.2."),
]
_BLOCK = re.compile(r"^\.((?:vace_)?blocks\.\d+)\.(.*)$")


def diffusers_to_original(name: str) -> str:
    """Original Wan name of a diffusers transformer weight or module name."""
    dotted = "." + name + "."
    for new, old in _RENAMES:
        dotted = dotted.replace(new, old)
    block = _BLOCK.match(dotted)
    if block:
        head, rest = block.groups()
        rest = "." + rest
        if rest.startswith(".norm2."):  # diffusers swapped norm2 and norm3 of each block
            rest = ".norm3." + rest[len(".norm2."):]
        elif rest.startswith(".norm3."):
            rest = ".norm2." + rest[len(".norm3."):]
        elif rest.startswith(".scale_shift_table."):
            rest = ".modulation." + rest[len(".scale_shift_table."):]
        elif head.startswith("vace_") and rest.startswith(".proj_in."):
            rest = ".before_proj." + rest[len(".proj_in."):]
        elif head.startswith("vace_") and rest.startswith(".proj_out."):
            rest = ".after_proj." + rest[len(".proj_out."):]
        dotted = "." + head + rest
    elif dotted.startswith(".scale_shift_table."):
        dotted = ".head.modulation." + dotted[len(".scale_shift_table."):]
    elif dotted.startswith(".proj_out."):
        dotted = ".head.head." + dotted[len(".proj_out."):]
    return dotted.strip(".")


def original_state_dict(diffusers_state_dict: dict) -> dict:
    """The same weights under original Wan names (the layout of ComfyUI `diffusion_models` files)."""
    return {diffusers_to_original(k): v for k, v in diffusers_state_dict.items()}
