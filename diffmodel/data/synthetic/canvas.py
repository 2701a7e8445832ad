"""Drawing on planar float32 canvases: the shared primitives of the synthetic faces and landscapes.

Images are planar float32 (3, b, H, W) while drawing: colours broadcast as (3, b, 1, 1)
and painting is arithmetic blending, several times faster than masked copies. They are drawn
at twice the requested size, a chunk of images at a time, then averaged 2x2 down (finish).
"""

from __future__ import annotations

import numpy as np

CHUNK_PIXELS = 1 << 21  # render pixels per chunk: big numpy ops at 32 px, bounded memory at 256 px
NOISE = 0.025  # relative per-pixel luminance noise, so surfaces are not flat


def check(count: int, size: int) -> None:
    if count < 0 or size < 1:
        raise ValueError(f"need count >= 0 and size >= 1, got count={count}, size={size}")


def chunks(count: int, size: int):
    step = max(1, CHUNK_PIXELS // (4 * size * size))
    for start in range(0, count, step):
        yield start, min(count, start + step)


def finish(img: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Add luminance noise, then average 2x2 blocks down to the output size (antialiasing)."""
    img *= 1 + NOISE * noise
    small = 0.25 * (img[..., ::2, ::2] + img[..., 1::2, ::2] + img[..., ::2, 1::2] + img[..., 1::2, 1::2])
    return np.clip(np.rint(small), 0, 255).astype(np.uint8).transpose(1, 2, 3, 0)


def grid(res: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in [0, 1): y of shape (1, res, 1), x of shape (1, 1, res)."""
    c = (np.arange(res, dtype=np.float32) + 0.5) / res
    return c.reshape(1, res, 1), c.reshape(1, 1, res)


def param(u: np.ndarray, k: int, lo: float, hi: float) -> np.ndarray:
    """Column k of u mapped to [lo, hi), shaped (b, 1, 1) to broadcast over an image."""
    return (lo + (hi - lo) * u[:, k]).reshape(-1, 1, 1)


def rgb(color) -> np.ndarray:
    """A constant colour, or (..., 3) colours, as planar (3, ...) broadcastable to an image."""
    color = np.asarray(color, np.float32)
    return np.moveaxis(color, -1, 0).reshape((3,) + color.shape[:-1] + (1,) * (4 - color.ndim))


def pick(palette: np.ndarray, u: np.ndarray, jitter: float = 0.0) -> np.ndarray:
    """One palette colour per image, brightness-scaled by up to +-jitter (hue unchanged)."""
    rows = palette[np.minimum((u[:, 0] * len(palette)).astype(int), len(palette) - 1)]
    scale = 1 + jitter * (2 * u[:, 1:2] - 1) if jitter else 1
    return rgb(rows * scale)


def paint(img: np.ndarray, mask: np.ndarray, color) -> None:
    img += mask.astype(np.float32) * (color - img)


def ellipse(x, y, cx, cy, rx, ry) -> np.ndarray:
    return ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 < 1
