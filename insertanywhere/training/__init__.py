"""Insertion LoRA training: object-removal data -> insertion samples -> LoRA -> exports.

  triplets.py      find (present, removed, mask) triples (ROSE or sample-folder layout) and
                   write an insertion dataset (manifest.jsonl): `build_triplets`
  degrade.py       reference augmentation (flip, crop, resize, colour) and input degradation
  dataset.py       read a dataset; VAE-latent and prompt-embedding cache
  conditioning.py  VACE conditioning through the sampler's own preparation code
  trainer.py       flow-matching LoRA training with the masked loss, checkpoints, resume
  export.py        diffusers/PEFT and ComfyUI-format LoRA files
  commands.py      `insertanywhere build-triplets | train | export-lora`
"""
