"""Training precision: fp32, or bf16 autocast where the hardware runs it faster.

`train.precision: auto` (the default) follows a rule drawn from measurements (README, "Training
precision"), not a timing run at start-up, so that a resumed run makes the same choice:

* CUDA: bf16 when the GPU computes it natively (Ampere or newer), else fp32. A free Colab T4
  emulates bf16, slower than fp32.
* CPU: bf16 only when the CPU has bf16 instructions (AVX512-BF16 or AMX) *and* the U-Net is at
  least `WIDE_ENOUGH` channels wide: with avx512_bf16, a width-64 U-Net at 64 px trained 1.7x
  faster under bf16, the default width-16 U-Net at 32 px 0.92x. Without those instructions bf16
  is emulated: 6.4x slower for the default model and 13.5x for the width-64 one (AVX2 EPYC).

Only the training step's forward and loss run in bf16; weights, gradients, the optimizer, the
validation loss and sampling stay fp32.
"""

from __future__ import annotations

import contextlib

import torch

PRECISIONS = ("auto", "fp32", "bf16")
WIDE_ENOUGH = 64


def cpu_has_native_bf16() -> bool:
    """Whether this CPU has bf16 arithmetic (AVX512-BF16 or AMX); torch's own probe, absent in some builds."""
    probes = (getattr(torch.cpu, "_is_avx512_bf16_supported", None), getattr(torch.cpu, "_is_amx_tile_supported", None))
    return any(probe is not None and probe() for probe in probes)


def gpu_has_native_bf16() -> bool:
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)


def resolve(setting: str, device: torch.device, channels: int) -> str:
    """The precision a training run uses: `setting` itself, or for "auto" the rule above."""
    if setting != "auto":
        return setting
    if device.type == "cuda":
        return "bf16" if gpu_has_native_bf16() else "fp32"
    return "bf16" if device.type == "cpu" and cpu_has_native_bf16() and channels >= WIDE_ENOUGH else "fp32"


def autocast(precision: str, device: torch.device):
    """The context a training step's forward and loss run in."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
