"""ComfyUI V3 adapters of the pack: one module per pipeline stage, each exporting NODES."""

from __future__ import annotations

from ._comfy import ComfyExtension, io
from .models import register_model_folders


def all_nodes() -> list[type[io.ComfyNode]]:
    from . import insertion, masks, video

    return [*video.NODES, *masks.NODES, *insertion.NODES]


class InsertAnywhereExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        # ComfyUI 0.3.64 never calls on_load(), so the folders are registered here.
        from . import editor, video
        from .missing_models import remember_prompt
        from .routes import add_prompt_handlers
        from .samples import ensure_sample_inputs

        register_model_folders()
        editor.register_routes()
        video.register_routes()
        add_prompt_handlers(remember_prompt, editor.key_place_nodes_by_workflow)
        ensure_sample_inputs()
        return all_nodes()
