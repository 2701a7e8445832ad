"""Image quality metrics: PSNR, SSIM, MAE, colourfulness and FID (via pytorch-fid).

Inputs follow the project convention: float tensors (B,3,H,W) in [-1, 1], masks (B,1,H,W)
with 1 = region the model generated. Pixel metrics are computed in float64 on the [0, 1]
scale (colourfulness on 0-255, as its authors define it) and returned per image.
"""

from __future__ import annotations

import os
from unittest import mock

import numpy as np
import torch
import torch.nn.functional as F

PSNR_CAP_DB = 100.0
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03
FID_FEATURE_DIM = 2048


def _unit(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1] in float64, so metrics do not depend on the input precision."""
    return (images.detach().double() + 1) / 2


# ----------------------------------------------------------------------------- pixel metrics

def _masked_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Per-image mean of (B,C,H,W) values, over all channels of the masked pixels only.
    An image whose mask is empty gets NaN: there is nothing to measure."""
    if mask is None:
        return values.flatten(1).mean(1)
    weights = mask.detach().double().expand_as(values)
    return (values * weights).flatten(1).sum(1) / weights.flatten(1).sum(1)


def psnr(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per-image PSNR in dB (B,), on the [0, 1] scale; capped at PSNR_CAP_DB for identical images."""
    mse = _masked_mean((_unit(pred) - _unit(target)) ** 2, mask)
    return (10 * torch.log10(1 / mse)).clamp(max=PSNR_CAP_DB)


def mae(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per-image mean absolute error (B,) on the [0, 1] scale."""
    return _masked_mean((_unit(pred) - _unit(target)).abs(), mask)


def _gaussian_window(size: int, sigma: float) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-coords**2 / (2 * sigma**2))
    g = g / g.sum()
    return torch.outer(g, g)


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM (B,) on the [0, 1] scale, averaged over channels.

    Gaussian window 11 / sigma 1.5 as in Wang et al. 2004, applied as a *valid* convolution
    (no padding, like the reference code and scikit-image): on 32x32 images the SSIM map is
    22x22 and no border pixel is compared against made-up padding.
    """
    x, y = _unit(pred), _unit(target)
    channels, height, width = x.shape[1:]
    if min(height, width) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW}, got {height}x{width}")
    window = _gaussian_window(SSIM_WINDOW, SSIM_SIGMA).to(x.device)
    window = window.expand(channels, 1, SSIM_WINDOW, SSIM_WINDOW)

    def blur(z):
        return F.conv2d(z, window, groups=channels)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov_xy = blur(x * y) - mu_x * mu_y
    c1, c2 = SSIM_K1**2, SSIM_K2**2  # data range 1
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim_map.flatten(1).mean(1)


def colourfulness(images: torch.Tensor) -> torch.Tensor:
    """Hasler & Suesstrunk (2003) colourfulness per image (B,), on the 0-255 scale.
    0 for a gray image; above ~50 is 'quite colourful'."""
    rgb = _unit(images) * 255
    r, g, b = rgb[:, 0].flatten(1), rgb[:, 1].flatten(1), rgb[:, 2].flatten(1)
    rg = r - g
    yb = 0.5 * (r + g) - b
    std = torch.sqrt(rg.var(1, correction=0) + yb.var(1, correction=0))
    mean = torch.sqrt(rg.mean(1) ** 2 + yb.mean(1) ** 2)
    return std + 0.3 * mean


def image_metrics(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, float]:
    """Batch means of the pixel metrics as plain floats (4 decimals). Masked variants are
    added for inpainting (mask given and not all ones); colourfulness of output and target
    side by side so desaturation shows up as a number."""

    def mean(values: torch.Tensor) -> float:
        return round(values.nanmean().item(), 4)

    metrics = {
        "psnr": mean(psnr(pred, target)),
        "ssim": mean(ssim(pred, target)),
        "mae": mean(mae(pred, target)),
    }
    if mask is not None and not bool((mask == 1).all()):
        metrics["psnr_masked"] = mean(psnr(pred, target, mask))
        metrics["mae_masked"] = mean(mae(pred, target, mask))
    metrics["colourfulness_output"] = mean(colourfulness(pred))
    metrics["colourfulness_target"] = mean(colourfulness(target))
    return metrics


# ----------------------------------------------------------------------------- FID

def _pytorch_fid():
    """pytorch-fid's inception module, imported on first use: it imports torchvision, 1.2 s of
    every evaluation stage's start on 2 CPU cores, and FID is only computed where weights exist."""
    import pytorch_fid.inception

    return pytorch_fid.inception

class FIDUnavailable(Exception):
    """FID cannot be computed honestly (no Inception weights); the message is a one-line reason."""


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    from pytorch_fid.fid_score import calculate_frechet_distance

    return float(calculate_frechet_distance(np.asarray(mu1), np.asarray(sigma1), np.asarray(mu2), np.asarray(sigma2)))


def _fid_inception_architecture() -> torch.nn.Module:
    """pytorch-fid's fid_inception_v3() network, minus the weight download at its end."""
    fid_inception = _pytorch_fid()
    net = fid_inception._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    net.Mixed_5b = fid_inception.FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = fid_inception.FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = fid_inception.FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = fid_inception.FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = fid_inception.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = fid_inception.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = fid_inception.FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = fid_inception.FIDInceptionE_1(1280)
    net.Mixed_7c = fid_inception.FIDInceptionE_2(2048)
    return net


def build_fid_inception(state_dict: dict | None, feature_dim: int = FID_FEATURE_DIM) -> torch.nn.Module:
    """pytorch-fid's InceptionV3 with the given weights, returning pool3 (2048-d) features.
    state_dict=None leaves it randomly initialised and a smaller feature_dim (64, 192, 768)
    stops at an earlier block: both for tests only, such FIDs mean nothing."""
    net = _fid_inception_architecture()
    if state_dict is not None:
        net.load_state_dict(state_dict)
    # InceptionV3.__init__ fetches its network through fid_inception_v3(), which downloads;
    # hand it ours instead so the block wiring stays pytorch-fid's own.
    fid_inception = _pytorch_fid()
    with mock.patch.object(fid_inception, "fid_inception_v3", lambda: net):
        model = fid_inception.InceptionV3([fid_inception.InceptionV3.BLOCK_INDEX_BY_DIM[feature_dim]])
    return model.eval()


def inception_cache_path() -> str:
    """Where pytorch-fid's download lands (and is looked for): <torch hub>/checkpoints/<file>."""
    filename = os.path.basename(_pytorch_fid().FID_WEIGHTS_URL)
    return os.path.join(torch.hub.get_dir(), "checkpoints", filename)


def _load_weights_file(path: str) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise FIDUnavailable(f"inception weights unreadable: {path} ({type(err).__name__}: {_short(err)})") from err


def _short(err: Exception, limit: int = 120) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load_inception(weights: str | None = None) -> torch.nn.Module:
    """The FID Inception network, in eval mode. Looks for weights in order:
    1. `weights` (params evaluate.inception_weights), which must exist;
    2. the torch hub cache file pytorch-fid downloads to;
    3. pytorch-fid's own download.
    Raises FIDUnavailable with a one-line reason when none of these works."""
    if weights is not None:
        if not os.path.isfile(weights):
            raise FIDUnavailable(f"inception weights not found: {weights}")
        return build_fid_inception(_load_weights_file(weights))

    cached = inception_cache_path()
    if os.path.isfile(cached):
        return build_fid_inception(_load_weights_file(cached))

    try:
        fid_inception = _pytorch_fid()
        model = fid_inception.InceptionV3([fid_inception.InceptionV3.BLOCK_INDEX_BY_DIM[FID_FEATURE_DIM]])
    except Exception as err:  # offline: URLError, OSError, RuntimeError, hash mismatch...
        raise FIDUnavailable(
            f"no Inception weights: none cached and the download failed ({type(err).__name__}); "
            "set evaluate.inception_weights to a local pt_inception-2015-12-05 file"
        ) from err
    return model.eval()


@torch.no_grad()
def inception_activations(images: torch.Tensor, model: torch.nn.Module, batch_size: int = 50, device="cpu") -> np.ndarray:
    """(N, 2048) pool3 features. pytorch-fid's InceptionV3 takes [0, 1] input and itself
    resizes to 299x299 and rescales to what the network expects. Earlier blocks' feature
    maps are average-pooled to one vector per image, as pytorch-fid does."""
    model = model.to(device).eval()
    features = []
    for start in range(0, len(images), batch_size):
        batch = ((images[start : start + batch_size].float() + 1) / 2).clamp(0, 1).to(device)
        pooled = F.adaptive_avg_pool2d(model(batch)[0], output_size=1)  # (b, 2048, 1, 1)
        features.append(pooled.flatten(1).cpu().double().numpy())
    return np.concatenate(features)


def _gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return features.mean(axis=0), np.cov(features, rowvar=False)


def fid(real_images: torch.Tensor, fake_images: torch.Tensor, model: torch.nn.Module, batch_size: int = 50, device="cpu") -> float:
    """Frechet Inception Distance between two image sets (each needs at least 2 images)."""
    if len(real_images) < 2 or len(fake_images) < 2:
        raise ValueError("FID needs at least 2 images per set to estimate a covariance")
    mu_real, sigma_real = _gaussian_stats(inception_activations(real_images, model, batch_size, device))
    mu_fake, sigma_fake = _gaussian_stats(inception_activations(fake_images, model, batch_size, device))
    return frechet_distance(mu_real, sigma_real, mu_fake, sigma_fake)


def fid_or_reason(real: torch.Tensor, fake: torch.Tensor, model: torch.nn.Module, batch_size: int = 50,
                  device="cpu") -> tuple[float | None, str | None]:
    """(FID, None), or (None, one-line reason) when it cannot be computed honestly: fewer than 2
    images, or a matrix square root that fails numerically (few images give rank-deficient
    covariances, and scipy's sqrtm may then return a large imaginary part)."""
    try:
        value = fid(real, fake, model, batch_size, device)
    except (ValueError, np.linalg.LinAlgError) as err:
        return None, f"the Frechet distance could not be computed on {len(real)} images ({_short(err)})"
    if not np.isfinite(value):
        return None, f"the Frechet distance is not finite on {len(real)} images"
    return value, None


def inception_or_reason(weights: str | None = None) -> tuple[torch.nn.Module | None, str | None]:
    """(the FID Inception network, None), or (None, the one-line reason it cannot be had)."""
    try:
        return load_inception(weights), None
    except FIDUnavailable as err:
        return None, str(err)


def evaluate_fid(real: torch.Tensor, fake: torch.Tensor, weights: str | None, batch_size: int = 50, device="cpu") -> tuple[float | None, str | None]:
    """(FID, None), or (None, reason) when no Inception weights can be had or the distance fails
    numerically. Never a stand-in number."""
    model, reason = inception_or_reason(weights)
    return (None, reason) if model is None else fid_or_reason(real, fake, model, batch_size, device)
