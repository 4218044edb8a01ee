"""The one module that imports ComfyUI's node API.

Every node imports `io`, `ui`, `ComfyExtension` from here, so pinning to a
versioned API (e.g. `comfy_api.v0_0_2`) is a one-line change below.
"""

from __future__ import annotations

import os
import uuid

import numpy as np

from comfy_api.latest import ComfyExtension, io, ui  # noqa: F401  (re-exported)

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


def check_input_file(name: str, what: str):
    """validate_inputs answer for a file picked from ComfyUI's input folder: True or the message."""
    import folder_paths

    if not name or not folder_paths.exists_annotated_filepath(name):
        return f"{what} '{name}' is not in ComfyUI's input folder; upload it or put it there and pick it again."
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

