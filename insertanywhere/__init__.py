"""InsertAnywhere core: every algorithm of the pack, with no ComfyUI import.

Stages (one subpackage each, in pipeline order):
  video          decode / resize / snap frame counts, write mp4
  masks          4D-aware mask generation: reconstruct -> object3d -> placement
                 -> propagate -> reproject (-> SAM2 refine, in insertion)
  insertion      generative half: first-frame inpaint, VACE + LoRA, composite
  training       insertion LoRA: triplet builder, trainer, export
"""

__version__ = "0.1.0"
