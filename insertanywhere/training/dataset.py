"""Reading a dataset written by `build_triplets`, and its latent cache.

The cache holds, per sample, what the VAE makes of it (`conditioning.encode_sample`)
in `<dataset>/cache/<fingerprint>/<id>.safetensors`, and the text embeddings of
every prompt in `prompts.safetensors` next to them. The fingerprint hashes the VAE
(config and a probe of its weights) and the mask fill, so a cache made with another
VAE or conditioning is never reused; prompt files are named by a hash of the text encoder.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..errors import InsertAnywhereError
from ..jsontext import parse_json
from ..progress import Progress, report
from .triplets import MANIFEST

_REQUIRED = ("id", "target", "input", "masks", "references", "prompt")


@dataclass
class Sample:
    """One insertion sample, decoded. F frames of H x W."""

    id: str
    target: np.ndarray            # uint8 [F, H, W, 3], the present video
    inputs: np.ndarray            # uint8 [F, H, W, 3], removed video (frame 0 known)
    region: np.ndarray            # bool [F, H, W], white = generate
    object: np.ndarray            # bool [F, H, W], the object itself
    references: list[np.ndarray]  # uint8 [H, W, 3] each, object on white
    prompt: str


class TripletDataset:
    """The samples listed in `<root>/manifest.jsonl`."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        path = self.root / MANIFEST
        if not path.is_file():
            raise InsertAnywhereError(
                f"'{self.root}' has no {MANIFEST}; build the dataset first with `insertanywhere build-triplets`.")
        self.entries = [self._check(i, line) for i, line in enumerate(path.read_text().splitlines(), 1)
                        if line.strip()]
        if not self.entries:
            raise InsertAnywhereError(f"{path} lists no samples; the build wrote nothing (see its skipped list).")

    def _check(self, number: int, line: str) -> dict:
        entry = parse_json(line, f"{MANIFEST} line {number}", "the lines the dataset build writes (rebuild it)")
        if not isinstance(entry, dict):
            raise InsertAnywhereError(f"{MANIFEST} line {number} is not a JSON object; rebuild the dataset.")
        missing = [k for k in _REQUIRED if k not in entry]
        if missing:
            raise InsertAnywhereError(f"{MANIFEST} line {number} lacks {missing}; rebuild the dataset.")
        for rel in [entry["target"], entry["input"], entry["masks"], *entry["references"]]:
            path = (self.root / rel).resolve()
            if self.root.resolve() not in path.parents:
                raise InsertAnywhereError(f"{MANIFEST} line {number} points outside the dataset: '{rel}'.")
            if not path.is_file():
                raise InsertAnywhereError(f"{MANIFEST} line {number}: file '{rel}' is missing; rebuild the dataset.")
        if not entry["references"]:
            raise InsertAnywhereError(f"{MANIFEST} line {number} lists no reference image.")
        return entry

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def ids(self) -> list[str]:
        return [e["id"] for e in self.entries]

    def load(self, index: int) -> Sample:
        import cv2

        from ..video import read_video

        e = self.entries[index]
        target, _ = read_video(self.root / e["target"])
        inputs, _ = read_video(self.root / e["input"])
        with np.load(self.root / e["masks"]) as masks:
            region, obj = masks["region"].astype(bool), masks["object"].astype(bool)
        refs = [cv2.imread(str(self.root / r), cv2.IMREAD_COLOR)[..., ::-1].copy() for r in e["references"]]
        n = min(len(target), len(inputs), len(region))
        if n != len(region):
            raise InsertAnywhereError(f"Sample '{e['id']}' decodes to {n} frames, its masks have {len(region)}.")
        return Sample(e["id"], target[:n], inputs[:n], region, obj, refs, e["prompt"])


def cache_fingerprint(pipe, mask_fill: str) -> str:
    """Short hash of what the cached latents depend on: the VAE config, its weights (a probe
    of one tensor), the latent layout and how masked pixels are filled."""
    cfg = dict(pipe.vae.config)
    probe = next(pipe.vae.parameters()).detach().flatten()[:64].float().cpu().tolist()
    key = json.dumps({"vae": {k: v for k, v in cfg.items() if not k.startswith("_")}, "probe": probe,
                      "spatial": pipe.vae_scale_factor_spatial, "temporal": pipe.vae_scale_factor_temporal,
                      "mask_fill": mask_fill}, sort_keys=True, default=str)
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def _prompt_key(prompt: str) -> str:
    return hashlib.sha256(prompt.encode()).hexdigest()[:16]


class LatentCache:
    """Per-sample VAE latents and per-prompt text embeddings of a dataset, on disk."""

    def __init__(self, dataset: TripletDataset, pipe, mask_fill: str = "gray", folder: Optional[Path] = None):
        self.dataset = dataset
        self.mask_fill = mask_fill
        self.folder = Path(folder) if folder else dataset.root / "cache" / cache_fingerprint(pipe, mask_fill)

    def sample_path(self, sample_id: str) -> Path:
        return self.folder / f"{sample_id}.safetensors"

    def missing(self) -> list[int]:
        return [i for i, sid in enumerate(self.dataset.ids) if not self.sample_path(sid).is_file()]

    def fill(self, pipe, progress: Optional[Progress] = None) -> int:
        """Encode every sample not cached yet; returns how many were encoded."""
        from safetensors.torch import save_file

        from .conditioning import encode_sample

        todo = self.missing()
        self.folder.mkdir(parents=True, exist_ok=True)
        for done, index in enumerate(todo, 1):
            s = self.dataset.load(index)
            latents = encode_sample(pipe, s.target, s.inputs, s.region, s.references, self.mask_fill)
            tmp = self.sample_path(s.id).with_suffix(".tmp")
            save_file({k: v.contiguous() for k, v in latents.items()}, str(tmp))
            tmp.replace(self.sample_path(s.id))
            report(progress, done, len(todo))
        return len(todo)

    def load(self, index: int) -> dict[str, torch.Tensor]:
        from safetensors.torch import load_file

        path = self.sample_path(self.dataset.ids[index])
        if not path.is_file():
            raise InsertAnywhereError(f"Latent cache file '{path}' is missing; run with caching enabled to fill it.")
        return load_file(str(path))

    # -- prompts

    def prompts_path(self, encoder_key: str) -> Path:
        return self.folder / f"prompts-{encoder_key}.safetensors"

    def load_prompts(self, encoder_key: str) -> dict[str, torch.Tensor]:
        """Cached embeddings [L, D] by prompt, made by the text encoder `encoder_key` names."""
        from safetensors import safe_open

        path = self.prompts_path(encoder_key)
        if not path.is_file():
            return {}
        out = {}
        with safe_open(str(path), framework="pt") as f:
            names = json.loads((f.metadata() or {}).get("prompts", "{}"))
            for key, prompt in names.items():
                out[prompt] = f.get_tensor(key)
        return out

    def save_prompts(self, encoder_key: str, embeds: dict[str, torch.Tensor]) -> None:
        from safetensors.torch import save_file

        self.folder.mkdir(parents=True, exist_ok=True)
        tensors = {_prompt_key(p): e.contiguous() for p, e in embeds.items()}
        names = {_prompt_key(p): p for p in embeds}
        save_file(tensors, str(self.prompts_path(encoder_key)), metadata={"prompts": json.dumps(names)})


def encoder_key(prompt_encoder) -> str:
    """Short hash of a text encoder's weights (a probe of its first tensor), naming its embeddings."""
    probe = next(prompt_encoder.model.parameters()).detach().flatten()[:256].float().cpu().tolist()
    return hashlib.sha256(json.dumps(probe).encode()).hexdigest()[:12]
