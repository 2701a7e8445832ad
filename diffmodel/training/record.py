"""What a training job writes about itself: its fingerprint parts, and the record a fresh run starts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..checkpoints import store
from ..checkpoints.fingerprint import fingerprint_parts
from ..checkpoints.meta import ModelMeta, ParentRef, architecture
from ..classes import ClassScheme
from ..config import as_plain_dict
from ..data.prepared import PreparedDomain
from ..errors import UserError
from ..model.peft import TrainableShare, stores_delta
from .job import TrainJob

LABEL_DROPOUT = ("label_dropout", "label_dropout_all")
LORA_SHAPE = ("lora_rank", "lora_alpha")


@dataclass
class Parent:
    """The finished checkpoint a job starts from: its full EMA weights and its record."""

    directory: Path
    weights: dict
    meta: ModelMeta

    @classmethod
    def load(cls, job: TrainJob, image_size: int) -> Parent | None:
        if job.init is None:
            if stores_delta(job.schedule.method):
                raise UserError(f"{job.name}: method {job.schedule.method} fine-tunes a trained parent, but this model "
                                f"starts from scratch")
            return None
        weights, meta = store.load_weights(job.init)
        store.check_architecture(architecture(job.model, image_size), meta.architecture, job.init)
        return cls(Path(job.init), weights, meta)

    def same_classes(self, classes: ClassScheme) -> bool:
        return self.meta.class_scheme() == classes


def job_fingerprint_parts(job: TrainJob, data: PreparedDomain, parent: Parent | None, world: int) -> dict:
    values = {"task": job.task, "domain": job.domain, "architecture": architecture(job.model, data.image_size),
              "diffusion": as_plain_dict(job.diffusion), "classes": data.scheme.as_dict()}
    unused = (() if data.scheme.conditional else LABEL_DROPOUT)  # a model without classes drops no labels
    unused += () if job.schedule.method == "lora" else LORA_SHAPE
    parent_sha = parent.meta.weights_sha256 if parent else None
    return fingerprint_parts(values, job.schedule, data.content_hash, data.subsets, parent_sha, world, unused)


def fresh_meta(job: TrainJob, data: PreparedDomain, parent: Parent | None, share: TrainableShare, fingerprint: str,
               parts: dict) -> ModelMeta:
    """The record of a run that starts from nothing trained."""
    return ModelMeta(
        name=job.name, task=job.task, domain=job.domain, architecture=architecture(job.model, data.image_size),
        diffusion=as_plain_dict(job.diffusion), schedule=as_plain_dict(job.schedule),
        fingerprint=fingerprint, fingerprint_parts=parts,
        data={"path": str(job.data_dir), "content_hash": data.content_hash}, epochs=job.schedule.epochs,
        classes=data.scheme.as_dict(),  # a model with several takes labels (diffmodel/classes.py)
        method=job.schedule.method,
        stores="delta" if stores_delta(job.schedule.method) else "full",  # store.load_weights rebuilds a delta
        trainable=share.as_dict(),
        parent=ParentRef(str(job.init), parent.meta.weights_sha256, parent.meta.name) if parent else None,
    )
