"""How a stored low-rank delta becomes full weights: the one definition of a LoRA update,
used by the training parametrization (model/peft.py) and by loading a delta (store.py) alike.

A LoRA factor pair of a weight W (out x ...) is A (rank x fan-in) and B (out x rank); the
weight the model computes with is W + scale * (B @ A), reshaped to W's shape.

In training, torch.nn.utils.parametrize keeps the factors of module X's weight at
X.parametrizations.weight.0.lora_a / lora_b; a delta file stores them as X.lora_a / X.lora_b.
A safetensors header spends a line per tensor, and most of a small delta's tensors are factors:
the short names keep the file within 10 % of the bytes of the numbers it holds.
"""

from __future__ import annotations

import torch

TRAINED = ".parametrizations.weight.0."  # between a module's name and its factor's, in training
FACTOR_A = ".lora_a"
FACTOR_B = ".lora_b"


def stored_keys(tensors: dict) -> dict:
    """A LoRA model's trained tensors under the names its delta file gives them."""
    return {key.replace(TRAINED, "."): value for key, value in tensors.items()}


def low_rank_update(weight: torch.Tensor, a: torch.Tensor, b: torch.Tensor, scale: float) -> torch.Tensor:
    return weight + scale * (b @ a).view(weight.shape)


def merge_low_rank(parent: dict, stored: dict, scale: float) -> dict:
    """`stored` (a delta file's tensors) with every factor pair folded into its weight from `parent`
    (plain state-dict keys); the other stored tensors (biases, norms, embedders) pass through."""
    merged = {k: v for k, v in stored.items() if not k.endswith((FACTOR_A, FACTOR_B))}
    for key in stored:
        if key.endswith(FACTOR_A):
            module = key[: -len(FACTOR_A)]
            weight = parent[f"{module}.weight"]
            merged[f"{module}.weight"] = low_rank_update(weight, stored[key].to(weight.dtype),
                                                         stored[module + FACTOR_B].to(weight.dtype), scale)
    return merged
