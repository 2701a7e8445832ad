"""Training precision (diffmodel/precision.py): the rule `auto` follows, and a bf16 training step
checked against the fp32 one."""

from __future__ import annotations

import copy

import pytest
import torch

from diffmodel import precision
from diffmodel.config import DiffusionConfig, ModelConfig, TrainConfig
from diffmodel.diffusion import Schedule
from diffmodel.tasks import Inpainting
from diffmodel.train import train_step
from diffmodel.unet import UNet

CPU, GPU = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize("native, channels, chosen", [
    (True, 64, "bf16"),   # measured 1.7x faster with avx512_bf16 (width 64, 64 px)
    (True, 16, "fp32"),   # measured 0.92x: the default model gains nothing
    (False, 64, "fp32"),  # emulated bf16: measured 13.5x slower here (AVX2)
    (False, 16, "fp32"),
])
def test_auto_on_a_cpu_takes_bf16_only_with_native_instructions_and_a_wide_model(monkeypatch, native, channels, chosen):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    assert precision.resolve("auto", CPU, channels) == chosen


@pytest.mark.parametrize("native, chosen", [(True, "bf16"), (False, "fp32")])
def test_auto_on_a_gpu_takes_bf16_where_it_is_native_whatever_the_width(monkeypatch, native, chosen):
    monkeypatch.setattr(precision, "gpu_has_native_bf16", lambda: native)
    assert precision.resolve("auto", GPU, 16) == chosen


@pytest.mark.parametrize("device", [CPU, GPU])
@pytest.mark.parametrize("setting", ["fp32", "bf16"])
def test_an_explicit_precision_is_used_as_it_is(device, setting):
    assert precision.resolve(setting, device, 16) == setting


def test_this_machines_probe_answers():
    assert isinstance(precision.cpu_has_native_bf16(), bool)


def test_a_bf16_step_computes_the_fp32_loss_to_bf16_accuracy_and_keeps_fp32_weights():
    torch.manual_seed(0)
    tiny = ModelConfig(channels=16, channel_mults=(1, 2), attention_resolutions=(8,), head_channels=16, groups=8)
    reference = UNet(tiny, 16)
    images = torch.rand(8, 3, 16, 16) * 2 - 1
    losses, models = {}, {}
    for name in ("fp32", "bf16"):
        model = copy.deepcopy(reference)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        losses[name] = train_step(model, copy.deepcopy(model).requires_grad_(False), optimizer, [images], Inpainting(),
                                  Schedule(DiffusionConfig(steps=100)), TrainConfig(batch_size=8), 0,
                                  torch.Generator().manual_seed(1), name).item()
        models[name] = model
    # same noise, masks and weights: only the arithmetic differs; bf16 keeps 8 significant bits (0.4%)
    assert losses["bf16"] == pytest.approx(losses["fp32"], rel=0.03)
    assert all(p.dtype == torch.float32 for p in models["bf16"].parameters())
    def moved(model):
        return [not torch.equal(a, b) for a, b in zip(model.parameters(), reference.parameters())]
    # the bf16 step trained what the fp32 one did (on a first step only the zero-initialised output layers get gradients)
    assert any(moved(models["fp32"])) and moved(models["bf16"]) == moved(models["fp32"])
