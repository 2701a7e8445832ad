"""Palette's diffusion: noise schedule, training loss, DDPM and DDIM samplers.

gamma_t is the cumulative product of (1 - beta) up to step t. Training draws gamma
uniformly between gamma_t and gamma_{t-1}, so the network sees a continuum of noise levels
and can be sampled with any subsequence of the schedule (DDIM). Samplers use exactly the
schedule the model was trained with: DDIM only subsamples it.

Masks have 1 where the model generates (the inpainting hole; everywhere for colorization).
Outside the mask the target is known: it enters the network clean and is pasted back
after every sampling step, and the loss ignores it.

A class-conditional model is steered at sampling by Guidance, the same way in DDPM and DDIM:
each step's network output is reference + scale * (conditional - reference), the reference
being "no label" (classifier-free guidance) or the superclass alone (FineDiffusion).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ..classes import NO_LABEL
from ..config import DiffusionConfig

Denoiser = Callable[..., torch.Tensor]  # (6-channel input, gamma[, labels]) -> eps or v
GUIDANCE = ("none", "cfg", "superclass")


@dataclass(frozen=True)
class Guidance:
    """none: the conditional output itself; cfg: classifier-free guidance (reference: no label);
    superclass: FineDiffusion's superclass-conditioned guidance (reference: the superclass only)."""

    kind: str = "none"
    scale: float = 1.0

    def __post_init__(self):
        if self.kind not in GUIDANCE:
            raise ValueError(f"unknown guidance {self.kind!r} (choose from {', '.join(GUIDANCE)})")


def denoise(model: Denoiser, x: torch.Tensor, gamma: torch.Tensor, labels=None, guidance: Guidance = Guidance()) -> torch.Tensor:
    """The network output one sampling step uses: plain, or guided by the labels (fine, superclass)."""
    if labels is None:
        return model(x, gamma).float()
    if guidance.kind == "none":
        return model(x, gamma, labels).float()
    fine, superclass = labels
    no_label = torch.full_like(fine, NO_LABEL)
    reference = superclass if guidance.kind == "superclass" else no_label
    both = model(torch.cat([x, x]), torch.cat([gamma, gamma]),
                 (torch.cat([fine, no_label]), torch.cat([superclass, reference]))).float()
    conditional, unguided = both.chunk(2)
    return unguided + guidance.scale * (conditional - unguided)


class Schedule:
    def __init__(self, cfg: DiffusionConfig):
        self.cfg = cfg
        self.betas = torch.linspace(cfg.beta_start, cfg.beta_end, cfg.steps, dtype=torch.float64)
        gammas = torch.cumprod(1.0 - self.betas, dim=0)
        # index 0 is "no noise" (gamma = 1); index t in 1..T is after t forward steps
        self.gammas = torch.cat([torch.ones(1, dtype=torch.float64), gammas])

    @property
    def steps(self) -> int:
        return self.cfg.steps

    def sample_gamma(self, batch: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
        t = torch.randint(1, self.steps + 1, (batch,), generator=generator)
        low, high = self.gammas[t], self.gammas[t - 1]
        u = torch.rand(batch, generator=generator, dtype=torch.float64)
        return (low + u * (high - low)).float().to(device)


def noisy_input(y0: torch.Tensor, condition: torch.Tensor, mask: torch.Tensor, gamma: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    g = gamma.view(-1, 1, 1, 1)
    y_noisy = g.sqrt() * y0 + (1 - g).sqrt() * noise
    y_noisy = mask * y_noisy + (1 - mask) * y0  # known region stays clean
    return torch.cat([condition, y_noisy], dim=1)


def training_loss(
    model: Denoiser,
    schedule: Schedule,
    y0: torch.Tensor,
    condition: torch.Tensor,
    mask: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Algorithm 1: predict the noise that made y~ from (x, y~, gamma); loss on the masked region.

    With prediction "v" the network predicts v = sqrt(gamma) eps - sqrt(1 - gamma) y0
    instead (Salimans & Ho 2022): the same information, but y0 recovered from it does not
    blow up errors by 1/sqrt(gamma) at high noise, which matters for short training runs.
    Weighting "min_snr" scales each image's loss by loss_weights().
    """
    gamma = schedule.sample_gamma(y0.shape[0], generator, y0.device)
    noise = torch.randn(y0.shape, generator=generator).to(y0.device)
    output = model(noisy_input(y0, condition, mask, gamma, noise), gamma)
    if schedule.cfg.prediction == "v":
        g = gamma.view(-1, 1, 1, 1)
        target = g.sqrt() * noise - (1 - g).sqrt() * y0
    else:
        target = noise
    if schedule.cfg.loss == "l1":
        err = (output - target).abs()
    else:
        err = (output - target).square()
    if schedule.cfg.weighting == "min_snr":
        err = err * loss_weights(gamma, schedule.cfg).view(-1, 1, 1, 1)
    mask = mask.expand_as(err)
    return (err * mask).sum() / mask.sum().clamp(min=1)


def loss_weights(gamma: torch.Tensor, cfg: DiffusionConfig) -> torch.Tensor:
    """Min-SNR-gamma weights (Hang et al. 2023, eq. 8): the y0-prediction loss weighted by
    min(SNR, snr_gamma), SNR = gamma / (1 - gamma), written for the target predicted - eps errors
    are SNR times y0 errors, v errors (SNR + 1) times (as L2; the same weights serve L1)."""
    snr = gamma / (1 - gamma)
    clipped = snr.clamp(max=cfg.snr_gamma)
    return clipped / (snr + 1) if cfg.prediction == "v" else clipped / snr


def timesteps(schedule: Schedule, sampler: str, steps: int) -> list[int]:
    """The descending schedule indices a sampler visits (DDIM: `steps` of them, evenly spaced)."""
    if sampler == "ddpm":
        return list(range(schedule.steps, 0, -1))
    steps = min(steps, schedule.steps)
    return torch.linspace(schedule.steps, 1, steps).round().long().unique_consecutive().tolist()


@torch.no_grad()
def sample(
    model: Denoiser,
    schedule: Schedule,
    condition: torch.Tensor,
    mask: torch.Tensor,
    known: torch.Tensor | None = None,
    sampler: str = "ddim",
    steps: int = 50,
    eta: float = 0.0,
    generator: torch.Generator | None = None,
    keep_frames: int = 0,
    labels: tuple[torch.Tensor, torch.Tensor] | None = None,
    guidance: Guidance = Guidance(),
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Sample y0 given the condition. DDPM walks every step; DDIM (eta=0: deterministic) a subsequence.

    `known` is the clean target outside the mask (inpainting), pasted back after every step.
    `labels` (fine, superclass) condition a class-conditional model, steered by `guidance`.
    Returns the final images and, when keep_frames > 0, that many states y_t spread evenly
    over the trajectory from the starting noise to the final images, both included (for the
    denoising-process figure; fewer when the sampler has fewer states than that).
    """
    device = condition.device
    if known is None:
        known = torch.zeros_like(condition)
    visit = timesteps(schedule, sampler, steps)
    y = torch.randn(condition.shape, generator=generator).to(device)
    y = mask * y + (1 - mask) * known
    # state k is y after k sampling steps: 0 is the starting noise, len(visit) the result
    keep_at = set(torch.linspace(len(visit), 0, keep_frames).round().long().tolist()) if keep_frames else set()
    frames = [y.clone()] if 0 in keep_at else []
    for i, t in enumerate(visit):
        t_prev = visit[i + 1] if i + 1 < len(visit) else 0
        g, g_prev = schedule.gammas[t].item(), schedule.gammas[t_prev].item()
        gamma = torch.full((y.shape[0],), g, device=device)
        output = denoise(model, torch.cat([condition, y], dim=1), gamma, labels, guidance)
        if schedule.cfg.prediction == "v":
            y0_hat = (g**0.5 * y - (1 - g) ** 0.5 * output).clamp(-1, 1)
        else:
            y0_hat = ((y - (1 - g) ** 0.5 * output) / g**0.5).clamp(-1, 1)
        eps = (y - g**0.5 * y0_hat) / (1 - g) ** 0.5  # consistent with the clipped y0
        if sampler == "ddpm":
            sigma = ((1 - g_prev) / (1 - g) * (1 - g / g_prev)) ** 0.5
        else:
            sigma = eta * ((1 - g_prev) / (1 - g) * (1 - g / g_prev)) ** 0.5
        direction = max(1 - g_prev - sigma**2, 0.0) ** 0.5
        y = g_prev**0.5 * y0_hat + direction * eps
        if sigma > 0 and t_prev > 0:
            y = y + sigma * torch.randn(y.shape, generator=generator).to(device)
        y = mask * y + (1 - mask) * known
        if i + 1 in keep_at:
            frames.append(y.clone())
    return y, frames
