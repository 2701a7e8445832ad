"""Degradations that turn a clean image y0 into the model's condition x.

A task returns the condition and a mask with 1 where the model must generate. The
diffusion code needs nothing else, so a new task (uncropping, JPEG restoration) is one
class here plus its name in TASKS.
"""

from __future__ import annotations

from typing import Protocol

import torch

from ..data.colour import TO_YCBCR


class Task(Protocol):
    name: str

    def degrade(self, y0: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,3,H,W) in [-1,1] -> condition (B,3,H,W), mask (B,1,H,W) with 1 = generate."""
        ...


class Inpainting:
    """A square hole of about `area` of the image, centred near the image centre, filled with noise (paper 3.2)."""

    name = "inpainting"

    def __init__(self, area: float = 0.25, jitter: float = 0.125):
        self.area = area
        self.jitter = jitter  # how far (fraction of the side) the centre may move from the image centre

    def masks(self, batch: int, size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        side = max(1, round(size * self.area**0.5))
        max_shift = round(size * self.jitter)
        shift = torch.randint(-max_shift, max_shift + 1, (batch, 2), generator=generator)
        top_left = (size - side) // 2 + shift
        top_left = top_left.clamp(0, size - side)  # the hole always stays inside the image
        rows = torch.arange(size)
        inside_y = (rows[None] >= top_left[:, :1]) & (rows[None] < top_left[:, :1] + side)
        inside_x = (rows[None] >= top_left[:, 1:]) & (rows[None] < top_left[:, 1:] + side)
        return (inside_y[:, :, None] & inside_x[:, None, :]).float()[:, None]

    def degrade(self, y0, generator=None):
        mask = self.masks(y0.shape[0], y0.shape[-1], generator).to(y0.device)
        noise = torch.randn(y0.shape, generator=generator).to(y0.device)
        return y0 * (1 - mask) + noise * mask, mask


class Colorization:
    """Luminance (ITU-R 601) replicated to 3 channels; every pixel is generated."""

    name = "colorization"

    def degrade(self, y0, generator=None):
        gray = grayscale(y0)
        return gray, torch.ones_like(gray[:, :1])


def grayscale(images: torch.Tensor) -> torch.Tensor:
    weights = torch.tensor(TO_YCBCR[0], device=images.device, dtype=images.dtype)
    gray = (images * weights[None, :, None, None]).sum(dim=1, keepdim=True)
    return gray.expand(-1, 3, -1, -1).contiguous()


TASKS: dict[str, type] = {"inpainting": Inpainting, "colorization": Colorization}


def make_task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r} (known: {', '.join(TASKS)})")
    return TASKS[name]()
