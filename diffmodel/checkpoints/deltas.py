"""How a stored low-rank delta becomes full weights: the one definition of a LoRA update,
used by the training parametrization (model/peft.py) and by loading a delta (store.py) alike.

A LoRA factor pair of a weight W (out x ...) is A (rank x fan-in) and B (out x rank); the
weight the model computes with is W + scale * (B @ A), reshaped to W's shape.
"""

from __future__ import annotations

import torch

# where torch.nn.utils.parametrize keeps the factors of module X's weight: X + FACTOR_A / FACTOR_B
FACTOR_A = ".parametrizations.weight.0.lora_a"
FACTOR_B = ".parametrizations.weight.0.lora_b"
ORIGINAL = ".parametrizations.weight.original"  # the frozen parent weight


def low_rank_update(weight: torch.Tensor, a: torch.Tensor, b: torch.Tensor, scale: float) -> torch.Tensor:
    return weight + scale * (b @ a).view(weight.shape)


def merge_low_rank(parent: dict, stored: dict, scale: float) -> dict:
    """`stored` with every factor pair folded into its weight from `parent` (plain state-dict keys);
    the other stored tensors (biases, norms, embedders) pass through."""
    merged = {k: v for k, v in stored.items() if not k.endswith((FACTOR_A, FACTOR_B))}
    for key in stored:
        if key.endswith(FACTOR_A):
            module = key[: -len(FACTOR_A)]
            weight = parent[f"{module}.weight"]
            merged[f"{module}.weight"] = low_rank_update(weight, stored[key].to(weight.dtype),
                                                         stored[module + FACTOR_B].to(weight.dtype), scale)
    return merged
