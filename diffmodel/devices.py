"""Where the work runs: the one default device choice, a user's --device, and the kernels behind it.

Float results differ between kernel sets (AVX2 against AVX-512 CPUs, one GPU against another),
so a run is bitwise reproducible on the same kind only; training records kernel_set() per session.
"""

from __future__ import annotations

import torch

from .errors import UserError


def default_device() -> torch.device:
    """The current CUDA device when there is one (torchrun sets it per rank), else the CPU."""
    return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")


def device_from(name: str | None) -> torch.device:
    """A user's device name (None or "auto": the default), checked: a one-line UserError otherwise."""
    if name in (None, "auto"):
        return default_device()
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"--device {name}: not a device name (try cpu, cuda or cuda:1)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name}: CUDA is not available on this machine")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UserError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device


def kernel_set(device: torch.device) -> str:
    """What computes the floats: the GPU's name, or torch's CPU capability (DEFAULT, AVX2, AVX512...)."""
    if device.type == "cuda":
        return f"cuda {torch.cuda.get_device_name(device)}"
    return f"cpu {torch.backends.cpu.get_cpu_capability()}"
