"""Running a trained checkpoint: rebuild its U-Net from meta.json and restore degraded images.

A checkpoint directory describes itself (architecture, diffusion schedule, task), so
sampling needs no params.yaml and always uses the schedule the model was trained with.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from . import checkpoint
from .config import DiffusionConfig, ModelConfig, parse
from .diffusion import Schedule, sample
from .tasks import Task, make_task
from .unet import UNet


@dataclass
class LoadedModel:
    network: UNet
    schedule: Schedule
    task: Task
    image_size: int
    meta: dict


def load_model(directory: Path, device: str | torch.device = "cpu") -> LoadedModel:
    """The EMA network of a finished checkpoint directory, in eval mode."""
    weights, meta = checkpoint.load_weights(directory)
    arch = meta["architecture"]
    model_cfg = parse(ModelConfig, {k.removeprefix("model."): v for k, v in arch.items() if k.startswith("model.")}, "model")
    image_size = arch["data.image_size"]
    network = UNet(model_cfg, image_size)
    network.load_state_dict(weights["ema"])
    # channels_last as in training: measured ~15% faster sampling on CPU
    network = network.to(device, memory_format=torch.channels_last).eval()
    schedule = Schedule(parse(DiffusionConfig, meta["diffusion"], "diffusion"))
    return LoadedModel(network, schedule, make_task(meta["task"]), image_size, meta)


@dataclass
class Restoration:
    target: torch.Tensor  # the clean images (B,3,H,W) in [-1, 1]
    condition: torch.Tensor  # what the model saw
    mask: torch.Tensor  # 1 where the model generated
    output: torch.Tensor
    frames: list[torch.Tensor]  # the denoising process, when asked for


def restore(
    model: LoadedModel,
    clean: torch.Tensor,
    seed: int,
    sampler: str = "ddim",
    steps: int = 50,
    eta: float = 0.0,
    keep_frames: int = 0,
) -> Restoration:
    """Degrade `clean` with the model's task (masks and noise from `seed`) and sample the restoration.

    The same seed gives the same masks, noise and output: evaluation is repeatable, and
    several samples of one input are several seeds on purpose.
    """
    device = next(model.network.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    clean = clean.to(device)
    condition, mask = model.task.degrade(clean, generator)
    output, frames = sample(
        model.network, model.schedule, condition, mask, known=clean * (1 - mask),
        sampler=sampler, steps=steps, eta=eta, generator=generator, keep_frames=keep_frames,
    )
    return Restoration(clean, condition, mask, output, frames)
