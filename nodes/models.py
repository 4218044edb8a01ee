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
import re

from insertanywhere.errors import InsertAnywhereError, MissingModelsError, ModelNotFoundError
from insertanywhere.model_catalog import where_to_get

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


def check_relative_name(name: str, what: str) -> None:
    """Refuse a name that is an absolute path or climbs out with '..' (a name from a list never does)."""
    if name is None or name == "":
        return
    if not isinstance(name, str):
        raise InsertAnywhereError(f"{what}: {str(name)[:200]!r} is not a file name; pick one from the list.")
    if not is_plain_name(name):
        raise InsertAnywhereError(f"Model {str(name)[:200]!r} is a path, not a name from the '{what}' models list: "
                                  f"paths outside the models folder are refused. Put the file into "
                                  f"ComfyUI/models/{what}/ and pick its name.")


def inside_any(path: str, roots: list[str]) -> bool:
    """Whether `path` lies (lexically, after normalising) under one of `roots`. Links the admin placed in a
    models folder are followed, as ComfyUI's own loaders do; names from a request cannot add links."""
    path = os.path.normpath(os.path.abspath(path))
    for root in roots:
        root = os.path.normpath(os.path.abspath(root))
        try:
            if os.path.commonpath([root, path]) == root and path != root:
                return True
        except ValueError:
            continue
    return False


def model_path(folder: str, name: str) -> str:
    """Full path of `name` in a models folder, or a ModelNotFoundError naming both."""
    import folder_paths

    check_relative_name(name, folder)
    roots = folder_paths.get_folder_paths(folder) if folder in folder_paths.folder_names_and_paths else []
    path = folder_paths.get_full_path(folder, name) if name else None
    if path is None or not os.path.exists(path) or not inside_any(path, roots):
        raise ModelNotFoundError(folder, name or "<none selected>", roots)
    return path


def is_plain_name(value: str) -> bool:
    return not (os.path.isabs(value) or re.match(r"^[A-Za-z]:", value) or ".." in re.split(r"[\\/]", value))


def missing_files(node_cls, files: dict[str, tuple[str, object]]) -> list[tuple[str, str, str]]:
    """(input, folder, name) of each file input {input: (folder, value)} whose name is not in its dropdown,
    i.e. not in its models folder now. Paths are left to the combo check, which refuses them."""
    from ._comfy import combo_options

    options = combo_options(node_cls)
    return [(input_name, folder, value) for input_name, (folder, value) in files.items()
            if isinstance(value, str) and value and is_plain_name(value) and value not in options.get(input_name, [])]


def _display_name(node_cls) -> str:
    _, schema = node_cls.INPUT_TYPES(include_hidden=False, return_schema=True)  # works on ComfyUI's locked clones
    return schema.display_name or schema.node_id


def missing_models_problem(node_cls, files: dict[str, tuple[str, object]]) -> str | None:
    """One message naming every missing file of the node (its folder and where to get it), or None."""
    missing = missing_files(node_cls, files)
    if not missing:
        return None
    parts = [f"'{name}' = {value!r} is not one of its options: there is no such file in ComfyUI/models/{folder}/ "
             f"(get it from: {where_to_get(folder, value)})." for name, folder, value in missing]
    return f"{_display_name(node_cls)}: " + " ".join(parts) + \
        " Put the files into their folders, then refresh the page (R)."


def require_models(node_cls, files: dict[str, tuple[str, object]]) -> None:
    """For execute: raise one error naming every missing file of the node at once."""
    problem = missing_models_problem(node_cls, files)
    if problem:
        raise MissingModelsError(problem, [(folder, value) for _, folder, value in missing_files(node_cls, files)])


def _diffusers_roots() -> list[str]:
    import folder_paths

    try:
        return folder_paths.get_folder_paths("diffusers")
    except KeyError:
        return []


def diffusers_folders() -> list[str]:
    """Sub-folders (relative names) of the `diffusers` models folders that hold a model_index.json."""
    found = set()
    for root in _diffusers_roots():
        if not os.path.isdir(root):
            continue
        for current, dirs, files in os.walk(root, followlinks=True):
            if "model_index.json" in files:
                found.add(os.path.relpath(current, root).replace(os.sep, "/"))
                dirs.clear()
    return sorted(found)


def diffusers_path(name: str) -> str:
    check_relative_name(name, "diffusers")
    for root in _diffusers_roots():
        path = os.path.join(root, name)
        if inside_any(path, [root]) and os.path.isfile(os.path.join(path, "model_index.json")):
            return path
    raise ModelNotFoundError("diffusers", name, _diffusers_roots())
