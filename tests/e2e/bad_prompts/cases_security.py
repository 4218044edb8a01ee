"""Issue #11 point 1 through the real server: the SAM2 config exploit and out-of-list combo values.

The exploit as reported: upload a YAML whose nested section is `_target_: os.makedirs` with ComfyUI's
own `POST /upload/image`, then queue an IA_SAM2Loader whose `config` names that file (bare name,
absolute path, or a `../` path). Each row must be refused or fail with a clear message, and `after`
checks that the folder the YAML would create does not exist. Other rows give file combos values that
no dropdown offers (paths outside the input or models folder).
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
import uuid
from pathlib import Path

from server_table import ServerCase

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/, for tiny_models

SAMPLE = "insertanywhere_sample"
CHECKPOINT = "tiny_sam2_security.pt"       # a tiny SAM2 with its (harmless) yaml beside it
BESIDE = "tiny_sam2_evil_beside.pt"        # a tiny SAM2 with a hostile yaml beside it
VICTIM = "made_by_uploaded_yaml"           # the folder the hostile yaml would create under tmp
NOT_LISTED = r"is not one of its options"


def _upload(server, name: str, data: bytes) -> str:
    """POST /upload/image (multipart, field 'image') as the browser does; returns the stored name."""
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{name}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + \
        f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"overwrite\"\r\n\r\ntrue\r\n--{boundary}--\r\n" \
        .encode()
    request = urllib.request.Request(server.url + "/upload/image", data=body,
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())["name"]


def _hostile_yaml(victim: Path) -> str:
    """The tiny SAM2 config with its image encoder replaced by os.makedirs (Hydra built nested sections
    first, so this created `victim` before the fix)."""
    from tiny_models import SAM2_TINY_YAML

    lines = SAM2_TINY_YAML.splitlines()
    start = lines.index("  image_encoder:")
    end = start + 1
    while len(lines[end]) - len(lines[end].lstrip()) > 2:
        end += 1
    section = ["    _target_: os.makedirs", f"    name: {victim}", "    exist_ok: true"]
    return "\n".join(lines[:start + 1] + section + lines[end:]) + "\n"


def _install_checkpoints(server, tmp: Path) -> None:
    from tiny_models import write_sam2

    folder = server.models_dir / "sam2"
    if not (folder / CHECKPOINT).is_file():
        write_sam2(folder, name=Path(CHECKPOINT).stem)
    if not (folder / BESIDE).is_file():
        write_sam2(folder, name=Path(BESIDE).stem)
    (folder / BESIDE).with_suffix(".yaml").write_text(_hostile_yaml(tmp / VICTIM))


def _sam2_prompt(config: str, checkpoint: str = CHECKPOINT) -> dict:
    """Load Video -> SAM2 Loader (config) -> SAM2 Refine -> preview: the loader runs only if validation passes."""
    return {
        "1": {"class_type": "IA_LoadVideo", "inputs": {
            "file": f"{SAMPLE}.mp4", "start_frame": 0, "frame_cap": 5, "stride": 1, "max_side": 0, "fit": "none",
            "frame_count": "any"}},
        "2": {"class_type": "IA_SAM2Loader", "inputs": {
            "checkpoint": checkpoint, "config": config, "working_resolution": 0, "device": "cpu",
            "precision": "float32"}},
        "3": {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": 320, "height": 192}},
        "4": {"class_type": "IA_SAM2Refine", "inputs": {
            "sam2": ["2", 0], "frames": ["1", 0], "masks": ["3", 0], "keyframe_interval": 8, "min_iou": 0.6,
            "min_area_ratio": 0.6, "max_area_ratio": 1.6, "band": 8}},
        "5": {"class_type": "MaskToImage", "inputs": {"mask": ["4", 0]}},
        "6": {"class_type": "PreviewImage", "inputs": {"images": ["5", 0]}},
    }


def _uploaded_config(form):
    """Upload the hostile yaml, then name it in `config` as `form(server, tmp, stored_name)` says."""

    def prompt(server, tmp: Path) -> dict:
        _install_checkpoints(server, tmp)
        name = _upload(server, f"evil_{uuid.uuid4().hex[:8]}.yaml", _hostile_yaml(tmp / VICTIM).encode())
        assert (server.input_dir / name).is_file()
        return _sam2_prompt(form(server, tmp, name))

    return prompt


def _no_victim(server, tmp: Path) -> None:
    assert not (tmp / VICTIM).exists(), f"the uploaded yaml's code ran: {tmp / VICTIM} exists"


def _with_sample(nodes: dict) -> dict:
    """A graph around the sample video: node '1' loads it, '3' is a full mask; `nodes` adds the rest."""
    base = {
        "1": {"class_type": "IA_LoadVideo", "inputs": {
            "file": f"{SAMPLE}.mp4", "start_frame": 0, "frame_cap": 5, "stride": 1, "max_side": 0, "fit": "none",
            "frame_count": "any"}},
        "3": {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": 320, "height": 192}},
    }
    return {**base, **nodes}


def _mesh(name_of):
    return lambda server, tmp: {
        "1": {"class_type": "IA_ObjectFromMesh", "inputs": {"mesh_file": name_of(server, tmp)}},
        "2": {"class_type": "IA_Reconstruct4D", "inputs": {
            "frames": ["3", 0], "fps": 16.0, "depth_file": "none (video only)", "fov_deg": 0.0, "intrinsics": "",
            "disk_cache": False}},
        "3": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 2, "color": 0}},
        "4": {"class_type": "IA_PlaceObject", "inputs": {
            "scene": ["2", 0], "object": ["1", 0], "placement": "{}", "stand_upright": "auto"}},
        "5": {"class_type": "PreviewImage", "inputs": {"images": ["4", 1]}},
    }


def _depth(name_of):
    def prompt(server, tmp: Path) -> dict:
        return _with_sample({
            "2": {"class_type": "IA_Reconstruct4D", "inputs": {
                "frames": ["1", 0], "fps": ["1", 1], "depth_file": name_of(server, tmp), "fov_deg": 0.0,
                "intrinsics": "", "disk_cache": False}},
            "4": {"class_type": "PreviewImage", "inputs": {"images": ["2", 2]}},
        })

    return prompt


def _outside_npz(server, tmp: Path) -> str:
    """A real depth file, but outside the input folder."""
    import numpy as np

    path = tmp / "outside_depth.npz"
    np.savez(path, disparity=np.ones((5, 192, 320), np.float32))
    return str(path)


def _lora(name_of):
    def prompt(server, tmp: Path) -> dict:
        return _with_sample({
            "2": {"class_type": "IA_WanVACELoader", "inputs": {
                "diffusers_folder": "none", "transformer": "from diffusers folder", "vae": "from diffusers folder",
                "text_encoder": "from diffusers folder", "precision": "auto", "offload": "none",
                "fp8_layerwise": False, "vae_tiling": False}},
            "4": {"class_type": "IA_WanVACELoRA", "inputs": {"model": ["2", 0], "lora": name_of(server, tmp),
                                                             "strength": 1.0}},
            "5": {"class_type": "IA_VACEInsert", "inputs": {
                "model": ["4", 0], "frames": ["1", 0], "masks": ["3", 0], "first_frame": ["1", 0],
                "mask_fill": "gray", "mask_grow": 4, "max_side": 0, "prompt": "a mug", "negative_prompt": "",
                "seed": 0, "steps": 1, "cfg": 1.0, "shift": 3.0, "scheduler": "unipc", "conditioning_scale": 1.0,
                "window": 81, "overlap": 9, "colour_lock": True}},
            "6": {"class_type": "PreviewImage", "inputs": {"images": ["5", 0]}},
        })

    return prompt


def _outside_lora(server, tmp: Path) -> str:
    from safetensors.torch import save_file
    import torch

    path = tmp / "outside_lora.safetensors"
    save_file({"blocks.0.self_attn.q.lora_A.weight": torch.zeros(4, 128),
               "blocks.0.self_attn.q.lora_B.weight": torch.zeros(128, 4)}, str(path))
    return str(path)


def _kontext(name_of):
    def prompt(server, tmp: Path) -> dict:
        return _with_sample({
            "2": {"class_type": "IA_FluxKontextInpaintLoader", "inputs": {
                "folder": name_of(server, tmp), "precision": "auto", "offload": "none"}},
            "4": {"class_type": "IA_FirstFrameInpaint", "inputs": {
                "frames": ["1", 0], "masks": ["3", 0], "method": "kontext", "prompt": "a mug", "seed": 0,
                "steps": 1, "guidance": 2.5, "resolution": "input", "colour_strength": 0.3, "harmonize": 0.15,
                "inpainter": ["2", 0]}},
            "5": {"class_type": "PreviewImage", "inputs": {"images": ["4", 0]}},
        })

    return prompt


def _refused(node: str, name: str, value: str, tail: str = "") -> str:
    """The refusal /prompt gives: that node's errors name the input, the value and the rule."""
    return (rf"^refused: (?=.*\"class_type\": \"{node}\").*custom_validation_failed"
            rf".*'{name}' = '{value}' {NOT_LISTED}{tail}")


CASES = [
    ServerCase("SAM2 config: uploaded yaml (_target_ os.makedirs) named by its bare name",
               _uploaded_config(lambda server, tmp, name: name),
               _refused("IA_SAM2Loader", "config", r"evil_[0-9a-f]{8}\.yaml",
                        r" \('auto', 'sam2.1/sam2.1_hiera_b\+.yaml', .*Pick a value from the list"), after=_no_victim),
    ServerCase("SAM2 config: uploaded yaml (_target_ os.makedirs) named by its absolute path",
               _uploaded_config(lambda server, tmp, name: str(server.input_dir / name)),
               _refused("IA_SAM2Loader", "config", r"/.*/input/evil_[0-9a-f]{8}\.yaml",
                        r" .*File paths are not accepted"),
               after=_no_victim),
    ServerCase("SAM2 config: uploaded yaml (_target_ os.makedirs) named by a ../ path from ComfyUI's folder",
               _uploaded_config(lambda server, tmp, name: os.path.relpath(server.input_dir / name,
                                                                          os.environ.get("COMFYUI_PATH", "."))),
               _refused("IA_SAM2Loader", "config", r"\.\./.*evil_[0-9a-f]{8}\.yaml"), after=_no_victim),
    ServerCase("SAM2 config: uploaded yaml (_target_ os.makedirs) named by a ../ path from the sam2 configs",
               _uploaded_config(lambda server, tmp, name: "sam2.1/../../../../../../../../.." + str(server.input_dir /
                                                                                                  name)),
               _refused("IA_SAM2Loader", "config", r"sam2.1/\.\./.*evil_[0-9a-f]{8}\.yaml"), after=_no_victim),
    ServerCase("SAM2 config 'auto' with a _target_ os.makedirs yaml beside the checkpoint",
               lambda server, tmp: (_install_checkpoints(server, tmp), _sam2_prompt("auto", BESIDE))[1],
               r"^error: .*SAM2 config '.*tiny_sam2_evil_beside.yaml': _target_ 'os.makedirs' is not accepted "
               r"\(only sam2.modeling.backbones.image_encoder.ImageEncoder belongs there\) at "
               r"'model.image_encoder._target_'. Classes and code are never taken from a config file",
               after=_no_victim),
    ServerCase("Object to 3D mesh_file '../../etc/passwd'",
               _mesh(lambda server, tmp: "../../etc/passwd"),
               _refused("IA_ObjectFromMesh", "mesh_file", r"\.\./\.\./etc/passwd")),
    ServerCase("4D Reconstruct depth_file: absolute path of a real .npz outside the input folder",
               _depth(_outside_npz), _refused("IA_Reconstruct4D", "depth_file", "/.*/outside_depth.npz")),
    ServerCase("4D Reconstruct depth_file: ../ path to a .npz outside the input folder",
               _depth(lambda server, tmp: os.path.relpath(_outside_npz(server, tmp), server.input_dir)),
               _refused("IA_Reconstruct4D", "depth_file", r"\.\./.*outside_depth.npz")),
    ServerCase("Wan VACE LoRA: absolute path of a LoRA outside models/loras",
               _lora(_outside_lora), _refused("IA_WanVACELoRA", "lora", "/.*/outside_lora.safetensors")),
    ServerCase("Wan VACE LoRA: ../sam2/<checkpoint> (a file in another models folder)",
               _lora(lambda server, tmp: f"../sam2/{CHECKPOINT}"),
               _refused("IA_WanVACELoRA", "lora", rf"\.\./sam2/{CHECKPOINT}")),
    ServerCase("Flux Kontext Loader folder '../../..' (a diffusers folder outside models/diffusers)",
               _kontext(lambda server, tmp: "../../.."),
               _refused("IA_FluxKontextInpaintLoader", "folder", r"\.\./\.\./\.\.")),
    ServerCase("Load Video file: absolute path outside the input folder",
               lambda server, tmp: {**_with_sample({"4": {"class_type": "PreviewImage", "inputs": {
                   "images": ["1", 0]}}}), "1": {"class_type": "IA_LoadVideo", "inputs": {
                       "file": str(server.input_dir.parent / "input" / ".." / "output" / "x.mp4"), "start_frame": 0,
                       "frame_cap": 5, "stride": 1, "max_side": 0, "fit": "none", "frame_count": "any"}}},
               r"^refused: (?=.*\"class_type\": \"IA_LoadVideo\").*Video file '/.*x.mp4' is not a file in ComfyUI's "
               r"input folder: paths outside that folder are refused"),
    ServerCase("Load Video fit 'stretch' (not one of its options)",
               lambda server, tmp: {**_with_sample({"4": {"class_type": "PreviewImage", "inputs": {
                   "images": ["1", 0]}}}), "1": {"class_type": "IA_LoadVideo", "inputs": {
                       "file": f"{SAMPLE}.mp4", "start_frame": 0, "frame_cap": 5, "stride": 1, "max_side": 0,
                       "fit": "stretch", "frame_count": "any"}}},
               r"^error: .*Load Video \(InsertAnywhere\): 'fit' = 'stretch' is not one of its options \('crop', "),
]
