"""Where each model file the pack's workflows name comes from, and one message for all missing ones.

The workflow builder writes these as `models` metadata (ComfyUI's Missing Models dialog), and the
loaders name the same source when a file is missing, so both always agree.
"""

from __future__ import annotations

from dataclasses import dataclass

WAN_REPACKAGED = "https://huggingface.co/Comfy-Org/Wan_2.1_ComfyUI_repackaged/resolve/main/split_files"
LORA_TRAINING = ("no download: train it with `insertanywhere build-triplets` + `insertanywhere train` + "
                 "`insertanywhere export-lora --out ComfyUI/models/loras` (README, 'Training the insertion LoRA'), "
                 "or bypass the LoRA node (select it, Ctrl+B) to run without it")


@dataclass(frozen=True)
class ModelSource:
    folder: str          # ComfyUI/models/<folder>
    name: str            # file name in it (a sub-folder for a diffusers pipeline)
    url: str             # a file URL, or the repository page for a whole folder
    is_folder: bool = False

    @property
    def where(self) -> str:
        if self.is_folder:
            return f"the whole repository {self.url} (e.g. `huggingface-cli download {_repo(self.url)} " \
                   f"--local-dir ComfyUI/models/{self.folder}/{self.name}`)"
        return self.url


def _repo(url: str) -> str:
    return url.split("huggingface.co/", 1)[-1]


def _sam2(size: str, repo_size: str) -> ModelSource:
    name = f"sam2.1_hiera_{size}.pt"
    return ModelSource("sam2", name, f"https://huggingface.co/facebook/sam2.1-hiera-{repo_size}/resolve/main/{name}")


def _wan(folder: str, name: str) -> ModelSource:
    return ModelSource(folder, name, f"{WAN_REPACKAGED}/{folder}/{name}")


def _folder(name: str, repo: str) -> ModelSource:
    return ModelSource("diffusers", name, f"https://huggingface.co/{repo}", is_folder=True)


SOURCES = [
    _sam2("tiny", "tiny"), _sam2("small", "small"), _sam2("base_plus", "base-plus"), _sam2("large", "large"),
    _wan("diffusion_models", "wan2.1_vace_1.3B_fp16.safetensors"),
    _wan("diffusion_models", "wan2.1_vace_14B_fp16.safetensors"),
    _wan("text_encoders", "umt5_xxl_fp16.safetensors"),
    _wan("text_encoders", "umt5_xxl_fp8_e4m3fn_scaled.safetensors"),
    _wan("vae", "wan_2.1_vae.safetensors"),
    _folder("Wan2.1-VACE-1.3B-diffusers", "Wan-AI/Wan2.1-VACE-1.3B-diffusers"),
    _folder("Wan2.1-VACE-14B-diffusers", "Wan-AI/Wan2.1-VACE-14B-diffusers"),
    _folder("FLUX.1-Kontext-dev", "black-forest-labs/FLUX.1-Kontext-dev"),
]
BY_NAME = {(source.folder, source.name): source for source in SOURCES}


def source(folder: str, name: str) -> ModelSource | None:
    return BY_NAME.get((folder, name))


def where_to_get(folder: str, name: str) -> str:
    """Where `name` for `folder` comes from, in words (a URL when it is a known download)."""
    known = source(folder, name)
    if known is not None:
        return known.where
    if folder == "loras":
        return LORA_TRAINING
    return "the model's own page (see the pack's README, 'Models')"


def missing_files_message(missing: list[tuple[str, str]]) -> str:
    """One message listing every missing (folder, name) with where to put it and where to get it."""
    lines = [f"{len(missing)} model file(s) are missing; put each into its folder, then refresh the page (R):"]
    for folder, name in missing:
        lines.append(f"  - ComfyUI/models/{folder}/{name}  <- {where_to_get(folder, name)}")
    return "\n".join(lines)
