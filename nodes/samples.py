"""Sample inputs for the shipped workflows, written into ComfyUI's input folder once.

The templates load `insertanywhere_sample*` files, so they run out of the box
without any download; the files are rendered by the core's sample scene.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile

SAMPLE_PREFIX = "insertanywhere_sample"
SAMPLE_FILES = {  # bundle file -> name in the input folder
    "scene.mp4": f"{SAMPLE_PREFIX}.mp4",
    "depth_mono.npz": f"{SAMPLE_PREFIX}_depth_mono.npz",
    "object.ply": f"{SAMPLE_PREFIX}_object.ply",
    "object_ref.png": f"{SAMPLE_PREFIX}_ref.png",
    "object_ref_mask.png": f"{SAMPLE_PREFIX}_ref_mask.png",
    "placement.json": f"{SAMPLE_PREFIX}_placement.json",
}


def ensure_sample_inputs() -> None:
    """Render the sample scene into the input folder unless all its files are already there."""
    import folder_paths

    from insertanywhere.demo import bundled_sample

    input_dir = folder_paths.get_input_directory()
    if all(os.path.isfile(os.path.join(input_dir, name)) for name in SAMPLE_FILES.values()):
        return
    try:
        scene = bundled_sample()
        with tempfile.TemporaryDirectory() as tmp:
            bundle = scene.write_bundle(tmp)
            with open(os.path.join(bundle, "placement.json"), "w") as f:
                json.dump(scene.placement, f, indent=1)
            os.makedirs(input_dir, exist_ok=True)
            for source, name in SAMPLE_FILES.items():
                shutil.copyfile(os.path.join(bundle, source), os.path.join(input_dir, name))
    except Exception:  # a sample is a convenience: never block the pack from loading
        logging.exception("InsertAnywhere: could not write the sample inputs")
