"""Algorithm 2 (incremental learning): N equal subsets of the training set, E epochs on each.

Epoch e trains on subset (e // E) mod N, so after N*E epochs the model has seen every
image and the rotation starts over. E = 0 means batch learning: every image every epoch.
The order within an epoch depends only on (seed, epoch), so a resumed run sees exactly
the batches an uninterrupted one would.
"""

from __future__ import annotations

import typing

if typing.TYPE_CHECKING:
    import torch


def subset_ranges(count: int, num_subsets: int) -> list[tuple[int, int]]:
    """[start, end) of each subset of a (pre-shuffled) training set; sizes differ by at most one."""
    bounds = [round(i * count / num_subsets) for i in range(num_subsets + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def subset_for_epoch(epoch: int, subset_epochs: int, num_subsets: int) -> int | None:
    """Which subset epoch `epoch` uses; None for batch learning (subset_epochs == 0)."""
    if subset_epochs == 0:
        return None
    return (epoch // subset_epochs) % num_subsets


def epoch_indices(ranges: list[tuple[int, int]], epoch: int, subset_epochs: int, seed: int) -> torch.Tensor:
    """The shuffled training indices epoch `epoch` visits."""
    import torch  # here, not at the top: prepare imports this module for subset_ranges and must not load torch

    subset = subset_for_epoch(epoch, subset_epochs, len(ranges))
    start, end = (ranges[0][0], ranges[-1][1]) if subset is None else ranges[subset]
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return start + torch.randperm(end - start, generator=generator)


def rank_share(indices: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """The part of an epoch's indices that process `rank` of `world` trains on (DDP). Every rank
    gets the same count - the last len % world indices are left out this epoch - because ranks
    that disagree on the number of steps would wait forever for each other's gradients."""
    usable = len(indices) - len(indices) % world
    return indices[rank:usable:world]
