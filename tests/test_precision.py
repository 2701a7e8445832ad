"""Training precision (diffmodel/precision.py): the rule `auto` follows, and a bf16 training step
checked against the fp32 one."""

from __future__ import annotations

import copy

import pytest
import torch
from records import record

from diffmodel.checkpoints.meta import SessionRecord
from diffmodel.config import DiffusionConfig, ModelConfig, TrainConfig
from diffmodel.model.diffusion import Schedule
from diffmodel.model.tasks import Inpainting
from diffmodel.model.unet import UNet
from diffmodel.training import precision
from diffmodel.training.step import train_step

CPU, GPU = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize("native, channels, chosen", [
    (True, 64, "bf16"),   # measured 1.7x faster with avx512_bf16 (width 64, 64 px)
    (True, 16, "fp32"),   # measured 0.92x: the default model gains nothing
    (False, 64, "fp32"),  # emulated bf16: measured 11.6x slower here (AVX2; README table)
    (False, 16, "fp32"),
])
def test_auto_on_a_cpu_takes_bf16_only_with_native_instructions_and_a_wide_model(monkeypatch, native, channels, chosen):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    assert precision.resolve("auto", CPU, channels) == chosen


@pytest.mark.parametrize("capability, chosen", [((8, 0), "bf16"), ((9, 0), "bf16"), ((7, 5), "fp32")])  # A100, H100, T4
def test_auto_on_a_gpu_takes_bf16_from_ampere_on_whatever_the_width(monkeypatch, capability, chosen):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert precision.resolve("auto", GPU, 16) == chosen


@pytest.mark.parametrize("device", [CPU, GPU])
@pytest.mark.parametrize("setting", ["fp32", "bf16"])
def test_an_explicit_precision_is_used_as_it_is(device, setting):
    assert precision.resolve(setting, device, 16) == setting


def test_this_machines_probe_answers():
    assert isinstance(precision.cpu_has_native_bf16(), bool)


def test_bf16_autocast_computes_in_bf16_and_an_unresolved_precision_is_refused():
    with precision.autocast("bf16", CPU):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    with precision.autocast("fp32", CPU):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
    with pytest.raises(ValueError, match="resolve it first"):
        precision.autocast("auto", CPU)


@pytest.mark.parametrize("precisions, reported", [
    (["fp32", "fp32"], "fp32"),
    (["bf16", "fp32"], "bf16+fp32"),  # a GPU session resumed on a CPU
    ([None], None),  # trained before precision was recorded
])
def test_timings_report_the_precisions_the_sessions_trained_in(precisions, reported):
    sessions = [SessionRecord(k + 1, 0, 0, k > 0, precision=p) for k, p in enumerate(precisions)]
    assert record(sessions=sessions).timings()["precision"] == reported


def test_a_bf16_step_computes_the_fp32_loss_to_bf16_accuracy_and_keeps_fp32_weights():
    torch.manual_seed(0)
    tiny = ModelConfig(channels=16, channel_mults=(1, 2), attention_resolutions=(8,), head_channels=16, groups=8)
    reference = UNet(tiny, 16)
    with torch.no_grad():  # a trained-looking network: the zero-initialised output layers would make the loss exact
        for p in reference.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
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
    assert losses["bf16"] != losses["fp32"] and losses["bf16"] == pytest.approx(losses["fp32"], rel=0.03)
    assert all(p.dtype == torch.float32 for p in models["bf16"].parameters())
    def moved(model):
        return [not torch.equal(a, b) for a, b in zip(model.parameters(), reference.parameters())]
    # the bf16 step trained what the fp32 one did: every tensor
    assert all(moved(models["fp32"])) and all(moved(models["bf16"]))
