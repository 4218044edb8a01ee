"""Model folders of the pack, registered with ComfyUI's folder_paths.

| folder            | holds                                           |
| sam2              | SAM2 / SAM2.1 checkpoints (+ their .yaml config) |
| depth_estimation  | monocular depth checkpoints                     |
| loras             | (core folder) insertion LoRAs                   |
| diffusion_models  | (core folder) Wan VACE single-file checkpoints  |
| diffusers         | (core folder) local diffusers pipeline folders  |
"""

from __future__ import annotations

import os

from insertanywhere.errors import ModelNotFoundError

PACK_FOLDERS = {
    "sam2": {".pt", ".pth", ".safetensors"},
    "depth_estimation": {".pt", ".pth", ".safetensors", ".bin"},
}


def register_model_folders() -> None:
    """Add the pack's folders under ComfyUI/models (keeping paths other packs registered)."""
    import folder_paths

    for name, extensions in PACK_FOLDERS.items():
        default = os.path.join(folder_paths.models_dir, name)
        paths, exts = folder_paths.folder_names_and_paths.get(name, ([], set()))
        if default not in paths:
            paths = [*paths, default]
        folder_paths.folder_names_and_paths[name] = (paths, set(exts) | extensions)


def model_options(folder: str) -> list[str]:
    import folder_paths

    try:
        return sorted(folder_paths.get_filename_list(folder))
    except KeyError:
        return []


def model_path(folder: str, name: str) -> str:
    """Full path of `name` in a models folder, or a ModelNotFoundError naming both."""
    import folder_paths

    path = folder_paths.get_full_path(folder, name) if name else None
    if path is None or not os.path.exists(path):
        searched = folder_paths.get_folder_paths(folder) if folder in folder_paths.folder_names_and_paths else []
        raise ModelNotFoundError(folder, name or "<none selected>", searched)
    return path
