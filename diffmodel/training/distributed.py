"""Several processes (torchrun, DDP): who this process is, and the few things the ranks must agree on.

Each rank trains on its own share of every epoch and draws its own noise; rank 0 alone writes
files. Every decision that ends a loop or starts a save is taken together (any rank asking to
stop stops all; the validation loss that decides "target reached" is rank 0's), because a rank
that leaves a loop alone waits forever for the others in the next collective. With one
process every method here is a no-op.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1

    @classmethod
    def join(cls) -> Ranks:
        """Under torchrun (WORLD_SIZE > 1) join the process group; otherwise a single process."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world > 1 and torch.cuda.is_available():  # NCCL collectives run on the current device: one per rank
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
        if world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        return cls(dist.get_rank(), dist.get_world_size()) if world > 1 else cls()

    @property
    def writes(self) -> bool:
        """Whether this process writes checkpoints, logs and reports."""
        return self.rank == 0

    def any(self, flags: list[bool], device: torch.device) -> list[bool]:
        """Each flag, true when it is true on any rank."""
        if self.world == 1:
            return flags
        values = torch.tensor([1.0 if f else 0.0 for f in flags], device=device)
        dist.all_reduce(values, op=dist.ReduceOp.MAX)
        return [v > 0 for v in values.tolist()]

    def from_rank0(self, value: float, device: torch.device) -> float:
        """Rank 0's value, on every rank."""
        if self.world == 1:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=device)
        dist.broadcast(tensor, src=0)
        return tensor.item()

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """The mean of a tensor over the ranks (a copy)."""
        if self.world == 1:
            return value
        total = value.detach().clone()
        dist.all_reduce(total)
        return total / self.world

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def seed(self, seed: int, step: int, generator: torch.Generator) -> None:
        """Under DDP every rank must draw its own noise levels, noise, masks and dropout: with one
        seed for all, the ranks would train on the same corruptions of different images. Seeded by
        (seed, rank, step), after the model is built (its initial weights must agree on every rank)
        and after a state is restored. Only rank 0's RNG state is saved, so a resumed DDP run is
        reproducible but not bitwise the uninterrupted one, as it is in a single process."""
        if self.world == 1:
            return
        rank_seed = int(np.random.SeedSequence([seed, self.rank, step]).generate_state(1)[0])
        torch.manual_seed(rank_seed)
        generator.manual_seed(rank_seed + 1)
        random.seed(rank_seed)
        np.random.seed(rank_seed)
