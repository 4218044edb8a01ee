"""Tier (b), issue #12 point 2: missing model files are named all at once, with folder and source.

ComfyUI's own validate_prompt runs on a prompt whose models folders are empty: the first of the pack's
loaders lists every missing file of the workflow (the pack's and core's loaders), the other loaders their
own; a loader's execute names all of its missing files in one error.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys

import pytest

from insertanywhere.model_catalog import source

SAM2 = "sam2.1_hiera_tiny.pt"
UNET = "wan2.1_vace_1.3B_fp16.safetensors"
VAE = "wan_2.1_vae.safetensors"
CLIP = "umt5_xxl_fp16.safetensors"
FOLDER = "Wan2.1-VACE-1.3B-diffusers"
LORA = "not_trained_yet_lora.safetensors"


@pytest.fixture(autouse=True)
def empty_model_folders(node_classes, tmp_path_factory, monkeypatch):
    """Every model folder empty for these tests, whatever other tests of the session installed."""
    import folder_paths

    empty = tmp_path_factory.mktemp("no_models")
    for name, (_, extensions) in list(folder_paths.folder_names_and_paths.items()):
        monkeypatch.setitem(folder_paths.folder_names_and_paths, name, ([str(empty / name)], extensions))
    folder_paths.filename_list_cache.clear()
    yield
    folder_paths.filename_list_cache.clear()


def _pack(node_classes, name: str):
    package = node_classes["IA_ObjectFromMesh"].__module__.rsplit(".", 1)[0]
    return sys.modules[f"{package}.{name}"]


def _prompt() -> dict:
    """SAM2 and the diffusers route's loaders plus the core Wan loaders, each with files nobody installed."""
    return {
        "3": {"class_type": "IA_SAM2Loader", "inputs": {"checkpoint": SAM2, "config": "auto", "working_resolution": 0,
                                                         "device": "cpu", "precision": "float32"}},
        "5": {"class_type": "IA_WanVACELoader", "inputs": {
            "diffusers_folder": FOLDER, "transformer": "from diffusers folder", "vae": "from diffusers folder",
            "text_encoder": "from diffusers folder", "precision": "auto", "offload": "none", "fp8_layerwise": False,
            "vae_tiling": False}},
        "6": {"class_type": "IA_WanVACELoRA", "inputs": {"model": ["5", 0], "lora": LORA, "strength": 1.0}},
        "7": {"class_type": "UNETLoader", "inputs": {"unet_name": UNET, "weight_dtype": "default"}},
        "8": {"class_type": "VAELoader", "inputs": {"vae_name": VAE}},
        "9": {"class_type": "CLIPLoader", "inputs": {"clip_name": CLIP, "type": "wan", "device": "default"}},
    }


def _validate_in_request(node_classes, prompt: dict, node_id: str):
    """ComfyUI's validation of one node as in a /prompt request: the on_prompt handler first, same context."""
    import execution

    missing_models = _pack(node_classes, "missing_models")

    def request():
        missing_models.remember_prompt({"prompt": prompt})
        return asyncio.run(execution.validate_inputs("test", prompt, node_id, {}))

    ok, errors, _ = contextvars.copy_context().run(request)
    return ok, " ".join(e["details"] for e in errors if e["type"] == "custom_validation_failed")


def test_first_pack_loader_lists_every_missing_file_of_the_workflow(node_classes):
    ok, message = _validate_in_request(node_classes, _prompt(), "3")
    assert not ok and message.count("  - ComfyUI/models/") == 6, message
    for folder, name in [("sam2", SAM2), ("diffusers", FOLDER), ("loras", LORA), ("diffusion_models", UNET),
                         ("vae", VAE), ("text_encoders", CLIP)]:
        assert f"ComfyUI/models/{folder}/{name}" in message
    for folder, name in [("sam2", SAM2), ("diffusion_models", UNET), ("vae", VAE), ("text_encoders", CLIP)]:
        assert source(folder, name).url in message
    assert "huggingface-cli download Wan-AI/" + FOLDER in message
    assert "insertanywhere build-triplets" in message and "Ctrl+B" in message  # the LoRA: train it or bypass


def test_other_loaders_list_only_their_own_files(node_classes):
    ok, message = _validate_in_request(node_classes, _prompt(), "6")
    assert not ok and message.count("  - ComfyUI/models/") == 1 and f"ComfyUI/models/loras/{LORA}" in message
    ok, message = _validate_in_request(node_classes, _prompt(), "5")
    assert not ok and message.count("  - ComfyUI/models/") == 1 and FOLDER in message


def test_nothing_missing_passes_and_outside_a_request_each_loader_checks_itself(node_classes, tmp_path):
    import execution
    import folder_paths

    (tmp_path / "loras").mkdir()
    (tmp_path / "loras" / LORA).write_bytes(b"x")
    paths, extensions = folder_paths.folder_names_and_paths["loras"]
    folder_paths.folder_names_and_paths["loras"] = ([*paths, str(tmp_path / "loras")], extensions)
    folder_paths.filename_list_cache.pop("loras", None)
    try:
        wan = _prompt()["5"]
        wan["inputs"]["diffusers_folder"] = "none"  # single files "from diffusers folder": nothing to find
        prompt = {"5": wan, "6": _prompt()["6"]}
        ok, message = _validate_in_request(node_classes, prompt, "6")
        assert ok and not message
        prompt["6"]["inputs"]["lora"] = "other.safetensors"
        ok, errors, _ = asyncio.run(execution.validate_inputs("test", prompt, "6", {}))  # no request: own input
        assert not ok and "ComfyUI/models/loras/" in errors[0]["details"]
    finally:
        folder_paths.folder_names_and_paths["loras"] = (paths, extensions)
        folder_paths.filename_list_cache.pop("loras", None)  # its cached list still holds the file


def test_execute_names_every_missing_file_of_the_loader_at_once(node_classes):
    from comfy_api.latest import io

    from insertanywhere.errors import MissingModelsError

    loader = node_classes["IA_WanVACELoader"].PREPARE_CLASS_CLONE({io.Hidden.unique_id: "1"})
    with pytest.raises(MissingModelsError) as error:
        loader.EXECUTE_NORMALIZED(diffusers_folder=FOLDER, transformer=UNET, vae=VAE, text_encoder=CLIP,
                                  precision="auto", offload="none", fp8_layerwise=False, vae_tiling=False)
    assert sorted(error.value.missing) == sorted([("diffusers", FOLDER), ("diffusion_models", UNET), ("vae", VAE),
                                                  ("text_encoders", CLIP)])
    for folder, name in error.value.missing:
        assert f"= {name!r} is not one of its options: there is no such file in ComfyUI/models/{folder}/" \
               in str(error.value)
