"""The offline distribution metric: SWD between Laplacian-pyramid patches (Karras et al. 2018)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from diffmodel.data.synthetic import render_faces
from diffmodel.data.tensors import to_tensor
from diffmodel.evaluation.swd import PATCH_SIZE, _patches, laplacian_pyramid, sliced_wasserstein, swd


@pytest.fixture(scope="module")
def faces():
    """Two independent sets of real images of one domain, as a test set and a perfect model's outputs."""
    return to_tensor(render_faces(64, 32, seed=1)), to_tensor(render_faces(64, 32, seed=2))


def blurred(images):
    kernel = torch.ones(3, 1, 3, 3) / 9
    return F.conv2d(F.pad(images, (1, 1, 1, 1), mode="replicate"), kernel, groups=3)


def speckled(images, amount=0.25):
    noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(0))
    return (images + amount * noise).clamp(-1, 1)


def test_blur_and_speckle_are_both_worse_than_other_real_images(faces):
    """What PSNR gets wrong (it prefers the blurry mean) this metric must get right."""
    real, other_real = faces
    clean = swd(real, other_real)
    assert swd(real, blurred(other_real)) > 1.5 * clean
    assert swd(real, speckled(other_real)) > 1.5 * clean


def test_desaturated_outputs_are_worse_than_real_colour(faces):
    """Patches are normalised with the real set's statistics, so lost colour counts (ProGAN's own
    normalisation of each set would hide it); colourfulness in the reports measures it directly."""
    real, other_real = faces
    gray = other_real.mean(dim=1, keepdim=True).expand_as(other_real)
    assert swd(real, gray) > 1.25 * swd(real, other_real)


def test_identical_sets_are_at_distance_zero_and_the_seed_fixes_the_value(faces):
    real, other_real = faces
    assert swd(real, real) == 0
    assert swd(real, other_real, seed=3) == swd(real, other_real, seed=3)


def test_the_pyramid_reconstructs_the_image():
    """Each band-pass level is the image minus its blurred upsampled half: summing back up restores it."""
    from diffmodel.evaluation.swd import _blur

    images = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    levels = laplacian_pyramid(images, min_resolution=8)
    assert [level.shape[-1] for level in levels] == [32, 16, 8]
    rebuilt = levels[-1]
    for band in reversed(levels[:-1]):
        rebuilt = band + _blur(F.interpolate(rebuilt, scale_factor=2.0, mode="nearest"))
    torch.testing.assert_close(rebuilt, images)


def test_sliced_wasserstein_of_shifted_gaussians_matches_the_closed_form():
    """W1 between N(0, I) and N(m, I) projected on a unit direction u is |m . u|; with m = (d, 0, ...)
    and u uniform on the sphere of R^k, E|m . u| = d * E|u_1| (about d * sqrt(2 / (pi k)) for large k)."""
    k, n, d = 64, 8000, 4.0
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(n, k, generator=generator, dtype=torch.float64)
    b = torch.randn(n, k, generator=generator, dtype=torch.float64)
    b[:, 0] += d
    u = torch.randn(200000, k, generator=generator, dtype=torch.float64)
    expected = d * (u[:, 0].abs() / u.norm(dim=1)).mean().item()
    assert sliced_wasserstein(a, b, 1024, generator) == pytest.approx(expected, rel=0.06)


def test_a_flat_image_has_no_band_pass_content():
    """The blur keeps a flat image flat up to its borders (reflected, not zero-padded): every band-pass level
    of a one-colour image is zero and the low-pass rest is that colour."""
    flat = torch.full((1, 3, 32, 32), 0.3, dtype=torch.float64)
    *band_pass, rest = laplacian_pyramid(flat)
    assert all(level.abs().max().item() < 1e-12 for level in band_pass)
    assert torch.allclose(rest, torch.full_like(rest, 0.3))


def test_patches_are_crops_of_the_image_at_positions_covering_every_place():
    h = w = 12
    image = torch.arange(3 * h * w, dtype=torch.float64).view(1, 3, h, w)
    descriptors = _patches(image, 500, torch.Generator().manual_seed(0)).view(500, 3, PATCH_SIZE, PATCH_SIZE)
    corners = set()
    for patch in descriptors:
        y, x = divmod(int(patch[0, 0, 0].item()), w)
        assert torch.equal(patch, image[0, :, y : y + PATCH_SIZE, x : x + PATCH_SIZE])
        corners.add((y, x))
    assert corners == {(y, x) for y in range(h - PATCH_SIZE + 1) for x in range(w - PATCH_SIZE + 1)}


def test_swd_is_blind_to_a_per_channel_scale_and_shift_of_both_sets(faces):
    """Descriptors are normalised per colour channel by the real set's mean and spread, so recolouring both sets
    alike (each channel scaled and shifted) changes nothing; the default seed is 0."""
    real, fake = faces[0].double(), speckled(faces[1]).double()
    scale = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64).view(1, 3, 1, 1)
    shift = torch.tensor([0.1, -0.2, 0.0], dtype=torch.float64).view(1, 3, 1, 1)
    assert swd(real * scale + shift, fake * scale + shift) == pytest.approx(swd(real, fake), rel=1e-9)
    assert swd(real, fake) == swd(real, fake, seed=0) != swd(real, fake, seed=1)


def test_swd_of_a_colour_shift_is_the_mean_over_levels_of_the_shift_projected_on_random_directions():
    """fake = real + c in the red channel: every band-pass level is unchanged (the blur keeps a constant), so
    of the two levels of 32 px images only the 16 px low-pass rest moves. There each 7x7 patch's 49 red
    entries shift by c / sigma (sigma: the real set's red std at that level, which normalises both), a shift
    of length 7 c / sigma in 147 dimensions, and along a uniform unit direction u the 1-D W1 is |shift . u|:
    SWD = 1000 * (0 + 7 c / sigma * E|u_1|) / 2 levels, E|u_1| = G(d/2) / (sqrt(pi) G((d+1)/2)), d = 147."""
    import math

    generator = torch.Generator().manual_seed(3)
    real = 0.3 * torch.randn(64, 3, 32, 32, generator=generator, dtype=torch.float64)
    fake = real.clone()
    fake[:, 0] += 0.05
    levels = laplacian_pyramid(real)
    assert len(levels) == 2
    sigma = levels[-1][:, 0].std().item()
    d = 3 * PATCH_SIZE**2
    mean_abs_u1 = math.exp(math.lgamma(d / 2) - math.lgamma((d + 1) / 2)) / math.sqrt(math.pi)
    expected = 1000 * (PATCH_SIZE * 0.05 / sigma * mean_abs_u1) / 2
    assert swd(real, fake) == pytest.approx(expected, rel=0.12)  # 4 x 128 random directions: about 3 % noise
