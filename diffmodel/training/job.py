"""What a training run is asked to do (TrainJob), within which limits (Limits), and how it ended (Outcome)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from ..config import DiffusionConfig, ModelConfig, TrainConfig


class Outcome(Enum):
    COMPLETE = "complete"
    PAUSED = "paused"  # a session or time limit was reached; state saved
    INTERRUPTED = "interrupted"  # SIGINT/SIGTERM; state saved


@dataclass(frozen=True)
class TrainJob:
    name: str
    task: str
    domain: str
    data_dir: Path
    out_dir: Path
    model: ModelConfig
    diffusion: DiffusionConfig
    schedule: TrainConfig  # the training schedule (params `train` or `adapt`), not the noise schedule
    init: Path | None = None  # parent checkpoint directory; None trains from scratch
    stage: str | None = None  # the pipeline stage that runs this job, for "how to continue" messages
    # stop as soon as the validation loss is at most this (a baseline matching its counterpart's
    # quality); schedule.epochs is then a cap. Like epochs, not part of the fingerprint.
    target_val_loss: float | None = None


@dataclass(frozen=True)
class Limits:
    max_sessions: int | None = None
    time_limit_minutes: float | None = None
    quiet: bool = False
