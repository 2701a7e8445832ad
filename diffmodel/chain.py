"""The models the pipeline trains, as data: each is the one training loop with another
task, domain, initialisation and schedule.

The chain (the paper's method):

    base ──task transfer──> colorize_faces ──domain transfer──> colorize_landscapes

and the baselines that measure what the chain saves (the paper only assumed them), each
trained until it reaches its chain counterpart's quality (validation loss), or a cap:

    baseline_batch        the base trained with batch learning (all data every epoch)
    scratch_colorization  face colorization from random initialisation
    scratch_landscapes    landscape colorization from random initialisation

and the PEFT twins: each chain adaptation again, from the same parent, on the same data and
epochs, training only part of the tensors (params peft_twins: the method the study in study/
found best; model/peft.py), to measure what that saves and what it costs:

    base ──> peft_faces                 (twin of colorize_faces)
    colorize_faces ──> peft_landscapes  (twin of colorize_landscapes)
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from .config import Params, TrainConfig
from .errors import UserError

# Where the pipeline keeps things, relative to the project root (the stages run there).
PREPARED_DATA = Path("data/prepared")  # data/prepared/<domain>/, written by stage prepare
MODELS_DIR = Path("models")  # models/<name>/, one checkpoint directory per model


@dataclass(frozen=True)
class ModelSpec:
    name: str  # models/<name>/, trained by the dvc.yaml stage train@<name>
    task: str
    domain: str
    parent: str | None  # name of the model whose EMA weights initialise this one; None = scratch
    schedule_section: str  # "train" or "adapt" in params.yaml
    batch_learning: bool = False  # overrides subset_epochs: every image every epoch
    counterpart: str | None = None  # a baseline: the chain model whose validation loss it must reach
    twin_of: str | None = None  # a PEFT twin: the chain adaptation it repeats with params peft_twins' method and lr

    @property
    def role(self) -> str:
        return "baseline" if self.counterpart else "peft twin" if self.twin_of else "chain"

    def schedule(self, params: Params) -> TrainConfig:
        """The training schedule; a baseline's epochs are its cap: baselines.cap_factor times its counterpart's."""
        schedule = getattr(params, self.schedule_section)
        if self.batch_learning:
            schedule = dataclasses.replace(schedule, subset_epochs=0)
        if self.twin_of:
            schedule = dataclasses.replace(schedule, method=params.peft_twins.method, lr=params.peft_twins.lr)
        elif not self.parent:  # from scratch every tensor trains, whatever adapt.method says
            schedule = dataclasses.replace(schedule, method="full")
        if self.counterpart:
            cap = math.ceil(params.baselines.cap_factor * MODELS[self.counterpart].schedule(params).epochs)
            schedule = dataclasses.replace(schedule, epochs=cap)
        return schedule

    @property
    def stage(self) -> str:
        return f"train@{self.name}"

    def directory(self, models_dir: Path = MODELS_DIR) -> Path:
        return Path(models_dir) / self.name

    def data_directory(self, prepared: Path = PREPARED_DATA) -> Path:
        return Path(prepared) / self.domain

    @property
    def initialisation(self) -> str:
        return f"from {self.parent}" if self.parent else "scratch"


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("base", "inpainting", "faces", None, "train"),
        ModelSpec("colorize_faces", "colorization", "faces", "base", "adapt"),
        ModelSpec("colorize_landscapes", "colorization", "landscapes", "colorize_faces", "adapt"),
        ModelSpec("baseline_batch", "inpainting", "faces", None, "train", batch_learning=True, counterpart="base"),
        ModelSpec("scratch_colorization", "colorization", "faces", None, "adapt", counterpart="colorize_faces"),
        ModelSpec("scratch_landscapes", "colorization", "landscapes", None, "adapt", counterpart="colorize_landscapes"),
        ModelSpec("peft_faces", "colorization", "faces", "base", "adapt", twin_of="colorize_faces"),
        ModelSpec("peft_landscapes", "colorization", "landscapes", "colorize_faces", "adapt", twin_of="colorize_landscapes"),
    )
}

CHAIN = [name for name, spec in MODELS.items() if spec.role == "chain"]
BASELINES = [name for name, spec in MODELS.items() if spec.role == "baseline"]
PEFT_TWINS = [name for name, spec in MODELS.items() if spec.role == "peft twin"]


class UnknownModelError(UserError):
    """A model name the pipeline does not train."""


def model_spec(name: str, key: str = "model") -> ModelSpec:
    """The model called `name`; `key` names where the name came from in the one-line error."""
    if name not in MODELS:
        raise UnknownModelError(f"{key}: unknown model {name!r} (choose from {', '.join(MODELS)})")
    return MODELS[name]
