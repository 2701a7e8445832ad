"""A baseline trains until it reaches its chain model's validation loss (Trainer's target_val_loss)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from test_resume import make_workspace

from diffmodel.config import load_params
from diffmodel.training.job import Limits, Outcome, TrainJob
from diffmodel.training.loop import Trainer

CAP = 6


def job(workdir: Path, target: float | None) -> TrainJob:
    params = load_params(workdir / "params.yaml")
    return TrainJob(name="baseline", task="inpainting", domain="faces", data_dir=workdir / "data/prepared/faces",
                    out_dir=workdir / "models/baseline", model=params.model, diffusion=params.diffusion,
                    schedule=dataclasses.replace(params.train, epochs=CAP), target_val_loss=target)


def run(workdir: Path, target: float | None) -> tuple[dict, list[str]]:
    lines = []
    assert Trainer(job(workdir, target), Limits(quiet=True), log=lines.append).run() is Outcome.COMPLETE
    return json.loads((workdir / "models/baseline/meta.json").read_text()), lines


@pytest.fixture(scope="module")
def losses(tmp_path_factory) -> list[float]:
    """The validation losses of the same training run to its cap, epoch by epoch."""
    meta, _ = run(make_workspace(tmp_path_factory.mktemp("cap")), None)
    return [row["val_loss"] for row in meta["history"]]


def test_training_stops_at_the_first_epoch_that_reaches_the_target(tmp_path, losses):
    target = losses[2]  # what the uncapped run had after 3 epochs
    first = next(e for e, loss in enumerate(losses, 1) if loss <= target)
    meta, lines = run(make_workspace(tmp_path), target)
    assert meta["complete"] and meta["epoch"] == first
    assert [row["val_loss"] for row in meta["history"]] == losses[:first]  # the same run, stopped early
    assert "reached the target" in lines[-1]


def test_a_lower_target_continues_the_finished_run_and_a_met_one_trains_nothing(tmp_path, losses):
    workdir = make_workspace(tmp_path)
    run(workdir, losses[1])
    meta, lines = run(workdir, min(losses[:4]))
    assert any("continuing the finished" in line for line in lines)
    assert [row["val_loss"] for row in meta["history"]] == losses[: meta["epoch"]]
    _, again = run(workdir, losses[0])  # already reached: nothing to train
    assert any("already complete" in line for line in again)


def test_an_unreachable_target_stops_at_the_cap(tmp_path, losses):
    meta, lines = run(make_workspace(tmp_path), min(losses) / 10)
    assert meta["complete"] and meta["epoch"] == CAP and "reached" not in lines[-1]
