"""Sliced Wasserstein distance between Laplacian-pyramid patches (Karras et al. 2018, ProGAN).

A distribution metric that needs no pretrained network, so it works offline where FID cannot:
PSNR and SSIM reward a blurry average, but the patches of a blurred (or speckled) image set
are distributed differently from those of real images, and this distance sees it.

    for each level of a Laplacian pyramid (full size down to MIN_RESOLUTION):
        take PATCHES_PER_IMAGE random 7x7 patches per image -> 147-d descriptors
        normalise the descriptors of both sets with the *real* set's per-channel mean and std
        SWD = mean over REPEATS x DIRECTIONS random unit directions of the 1-D Wasserstein-1
              distance between the two sets' projections (sorted, mean absolute difference)
    report the mean over levels, x 1000 (as ProGAN reports it)

One change from ProGAN: it normalises each set with its own statistics, which hides a global
colour shift or a loss of saturation; normalising both with the real set's keeps them visible.
Lower is better; 0 for identical sets. Needs at least a few dozen images per set to be stable,
and like FID it is only comparable between evaluations of the same image counts.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

PATCH_SIZE = 7
PATCHES_PER_IMAGE = 64
MIN_RESOLUTION = 16
DIRECTIONS = 128  # per repeat, as ProGAN (4 repeats of 128)
REPEATS = 4
SCALE = 1e3

# the 5-tap binomial filter ProGAN's pyramid uses (separable, sums to 1)
_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16


def _blur(images: torch.Tensor) -> torch.Tensor:
    kernel = torch.outer(_BINOMIAL, _BINOMIAL).to(images).expand(images.shape[1], 1, 5, 5)
    return F.conv2d(F.pad(images, (2, 2, 2, 2), mode="reflect"), kernel, groups=images.shape[1])


def laplacian_pyramid(images: torch.Tensor, min_resolution: int = MIN_RESOLUTION) -> list[torch.Tensor]:
    """Band-pass levels from full size down to min_resolution; the last level is the low-pass rest."""
    levels, current = [], images
    while current.shape[-1] > min_resolution:
        smaller = _blur(current)[..., ::2, ::2]
        upsampled = _blur(F.interpolate(smaller, scale_factor=2.0, mode="nearest"))
        levels.append(current - upsampled)
        current = smaller
    levels.append(current)
    return levels


def _patches(level: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """(images * count, 3 * PATCH_SIZE**2) descriptors at random positions of each image."""
    b, c, h, w = level.shape
    size = min(PATCH_SIZE, h, w)
    ys = torch.randint(0, h - size + 1, (b, count), generator=generator)
    xs = torch.randint(0, w - size + 1, (b, count), generator=generator)
    offsets = torch.arange(size)
    rows = (ys[..., None] + offsets)[..., :, None]  # (b, count, size, 1)
    cols = (xs[..., None] + offsets)[..., None, :]  # (b, count, 1, size)
    batch = torch.arange(b)[:, None, None, None]
    patches = level.permute(0, 2, 3, 1)[batch, rows, cols]  # (b, count, size, size, c)
    return patches.permute(0, 1, 4, 2, 3).reshape(b * count, c, size * size)


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, directions: int, generator: torch.Generator) -> float:
    """Mean over random unit directions of the W1 distance between the projections of a and b
    (equal row counts: the 1-D optimal transport is sorting)."""
    projections = torch.randn(a.shape[1], directions, generator=generator, dtype=a.dtype)
    projections /= projections.norm(dim=0, keepdim=True)
    pa, _ = torch.sort(a @ projections, dim=0)
    pb, _ = torch.sort(b @ projections, dim=0)
    return (pa - pb).abs().mean().item()


def swd(real: torch.Tensor, fake: torch.Tensor, seed: int = 0) -> float:
    """SWD x 1000 between two image sets (B,3,H,W) in [-1, 1] of the same size and count."""
    if real.shape != fake.shape:
        raise ValueError(f"SWD compares sets of the same shape, got {tuple(real.shape)} and {tuple(fake.shape)}")
    generator = torch.Generator().manual_seed(seed)
    distances = []
    for real_level, fake_level in zip(laplacian_pyramid(real.double()), laplacian_pyramid(fake.double())):
        state = generator.get_state()  # the same patch positions in both sets
        real_desc = _patches(real_level, PATCHES_PER_IMAGE, generator)
        generator.set_state(state)
        fake_desc = _patches(fake_level, PATCHES_PER_IMAGE, generator)
        mean = real_desc.mean(dim=(0, 2), keepdim=True)
        std = real_desc.std(dim=(0, 2), keepdim=True).clamp(min=1e-8)
        real_desc = ((real_desc - mean) / std).flatten(1)
        fake_desc = ((fake_desc - mean) / std).flatten(1)
        level_distance = sum(sliced_wasserstein(real_desc, fake_desc, DIRECTIONS, generator) for _ in range(REPEATS))
        distances.append(level_distance / REPEATS)
    return SCALE * sum(distances) / len(distances)
