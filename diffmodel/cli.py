"""`diffmodel`: use a trained checkpoint on your own images, and inspect checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import List

import torch
import typer

from . import report
from .checkpoint import WEIGHTS, CheckpointError, export as export_checkpoint, parent_directory, read_meta
from .data.folders import load_image, one_line
from .data.prepared import to_tensor
from .evaluate import training_timings
from .inference import load_model, restore

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@app.command()
def sample(
    checkpoint: Path = typer.Argument(..., help="A checkpoint directory, e.g. models/colorize_faces."),
    images: List[Path] = typer.Argument(..., help="Image files (any size: centre-cropped and resized to the model's)."),
    out: Path = typer.Option(Path("samples"), help="Output directory: one PNG per input image."),
    samples: int = typer.Option(1, min=1, help="Samples per image (different seeds, on purpose)."),
    seed: int = typer.Option(0, help="Same seed, same masks and same outputs."),
    sampler: str = typer.Option("ddim", help="ddim (fast) or ddpm (every step of the training schedule)."),
    steps: int = typer.Option(50, min=1, help="DDIM steps."),
    eta: float = typer.Option(0.0, min=0.0, help="DDIM noise (0: deterministic given the seed)."),
) -> None:
    """Apply CHECKPOINT's task (inpainting or colorization) to IMAGES and save, per image, a
    PNG row: input | what the model saw | sample 1 | sample 2 ...

    Sampling uses the noise schedule the model was trained with, read from its meta.json.
    """
    if sampler not in ("ddim", "ddpm"):
        _fail(f"--sampler: must be ddim or ddpm, got {sampler!r}")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        model = load_model(checkpoint, device)
    except CheckpointError as err:
        _fail(str(err))
    for path in images:
        try:
            clean = to_tensor(load_image(path, model.image_size)[None])
        except (FileNotFoundError, IsADirectoryError):
            _fail(f"{path}: no such image file")
        except Exception as err:  # Pillow's decoders raise many types on damaged files
            _fail(f"{path}: not a readable image ({one_line(err)})")
        results = [restore(model, clean, seed + k, sampler, steps, eta) for k in range(samples)]
        columns = {"input": clean, "condition": results[0].condition}
        columns.update({f"sample {k + 1}": result.output for k, result in enumerate(results)})
        written = report.sample_grid(columns, out / f"{path.stem}.png")
        typer.echo(f"{path} -> {written}")


@app.command()
def inspect(checkpoint: Path = typer.Argument(..., help="A checkpoint directory.")) -> None:
    """Print what a checkpoint is: task, domain, lineage, progress and training time."""
    meta = read_meta(checkpoint)
    if meta is None:
        _fail(f"{checkpoint}: not a checkpoint directory (no readable meta.json)")
    lineage, directory, current = [], checkpoint, meta
    while current and current.get("parent"):
        lineage.append(current["parent"]["name"])
        directory = parent_directory(directory, current)
        current = read_meta(directory) if directory else None
    timings = training_timings(meta)
    state = "complete" if meta.get("complete") else f"in progress (epoch {meta.get('epoch', 0)} of {meta.get('epochs')})"
    typer.echo(f"{checkpoint}: {meta['task']} on {meta['domain']}, {state}")
    typer.echo(f"  initialised from: {' <- '.join(lineage) if lineage else 'scratch'}")
    typer.echo(f"  architecture: {meta['architecture']}")
    trainable = meta.get("trainable")
    if trainable:
        typer.echo(f"  method: {trainable['method']}, {trainable['trainable_parameters']:,} of {trainable['parameters']:,} "
                   f"parameters trained ({trainable['trainable_percent']:.2f} %)")
    weights = checkpoint / WEIGHTS
    if weights.exists():
        stored = "only the trained tensors, rebuilt on its parent when loaded" if meta.get("stores") == "delta" else "full weights"
        typer.echo(f"  {WEIGHTS}: {weights.stat().st_size:,} bytes ({stored})")
    typer.echo(f"  epochs {timings['epochs']}, {timings['total_seconds']} s training "
               f"({timings['seconds_per_epoch']} s/epoch), {timings['images_seen']} images, "
               f"{timings['sessions']} sessions, {timings['resumes']} resumes")
    typer.echo(f"  final validation loss: {timings['final_val_loss']}")
    typer.echo(f"  fingerprint: {meta['fingerprint']}")


@app.command()
def export(
    checkpoint: Path = typer.Argument(..., help="A finished checkpoint directory, e.g. models/peft_faces."),
    out: Path = typer.Argument(..., help="Directory for the standalone copy (model.pt and meta.json)."),
) -> None:
    """Write a standalone copy of CHECKPOINT to OUT: its full EMA weights in one model.pt.

    A PEFT model's directory stores only the tensors it trained, and loading it needs its parent
    chain (verified by hash); the export needs nothing else: share it, or keep it after the
    parents are gone. Load it like any model directory (`diffmodel sample OUT ...`).
    """
    try:
        written = export_checkpoint(checkpoint, out)
    except CheckpointError as err:
        _fail(str(err))
    typer.echo(f"{checkpoint} -> {written} ({written.stat().st_size:,} bytes)")


if __name__ == "__main__":
    app()
