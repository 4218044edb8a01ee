"""Every missing model file of a queued workflow in one message, before anything runs.

ComfyUI validates node by node and gives a validate_inputs only its own inputs. So the pack keeps the
prompt being validated in a context variable (set by an on_prompt handler, which ComfyUI calls in the
same request just before validation; a context variable cannot leak into another request), and the first
of the pack's loaders in the workflow reports every missing file of every known loader (the pack's and
core's), with its folder and where to get it. The other loaders report their own missing files.
"""

from __future__ import annotations

import contextvars

from insertanywhere.model_catalog import missing_files_message

from .models import diffusers_folders, is_plain_name, model_options

FILE_INPUTS = {  # node type -> {input: models folder}
    "IA_SAM2Loader": {"checkpoint": "sam2"},
    "IA_WanVACELoader": {"diffusers_folder": "diffusers", "transformer": "diffusion_models", "vae": "vae",
                         "text_encoder": "text_encoders"},
    "IA_WanVACELoRA": {"lora": "loras"},
    "IA_FluxKontextInpaintLoader": {"folder": "diffusers"},
    "UNETLoader": {"unet_name": "diffusion_models"},
    "CLIPLoader": {"clip_name": "text_encoders"},
    "VAELoader": {"vae_name": "vae"},
    "LoraLoaderModelOnly": {"lora_name": "loras"},
    "LoraLoader": {"lora_name": "loras"},
    "CheckpointLoaderSimple": {"ckpt_name": "checkpoints"},
}
NOT_A_FILE = {"none", "from diffusers folder"}  # the pack loaders' "use nothing / use the folder" choices
_PROMPT: contextvars.ContextVar = contextvars.ContextVar("insertanywhere_prompt", default=None)


def remember_prompt(json_data):
    """on_prompt handler: keep the prompt for this request's validation; the request is not changed."""
    prompt = json_data.get("prompt") if isinstance(json_data, dict) else None
    _PROMPT.set(prompt if isinstance(prompt, dict) else None)
    return json_data


def _available(folder: str) -> set[str]:
    if folder == "diffusers":
        return set(diffusers_folders())
    return set(model_options(folder))


def missing_in(prompt: dict) -> list[tuple[str, str]]:
    """(folder, name) of every file a known loader of `prompt` names that is not in its folder, in node order."""
    wanted = []
    for node_id in sorted(prompt, key=lambda k: (len(str(k)), str(k))):
        node = prompt[node_id] if isinstance(prompt[node_id], dict) else {}
        inputs = node.get("inputs") if isinstance(node.get("inputs"), dict) else {}
        for name, folder in FILE_INPUTS.get(node.get("class_type"), {}).items():
            value = inputs.get(name)
            if (isinstance(value, str) and value and value not in NOT_A_FILE and is_plain_name(value)
                    and (folder, value) not in wanted):
                wanted.append((folder, value))
    cache: dict[str, set[str]] = {}
    return [(folder, name) for folder, name in wanted
            if name not in cache.setdefault(folder, _available(folder))]


def workflow_problem(node_id) -> str | None:
    """For a pack loader's validate_inputs, while a queued prompt is validated: the first pack loader of the
    prompt lists the whole workflow's missing files, the others their own; None when nothing is missing or
    no prompt is known (then the loader checks its own inputs)."""
    prompt = _PROMPT.get()
    if not prompt or str(node_id) not in prompt:
        return None
    loaders = [k for k, node in prompt.items() if isinstance(node, dict)
               and str(node.get("class_type", "")).startswith("IA_") and node.get("class_type") in FILE_INPUTS]
    if str(node_id) == min(loaders, key=lambda k: (len(str(k)), str(k))):
        missing, scope = missing_in(prompt), "This workflow: "
    else:
        missing, scope = missing_in({str(node_id): prompt[str(node_id)]}), "This node: "
    return scope + missing_files_message(missing) if missing else None
