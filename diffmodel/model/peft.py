"""Parameter-efficient fine-tuning: which tensors an adaptation trains (params `adapt.method`).

    full                 every tensor
    finediffusion        FineDiffusion's rule: every bias, the affine parameters of every
                         normalization layer, the class embedder
    finediffusion_time   the same plus the noise-level MLP (`embed`); called `peft` until 2026-12
    finediffusion_input  finediffusion_time plus the input convolution (`stem`): colorization
                         must re-mix the condition's channels at every pixel, which constants and
                         per-channel scales cannot do
    lora                 finediffusion_time's tensors plus a rank-r update B @ A (scale alpha / r)
                         of every other convolution and linear weight (LoRA, Hu et al. 2021)

Everything else keeps its parent's values, frozen: no gradient, no optimizer state, no EMA
copy, and not stored - the model directory holds only the trained tensors (a delta on its
parent; checkpoints/store.py rebuilds the full weights and folds LoRA's factors into them).

FineDiffusion (DiT-XL/2, 10,000 classes) trains 1.77 % of the parameters and runs 1.56x faster
than full fine-tuning. A small U-Net's share is larger: biases and norms grow with the width,
weights with its square.

LoRA is torch's own parametrization (torch.nn.utils.parametrize) rather than HF `peft`: that
library brings transformers, accelerate and the hub client for some forty lines here, and its
merge is the same arithmetic (checkpoints/deltas.py holds the one definition).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import nn
from torch.nn.utils import parametrize

from ..checkpoints.deltas import low_rank_update
from ..config import Params, TrainConfig
from .unet import UNet

METHODS = ("full", "finediffusion", "finediffusion_time", "finediffusion_input", "lora")
NORMALIZATION = (nn.GroupNorm, nn.LayerNorm, nn.BatchNorm2d, nn.InstanceNorm2d)
CLASS_EMBEDDER = "class_embed"
NOISE_LEVEL_EMBEDDER = "embed"  # the noise-level embedding MLP
INPUT_LAYER = "stem"
LORA_TARGETS = (nn.Conv2d, nn.Linear)
LORA_FACTORS = ("lora_a", "lora_b")


def stores_delta(method: str) -> bool:
    """Whether a model trained by `method` stores only its trained tensors (rebuilt on its parent)."""
    return method != "full"


def trains(method: str, module_name: str, module: nn.Module, parameter_name: str) -> bool:
    """The one rule: does `method` train this parameter (`parameter_name` of `module`, at `module_name`)?"""
    top = module_name.split(".")[0]
    if method == "full" or parameter_name in LORA_FACTORS:
        return True
    if parameter_name == "bias" or isinstance(module, NORMALIZATION) or top == CLASS_EMBEDDER:
        return True
    if method == "finediffusion":
        return False
    if top == NOISE_LEVEL_EMBEDDER:
        return True
    return method == "finediffusion_input" and module_name == INPUT_LAYER


class LowRankUpdate(nn.Module):
    """A weight's LoRA parametrization: W -> W + scale * B @ A. B starts at zero, so training
    starts exactly at the parent; A as nn.Linear initialises its weight (Kaiming uniform)."""

    def __init__(self, weight: torch.Tensor, rank: int, alpha: float):
        super().__init__()
        fan_in = weight[0].numel()
        self.lora_a = nn.Parameter(torch.empty(rank, fan_in, device=weight.device, dtype=weight.dtype))
        self.lora_b = nn.Parameter(torch.zeros(weight.shape[0], rank, device=weight.device, dtype=weight.dtype))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))
        self.scale = alpha / rank

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return low_rank_update(weight, self.lora_a, self.lora_b, self.scale)


def lora_targets(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every convolution and linear layer outside the embedders (those train whole)."""
    return [(name, module) for name, module in model.named_modules() if isinstance(module, LORA_TARGETS)
            and name.split(".")[0] not in (CLASS_EMBEDDER, NOISE_LEVEL_EMBEDDER)]


def adaptable(model: nn.Module, schedule: TrainConfig) -> nn.Module:
    """The model as schedule.method trains it: for lora, every target's weight parametrized with
    its low-rank update (drawing A from torch's global generator); unchanged otherwise."""
    if schedule.method == "lora":
        for _, module in lora_targets(model):
            parametrize.register_parametrization(module, "weight", LowRankUpdate(module.weight, schedule.lora_rank,
                                                                                 schedule.lora_alpha))
    return model


def trainable_names(model: nn.Module, method: str) -> set[str]:
    """Names (as in model.state_dict()) of the parameters that train under `method`."""
    if method not in METHODS:
        raise ValueError(f"unknown fine-tuning method {method!r} (choose from {', '.join(METHODS)})")
    names = set()
    for module_name, module in model.named_modules():
        for parameter_name, _ in module.named_parameters(recurse=False):
            if trains(method, module_name, module, parameter_name):
                names.add(f"{module_name}.{parameter_name}" if module_name else parameter_name)
    return names


def freeze(model: nn.Module, method: str) -> list[nn.Parameter]:
    """Set requires_grad by `method`; returns the trainable parameters (what the optimizer gets)."""
    names = trainable_names(model, method)
    trainable = []
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(name in names)
        if name in names:
            trainable.append(parameter)
    return trainable


def share_frozen(ema: nn.Module, model: nn.Module) -> None:
    """Point the EMA model's frozen parameters at the online model's: the average of a tensor
    that never changes is the tensor, so it needs no second copy."""
    online = dict(model.named_parameters())
    for module_name, module in ema.named_modules():
        for parameter_name, parameter in list(module.named_parameters(recurse=False)):
            source = online[f"{module_name}.{parameter_name}" if module_name else parameter_name]
            if not source.requires_grad:
                setattr(module, parameter_name, source)


def stored_names(model: nn.Module, method: str) -> set[str]:
    """What a model directory stores under a parameter-efficient method: the trained parameters and every buffer (buffers change
    in training, a BatchNorm's running statistics for one; this U-Net has none)."""
    return trainable_names(model, method) | {name for name, _ in model.named_buffers()}


def delta(state: dict, names: set[str]) -> dict:
    """The part of a state dict that `names` (stored_names) keeps."""
    return {key: value for key, value in state.items() if key in names}


@dataclass(frozen=True)
class TrainableShare:
    method: str
    trainable: int
    total: int

    @property
    def percent(self) -> float:
        return 100.0 * self.trainable / self.total

    def as_dict(self) -> dict:
        return {"method": self.method, "trainable_parameters": self.trainable, "parameters": self.total,
                "trainable_percent": round(self.percent, 3)}

    def __str__(self) -> str:
        return f"{self.method}: {self.trainable:,} of {self.total:,} parameters train ({self.percent:.2f} %)"


def trainable_share(model: nn.Module, method: str) -> TrainableShare:
    """How many parameters train, of the network's own (LoRA's factors train, but a full copy has none)."""
    names = trainable_names(model, method)
    parameters = dict(model.named_parameters())
    own = sum(p.numel() for name, p in parameters.items() if name.rsplit(".", 1)[-1] not in LORA_FACTORS)
    return TrainableShare(method, sum(parameters[n].numel() for n in names), own)


def training_state_bytes(model: nn.Module, ema: nn.Module) -> int:
    """Bytes training holds for the parameters, counted from the tensors: the weights, the EMA's
    own copies (none for frozen ones, share_frozen), and per trainable tensor a gradient and
    Adam's two moments. Activations come on top and do not depend on the method."""
    distinct = {id(p): p for p in [*model.parameters(), *ema.parameters()]}
    weights = sum(p.numel() * p.element_size() for p in distinct.values())
    trainable = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    return weights + 3 * trainable


def paper_scale_shares(params: Params) -> dict[str, dict]:
    """What each parameter-efficient method trains of the U-Net `params` describes (LoRA with
    params.adapt's rank), built on the meta device (shapes, no memory)."""
    shares = {}
    for method in METHODS[1:]:
        with torch.device("meta"):
            model = adaptable(UNet(params.model, params.data.image_size), replace(params.adapt, method=method))
        shares[method] = trainable_share(model, method).as_dict()
    return shares
