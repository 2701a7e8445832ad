"""What training holds: the online U-Net, its EMA copy and the optimizer, built one way for the
training loop and the benchmarks alike."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from ..classes import ClassScheme
from ..config import ModelConfig, TrainConfig
from ..model import peft
from ..model.unet import UNet
from .distributed import Ranks
from .rng import restore_rng
from .session import Position


@dataclass
class Networks:
    model: torch.nn.Module  # the online network (wrapped in DistributedDataParallel under torchrun)
    ema: torch.nn.Module  # its exponential moving average: what is validated, saved and sampled
    optimizer: torch.optim.Optimizer


def build_model(model: ModelConfig, image_size: int, dropout: float = 0.0, classes: ClassScheme | None = None) -> UNet:
    return UNet(model, image_size, dropout, classes=classes)


def build_networks(model_cfg: ModelConfig, image_size: int, schedule: TrainConfig, device: torch.device,
                   classes: ClassScheme | None = None, parent_weights: dict | None = None,
                   same_classes: bool = True, fused_adam: bool = True) -> Networks:
    """The U-Net (random, or its parent's EMA weights), frozen as schedule.method says, its EMA copy
    and Adam over the tensors that train. Draws the initial weights from torch's global generator.
    `fused_adam` False: Adam one tensor at a time, as before (benchmarks/throughput.py compares)."""
    model = build_model(model_cfg, image_size, schedule.dropout, classes).to(device)
    if parent_weights is not None:
        start_from_parent(model, parent_weights, same_classes)
    trainable = peft.freeze(peft.adaptable(model, schedule), schedule.method)
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    peft.share_frozen(ema, model)
    # fused: one kernel updates every tensor, instead of a dozen small ops per tensor
    return Networks(model, ema, torch.optim.Adam(trainable, lr=schedule.lr, fused=True if fused_adam else None))


def for_training(networks: Networks, ranks: Ranks, device: torch.device, channels_last: bool = True) -> Networks:
    """The online network as the loop runs it: channels-last (faster convolutions on CPU and GPU),
    and under torchrun wrapped for DDP."""
    model = networks.model.to(memory_format=torch.channels_last) if channels_last else networks.model
    if ranks.world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    return Networks(model, networks.ema, networks.optimizer)


def restore(networks: Networks, state: dict, generator: torch.Generator) -> Position:
    """Load a resume state into freshly built networks (a PEFT state holds the trained tensors; the
    rest are the parent's, already loaded) and restore every RNG; returns where it was saved."""
    networks.model.load_state_dict({**networks.model.state_dict(), **state["online"]})
    networks.ema.load_state_dict({**networks.ema.state_dict(), **state["ema"]})
    networks.optimizer.load_state_dict(state["optimizer"])
    restore_rng(state["rng"], generator)
    return Position(state["epoch"], state["batch_in_epoch"], state["step"])


def start_from_parent(model: UNet, parent_weights: dict, same_classes: bool) -> bool:
    """Load a parent's weights. Its class embedder comes along only for the same classes. Otherwise
    the model starts exactly as its parent given no label, whatever label it is given: every row of
    its new embedder is the parent's "no label" row (zero when the parent had no classes).
    Returns whether the class embedder was taken over."""
    take = same_classes and model.class_embed is not None
    weights = {k: v for k, v in parent_weights.items() if take or not k.startswith("class_embed.")}
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if unexpected or any(not k.startswith("class_embed.") for k in missing):
        raise RuntimeError(f"parent weights do not fit: missing {missing}, unexpected {unexpected}")
    if model.class_embed is not None and not take:
        with torch.no_grad():
            for table in ("fine", "superclass"):
                parent_rows = parent_weights.get(f"class_embed.{table}.weight")
                getattr(model.class_embed, table).weight.copy_(
                    torch.zeros(()) if parent_rows is None else parent_rows[-1].expand_as(getattr(model.class_embed, table).weight))
    return take
