"""The models the pipeline trains, as data: each is the one training loop with another
task, domain, initialisation and schedule.

The chain (the paper's method):

    base ──task transfer──> colorize_faces ──domain transfer──> colorize_landscapes

and the baselines that measure what the chain saves (the paper only assumed them):

    baseline_batch        the base trained with batch learning (all data every epoch)
    scratch_colorization  face colorization from random initialisation
    scratch_landscapes    landscape colorization from random initialisation
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from .config import Params, TrainConfig


@dataclass(frozen=True)
class ModelSpec:
    name: str  # models/<name>/
    stage: str  # the dvc.yaml stage that trains it
    task: str
    domain: str
    parent: str | None  # name of the model whose EMA weights initialise this one; None = scratch
    schedule_section: str  # "train" or "adapt" in params.yaml
    batch_learning: bool = False  # overrides subset_epochs: every image every epoch
    role: str = "chain"  # "chain" or "baseline"

    def schedule(self, params: Params) -> TrainConfig:
        schedule = getattr(params, self.schedule_section)
        return dataclasses.replace(schedule, subset_epochs=0) if self.batch_learning else schedule

    def directory(self, models_dir: Path = Path("models")) -> Path:
        return Path(models_dir) / self.name

    @property
    def initialisation(self) -> str:
        return f"from {self.parent}" if self.parent else "scratch"


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("base", "train_base", "inpainting", "faces", None, "train"),
        ModelSpec("colorize_faces", "adapt_colorization", "colorization", "faces", "base", "adapt"),
        ModelSpec("colorize_landscapes", "adapt_landscapes", "colorization", "landscapes", "colorize_faces", "adapt"),
        ModelSpec("baseline_batch", "baseline_batch", "inpainting", "faces", None, "train", batch_learning=True, role="baseline"),
        ModelSpec("scratch_colorization", "scratch_colorization", "colorization", "faces", None, "adapt", role="baseline"),
        ModelSpec("scratch_landscapes", "scratch_landscapes", "colorization", "landscapes", None, "adapt", role="baseline"),
    )
}

CHAIN = [name for name, spec in MODELS.items() if spec.role == "chain"]
BASELINES = [name for name, spec in MODELS.items() if spec.role == "baseline"]


def model_spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r} (known: {', '.join(MODELS)})")
    return MODELS[name]
