"""First-frame inpainting: put the object into frame 0 at its projected mask.

Backends
  kontext  diffusers `FluxKontextInpaintPipeline` from a local folder: scene image + mask +
           reference object image (`image_reference`) + prompt. The result is pasted back through
           the feathered mask, so only the masked region changes.
  poisson  no weights: the anchor render (the object drawn at its placement) is colour-matched
           to the scene around it and blended in with Poisson blending (`cv2.seamlessClone`).
Any other inpainting (a native ComfyUI graph) works too: the VACE nodes take any IMAGE as the
first frame.

Shapes: scene / render / result uint8 [H, W, 3]; mask bool [H, W]; reference uint8 [h, w, 3].
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch

from ..errors import InsertAnywhereError
from ..progress import Progress, report
from .checkpoints import check_folder
from .composite import blend_alpha
from .options import KontextOptions


def _check(scene: np.ndarray, mask: np.ndarray) -> None:
    if scene.ndim != 3 or scene.shape[-1] != 3 or scene.dtype != np.uint8:
        raise InsertAnywhereError(f"The scene frame must be uint8 [H, W, 3], got {scene.dtype} {scene.shape}.")
    if mask.shape != scene.shape[:2]:
        raise InsertAnywhereError(f"Mask {mask.shape} does not match the frame {scene.shape[:2]}.")
    if not mask.any():
        raise InsertAnywhereError(
            "The object mask of frame 0 is empty: the object is not visible in the first frame. "
            "Place it where the first frame sees it (or trim the video so it starts when the object is in view)."
        )


def _ring(mask: np.ndarray, width: int) -> np.ndarray:
    import cv2

    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))
    return (cv2.dilate(mask.astype(np.uint8), kernel) > 0) & ~mask


def match_colours(render: np.ndarray, scene: np.ndarray, mask: np.ndarray, strength: float = 0.3,
                  ring: int = 12) -> np.ndarray:
    """Give the object some of the scene's light: Lab lightness moved `strength` of the way toward the
    scene right around the object, chroma shifted by `strength` of the scene's overall colour cast
    (grey-world). The object keeps its own colours and contrast.
    """
    import cv2

    around = _ring(mask, ring)
    if strength <= 0 or not around.any():
        return render
    lab_render = cv2.cvtColor(render, cv2.COLOR_RGB2LAB).astype(np.float32)
    lab_scene = cv2.cvtColor(scene, cv2.COLOR_RGB2LAB).astype(np.float32)
    shift = np.zeros(3, np.float32)
    shift[0] = lab_scene[around][:, 0].mean() - lab_render[mask][:, 0].mean()
    shift[1:] = lab_scene[..., 1:].reshape(-1, 2).mean(0) - 128.0
    out = lab_render.copy()
    out[mask] = np.clip(out[mask] + strength * shift, 0, 255)
    return cv2.cvtColor(out.round().astype(np.uint8), cv2.COLOR_LAB2RGB)


def poisson_insert(scene: np.ndarray, render: np.ndarray, mask: np.ndarray, *, colour_strength: float = 0.3,
                   harmonize: float = 0.15, edge: int = 4, pad: int = 16) -> np.ndarray:
    """Blend the object pixels of `render` into `scene` inside `mask` with Poisson blending.

    render: the object drawn at its frame-0 placement (pixels outside `mask` are ignored).
    Plain Poisson blending (`cv2.seamlessClone`) takes the region's absolute colours from its
    border, which turns a red mug on a white table white. So the Poisson correction
    (blended - pasted, a smooth field) is applied in full within `edge` pixels of the border
    (a seamless edge) and only `harmonize` of it deeper inside (the object keeps its colours
    and takes some of the scene's light). Pixels outside the mask are exactly the scene's.
    """
    import cv2

    _check(scene, mask)
    if render.shape != scene.shape:
        raise InsertAnywhereError(f"The render {render.shape} must have the frame's size {scene.shape}.")
    mask = mask.astype(bool)
    pasted = scene.copy()
    pasted[mask] = match_colours(render, scene, mask, colour_strength)[mask]
    # Padding keeps the mask off the border, where seamlessClone would shift or refuse the region.
    border = ((pad, pad), (pad, pad), (0, 0))
    src = np.pad(pasted, border, mode="reflect")
    dst = np.pad(scene, border, mode="reflect")
    m = np.pad(mask.astype(np.uint8) * 255, border[:2])
    x, y, w, h = cv2.boundingRect(m)
    blended = cv2.seamlessClone(src, dst, m, (x + w // 2, y + h // 2), cv2.NORMAL_CLONE)[pad:-pad, pad:-pad]
    depth = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)
    weight = harmonize + (1.0 - harmonize) * np.exp(-np.maximum(depth - 1.0, 0.0) / max(edge, 1e-3))
    correction = blended.astype(np.float32) - pasted.astype(np.float32)
    out = scene.copy()
    mixed = pasted.astype(np.float32) + weight[..., None] * correction
    out[mask] = np.clip(mixed[mask].round(), 0, 255).astype(np.uint8)
    return out


# --------------------------------------------------------------------------------------------- Flux Kontext


def load_kontext(folder: Union[str, Path], device: Union[str, torch.device] = "cpu",
                 dtype: Optional[torch.dtype] = None, offload: str = "none"):
    """FluxKontextInpaintPipeline from a local diffusers folder (e.g. FLUX.1-Kontext-dev)."""
    from diffusers import FluxKontextInpaintPipeline

    folder = check_folder(folder, "Flux Kontext", ["model_index.json", "transformer", "vae"])
    device = torch.device(device)
    dtype = dtype or (torch.bfloat16 if device.type == "cuda" else torch.float32)
    try:
        pipe = FluxKontextInpaintPipeline.from_pretrained(str(folder), torch_dtype=dtype, local_files_only=True)
    except Exception as exc:
        raise InsertAnywhereError(
            f"Cannot load a Flux Kontext inpaint pipeline from '{folder}' ({exc}). Use a complete diffusers folder "
            "of FLUX.1-Kontext-dev."
        ) from exc
    pipe.set_progress_bar_config(disable=True)
    if offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif offload == "none":
        pipe.to(device)
    else:
        raise InsertAnywhereError(f"Unknown offload mode '{offload}' for Flux Kontext; use none or model.")
    return pipe


def kontext_inpaint(pipe, scene: np.ndarray, mask: np.ndarray, reference: Optional[np.ndarray], prompt: str,
                    options: Optional[KontextOptions] = None, *, progress: Optional[Progress] = None) -> np.ndarray:
    """Inpaint the object into `scene` inside `mask` with Flux Kontext; only the (grown, feathered) mask changes.

    options: KontextOptions (steps, guidance, strength, seed, resolution, grow, feather); None: the
    defaults. resolution "preferred" lets Kontext pick its trained resolution (best quality);
    "input" keeps the frame's size (snapped to 16).
    """
    from PIL import Image

    from .conditioning import grow_masks, resize_frames

    _check(scene, mask)
    options = KontextOptions() if options is None else options
    steps, grow, resolution = options.steps, options.grow, options.resolution
    height, width = scene.shape[:2]
    work_mask = grow_masks(mask[None], grow)[0]

    def callback(_pipe, step, _timestep, kwargs):
        report(progress, step + 1, steps)
        return kwargs

    result = pipe(
        image=Image.fromarray(scene), mask_image=Image.fromarray(work_mask.astype(np.uint8) * 255),
        image_reference=None if reference is None else Image.fromarray(reference[..., :3]),
        prompt=prompt, height=height // 16 * 16, width=width // 16 * 16, strength=options.strength,
        num_inference_steps=steps, guidance_scale=options.guidance,
        generator=torch.Generator("cpu").manual_seed(int(options.seed)),
        output_type="np", callback_on_step_end=callback,
        max_area=height * width if resolution == "input" else 1024 ** 2, _auto_resize=resolution == "preferred",
    )
    image = np.clip(np.asarray(result.images[0]) * 255 + 0.5, 0, 255).astype(np.uint8)
    image = resize_frames(image[None], (height, width))[0]
    alpha = blend_alpha(mask, grow, options.feather)[..., None]
    out = scene.astype(np.float32) * (1 - alpha) + image.astype(np.float32) * alpha
    inside = alpha[..., 0] > 0
    final = scene.copy()
    final[inside] = np.clip(out[inside].round(), 0, 255).astype(np.uint8)
    return final
