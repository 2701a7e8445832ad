"""Parameter-efficient fine-tuning (FineDiffusion): which tensors an adaptation trains.

With `method: peft` an adaptation trains only
- every bias,
- the affine parameters of every normalization layer,
- the embedders: the noise-level embedding MLP (`embed`) and any class embedder;
everything else keeps its parent's values, frozen: no gradient, no optimizer state, no EMA
copy, and not stored - the model directory holds only the trained tensors (a delta on its
parent, checkpoint.py rebuilds the full weights). With `method: full` every tensor trains.

FineDiffusion (DiT-XL/2, 10,000 classes) trains 1.77 % of the parameters this way and runs
1.56x faster than full fine-tuning. A small U-Net's share is larger: biases and norms grow with
the width, weights with its square.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..config import Params
from .unet import UNet

METHODS = ("full", "peft")
NORMALIZATION = (nn.GroupNorm, nn.LayerNorm, nn.BatchNorm2d, nn.InstanceNorm2d)
EMBEDDERS = ("embed", "class_embed")  # top-level U-Net modules that embed the conditioning


def trains_under_peft(module_name: str, module: nn.Module, parameter_name: str) -> bool:
    """The one rule: does PEFT train this parameter (`parameter_name` of `module`, at `module_name`)?"""
    if parameter_name == "bias" or isinstance(module, NORMALIZATION):
        return True
    return module_name.split(".")[0] in EMBEDDERS


def trainable_names(model: nn.Module, method: str) -> set[str]:
    """Names (as in model.state_dict()) of the parameters that train under `method`."""
    if method not in METHODS:
        raise ValueError(f"unknown fine-tuning method {method!r} (choose from {', '.join(METHODS)})")
    names = set()
    for module_name, module in model.named_modules():
        for parameter_name, _ in module.named_parameters(recurse=False):
            if method == "full" or trains_under_peft(module_name, module, parameter_name):
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
    """What a model directory stores: the trained parameters and every buffer (buffers change
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
    names = trainable_names(model, method)
    parameters = dict(model.named_parameters())
    return TrainableShare(method, sum(parameters[n].numel() for n in names), sum(p.numel() for p in parameters.values()))


def training_state_bytes(model: nn.Module, ema: nn.Module) -> int:
    """Bytes training holds for the parameters, counted from the tensors: the weights, the EMA's
    own copies (none for frozen ones, share_frozen), and per trainable tensor a gradient and
    Adam's two moments. Activations come on top and do not depend on the method."""
    distinct = {id(p): p for p in [*model.parameters(), *ema.parameters()]}
    weights = sum(p.numel() * p.element_size() for p in distinct.values())
    trainable = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    return weights + 3 * trainable


def paper_scale_share(params: Params) -> TrainableShare:
    """What PEFT trains of the U-Net `params` describes, built on the meta device (shapes, no memory)."""
    with torch.device("meta"):
        return trainable_share(UNet(params.model, params.data.image_size), "peft")
