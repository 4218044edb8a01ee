"""LoRA fine-tuning of the Wan VACE transformer for object insertion.

Flow matching as Wan trains: for a clean latent x0 and noise e, at sigma in (0, 1)
    x_t = (1 - sigma) x0 + sigma e,   timestep = 1000 sigma,   target velocity v = e - x0,
with sigma = shift u / (1 + (shift - 1) u), u ~ U(0, 1) (the sampler's shifted schedule).

The transformer is conditioned exactly as the pack's sampler conditions it at inference
(see `conditioning.py`): input video with frame 0 known, mask white = generate, the
reference image as a latent slot in front. x0 holds the reference latent in that slot
and the present video's latents after it.

Samples are read from the latent cache when a step needs them (a few stay in memory), so
memory does not grow with the dataset. The text encoder is released once the prompts are
encoded.

Loss, on the squared velocity error averaged over channels, per latent cell:
    L = a * mean(err over R) + (1 - a) * mean(err elsewhere)
where R = the cells touching the generate region, grown by `surround_cells`.

Checkpoints (`<output>/checkpoints/step-NNNNNN/`) hold the adapter, the optimizer state
and the step; a run with the same output folder resumes from the newest one. Randomness
of step k depends only on (seed, k), so a resumed run repeats the uninterrupted one.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from ..errors import InsertAnywhereError
from ..insertion.conditioning import MASK_FILLS
from ..progress import Progress, report
from .conditioning import (assemble_control, dilate_cells, encode_prompts, encode_sample, inference_inputs,
                           latent_region, mask_channels)
from .dataset import LatentCache, TripletDataset, encoder_key

PRECISIONS = {"bf16": torch.bfloat16, "fp32": torch.float32}  # LoRA weights are float32 either way
SAMPLES_IN_MEMORY = 8
_ATTN = r"(attn1|attn2)\.(to_q|to_k|to_v|to_out\.0)"
_FFN = r"ffn\.net\.(0\.proj|2)"
Log = Callable[[dict], None]


def target_modules(include_vace_blocks: bool) -> str:
    """PEFT regex (full match) of the adapted Linear layers: attention q/k/v/o and FFN of the
    main blocks, and of the VACE blocks when asked."""
    blocks = r"(blocks|vace_blocks)" if include_vace_blocks else r"blocks"
    return rf"^{blocks}\.\d+\.({_ATTN}|{_FFN})$"


@dataclass
class TrainConfig:
    dataset: str
    output: str
    model: str = ""                  # diffusers Wan VACE folder (transformer/, vae/, text_encoder/, tokenizer/)
    transformer_file: str = ""       # ... or / and ComfyUI single files (a file wins over the folder's part)
    vae_file: str = ""
    text_encoder_file: str = ""
    rank: int = 32
    alpha: float = 32.0
    learning_rate: float = 1e-4
    steps: int = 2000
    warmup_steps: int = 50
    grad_accum: int = 1
    max_grad_norm: float = 1.0
    weight_decay: float = 0.0
    mask_weight: float = 0.8         # a in L = a L_mask + (1 - a) L_rest
    surround_cells: int = 2          # latent cells (8 px each) around the region counted as "mask"
    include_vace_blocks: bool = False
    gradient_checkpointing: bool = True
    precision: str = "bf16"
    timestep_shift: float = 3.0
    mask_fill: str = "gray"          # as the sampler's mask_fill: pixels under the mask grey, or kept
    save_every: int = 250
    keep_checkpoints: int = 3
    log_every: int = 10
    seed: int = 0
    cache_latents: bool = True       # store VAE latents under <dataset>/cache
    eval_samples: int = 4            # samples of the fixed-noise evaluation (the first ones)
    device: str = "auto"
    name: str = "insertion_lora"

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise InsertAnywhereError(f"Unknown precision '{self.precision}'; use one of {list(PRECISIONS)}.")
        if self.rank < 1 or self.alpha <= 0 or self.learning_rate <= 0 or self.steps < 1 or self.grad_accum < 1:
            raise InsertAnywhereError("rank, alpha, learning rate, steps and grad_accum must be positive.")
        if not 0 <= self.mask_weight <= 1:
            raise InsertAnywhereError(f"mask_weight={self.mask_weight} must be in [0, 1].")
        if self.timestep_shift <= 0:
            raise InsertAnywhereError("timestep_shift must be positive.")
        if self.mask_fill not in MASK_FILLS:
            raise InsertAnywhereError(f"Unknown mask_fill '{self.mask_fill}'; use one of {MASK_FILLS}.")
        if not self.model and not (self.transformer_file and self.vae_file and self.text_encoder_file):
            raise InsertAnywhereError("Give the Wan VACE model: a diffusers folder, or the transformer, VAE and "
                                      "text encoder files.")

    def lora_info(self) -> dict:
        """What users of the exported LoRA need to know: the sampler settings it was trained for."""
        return {"trained_by": "insertanywhere train", "mask_fill": self.mask_fill,
                "timestep_shift": self.timestep_shift, "include_vace_blocks": self.include_vace_blocks,
                "rank": self.rank, "alpha": self.alpha, "steps": self.steps}

    def resume_key(self) -> dict:
        """Settings a checkpoint must share with the run that resumes it."""
        return {k: getattr(self, k) for k in ("rank", "alpha", "include_vace_blocks", "seed", "mask_fill")}


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def load_model(cfg: TrainConfig, device: torch.device):
    """The sampler's own Wan VACE loader (`insertion.wan.load_wan_vace`): diffusers folder and/or
    ComfyUI single files; transformer and text encoder in the training precision, VAE in float32."""
    from ..insertion.wan import load_wan_vace

    names = {torch.bfloat16: "bfloat16", torch.float32: "float32"}
    return load_wan_vace(folder=cfg.model or None, transformer_file=cfg.transformer_file or None,
                         vae_file=cfg.vae_file or None, text_encoder_file=cfg.text_encoder_file or None,
                         device=device, dtype=names[PRECISIONS[cfg.precision]])


def add_lora(transformer, cfg: TrainConfig) -> list[torch.nn.Parameter]:
    """Attach a fresh LoRA adapter ("default"), freeze everything else; returns the LoRA
    parameters (float32 whatever the base precision)."""
    from peft import LoraConfig

    transformer.requires_grad_(False)
    config = LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, target_modules=target_modules(cfg.include_vace_blocks),
                        init_lora_weights=True)
    torch.manual_seed(cfg.seed)  # lora_A's initialisation
    transformer.add_adapter(config)
    params = [p for n, p in transformer.named_parameters() if "lora_" in n]
    if not params:
        raise InsertAnywhereError("No layer matched the LoRA targets; the transformer is not a Wan VACE model.")
    for p in params:
        p.data = p.data.float()
        p.requires_grad_(True)
    return params


def sample_sigma(u: torch.Tensor, shift: float) -> torch.Tensor:
    """Shifted flow-matching noise level of u in (0, 1)."""
    return shift * u / (1 + (shift - 1) * u)


def masked_loss(err: torch.Tensor, region: torch.Tensor, weight: float) -> tuple[torch.Tensor, float, float]:
    """a * mean(err[region]) + (1 - a) * mean(err[~region]) of err [T, h, w]; a part with no
    cells drops out and the other carries the full weight. Returns (loss, L_mask, L_rest)."""
    inside, outside = err[region], err[~region]
    parts = []
    if inside.numel():
        parts.append((weight, inside.mean()))
    if outside.numel():
        parts.append((1 - weight, outside.mean()))
    total = sum(w for w, _ in parts) or 1.0
    loss = sum(w * v for w, v in parts) / total
    l_mask = float(inside.detach().mean()) if inside.numel() else float("nan")
    l_rest = float(outside.detach().mean()) if outside.numel() else float("nan")
    return loss, l_mask, l_rest


@dataclass
class _Prepared:
    """One sample's training tensors: latents on the CPU, mask channels ready."""

    target: torch.Tensor       # [16, T, h, w]
    video_cond: torch.Tensor   # [32, T, h, w]
    references: torch.Tensor   # [V, 16, 1, h, w]
    masks: torch.Tensor        # bool [64, 1 + T, h, w]
    loss_region: torch.Tensor  # bool [1 + T, h, w]


@dataclass
class TrainState:
    step: int = 0
    history: list[dict] = field(default_factory=list)


class LoraTrainer:
    """Trains an insertion LoRA; `run()` does everything, the parts are public for tests."""

    def __init__(self, cfg: TrainConfig, model=None, log: Optional[Log] = None):
        """`model`: a loaded `insertion.wan.WanVACEModel` (loaded from `cfg` when None)."""
        self.cfg = cfg
        self.device = pick_device(cfg.device)
        self.dtype = PRECISIONS[cfg.precision]
        self.output = Path(cfg.output)
        self.log = log or (lambda _: None)
        self.dataset = TripletDataset(cfg.dataset)
        self.model = model if model is not None else load_model(cfg, self.device)
        self.pipe = self.model.pipe
        self.transformer = self.pipe.transformer.to(self.device)
        if self.transformer.dtype != self.dtype:
            self.transformer.to(self.dtype)
        self.params = add_lora(self.transformer, cfg)
        if cfg.gradient_checkpointing:
            self.transformer.enable_gradient_checkpointing()
        self.optimizer = torch.optim.AdamW(self.params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        self.cache = LatentCache(self.dataset, self.pipe, cfg.mask_fill)
        self._recent: dict[int, _Prepared] = {}
        self.prompts: dict[str, torch.Tensor] = {}
        self.state = TrainState()

    # -- data

    def prepare(self, progress: Optional[Progress] = None) -> None:
        """Fill the latent cache (when caching) and encode every prompt, then release the text encoder."""
        if self.cfg.cache_latents:
            self.cache.fill(self.pipe, progress)
        self.prompts = self._prompt_embeddings()

    def sample(self, index: int) -> _Prepared:
        """Sample `index` ready for training (the last few are kept in memory)."""
        if index not in self._recent:
            if len(self._recent) >= SAMPLES_IN_MEMORY:
                self._recent.pop(next(iter(self._recent)))
            self._recent[index] = self._load_sample(index)
        return self._recent[index]

    def _load_sample(self, index: int) -> _Prepared:
        sample = self.dataset.load(index)
        if self.cfg.cache_latents:
            latents = self.cache.load(index)
        else:
            latents = encode_sample(self.pipe, sample.target, sample.inputs, sample.region, sample.references,
                                    self.cfg.mask_fill)
        masks = inference_inputs(sample.inputs, sample.region, None, self.cfg.mask_fill).masks > 0.5
        region = dilate_cells(latent_region(masks, 1), self.cfg.surround_cells)
        return _Prepared(latents["target"], latents["video_cond"], latents["references"],
                         mask_channels(self.pipe, masks, 1).cpu() > 0.5, region)

    def _prompt_embeddings(self) -> dict[str, torch.Tensor]:
        """Embeddings of every prompt (cached on disk); the text encoder is released afterwards."""
        wanted = {e["prompt"] for e in self.dataset.entries}
        if self.model.prompts is None:
            raise InsertAnywhereError("The text encoder was already released; build a new trainer.")
        key = encoder_key(self.model.prompts)
        cached = self.cache.load_prompts(key)
        if not wanted <= cached.keys():
            cached = {**cached, **encode_prompts(self.model.prompts, sorted(wanted - cached.keys()), self.device)}
            self.cache.save_prompts(key, cached)
        self.model.prompts = None  # free the (11 GB) encoder for training
        return {p: cached[p] for p in wanted}

    def batch(self, index: int, variant: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(x0 [1, 16, 1 + T, h, w], control [1, 96, 1 + T, h, w], loss region [1 + T, h, w], text [1, L, D])."""
        s = self.sample(index)
        reference = s.references[variant % len(s.references)]
        x0 = torch.cat([reference, s.target], dim=1)[None]
        control = assemble_control(s.video_cond, reference, s.masks.float())[None]
        text = self.prompts[self.dataset.entries[index]["prompt"]]
        return (x0.to(self.device), control.to(self.device, self.dtype), s.loss_region.to(self.device),
                text[None].to(self.device, self.dtype))

    # -- one step

    def _generator(self, step: int, micro: int = 0) -> torch.Generator:
        return torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + step * 97 + micro)

    def loss(self, index: int, variant: int, noise_seed: torch.Generator,
             sigma: Optional[float] = None) -> tuple[torch.Tensor, float, float, float]:
        """Weighted loss of one sample at a random (or given) noise level: (loss, L_mask, L_rest, sigma)."""
        x0, control, region, text = self.batch(index, variant)
        noise = torch.randn(x0.shape, generator=noise_seed).to(self.device)
        u = torch.rand(1, generator=noise_seed)
        s = float(sample_sigma(u, self.cfg.timestep_shift)) if sigma is None else sigma
        x_t = (1 - s) * x0 + s * noise
        timestep = torch.full((1,), s * 1000.0, device=self.device)
        pred = self.transformer(hidden_states=x_t.to(self.dtype), timestep=timestep, encoder_hidden_states=text,
                                control_hidden_states=control, return_dict=False)[0]
        err = (pred.float() - (noise - x0)).pow(2).mean(dim=1)[0]
        loss, l_mask, l_rest = masked_loss(err, region, self.cfg.mask_weight)
        return loss, l_mask, l_rest, s

    def lr_at(self, step: int) -> float:
        """Linear warm-up, then constant."""
        if self.cfg.warmup_steps and step < self.cfg.warmup_steps:
            return self.cfg.learning_rate * (step + 1) / self.cfg.warmup_steps
        return self.cfg.learning_rate

    def train_step(self, step: int) -> dict:
        self.transformer.train()
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(step)
        self.optimizer.zero_grad(set_to_none=True)
        totals = np.zeros(3)
        sigmas = []
        for micro in range(self.cfg.grad_accum):
            g = self._generator(step, micro)
            index = int(torch.randint(len(self.dataset), (1,), generator=g))
            variant = int(torch.randint(1 << 16, (1,), generator=g))
            loss, l_mask, l_rest, sigma = self.loss(index, variant, g)
            (loss / self.cfg.grad_accum).backward()
            totals += [float(loss.detach()), l_mask, l_rest]
            sigmas.append(sigma)
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.params, self.cfg.max_grad_norm))
        self.optimizer.step()
        loss, l_mask, l_rest = (float(x) for x in totals / self.cfg.grad_accum)
        return {"step": step + 1, "loss": loss, "loss_mask": l_mask, "loss_rest": l_rest,
                "lr": self.lr_at(step), "sigma": float(np.mean(sigmas)), "grad_norm": grad_norm}

    @torch.no_grad()
    def evaluate(self, sigmas: tuple[float, ...] = (0.25, 0.5, 0.75), seed: int = 12345) -> dict:
        """Mean L_mask / L_rest / loss over the first `eval_samples` samples with their first
        reference, at fixed noise levels and fixed noise: comparable between steps and runs."""
        self.transformer.eval()
        rows = []
        for index in range(min(len(self.dataset), max(1, self.cfg.eval_samples))):
            for k, sigma in enumerate(sigmas):
                g = torch.Generator().manual_seed(seed + 7919 * index + k)
                loss, l_mask, l_rest, _ = self.loss(index, 0, g, sigma)
                rows.append((float(loss), l_mask, l_rest))
        mean = np.nanmean(np.array(rows), axis=0)
        return {"loss": float(mean[0]), "loss_mask": float(mean[1]), "loss_rest": float(mean[2])}

    # -- checkpoints

    def checkpoint_dir(self, step: int) -> Path:
        return self.output / "checkpoints" / f"step-{step:06d}"

    def save_checkpoint(self) -> Path:
        from safetensors.torch import save_file

        from .export import json_default, peft_state_dict

        step = self.state.step
        final = self.checkpoint_dir(step)
        tmp = final.with_name(final.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        save_file(peft_state_dict(self.transformer), str(tmp / "adapter.safetensors"))
        torch.save(self.optimizer.state_dict(), tmp / "optimizer.pt")
        info = {"step": step, "resume_key": self.cfg.resume_key(), "config": asdict(self.cfg),
                "lora_info": {**self.cfg.lora_info(), "steps": step},
                "peft_config": json.loads(json.dumps(self.transformer.peft_config["default"].to_dict(),
                                                     default=json_default)),
                "history": self.state.history}
        (tmp / "state.json").write_text(json.dumps(info, indent=1))
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        self._prune_checkpoints()
        return final

    def _prune_checkpoints(self) -> None:
        folders = sorted(p for p in (self.output / "checkpoints").glob("step-*") if not p.name.endswith(".tmp"))
        for old in folders[: max(0, len(folders) - self.cfg.keep_checkpoints)]:
            shutil.rmtree(old, ignore_errors=True)

    def latest_checkpoint(self) -> Optional[Path]:
        folders = sorted(p for p in (self.output / "checkpoints").glob("step-*")
                         if (p / "state.json").is_file() and not p.name.endswith(".tmp"))
        return folders[-1] if folders else None

    def resume(self, checkpoint: Path) -> None:
        """Load adapter, optimizer and step from a checkpoint folder."""
        from peft.utils import set_peft_model_state_dict
        from safetensors.torch import load_file

        info = json.loads((checkpoint / "state.json").read_text())
        if info["resume_key"] != self.cfg.resume_key():
            raise InsertAnywhereError(
                f"Checkpoint '{checkpoint}' was trained with {info['resume_key']}, this run asks for "
                f"{self.cfg.resume_key()}; use the same settings or a new output folder.")
        result = set_peft_model_state_dict(self.transformer, load_file(str(checkpoint / "adapter.safetensors")))
        unexpected = getattr(result, "unexpected_keys", [])
        if unexpected:
            raise InsertAnywhereError(f"Checkpoint '{checkpoint}' has weights this model lacks: {unexpected[:3]}.")
        for p in self.params:
            p.data = p.data.float()
        self.optimizer.load_state_dict(torch.load(checkpoint / "optimizer.pt", map_location=self.device,
                                                  weights_only=True))
        self.state = TrainState(info["step"], info["history"])

    def _trim_log(self, step: int) -> None:
        """Drop log rows after `step` (written by a run that stopped before its next checkpoint)."""
        path = self.output / "train_log.jsonl"
        if path.is_file():
            rows = [x for x in path.read_text().splitlines() if x.strip() and json.loads(x)["step"] <= step]
            path.write_text("".join(r + "\n" for r in rows))

    # -- the loop

    def run(self, progress: Optional[Progress] = None, resume: bool = True) -> dict:
        """Prepare the data, resume if a checkpoint exists, train to `steps`, export both formats.

        Returns {"diffusers": path, "comfyui": path, "history": [...], "eval_before", "eval_after"}.
        """
        from .export import export_lora

        self.output.mkdir(parents=True, exist_ok=True)
        self.prepare(lambda done, total: self.log({"event": "cached", "sample": done, "of": total}))
        latest = self.latest_checkpoint() if resume else None
        if latest is not None:
            self.resume(latest)
            self._trim_log(self.state.step)
            self.log({"event": "resumed", "step": self.state.step, "from": str(latest)})
        before = self.evaluate()
        self.log({"event": "eval", "step": self.state.step, **before})
        log_file = open(self.output / "train_log.jsonl", "a", encoding="utf-8")
        started = time.time()
        try:
            for step in range(self.state.step, self.cfg.steps):
                row = self.train_step(step)
                if not math.isfinite(row["loss"]):
                    raise InsertAnywhereError(
                        f"The loss became {row['loss']} at step {step + 1}; lower the learning rate or use bf16/fp32.")
                row["seconds"] = time.time() - started
                self.state.step = step + 1
                self.state.history.append({k: row[k] for k in ("step", "loss", "loss_mask", "loss_rest")})
                log_file.write(json.dumps(row) + "\n")
                if self.cfg.log_every and (step + 1) % self.cfg.log_every == 0:
                    log_file.flush()
                    self.log(row)
                if self.cfg.save_every and (step + 1) % self.cfg.save_every == 0:
                    self.log({"event": "checkpoint", "step": step + 1, "path": str(self.save_checkpoint())})
                report(progress, step + 1, self.cfg.steps)
        finally:
            log_file.close()
        if self.latest_checkpoint() is None or self.latest_checkpoint() != self.checkpoint_dir(self.state.step):
            self.save_checkpoint()
        after = self.evaluate()
        self.log({"event": "eval", "step": self.state.step, **after})
        diffusers_path, comfy_path = export_lora(self.transformer, self.output, self.cfg.name,
                                                 info={**self.cfg.lora_info(), "steps": self.state.step})
        self.log({"event": "exported", "diffusers": str(diffusers_path), "comfyui": str(comfy_path)})
        return {"diffusers": diffusers_path, "comfyui": comfy_path, "history": self.state.history,
                "eval_before": before, "eval_after": after}


def train(cfg: TrainConfig, progress: Optional[Progress] = None, log: Optional[Log] = None, model=None) -> dict:
    """Train an insertion LoRA as configured (see `LoraTrainer.run`)."""
    return LoraTrainer(cfg, model=model, log=log).run(progress)
