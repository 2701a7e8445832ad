"""Training precision: fp32, or bf16 autocast where the hardware runs it faster.

`train.precision: auto` (the default) follows a rule drawn from measurements (README, "Training
precision"), not a timing run at start-up, so that a resumed run makes the same choice:

* CUDA: bf16 when the GPU computes it natively (compute capability 8 or more: Ampere and
  newer), else fp32. An older GPU (a free Colab T4) only emulates bf16.
* CPU: bf16 only when the CPU has bf16 instructions (AVX512-BF16 or AMX) *and* the U-Net is at
  least `WIDE_ENOUGH` channels wide: with avx512_bf16, a width-64 U-Net at 64 px trained 1.7x
  faster under bf16, the default width-16 U-Net at 32 px 0.92x. Without those instructions bf16
  is emulated and several times slower (README, "Training precision", has the measurements).

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


def gpu_has_native_bf16(device: torch.device) -> bool:
    """Whether this GPU computes bf16 natively: compute capability 8+ (ROCm GPUs: torch's own answer)."""
    if not torch.cuda.is_available():
        return False
    if torch.version.hip:
        return torch.cuda.is_bf16_supported()
    return torch.cuda.get_device_capability(device)[0] >= 8


def resolve(setting: str, device: torch.device, channels: int) -> str:
    """The precision a training run uses: `setting` itself, or for "auto" the rule above."""
    if setting != "auto":
        return setting
    if device.type == "cuda":
        return "bf16" if gpu_has_native_bf16(device) else "fp32"
    return "bf16" if device.type == "cpu" and cpu_has_native_bf16() and channels >= WIDE_ENOUGH else "fp32"


def autocast(precision: str, device: torch.device):
    """The context a training step's forward and loss run in, for a resolved precision."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if precision == "fp32":
        return contextlib.nullcontext()
    raise ValueError(f"precision {precision!r}: resolve it first (fp32 or bf16)")
