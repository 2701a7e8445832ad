"""`diffmodel`: use a trained checkpoint on your own images, and inspect checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import numpy as np
import torch
import typer
from PIL import Image
from tqdm import tqdm

from . import photos, report
from .checkpoint import WEIGHTS, CheckpointError, export as export_checkpoint, parent_directory, read_meta
from .classes import ClassScheme, UnknownClassError
from .errors import UserError
from .diffusion import GUIDANCE, Guidance
from .data.folders import IMAGE_SUFFIXES, image_files, load_image, one_line
from .data.tensors import to_tensor
from .evaluate import training_timings
from .inference import LoadedModel, load_model, restore

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


CLASS_OPTION = typer.Option(None, "--class", help="The class to colour as (`diffmodel inspect` lists a model's classes); "
                            "default: no label.")
GUIDANCE_OPTION = typer.Option("none", help="With --class: none (the class alone), cfg (classifier-free guidance, against "
                               "no label) or superclass (FineDiffusion's, against the class's superclass).")
GUIDANCE_SCALE_OPTION = typer.Option(2.0, min=0.0, help="Guidance strength: 1 is the class alone, more pushes further "
                                     "from the reference.")


def _class_request(model: LoadedModel, checkpoint: Path, name: Optional[str], guidance: str, scale: float) -> tuple[int | None, Guidance]:
    """The class index and guidance asked for on the command line, checked against the model."""
    if guidance not in GUIDANCE:
        _fail(f"--guidance: must be one of {', '.join(GUIDANCE)}, got {guidance!r}")
    if name is None:
        if guidance != "none":
            _fail(f"--guidance {guidance} steers towards a class: give one with --class")
        return None, Guidance()
    if not model.conditional:
        _fail(f"{checkpoint} has no classes to choose from (it was trained on one); drop --class")
    try:
        return model.classes.index(name), Guidance(guidance, scale)
    except UnknownClassError as err:
        _fail(str(err))


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
    class_name: Optional[str] = CLASS_OPTION,
    guidance: str = GUIDANCE_OPTION,
    guidance_scale: float = GUIDANCE_SCALE_OPTION,
) -> None:
    """The research view at the model's size: input | what it saw | samples, per image.

    Applies CHECKPOINT's task (inpainting or colorization) to IMAGES and saves, per image, a
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
    fine, steer = _class_request(model, checkpoint, class_name, guidance, guidance_scale)
    for path in images:
        try:
            clean = to_tensor(load_image(path, model.image_size)[None])
        except (FileNotFoundError, IsADirectoryError):
            _fail(f"{path}: no such image file")
        except Exception as err:  # Pillow's decoders raise many types on damaged files
            _fail(f"{path}: not a readable image ({one_line(err)})")
        results = [restore(model, clean, seed + k, sampler, steps, eta, fine=None if fine is None else np.array([fine]),
                           guidance=steer) for k in range(samples)]
        columns = {"input": clean, "condition": results[0].condition}
        columns.update({f"sample {k + 1}": result.output for k, result in enumerate(results)})
        written = report.sample_grid(columns, out / f"{path.stem}.png")
        typer.echo(f"{path} -> {written}")


SAMPLER_OPTION = typer.Option("ddim", help="ddim (fast) or ddpm (every step of the training schedule).")
STEPS_OPTION = typer.Option(50, min=1, help="DDIM steps.")
SEED_OPTION = typer.Option(0, help="Same seed (and inputs), same output; sample k uses seed + k.")
SAMPLES_OPTION = typer.Option(1, min=1, help="Outputs per image, different on purpose: OUT/<stem>_<k>.png, k = 1..K.")
DEVICE_OPTION = typer.Option(None, help="cpu, cuda, cuda:1 ... (default: cuda when there is one).")


COMMAND_TASKS = {"colorize": "colorization", "inpaint": "inpainting"}


def _load_for(checkpoint: Path, command: str, sampler: str, device: Optional[str]) -> LoadedModel:
    task = COMMAND_TASKS[command]
    if sampler not in ("ddim", "ddpm"):
        _fail(f"--sampler: must be ddim or ddpm, got {sampler!r}")
    try:
        model = load_model(checkpoint, device or ("cuda" if torch.cuda.is_available() else "cpu"))
    except CheckpointError as err:
        _fail(str(err))
    except RuntimeError as err:  # an unknown or unavailable --device
        _fail(f"--device {device}: {one_line(err)}")
    if model.task.name != task:
        _fail(f"{checkpoint} was trained for {model.task.name}; `diffmodel {command}` needs a {task} model")
    return model


def _outputs(out: Path, stem: str, samples: int) -> list[Path]:
    return [out / f"{stem}.png"] if samples == 1 else [out / f"{stem}_{k}.png" for k in range(1, samples + 1)]


def _expand(inputs: list[Path]) -> list[Path]:
    """Files as given, folders walked for images (sorted)."""
    found = []
    for path in inputs:
        found += image_files(path) if path.is_dir() else [path]
    return found


@app.command()
def colorize(
    checkpoint: Path = typer.Argument(..., help="A colorization model directory, e.g. models/colorize_landscapes."),
    inputs: List[Path] = typer.Argument(..., help=f"Image files and folders (walked for {', '.join(IMAGE_SUFFIXES)})."),
    out: Path = typer.Option(..., "--out", help="Output directory: OUT/<stem>.png per input."),
    samples: int = SAMPLES_OPTION,
    seed: int = SEED_OPTION,
    sampler: str = SAMPLER_OPTION,
    steps: int = STEPS_OPTION,
    device: Optional[str] = DEVICE_OPTION,
    batch_size: int = typer.Option(16, min=1, help="Photos coloured per model call."),
    class_name: Optional[str] = CLASS_OPTION,
    guidance: str = GUIDANCE_OPTION,
    guidance_scale: float = GUIDANCE_SCALE_OPTION,
) -> None:
    """Colorize photos at their own size (files and folders).

    The model colours each photo brought to its resolution, and that colour is put under the photo's own full-resolution luminance, so the
    output keeps every detail (and the gray) of the input. Colour inputs are turned gray first,
    the way the model was trained. Unreadable files are reported and skipped; the exit status
    is 1 when any failed.
    """
    model = _load_for(checkpoint, "colorize", sampler, device)
    fine, steer = _class_request(model, checkpoint, class_name, guidance, guidance_scale)
    paths = _expand(inputs)
    stems = {}
    for path in paths:
        if stems.setdefault(path.stem, path) != path:
            _fail(f"{stems[path.stem]} and {path} would both be written to {out / path.stem}.png; "
                  f"colorize them in separate runs (other --out) or rename one")
    written, failed = 0, 0
    with tqdm(total=len(paths), desc="colorize", unit="img", leave=False) as bar:
        for start in range(0, len(paths), batch_size):
            batch = []
            for path in paths[start : start + batch_size]:
                try:
                    batch.append((path, photos.read_photo(path)))
                except Exception as err:  # Pillow raises many types on damaged or foreign files
                    tqdm.write(f"{path}: skipped, not a readable image ({one_line(err)})")
                    failed += 1
                    bar.update(1)
            if not batch:
                continue
            coloured = [photos.colorize(model, [p for _, p in batch], seed + k, sampler, steps, fine, steer)
                        for k in range(samples)]
            for i, (path, _) in enumerate(batch):
                for k, target in enumerate(_outputs(out, path.stem, samples)):
                    _save_png(coloured[k][i], target)
                written += 1
                bar.update(1)
    _summary(written, failed, out)


@app.command()
def inpaint(
    checkpoint: Path = typer.Argument(..., help="An inpainting model directory, e.g. models/base."),
    image: Path = typer.Argument(..., help="The photo to fill, at any size."),
    out: Path = typer.Option(..., "--out", help="Output directory: OUT/<stem>.png."),
    mask: Optional[Path] = typer.Option(None, help="Mask image, white = fill (resized to the photo if its size differs)."),
    box: Optional[str] = typer.Option(None, help="The hole as X,Y,W,H in pixels (instead of --mask)."),
    samples: int = SAMPLES_OPTION,
    seed: int = SEED_OPTION,
    sampler: str = SAMPLER_OPTION,
    steps: int = STEPS_OPTION,
    device: Optional[str] = DEVICE_OPTION,
) -> None:
    """Fill a hole (--box or --mask) in a photo at its own size.

    The model sees a square window around the hole
    (4 times its size, at least the model's; the whole photo when smaller) at its resolution;
    the result is pasted into the hole only, with a feathered edge inside it. Every pixel
    outside the hole is the input's, exactly.
    """
    if (mask is None) == (box is None):
        _fail("give the hole as --mask MASK.png or as --box X,Y,W,H (one of them)")
    model = _load_for(checkpoint, "inpaint", sampler, device)
    try:
        photo = photos.read_photo(image)
    except Exception as err:
        _fail(f"{image}: not a readable image ({one_line(err)})")
    if box is not None:
        try:
            x, y, w, h = (int(v) for v in box.split(","))
        except ValueError:
            _fail(f"--box: expected X,Y,W,H (four integers), got {box!r}")
        hole = photos.box_hole(photo.shape[:2], (x, y, w, h))
    else:
        try:
            hole = photos.mask_hole(mask, photo.shape[:2])
        except Exception as err:
            _fail(f"--mask {mask}: not a readable image ({one_line(err)})")
    if not hole.any():
        _fail("the hole is empty: the box lies outside the photo, or the mask has no white pixel")
    for k, target in enumerate(_outputs(out, image.stem, samples)):
        _save_png(photos.inpaint(model, photo, hole, seed + k, sampler, steps), target)
    _summary(1, 0, out)


def _save_png(pixels: np.ndarray, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(target)


def _summary(written: int, failed: int, out: Path) -> None:
    typer.echo(f"{written} written to {out}, {failed} failed")
    if failed:
        raise typer.Exit(1)


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
    classes = ClassScheme.from_dict(meta.get("classes"))
    if classes is not None and classes.conditional:
        typer.echo(f"  classes (--class), by superclass: {classes.describe()}")
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
    if timings["precision"]:
        typer.echo(f"  trained in: {timings['precision']} (precision setting: {meta['schedule'].get('precision', 'auto')})")
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
    except UserError as err:  # also a full disk (files.WriteError)
        _fail(str(err))
    typer.echo(f"{checkpoint} -> {written} ({written.stat().st_size:,} bytes)")


if __name__ == "__main__":
    app()
