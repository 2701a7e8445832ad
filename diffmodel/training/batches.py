"""What the loop feeds the model: an epoch's images (Algorithm 2's subsets, this rank's share),
batch by batch with their labels, and the validation set the EMA weights are scored on."""

from __future__ import annotations

import functools

import numpy as np
import torch

from ..config import TrainConfig
from ..data.prepared import PreparedDomain
from ..data.subsets import epoch_indices, rank_share
from ..data.tensors import to_tensor
from ..errors import UserError
from ..model.diffusion import Schedule, training_loss
from ..model.unet import Labels, label_tensors
from .distributed import Ranks
from .step import dropped_labels

VAL_SEED = 20240722


class TrainingData:
    def __init__(self, data: PreparedDomain, schedule: TrainConfig, ranks: Ranks, device: torch.device):
        self.data, self.schedule, self.ranks, self.device = data, schedule, ranks, device
        self.classes = data.scheme

    def epoch(self, epoch: int) -> torch.Tensor:
        """The shuffled training indices this rank visits in `epoch`."""
        cfg = self.schedule
        indices = rank_share(epoch_indices(self.data.subsets, epoch, cfg.subset_epochs, cfg.seed), self.ranks.rank, self.ranks.world)
        if len(indices) < cfg.batch_size * cfg.accumulate:
            raise UserError(f"batch_size * accumulate = {cfg.batch_size * cfg.accumulate} exceeds the {len(indices)} "
                            f"images of one epoch (on each of {self.ranks.world} process(es)); lower batch_size")
        return indices

    def steps_per_epoch(self, indices: torch.Tensor) -> int:
        return len(indices) // (self.schedule.batch_size * self.schedule.accumulate)

    def micro_batches(self, indices: torch.Tensor, step_in_epoch: int, generator: torch.Generator):
        """The micro-batches of one optimizer step, made lazily: each draws its label dropout from
        `generator` just before the step degrades it (the order a resumed run must repeat)."""
        size, per_step = self.schedule.batch_size, self.schedule.batch_size * self.schedule.accumulate
        return (self.batch(np.sort(indices[start : start + size].numpy()), generator)
                for start in range(step_in_epoch * per_step, (step_in_epoch + 1) * per_step, size))

    def batch(self, index: np.ndarray, generator: torch.Generator) -> torch.Tensor | tuple[torch.Tensor, Labels]:
        """Training images, and for a class-conditional model their labels with some dropped."""
        images = to_tensor(self.data.train[index]).to(self.device, memory_format=torch.channels_last)
        if not self.classes.conditional:
            return images
        return images, dropped_labels(self.classes, self.data.labels["train"][index], self.schedule, generator, self.device)

    @torch.no_grad()
    def validation_loss(self, ema: torch.nn.Module, task, noise_schedule: Schedule) -> float:
        """Loss of the EMA weights on the validation set, with the same noise every epoch (comparable
        over time); a class-conditional model is given every image's labels."""
        generator = torch.Generator().manual_seed(VAL_SEED)
        total, count = 0.0, 0
        for start in range(0, len(self.data.val), 256):
            y0 = to_tensor(self.data.val[start : start + 256]).to(self.device)
            denoiser = ema
            if self.classes.conditional:
                labels = label_tensors(self.classes, self.data.labels["val"][start : start + 256], self.device)
                denoiser = functools.partial(ema, labels=labels)
            condition, mask = task.degrade(y0, generator)
            total += training_loss(denoiser, noise_schedule, y0, condition, mask, generator).item() * len(y0)
            count += len(y0)
        return total / count
