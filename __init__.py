"""InsertAnywhere for ComfyUI: 4D-aware object insertion into videos.

Nothing from ComfyUI is imported at module level (pytest imports this file);
the nodes load lazily inside `comfy_entrypoint`.
"""

WEB_DIRECTORY = "./js"


async def comfy_entrypoint():
    import os
    import sys

    root = os.path.dirname(os.path.abspath(__file__))
    if root not in sys.path:  # the core package `insertanywhere` lives beside this file
        sys.path.insert(0, root)
    from .nodes import InsertAnywhereExtension

    return InsertAnywhereExtension()
