"""Stages `train@MODEL` (the chain's models and the baselines): one command,
`python -m stages.train MODEL`, because they are one training loop."""

from __future__ import annotations

import csv
import dataclasses
import io
from pathlib import Path
from typing import Optional

import typer

from diffmodel.chain import MODELS, model_spec
from diffmodel.checkpoints.meta import CheckpointError, EpochRecord
from diffmodel.checkpoints.store import read_meta
from diffmodel.config import load_params
from diffmodel.errors import one_line_errors
from diffmodel.files import atomic_write
from diffmodel.training.job import Limits, Outcome, TrainJob
from diffmodel.training.loop import Trainer
from stages.common import EXIT_INTERRUPTED, EXIT_PAUSED, PARAMS_OPTION, QUIET_OPTION
from stages.live import LIVE_ROOT, LiveHistory

app = typer.Typer(add_completion=False)


@app.command()
@one_line_errors
def train(
    model: str = typer.Argument(..., help=f"Which model to train: {', '.join(MODELS)}."),
    params_file: Path = PARAMS_OPTION,
    max_sessions: Optional[int] = typer.Option(
        None, "--max-sessions", envvar="DIFFMODEL_MAX_SESSIONS", min=1,
        help="Stop after this many training sessions (the paper's time-limited GPU); run again to continue."),
    time_limit: Optional[float] = typer.Option(
        None, "--time-limit", envvar="DIFFMODEL_TIME_LIMIT", min=0.0,
        help="Stop after this many minutes, with state saved; run again to continue."),
    quiet: bool = QUIET_OPTION,
) -> None:
    """Train MODEL into models/MODEL/, continuing any saved state of the same configuration.

    base: face inpainting from scratch with incremental learning (params `train`).
    colorize_faces: face colorization from models/base (params `adapt`).
    colorize_landscapes: landscape colorization from models/colorize_faces (params `adapt`).
    baseline_batch, scratch_colorization, scratch_landscapes: the baselines the chain is
    compared with (batch learning; colorization from random initialisation). Each trains until
    its validation loss reaches the final one of its chain counterpart (base, colorize_faces,
    colorize_landscapes) - equal quality - or for at most baselines.cap_factor times its
    counterpart's epochs.

    Reads params: model, diffusion, train or adapt (and baselines). Reads data/prepared/<domain>/
    and the parent's (a baseline: its counterpart's) checkpoint directory. Writes models/MODEL/ (weights, resume state,
    meta.json), reports/live/MODEL/ while it trains (DVCLive: the latest epoch for `dvc exp show`,
    per-epoch curves for `dvc plots diff`) and, once done, reports/loss/MODEL.csv (per-epoch loss
    and cumulative time, for the comparison figures).

    Exit status 0 when training is complete, 75 when --max-sessions or --time-limit paused
    it, 130 after Ctrl-C or SIGTERM (state is saved either way: run it again to continue),
    2 on bad input.
    """
    spec = model_spec(model)
    params = load_params(params_file)
    job = TrainJob(
        name=spec.name,
        stage=spec.stage,
        task=spec.task,
        domain=spec.domain,
        data_dir=spec.data_directory(),
        out_dir=spec.directory(),
        model=params.model,
        diffusion=params.diffusion,
        schedule=spec.schedule(params),
        init=MODELS[spec.parent].directory() if spec.parent else None,
        target_val_loss=counterpart_val_loss(spec.counterpart) if spec.counterpart else None,
    )
    trainer = Trainer(job, Limits(max_sessions, time_limit, quiet), on_history=LiveHistory(LIVE_ROOT / spec.name))
    try:
        outcome = trainer.run()
    except KeyboardInterrupt:  # a second Ctrl-C while the first one is being handled: stop now
        typer.echo(f"{spec.name}: stopped at once (second interrupt); the last saved state in {job.out_dir} "
                   f"is intact. Run the stage again (`dvc repro {spec.stage}`) to continue from it.", err=True)
        raise typer.Exit(EXIT_INTERRUPTED)
    if outcome is Outcome.PAUSED:
        raise typer.Exit(EXIT_PAUSED)
    if outcome is Outcome.INTERRUPTED:
        raise typer.Exit(EXIT_INTERRUPTED)
    if trainer.ranks.writes:  # under torchrun, the one process that writes files
        write_loss_csv(Path("reports/loss") / f"{spec.name}.csv", read_meta(job.out_dir).history)


def counterpart_val_loss(counterpart: str) -> float:
    """The final validation loss of a finished chain model: the quality its baseline must reach."""
    spec = MODELS[counterpart]
    meta = read_meta(spec.directory())
    if not meta or not meta.complete or not meta.history:
        raise CheckpointError(f"{spec.directory()}: not trained yet, and its baseline trains until it matches its "
                              f"validation loss; run `dvc repro {spec.stage}` first")
    return meta.history[-1].val_loss


def write_loss_csv(path: Path, history: list[EpochRecord]) -> None:
    """Per-epoch losses and time; train_seconds (cumulative) is the x axis of the time-to-quality plots."""
    columns = ["epoch", "train_loss", "val_loss", "seconds", "train_seconds"]
    text, elapsed = io.StringIO(newline=""), 0.0
    writer = csv.DictWriter(text, columns, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    for row in history:
        elapsed += row.seconds
        writer.writerow({**dataclasses.asdict(row), "train_seconds": round(elapsed, 3)})
    atomic_write(path, lambda f: f.write(text.getvalue().encode()))


if __name__ == "__main__":
    app()
