"""meta.json: what a checkpoint directory says about itself, as one typed record.

Written by the training loop at every save and read by everything that uses a model: the
resume policy, a child stage, evaluation, `diffmodel`. Every field has the type it is read
with; a field a file lacks takes the value it had before the field existed (version 1: the
files written before `version` itself, which lack some of the later fields), never a guess.
The U-Net shape and diffusion a model records are read with config.parse_recorded, which
does the same for their keys.

    version                  2 (a newer file is refused: this code cannot know what it means)
    name, task, domain       the model and what it does
    architecture             model.* and data.image_size, flat (architecture() below)
    diffusion, schedule      the diffusion section and the training schedule it was trained with
    classes                  fine classes and superclasses; null: a model without classes
    method, stores           full | peft, and full | delta (a delta is rebuilt on its parent)
    trainable                how many parameters train under the method
    fingerprint(_parts)      what shaped the weights (fingerprint.py)
    parent                   path, weights hash and name of the model it was adapted from
    data                     the prepared data's path and content hash
    epochs, epoch, step      asked, done, optimizer steps done; batch_in_epoch: mid-epoch position
    complete                 whether the epochs asked (or a baseline's target) are done
    history                  one EpochRecord per finished epoch
    sessions                 one SessionRecord per training session (and unfinished_session)
    partial_epoch            the tally of an epoch saved in its middle
    resumes, states          how often training resumed, and the resume-state files (newest first)
    weights_sha256           the hash of the weights file (model.safetensors; model.pt before it)
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..classes import ClassScheme
from ..config import DiffusionConfig, ModelConfig, as_plain_dict, parse_recorded
from ..errors import UserError
from ..files import write_json

META = "meta.json"
VERSION = 2


class CheckpointError(UserError):
    """A one-line, user-facing problem with a checkpoint directory."""


@dataclass
class ParentRef:
    path: str
    sha256: str
    name: str | None = None


@dataclass
class EpochRecord:
    epoch: int
    subset: int | None
    train_loss: float
    val_loss: float
    seconds: float
    images: int
    resumed_mid_epoch: bool = False


@dataclass
class SessionRecord:
    session: int
    start_epoch: int
    start_step: int
    resumed: bool
    end_epoch: int | None = None
    end_step: int | None = None
    seconds: float | None = None
    peak_memory_mb: float | None = None
    precision: str | None = None  # None: trained before precision was recorded
    kernels: str | None = None  # CPU kernel set (torch's CPU capability) or GPU name; None: not recorded
    ended: str | None = None  # "abruptly ...": killed, counted up to its last save


@dataclass
class PartialEpoch:
    seconds: float = 0.0
    loss_sum: float = 0.0
    batches: int = 0


@dataclass
class StateRecord:
    file: str
    sha256: str
    epoch: int
    step: int


# fields that move with training: each resume state carries them as of its own save
PROGRESS = ("epoch", "step", "batch_in_epoch", "history", "sessions", "unfinished_session", "resumes", "partial_epoch")


@dataclass
class ModelMeta:
    name: str
    task: str
    domain: str
    architecture: dict[str, Any]
    diffusion: dict[str, Any]
    schedule: dict[str, Any]
    fingerprint: str
    fingerprint_parts: dict[str, Any]
    data: dict[str, Any]
    epochs: int
    classes: dict[str, Any] | None = None
    method: str = "full"
    stores: str = "full"
    trainable: dict[str, Any] | None = None
    parent: ParentRef | None = None
    epoch: int = 0
    step: int = 0
    batch_in_epoch: int = 0
    complete: bool = False
    history: list[EpochRecord] = field(default_factory=list)
    sessions: list[SessionRecord] = field(default_factory=list)
    unfinished_session: SessionRecord | None = None
    partial_epoch: PartialEpoch | None = None
    resumes: int = 0
    states: list[StateRecord] = field(default_factory=list)
    weights_sha256: str | None = None
    training_state_mb: float | None = None
    exported_from: dict[str, Any] | None = None
    version: int = VERSION

    # ---- reading and writing ------------------------------------------------------------

    @classmethod
    def read(cls, directory: Path) -> ModelMeta | None:
        """The record of `directory`, None when it has no meta.json or one that is not JSON;
        a CheckpointError when it is JSON this code cannot read honestly."""
        path = Path(directory) / META
        if not path.exists():
            return None
        try:
            raw = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
        return cls.from_json(raw, path)

    @classmethod
    def from_json(cls, raw: dict, source: Path | str = META) -> ModelMeta:
        if not isinstance(raw, dict):
            raise CheckpointError(f"{source}: not a checkpoint record (expected a JSON object)")
        version = raw.get("version", 1)
        if not isinstance(version, int) or version > VERSION:
            raise CheckpointError(f"{source}: written by a newer diffmodel (meta.json version {version}, this one "
                                  f"reads up to {VERSION}); upgrade diffmodel to use it")
        return _build(cls, {**raw, "version": version}, source)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    def write(self, directory: Path) -> None:
        write_json(Path(directory) / META, self.to_json())

    def replace(self, **changes) -> ModelMeta:
        return dataclasses.replace(self, **changes)

    # ---- progress, as resume states carry it --------------------------------------------

    def progress_json(self) -> str:
        return json.dumps({name: _plain(getattr(self, name)) for name in PROGRESS})

    def rewound(self, progress_json: str) -> ModelMeta:
        """This record as it was when a resume state with `progress_json` was saved."""
        fixed = {k: v for k, v in self.to_json().items() if k not in PROGRESS}
        return _build(ModelMeta, {**fixed, **json.loads(progress_json)}, META)

    # ---- what the model is --------------------------------------------------------------

    def model_config(self) -> ModelConfig:
        shape = {k.removeprefix("model."): v for k, v in self.architecture.items() if k.startswith("model.")}
        return parse_recorded(ModelConfig, shape, "model", f"{self.name}/{META}")

    def diffusion_config(self) -> DiffusionConfig:
        return parse_recorded(DiffusionConfig, self.diffusion, "diffusion", f"{self.name}/{META}")

    @property
    def image_size(self) -> int:
        return int(self.architecture["data.image_size"])

    def class_scheme(self) -> ClassScheme | None:
        return ClassScheme.from_dict(self.classes)

    # ---- what training cost ---------------------------------------------------------------

    def precision_used(self) -> str | None:
        """The precision its sessions trained in ("bf16+fp32" when resumed on other hardware); None before it was recorded."""
        return "+".join(sorted({s.precision for s in self.sessions if s.precision})) or None

    def kernels_used(self) -> str | None:
        """The kernel sets its sessions ran on (float results differ between them); None before they were recorded."""
        return " + ".join(sorted({s.kernels for s in self.sessions if s.kernels})) or None

    def timings(self) -> dict:
        """Epochs, time per epoch, total time and images seen, and what training held in memory.

        Time is the sum of the epochs' own times, so it stays right across sessions and resumes
        (the gaps between sessions are not training time); validation is outside it."""
        seconds = sum(row.seconds for row in self.history)
        epochs = len(self.history)
        return {
            "epochs": epochs,
            "seconds_per_epoch": round(seconds / epochs, 3) if epochs else None,
            "total_seconds": round(seconds, 3),
            "images_seen": sum(row.images for row in self.history),
            "sessions": len(self.sessions),
            "resumes": self.resumes,
            "initialisation": self.parent.name if self.parent else "scratch",
            "final_val_loss": self.history[-1].val_loss if self.history else None,
            "method": self.method,
            "precision": self.precision_used(),
            "kernels": self.kernels_used(),
            "trainable_percent": (self.trainable or {}).get("trainable_percent", 100.0),
            # the largest of its sessions' peaks: resident memory of the process (CPU) or allocated (GPU)
            "peak_memory_mb": max((s.peak_memory_mb or 0.0 for s in self.sessions), default=None),
            "training_state_mb": self.training_state_mb,
        }


def architecture(model: ModelConfig, image_size: int) -> dict:
    """The U-Net shape as meta.json records it (and a parent must match): model.* and data.image_size."""
    return {**{f"model.{k}": v for k, v in as_plain_dict(model).items()}, "data.image_size": image_size}


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


_NESTED = {"parent": ParentRef, "unfinished_session": SessionRecord, "partial_epoch": PartialEpoch}
_LISTS = {"history": EpochRecord, "sessions": SessionRecord, "states": StateRecord}


def _build(cls: type, raw: dict, source: Path | str) -> Any:
    """`cls` from a JSON object: its known keys (nested records built too), defaults for the ones
    it lacks; a missing key without a default is a one-line CheckpointError."""
    values = {}
    for f in dataclasses.fields(cls):
        if f.name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise CheckpointError(f"{source}: not a readable checkpoint record (no {f.name!r})")
            continue
        value = raw[f.name]
        if cls is ModelMeta and value is not None:
            if f.name in _NESTED:
                value = _build(_NESTED[f.name], value, source)
            elif f.name in _LISTS:
                value = [_build(_LISTS[f.name], item, source) for item in value]
        values[f.name] = value
    return cls(**values)
