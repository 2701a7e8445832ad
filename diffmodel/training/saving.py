"""A training job's checkpoint directory, as the loop uses it: where to resume from, and saving
the state it is at (rank 0 alone writes)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from ..checkpoints import store
from ..checkpoints.fingerprint import fingerprint
from ..checkpoints.meta import ModelMeta
from ..data.prepared import PreparedDomain
from ..model import peft
from .distributed import Ranks
from .job import TrainJob
from .record import Parent, fresh_meta, job_fingerprint_parts
from .resume import ResumePolicy
from .rng import rng_state
from .session import Position
from .setup import Networks, build_model
from .step import unwrap


class Checkpoints:
    def __init__(self, out_dir: Path, resume: ResumePolicy, stored_names: set[str] | None, ranks: Ranks):
        self.out_dir, self.resume, self.ranks = Path(out_dir), resume, ranks
        self.stored_names = stored_names  # under PEFT the trained tensors (and buffers); None: all of them

    @classmethod
    def for_job(cls, job: TrainJob, data: PreparedDomain, parent: Parent | None, ranks: Ranks,
                log: Callable[[str], None]) -> Checkpoints:
        """The job's directory, resumed only by state with the job's fingerprint."""
        with torch.device("meta"):  # the architecture alone: names and sizes, no memory
            shape = peft.adaptable(build_model(job.model, data.image_size, classes=data.scheme), job.schedule)
        share = peft.trainable_share(shape, job.schedule.method)
        parts = job_fingerprint_parts(job, data, parent, ranks.world)
        digest = fingerprint(parts)
        resume = ResumePolicy(job.name, job.out_dir, job.schedule, digest, parts,
                              lambda: fresh_meta(job, data, parent, share, digest, parts), log, job.target_val_loss)
        stored = peft.stored_names(shape, job.schedule.method) if peft.stores_delta(job.schedule.method) else None
        return cls(job.out_dir, resume, stored, ranks)

    def resume_point(self) -> tuple[ModelMeta, dict | None]:
        """(meta, state to continue or None). Rank 0 decides (and may set stale state aside); the other
        ranks then read what it kept."""
        if self.ranks.world == 1:
            return self.resume.find()
        found = self.resume.find() if self.ranks.writes else None
        self.ranks.barrier()
        return found if self.ranks.writes else self.resume.read_kept()

    def save(self, meta: ModelMeta, at: Position, networks: Networks, generator: torch.Generator) -> ModelMeta:
        """Save the state as of `at` with `meta`; returns meta as written (rank 0; the others' unchanged)."""
        if not self.ranks.writes:
            return meta
        meta = meta.replace(epoch=at.epoch, step=at.step, batch_in_epoch=at.batch_in_epoch)
        state = {
            "online": self._stored(unwrap(networks.model).state_dict()),
            "ema": self._stored(networks.ema.state_dict()),
            "optimizer": networks.optimizer.state_dict(),
            "rng": rng_state(generator),
            "epoch": at.epoch,
            "batch_in_epoch": at.batch_in_epoch,
            "step": at.step,
            "progress": meta.progress_json(),
        }
        return store.save(self.out_dir, state, meta)

    def _stored(self, state: dict) -> dict:
        """What a checkpoint keeps of a state dict: all of it, or under PEFT the trained tensors."""
        return state if self.stored_names is None else peft.delta(state, self.stored_names)
