"""InsertAnywhere for ComfyUI: 4D-aware object insertion into videos.

ComfyUI loads this folder as a package under its own name; the pack's `nodes` package is imported
relatively from here, never as a top-level `nodes` (that name is ComfyUI's nodes.py). Nothing from
ComfyUI is imported at module level (pytest imports this file); the nodes load lazily inside
`comfy_entrypoint`.
"""

WEB_DIRECTORY = "./js"


def make_core_importable() -> None:
    """Let `import insertanywhere` find the core package beside this file when the pack is only copied into
    custom_nodes (not pip-installed). The folder is appended, after ComfyUI's own entries: ahead of them,
    its `nodes`, `scripts` and `tests` folders would shadow modules of those names."""
    import importlib.util
    import os
    import sys

    root = os.path.dirname(os.path.abspath(__file__))
    if importlib.util.find_spec("insertanywhere") is None and root not in sys.path:
        sys.path.append(root)


async def comfy_entrypoint():
    make_core_importable()
    from .nodes import InsertAnywhereExtension

    return InsertAnywhereExtension()
