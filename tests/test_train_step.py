"""One optimizer step of the training loop (train.train_step), checked against definitions."""

from __future__ import annotations

import copy

import pytest
import torch

from diffmodel.config import DiffusionConfig, ModelConfig, TrainConfig
from diffmodel.model.diffusion import Schedule
from diffmodel.model.tasks import Colorization
from diffmodel.model.unet import UNet
from diffmodel.training.step import train_step

TINY = ModelConfig(channels=8, channel_mults=(1, 2), attention_resolutions=(), head_channels=8, groups=4)


def perturbed(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """A copy whose every parameter differs from the model's (zero-initialised layers included)."""
    other = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=generator))
    return other


# The EMA decay in force at a step: (1 + step) / (10 + step), capped at ema_decay - worked out by hand.
@pytest.mark.parametrize("step, decay_in_force", [(0, 0.1), (90, 0.91), (10**6, 0.999)])
def test_the_ema_is_decay_times_itself_plus_the_rest_times_the_new_online_weights(step, decay_in_force):
    torch.manual_seed(0)
    model = UNet(TINY, 16)
    ema = perturbed(model, seed=1).requires_grad_(False)
    ema_before = [p.clone() for p in ema.parameters()]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    cfg = TrainConfig(batch_size=4, ema_decay=0.999, warmup_steps=0)
    images = torch.rand(4, 3, 16, 16) * 2 - 1
    train_step(model, ema, optimizer, [images], Colorization(), Schedule(DiffusionConfig(steps=50)), cfg, step,
               torch.Generator().manual_seed(2), "fp32")
    for before, online, after in zip(ema_before, model.parameters(), ema.parameters()):
        expected = decay_in_force * before + (1 - decay_in_force) * online.detach()
        torch.testing.assert_close(after, expected, rtol=1e-5, atol=1e-6)


def test_warmup_scales_the_learning_rate_linearly_to_its_value():
    model = UNet(TINY, 16)
    optimizer = torch.optim.Adam(model.parameters(), lr=1.0)
    cfg = TrainConfig(batch_size=2, lr=0.01, warmup_steps=10)
    images = torch.zeros(2, 3, 16, 16)
    for step, lr in [(0, 0.001), (4, 0.005), (9, 0.01), (50, 0.01)]:
        train_step(model, copy.deepcopy(model), optimizer, [images], Colorization(), Schedule(DiffusionConfig(steps=50)),
                   cfg, step, torch.Generator().manual_seed(0), "fp32")
        assert optimizer.param_groups[0]["lr"] == pytest.approx(lr)
