"""`diffmodel`: use a trained checkpoint on your own images, and inspect checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import numpy as np
import typer
from tqdm import tqdm

from ..checkpoints.store import WEIGHTS, parent_directory, read_meta
from ..checkpoints.store import export as export_checkpoint
from ..classes import UnknownClassError
from ..data.folders import IMAGE_SUFFIXES, image_files, load_image, one_line
from ..data.tensors import to_tensor
from ..devices import device_from
from ..errors import fail, one_line_errors
from ..model.diffusion import GUIDANCE, Guidance
from ..model.inference import LoadedModel, load_model, restore
from ..reporting import figures
from ..training.resume import stale_directories
from . import photos
from .outputs import plan_outputs, save_png

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)

CLASS_OPTION = typer.Option(None, "--class", help="The class to colour as (`diffmodel inspect` lists a model's classes); "
                            "default: no label.")
GUIDANCE_OPTION = typer.Option("none", help="With --class: none (the class alone), cfg (classifier-free guidance, against "
                               "no label) or superclass (FineDiffusion's, against the class's superclass).")
GUIDANCE_SCALE_OPTION = typer.Option(2.0, min=0.0, help="Guidance strength: 1 is the class alone, more pushes further "
                                     "from the reference.")
SAMPLER_OPTION = typer.Option("ddim", help="ddim (fast) or ddpm (every step of the training schedule).")
STEPS_OPTION = typer.Option(None, min=1, help="DDIM steps (default: the model's task's evaluate.steps default - "
                            f"{photos.DEFAULT_STEPS.inpainting} for inpainting, {photos.DEFAULT_STEPS.colorization} for colorization).")
SEED_OPTION = typer.Option(0, help="Same seed (and inputs), same output; sample k uses seed + k.")
SAMPLES_OPTION = typer.Option(1, min=1, help="Outputs per image, different on purpose: OUT/<stem>_<k>.png, k = 1..K.")
DEVICE_OPTION = typer.Option(None, help="cpu, cuda, cuda:1 ... (default: cuda when there is one).")
OVERWRITE_OPTION = typer.Option(False, "--overwrite", help="Replace output files that exist already (never an input: "
                                "an output that would replace an input is refused).")
COMMAND_TASKS = {"colorize": "colorization", "inpaint": "inpainting", "sample": None}


def _load_for(checkpoint: Path, command: str, sampler: str, device: Optional[str]) -> LoadedModel:
    if sampler not in ("ddim", "ddpm"):
        fail(f"--sampler: must be ddim or ddpm, got {sampler!r}")
    where = device_from(device)
    try:
        model = load_model(checkpoint, where)
    except RuntimeError as err:  # a device that exists but cannot be used
        fail(f"--device {device}: {one_line(err)}")
    task = COMMAND_TASKS[command]
    if task is not None and model.task.name != task:
        fail(f"{checkpoint} was trained for {model.task.name}; `diffmodel {command}` needs a {task} model")
    return model


def _class_request(model: LoadedModel, checkpoint: Path, name: Optional[str], guidance: str, scale: float) -> tuple[int | None, Guidance]:
    """The class index and guidance asked for on the command line, checked against the model."""
    if guidance not in GUIDANCE:
        fail(f"--guidance: must be one of {', '.join(GUIDANCE)}, got {guidance!r}")
    if name is None:
        if guidance != "none":
            fail(f"--guidance {guidance} steers towards a class: give one with --class")
        return None, Guidance()
    if not model.conditional:
        fail(f"{checkpoint} has no classes to choose from (it was trained on one); drop --class")
    try:
        return model.classes.index(name), Guidance(guidance, scale)
    except UnknownClassError as err:
        fail(str(err))


def _expand(inputs: list[Path]) -> list[Path]:
    """Files as given, folders walked for images (sorted)."""
    found = []
    for path in inputs:
        found += image_files(path) if path.is_dir() else [path]
    return found


@app.command()
@one_line_errors
def sample(
    checkpoint: Path = typer.Argument(..., help="A checkpoint directory, e.g. models/colorize_faces, or its model.safetensors alone (e.g. from `dvc artifacts get`)."),
    images: List[Path] = typer.Argument(..., help="Image files (any size: centre-cropped and resized to the model's)."),
    out: Path = typer.Option(Path("samples"), help="Output directory: one PNG per input image."),
    samples: int = typer.Option(1, min=1, help="Samples per image (different seeds, on purpose)."),
    seed: int = typer.Option(0, help="Same seed, same masks and same outputs."),
    sampler: str = SAMPLER_OPTION,
    steps: Optional[int] = STEPS_OPTION,
    eta: float = typer.Option(0.0, min=0.0, help="DDIM noise (0: deterministic given the seed)."),
    class_name: Optional[str] = CLASS_OPTION,
    guidance: str = GUIDANCE_OPTION,
    guidance_scale: float = GUIDANCE_SCALE_OPTION,
    device: Optional[str] = DEVICE_OPTION,
    overwrite: bool = OVERWRITE_OPTION,
) -> None:
    """The research view at the model's size: input | what it saw | samples, per image.

    Applies CHECKPOINT's task (inpainting or colorization) to IMAGES and saves, per image, a
    PNG row: input | what the model saw | sample 1 | sample 2 ...

    Sampling uses the noise schedule the model was trained with, read from its meta.json.
    """
    model = _load_for(checkpoint, "sample", sampler, device)
    steps = steps or photos.DEFAULT_STEPS.for_task(model.task.name)
    fine, steer = _class_request(model, checkpoint, class_name, guidance, guidance_scale)
    targets = plan_outputs(out, images, 1, overwrite)
    for path in images:
        try:
            clean = to_tensor(load_image(path, model.image_size)[None])
        except (FileNotFoundError, IsADirectoryError):
            fail(f"{path}: no such image file")
        except Exception as err:  # Pillow's decoders raise many types on damaged files
            fail(f"{path}: not a readable image ({one_line(err)})")
        results = [restore(model, clean, seed + k, sampler, steps, eta, fine=None if fine is None else np.array([fine]),
                           guidance=steer) for k in range(samples)]
        columns = {"input": clean, "condition": results[0].condition}
        columns.update({f"sample {k + 1}": result.output for k, result in enumerate(results)})
        written = figures.sample_grid(columns, targets[path][0])
        typer.echo(f"{path} -> {written}")


@app.command()
@one_line_errors
def colorize(
    checkpoint: Path = typer.Argument(..., help="A colorization model directory, e.g. models/colorize_landscapes, or its model.safetensors alone."),
    inputs: List[Path] = typer.Argument(..., help=f"Image files and folders (walked for {', '.join(IMAGE_SUFFIXES)})."),
    out: Path = typer.Option(..., "--out", help="Output directory: OUT/<stem>.png per input (never over an input)."),
    samples: int = SAMPLES_OPTION,
    seed: int = SEED_OPTION,
    sampler: str = SAMPLER_OPTION,
    steps: Optional[int] = STEPS_OPTION,
    device: Optional[str] = DEVICE_OPTION,
    batch_size: int = typer.Option(16, min=1, help="Photos coloured per model call."),
    class_name: Optional[str] = CLASS_OPTION,
    guidance: str = GUIDANCE_OPTION,
    guidance_scale: float = GUIDANCE_SCALE_OPTION,
    overwrite: bool = OVERWRITE_OPTION,
) -> None:
    """Colorize photos at their own size (files and folders).

    The model colours each photo brought to its resolution, and that colour is put under the photo's own full-resolution luminance, so the
    output keeps every detail (and the gray) of the input. Colour inputs are turned gray first,
    the way the model was trained. Unreadable files are reported and skipped; the exit status
    is 1 when any failed. Existing files in OUT are kept unless --overwrite; an input is never replaced.
    """
    model = _load_for(checkpoint, "colorize", sampler, device)
    steps = steps or photos.DEFAULT_STEPS.for_task(model.task.name)
    fine, steer = _class_request(model, checkpoint, class_name, guidance, guidance_scale)
    paths = _expand(inputs)
    targets = plan_outputs(out, paths, samples, overwrite)
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
                for k, target in enumerate(targets[path]):
                    save_png(coloured[k][i], target)
                written += 1
                bar.update(1)
    _summary(written, failed, out)


@app.command()
@one_line_errors
def inpaint(
    checkpoint: Path = typer.Argument(..., help="An inpainting model directory, e.g. models/base, or its model.safetensors alone."),
    image: Path = typer.Argument(..., help="The photo to fill, at any size."),
    out: Path = typer.Option(..., "--out", help="Output directory: OUT/<stem>.png (never over an input)."),
    mask: Optional[Path] = typer.Option(None, help="Mask image, white = fill (resized to the photo if its size differs)."),
    box: Optional[str] = typer.Option(None, help="The hole as X,Y,W,H in pixels (instead of --mask)."),
    samples: int = SAMPLES_OPTION,
    seed: int = SEED_OPTION,
    sampler: str = SAMPLER_OPTION,
    steps: Optional[int] = STEPS_OPTION,
    device: Optional[str] = DEVICE_OPTION,
    overwrite: bool = OVERWRITE_OPTION,
) -> None:
    """Fill a hole (--box or --mask) in a photo at its own size.

    The model sees a square window around the hole (4 times its size, at least the model's; the
    whole photo when smaller) at its resolution, with the hole's content hidden from it. Its fill
    replaces every pixel of the hole - nothing of what was there shows through, not even at the
    rim; there is no blending - and every pixel outside the hole is the input's, exactly.
    """
    if (mask is None) == (box is None):
        fail("give the hole as --mask MASK.png or as --box X,Y,W,H (one of them)")
    model = _load_for(checkpoint, "inpaint", sampler, device)
    steps = steps or photos.DEFAULT_STEPS.for_task(model.task.name)
    targets = plan_outputs(out, [image], samples, overwrite, also_read=[mask] if mask else [])
    try:
        photo = photos.read_photo(image)
    except Exception as err:
        fail(f"{image}: not a readable image ({one_line(err)})")
    if box is not None:
        try:
            x, y, w, h = (int(v) for v in box.split(","))
        except ValueError:
            fail(f"--box: expected X,Y,W,H (four integers), got {box!r}")
        hole = photos.box_hole(photo.shape[:2], (x, y, w, h))
    else:
        try:
            hole = photos.mask_hole(mask, photo.shape[:2])
        except Exception as err:
            fail(f"--mask {mask}: not a readable image ({one_line(err)})")
    if not hole.any():
        fail("the hole is empty: the box lies outside the photo, or the mask has no white pixel")
    for k, target in enumerate(targets[image]):
        save_png(photos.inpaint(model, photo, hole, seed + k, sampler, steps), target)
    _summary(1, 0, out)


def _summary(written: int, failed: int, out: Path) -> None:
    typer.echo(f"{written} written to {out}, {failed} failed")
    if failed:
        raise typer.Exit(1)


@app.command()
@one_line_errors
def inspect(checkpoint: Path = typer.Argument(..., help="A checkpoint directory.")) -> None:
    """Print what a checkpoint is: task, domain, lineage, progress, training time, and its set-aside states."""
    meta = read_meta(checkpoint)
    if meta is None:
        fail(f"{checkpoint}: not a checkpoint directory (no readable meta.json)")
    lineage, directory, current = [], checkpoint, meta
    while current and current.parent:
        lineage.append(current.parent.name)
        directory = parent_directory(directory, current)
        current = read_meta(directory) if directory else None
    timings = meta.timings()
    state = "complete" if meta.complete else f"in progress (epoch {meta.epoch} of {meta.epochs})"
    typer.echo(f"{checkpoint}: {meta.task} on {meta.domain}, {state}")
    typer.echo(f"  initialised from: {' <- '.join(lineage) if lineage else 'scratch'}")
    typer.echo(f"  architecture: {meta.architecture}")
    classes = meta.class_scheme()
    if classes is not None and classes.conditional:
        typer.echo(f"  classes (--class), by superclass: {classes.describe()}")
    if meta.trainable:
        t = meta.trainable
        typer.echo(f"  method: {t['method']}, {t['trainable_parameters']:,} of {t['parameters']:,} "
                   f"parameters trained ({t['trainable_percent']:.2f} %)")
    weights = checkpoint / WEIGHTS
    if weights.exists():
        stored = "only the trained tensors, rebuilt on its parent when loaded" if meta.stores == "delta" else "full weights"
        typer.echo(f"  {WEIGHTS}: {weights.stat().st_size:,} bytes ({stored})")
    typer.echo(f"  epochs {timings['epochs']}, {timings['total_seconds']} s training "
               f"({timings['seconds_per_epoch']} s/epoch), {timings['images_seen']} images, "
               f"{timings['sessions']} sessions, {timings['resumes']} resumes")
    typer.echo(f"  final validation loss: {timings['final_val_loss']}")
    if timings["precision"]:
        typer.echo(f"  trained in: {timings['precision']} (precision setting: {meta.schedule.get('precision', 'auto')})"
                   + (f" on {timings['kernels']}" if timings["kernels"] else ""))
    typer.echo(f"  fingerprint: {meta.fingerprint}")
    for aside in stale_directories(checkpoint):
        size = sum(f.stat().st_size for f in aside.rglob("*") if f.is_file())
        typer.echo(f"  set aside: {aside} ({size:,} bytes; never loaded - `rm -r {aside}` deletes it)")


@app.command()
@one_line_errors
def export(
    checkpoint: Path = typer.Argument(..., help="A finished checkpoint directory, e.g. models/peft_faces."),
    out: Path = typer.Argument(..., help="Directory for the standalone copy (model.safetensors and meta.json)."),
) -> None:
    """Write a standalone copy of CHECKPOINT to OUT: its full EMA weights in one model.safetensors.

    A PEFT model's directory stores only the tensors it trained (LoRA: its low-rank factors), and
    loading it needs its parent chain (verified by hash); the export holds the merged weights and
    needs nothing else: share it, or keep it after the parents are gone. Load it like any model
    directory (`diffmodel sample OUT ...`), or with any safetensors reader (plain U-Net keys).
    """
    written = export_checkpoint(checkpoint, out)
    typer.echo(f"{checkpoint} -> {written} ({written.stat().st_size:,} bytes)")


if __name__ == "__main__":
    app()
