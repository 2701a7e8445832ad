"""Colorize and inpaint whole photos at their own size with a model trained at a small one.

Colorization works the way colorization tools do: the model colours the whole photo brought to
its training resolution, and that colour (the chroma, Cb and Cr) is upsampled and put under the
photo's own full-resolution luminance (Y of ITU-R 601, the gray the model was trained on). The
result's luminance is the input's up to rounding: no detail is lost to the model's resolution.

Inpainting fills a hole from a square context window around it (CONTEXT times the hole's size,
at least the model's resolution; the whole photo when it is smaller than that), brought to the
model's resolution; the filled window is brought back and replaces every pixel of the hole - nothing of
what was there shows through, not even at its rim - and every pixel outside the hole is the input's,
exactly. There is no blending: the model filled the hole knowing its surroundings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from ..classes import NO_LABEL
from ..config import SamplingSteps
from ..data.colour import TO_RGB, TO_YCBCR
from ..data.tensors import to_tensor, to_uint8
from ..model.diffusion import Guidance, sample
from ..model.inference import LoadedModel

# window side / hole side. Measured with models/base on 12 built-in faces at 256 px, holes of
# 40-80 px: PSNR in the hole 14.4 dB at 1.5 and 2, 14.9 at 3, 16.8 at 4 (the model was trained
# on whole faces, each with a hole of half its side: more context looks more like that)
DEFAULT_STEPS = SamplingSteps()  # evaluate.steps' defaults, chosen by stage samplers
CONTEXT = 4


def read_photo(path: Path) -> np.ndarray:
    """Any image file Pillow reads as (H, W, 3) uint8 RGB, upright: EXIF orientation applied,
    16-bit scaled to 8, transparency composited on white, CMYK/palette/gray converted."""
    with Image.open(path) as image:
        image = ImageOps.exif_transpose(image)
        if image.mode == "I" or image.mode.startswith("I;16"):  # 16-bit (or 32-bit integer) gray
            values = np.asarray(image)
            top = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
            image = Image.fromarray(np.clip(values / top * 255 + 0.5, 0, 255).astype(np.uint8))
        if image.has_transparency_data:  # an alpha channel, a transparent palette entry or a colour key
            image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image.convert("RGBA"))
        return np.asarray(image.convert("RGB"))


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Y (0-255, float) of uint8 RGB."""
    return rgb @ TO_YCBCR[0]


def resize(pixels: np.ndarray, width: int, height: int, resample=Image.Resampling.LANCZOS) -> np.ndarray:
    """uint8 (H, W, 3) resized as it is; any other (H, W) array (floats, a bool mask) as float32 (Pillow mode F)."""
    if pixels.dtype == np.uint8:
        return np.asarray(Image.fromarray(pixels).resize((width, height), resample))
    return np.asarray(Image.fromarray(pixels.astype(np.float32)).resize((width, height), resample))  # mode F


def _sample(model: LoadedModel, condition: torch.Tensor, mask: torch.Tensor, known: torch.Tensor, seed: int,
            sampler: str, steps: int, fine: int | None = None, guidance: Guidance = Guidance()) -> torch.Tensor:
    device = next(model.network.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    labels = model.labels(np.full(len(condition), NO_LABEL if fine is None else fine), device)
    with torch.no_grad():
        output, _ = sample(model.network, model.schedule, condition.to(device), mask.to(device), known.to(device),
                           sampler=sampler, steps=steps, generator=generator, labels=labels, guidance=guidance)
    return output


def colorize(model: LoadedModel, photos: list[np.ndarray], seed: int, sampler: str = "ddim",
             steps: int = DEFAULT_STEPS.colorization, fine: int | None = None, guidance: Guidance = Guidance()) -> list[np.ndarray]:
    """One colorized (H, W, 3) uint8 per photo, each at its own size; the batch shares one noise
    draw from `seed` (the same photos, order and seed give the same colours). A class-conditional
    model colours them as class index `fine` (None: no label), steered by `guidance`."""
    size = model.image_size
    small = np.stack([resize(photo, size, size) for photo in photos])
    gray = model.task.degrade(to_tensor(small))[0]  # the model's own grayscale, as in training
    colours = to_uint8(_sample(model, gray, torch.ones_like(gray[:, :1]), torch.zeros_like(gray), seed, sampler, steps,
                               fine, guidance))
    return [with_chroma(photo, colour) for photo, colour in zip(photos, colours)]


def with_chroma(photo: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """`photo`'s own luminance under `colour`'s chroma, upsampled to the photo's size."""
    height, width = photo.shape[:2]
    chroma = colour @ TO_YCBCR[1:].T  # (h, w, 2): Cb, Cr around 0
    planes = np.stack([resize(chroma[..., k], width, height, Image.Resampling.BICUBIC) for k in range(2)], axis=-1)
    luma = luminance(photo)[..., None]
    offset = planes @ TO_RGB[:, 1:].T  # what the chroma adds to R, G, B; it adds nothing to Y
    # where full chroma would leave [0, 255], scale it down just enough (clipping would change Y)
    room = np.where(offset > 0, (255 - luma) / np.maximum(offset, 1e-9), luma / np.maximum(-offset, 1e-9))
    scale = np.clip(room.min(axis=-1, keepdims=True), 0, 1)
    return (luma + scale * offset + 0.5).astype(np.uint8)  # in [0, 255] by the scale: rounded, never clipped


def context_window(hole: np.ndarray, model_size: int) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the region the model sees: a square CONTEXT times the hole's
    size, at least the model's, at most the photo's shorter side, moved inside the photo (the
    model was trained on squares); the whole photo only when the hole does not fit in a square."""
    height, width = hole.shape
    rows, cols = np.nonzero(hole)
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    side = min(max(CONTEXT * (bottom - top), CONTEXT * (right - left), model_size), height, width)
    if side < max(bottom - top, right - left):
        return 0, 0, height, width
    centre_y, centre_x = (top + bottom) // 2, (left + right) // 2
    y = int(np.clip(centre_y - side // 2, 0, height - side))
    x = int(np.clip(centre_x - side // 2, 0, width - side))
    return y, x, int(side), int(side)


def inpaint(model: LoadedModel, photo: np.ndarray, hole: np.ndarray, seed: int, sampler: str = "ddim",
            steps: int = DEFAULT_STEPS.inpainting) -> np.ndarray:
    """`photo` with `hole` (bool (H, W), True = fill) filled by the model; every other pixel is the input's."""
    if not hole.any():
        return photo.copy()
    size = model.image_size
    y, x, h, w = context_window(hole, size)
    window, window_hole = photo[y : y + h, x : x + w], hole[y : y + h, x : x + w]
    # what the hole holds must not reach the model: resizing would smear it into the known pixels
    # around the hole, so it is replaced by the mean known colour first
    known = window.copy()
    known[window_hole] = window[~window_hole].mean(axis=0).round() if (~window_hole).any() else 128
    clean = to_tensor(resize(known, size, size)[None])
    # a model pixel is generated when any of the hole falls in it
    mask = torch.from_numpy(resize(window_hole, size, size, Image.Resampling.BOX) > 0).float()[None, None]
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(seed + 10**6))
    condition = clean * (1 - mask) + noise * mask
    filled = to_uint8(_sample(model, condition, mask, clean * (1 - mask), seed, sampler, steps))[0]
    filled = resize(filled, w, h)
    result = photo.copy()
    result[y : y + h, x : x + w][window_hole] = filled[window_hole]
    return result


def box_hole(shape: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    """The hole of a --box X,Y,W,H (clipped to the photo)."""
    x, y, w, h = box
    hole = np.zeros(shape, bool)
    hole[max(0, y) : y + h, max(0, x) : x + w] = True
    return hole


def mask_hole(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """The hole of a mask image (white = fill), resized to the photo when its size differs."""
    with Image.open(path) as image:
        gray = ImageOps.exif_transpose(image).convert("L")
        if gray.size != (shape[1], shape[0]):
            gray = gray.resize((shape[1], shape[0]), Image.Resampling.NEAREST)
        return np.asarray(gray) >= 128
