"""The one module that imports ComfyUI's node API.

Every node imports `io`, `ui`, `ComfyExtension` from here, so pinning to a
versioned API (e.g. `comfy_api.v0_0_2`) is a one-line change below.
"""

from __future__ import annotations

import os
import re
import uuid
from typing import Mapping, Optional

import numpy as np

from comfy_api.latest import ComfyExtension, io, ui  # noqa: F401  (re-exported)

from insertanywhere.errors import InsertAnywhereError
from insertanywhere.progress import Progress


def progress_bar(total: int) -> Progress:
    """A core `progress(done, total)` callback driving ComfyUI's progress bar.

    Under the server every update also checks the Cancel button and raises
    ComfyUI's interrupt exception when it was pressed.
    """
    import comfy.utils

    bar = comfy.utils.ProgressBar(max(1, total))

    def update(done: int, new_total: int) -> None:
        bar.update_absolute(done, max(1, new_total))

    return update


# ---------------------------------------------------------------------------------------- combo inputs
#
# ComfyUI 0.3.64 never checks a V3 combo value against its list (its check runs only for V1 list
# types), and /prompt takes any value from any client. So every node re-checks its combos:
#   execute:         `check_combos(cls, locals())` as its first line (covers linked values too);
#   validate_inputs: `validate_combos(cls, name=value)` for the node's file combo, so /prompt refuses it
#                    before anything runs. Only the inputs named in validate_inputs' signature lose
#                    ComfyUI's own checks (type, min/max), so it names just that combo, never **kwargs.
# File names are then resolved by `input_file_path` / `models.model_path`, which refuse anything outside
# the allowed folder.


def combo_options(node_cls) -> dict[str, list]:
    """Every combo input of a node with its current options (the schema is rebuilt, so files added since
    the server started count)."""
    return _combos(node_cls)[0]


def _combos(node_cls) -> tuple[dict[str, list], str]:
    """(combo options, display name) from one rebuild of the node's schema."""
    inputs, schema = node_cls.INPUT_TYPES(include_hidden=False, return_schema=True)
    out = {}
    for section in ("required", "optional"):
        for name, spec in inputs.get(section, {}).items():
            kind = spec[0]
            if isinstance(kind, list):
                out[name] = kind
            elif kind == "COMBO":
                out[name] = list((spec[1] if len(spec) > 1 else {}).get("options", []))
    return out, getattr(schema, "display_name", None) or getattr(schema, "node_id", None) or node_cls.__name__


def _looks_like_path(value) -> bool:
    return isinstance(value, str) and (bool(re.search(r"[\\/]", value)) or value.startswith((".", "~"))
                                       or bool(re.match(r"^[A-Za-z]:", value)))


def combo_problems(node_cls, values: Mapping, *, links_unknown: bool = False) -> Optional[str]:
    """One message naming every combo in `values` whose value is not in its list, or None.

    links_unknown: at validation a linked input arrives as None; it is checked at execute."""
    options, display_name = _combos(node_cls)
    bad = []
    for name, value in values.items():
        if name not in options or (value is None and links_unknown):
            continue
        listed = options[name]
        if value in listed and isinstance(value, (str, int, float)) and not isinstance(value, bool):
            continue
        shown = ", ".join(repr(o) for o in listed[:6]) + (f", ... ({len(listed)} in all)" if len(listed) > 6 else "")
        hint = (" File paths are not accepted: put the file into its ComfyUI folder and pick its name."
                if _looks_like_path(value) and not any(value == o for o in listed) else "")
        bad.append(f"'{name}' = {str(value)[:200]!r} is not one of its options ({shown or 'none available'}).{hint}")
    if not bad:
        return None
    return f"{display_name}: " + " ".join(bad) + " Pick a value from the list (refresh the page " \
        "after adding files)."


def check_combos(node_cls, values: Mapping) -> None:
    """For execute: raise an InsertAnywhereError when a combo argument is not one of its options.
    Call as `check_combos(cls, locals())` on the first line (non-combo arguments are ignored)."""
    problem = combo_problems(node_cls, {k: v for k, v in values.items() if k != "cls"})
    if problem:
        raise InsertAnywhereError(problem)


def validate_combos(node_cls, **values):
    """For validate_inputs: True, or the message that makes /prompt refuse the workflow."""
    return combo_problems(node_cls, values, links_unknown=True) or True


def _outside(root: str, path: str) -> bool:
    try:
        return os.path.commonpath([root, path]) != root
    except ValueError:  # different drives
        return True


MAX_LISTED_DEPTH = 3      # input/a/b/c/file
MAX_LISTED_ENTRIES = 20_000


def input_files(suffixes: Optional[tuple[str, ...]] = None) -> list[str]:
    """Files under ComfyUI's input folder (sub-folders too, as 'sub/name'), for a combo's options.

    Bounded (depth and entries visited); hidden entries and linked folders are skipped, and a file link
    that leads out of the folder is not listed (input_file_path would refuse it)."""
    import folder_paths

    root = os.path.realpath(folder_paths.get_input_directory())
    found, visited = [], 0
    for current, dirs, files in os.walk(root):
        depth = 0 if current == root else os.path.relpath(current, root).count(os.sep) + 1
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and depth < MAX_LISTED_DEPTH
                         and not os.path.islink(os.path.join(current, d)))
        for name in files:
            visited += 1
            if name.startswith(".") or (suffixes and not name.lower().endswith(suffixes)):
                continue
            path = os.path.join(current, name)
            if os.path.isfile(path) and not _outside(root, os.path.realpath(path)):
                found.append(os.path.relpath(path, root).replace(os.sep, "/"))
        if visited > MAX_LISTED_ENTRIES:
            break
    return sorted(found)


UPLOAD_KEY = "insertanywhere_upload"  # read by js/file_upload.js


def file_combo(name: str, options: list[str], suffixes: tuple[str, ...], **kwargs) -> io.Combo.Input:
    """A combo of input-folder files with an upload button and a drop target on the node (js/file_upload.js).

    The button is the pack's own frontend widget, never serialized, so the node's widgets_values keep the
    order of its inputs. Files of the given suffixes dropped on the node are uploaded (POST /upload/image
    into input/) and picked, instead of reaching the frontend's workflow loader."""
    combo = io.Combo.Input(name, options=options, **kwargs)
    combo.extra_dict = {UPLOAD_KEY: {"suffixes": [s.lower() for s in suffixes]}}
    return combo


def input_file_path(name: str, what: str) -> str:
    """Real path of a file picked from ComfyUI's input folder. Refuses absolute paths, '..', annotated
    names and symlinks that lead out of the folder, with a message naming the fix."""
    import folder_paths

    root = os.path.realpath(folder_paths.get_input_directory())
    refuse = f"{what} {str(name)[:200]!r} is not a file in ComfyUI's input folder"
    if not isinstance(name, str) or not name:
        raise InsertAnywhereError(f"{refuse}; upload it or put it there and pick it again.")
    parts = re.split(r"[\\/]", name)
    if os.path.isabs(name) or re.match(r"^[A-Za-z]:", name) or ".." in parts:
        raise InsertAnywhereError(f"{refuse}: paths outside that folder are refused. Put the file into "
                                  "ComfyUI/input (or input/3d) and pick its name.")
    path = os.path.realpath(os.path.join(root, name))
    if _outside(root, path):
        raise InsertAnywhereError(f"{refuse}: it is a link to a place outside that folder, which is refused. "
                                  "Copy the file itself into ComfyUI/input.")
    if not os.path.isfile(path):
        raise InsertAnywhereError(f"{refuse}; upload it or put it there and pick it again.")
    return path


def check_input_file(name: str, what: str):
    """validate_inputs answer for a file picked from ComfyUI's input folder: True or the message."""
    if name is None:  # linked: checked at execute
        return True
    try:
        input_file_path(name, what)
    except InsertAnywhereError as exc:
        return str(exc)
    return True


def preview_video(frames: np.ndarray, fps: float, prefix: str = "ia_preview") -> ui.PreviewVideo:
    """Encode uint8 frames [F, H, W, 3] into the temp folder and show them on the node."""
    import folder_paths

    from insertanywhere.video import write_video

    name = f"{prefix}_{uuid.uuid4().hex[:8]}.mp4"
    write_video(os.path.join(folder_paths.get_temp_directory(), name), frames, fps)
    return ui.PreviewVideo([ui.SavedResult(name, "", io.FolderType.temp)])


def preview_image(frame: np.ndarray, node_cls) -> ui.PreviewImage:
    """Show one uint8 frame [H, W, 3] on the node."""
    from .tensors import frames_to_image

    return ui.PreviewImage(frames_to_image(frame[None]), cls=node_cls)


def with_warnings(preview, warnings: list[str], node: str) -> dict:
    """The node's UI output plus its warnings as text on the node (js/node_warnings.js shows them),
    each also logged; the same warnings the CLI prints (insertanywhere.masks.pipeline.run_warnings)."""
    import logging

    data = dict(preview.as_dict()) if hasattr(preview, "as_dict") else dict(preview or {})
    for warning in warnings:
        logging.warning("InsertAnywhere %s: warning: %s", node, warning)
    if warnings:
        from insertanywhere.masks.pipeline import warning_summary

        data["text"] = (warning_summary(list(warnings)),)
    return data

