"""Prepared images as the model sees them: the one place uint8 pixels become [-1, 1] tensors, and back."""

from __future__ import annotations

import numpy as np
import torch


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (B,H,W,3) -> float (B,3,H,W) in [-1, 1]."""
    return torch.from_numpy(np.require(images, requirements=["C", "W"])).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(B,3,H,W) in [-1, 1] -> (B,H,W,3) uint8. One-channel images (masks) become gray."""
    images = images.detach().float().cpu()
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    pixels = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return pixels.permute(0, 2, 3, 1).numpy()
