"""One optimizer step (Algorithm 1), the EMA it updates, and the labels a class-conditional model is shown."""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass

import numpy as np
import torch

from ..classes import NO_LABEL, ClassScheme
from ..config import TrainConfig
from ..model.diffusion import Schedule, training_loss
from ..model.unet import Labels, label_tensors
from . import precision


@dataclass(frozen=True)
class StepTensors:
    """The tensors every step touches besides the optimizer's, listed once per run: walking the
    U-Net's module tree for them at each step (parameters(), buffers(), train()) took 7-8 % of a
    CPU training step (cProfile of train@peft_landscapes, 2026-12-02)."""

    trainable: list[torch.nn.Parameter]  # the online model's tensors that train (what is clipped)
    averaged: list[torch.Tensor]  # their EMA copies, in the same order
    buffers: list[tuple[torch.Tensor, torch.Tensor]]  # (EMA, online) buffer pairs, copied each step

    @classmethod
    def of(cls, model: torch.nn.Module, ema: torch.nn.Module) -> StepTensors:
        pairs = [(e, p) for e, p in zip(ema.parameters(), unwrap(model).parameters()) if p.requires_grad]
        return cls([p for _, p in pairs], [e for e, _ in pairs], list(zip(ema.buffers(), unwrap(model).buffers())))


def train_step(model, ema, optimizer, micro_batches, task, schedule: Schedule, cfg: TrainConfig, step: int,
               generator: torch.Generator, precision_in_use: str, tensors: StepTensors | None = None) -> torch.Tensor:
    """One optimizer step over `cfg.accumulate` micro-batches of clean images - each a tensor, or
    (images, labels) for a class-conditional model: degrade, loss, backward, LR warm-up, clipping,
    Adam, EMA. `precision_in_use`: fp32, or bf16 autocast for the forward and loss (precision.py).
    `tensors`: StepTensors.of(model, ema), which a loop lists once. Returns the summed loss, left on
    the device so the loop never waits for it."""
    tensors = tensors or StepTensors.of(model, ema)
    if not model.training:
        model.train()
    loss_sum = None
    distributed = isinstance(model, torch.nn.parallel.DistributedDataParallel)
    for k, batch in enumerate(micro_batches):
        y0, labels = batch if isinstance(batch, tuple) else (batch, None)
        denoiser = model if labels is None else functools.partial(model, labels=labels)
        # under DDP, gradients are averaged over ranks once per step, at the last micro-batch
        with model.no_sync() if distributed and k < cfg.accumulate - 1 else contextlib.nullcontext():
            condition, mask = task.degrade(y0, generator)
            with precision.autocast(precision_in_use, y0.device):
                loss = training_loss(denoiser, schedule, y0, condition, mask, generator)
            (loss / cfg.accumulate).backward()
        loss_sum = loss.detach() if loss_sum is None else loss_sum + loss.detach()
    for group in optimizer.param_groups:
        group["lr"] = cfg.lr * min(1.0, (step + 1) / max(1, cfg.warmup_steps))
    if cfg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(tensors.trainable, cfg.grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    update_ema(tensors, ema_decay_at(step, cfg.ema_decay))
    return loss_sum


def ema_decay_at(step: int, decay: float) -> float:
    """EMA decay warmed up as (1 + step) / (10 + step): a short run (a few hundred steps, or the
    first steps of an adaptation) otherwise keeps mostly its initial weights in the EMA."""
    return min(decay, (1 + step) / (10 + step))


@torch.no_grad()
def update_ema(tensors: StepTensors, decay: float) -> None:
    """Only trainable tensors move; a frozen one is shared with the EMA model (peft.share_frozen)."""
    torch._foreach_lerp_(tensors.averaged, tensors.trainable, 1.0 - decay)
    for b_ema, b in tensors.buffers:
        b_ema.copy_(b)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The network inside a DistributedDataParallel wrapper (or the network itself)."""
    return model.module if hasattr(model, "module") else model


def dropped_labels(classes: ClassScheme, fine: np.ndarray, cfg: TrainConfig, generator: torch.Generator,
                   device: torch.device) -> Labels:
    """(fine, superclass) labels of a batch with labels dropped at random, so the model also learns
    "superclass only" (fine dropped: cfg.label_dropout) and "no label" (both: cfg.label_dropout_all),
    the references of superclass and classifier-free guidance."""
    fine, superclass = label_tensors(classes, fine, "cpu")
    u = torch.rand(len(fine), generator=generator)
    fine = torch.where(u < cfg.label_dropout + cfg.label_dropout_all, NO_LABEL, fine)
    superclass = torch.where(u < cfg.label_dropout_all, NO_LABEL, superclass)
    return fine.to(device), superclass.to(device)
