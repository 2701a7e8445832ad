"""Where `diffmodel` writes: every output is named before any work starts, and nothing a user has is lost.

An output that would replace one of the inputs is refused (even with --overwrite: the input would
be gone); one that exists already is kept unless the user asks for it with --overwrite; two
inputs that would write the same file are refused. Each refusal is one line naming both paths.
Every image is written atomically (temp file, then rename): a crash never leaves half a file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import UserError
from ..files import atomic_write


def output_names(out: Path, stem: str, samples: int) -> list[Path]:
    return [out / f"{stem}.png"] if samples == 1 else [out / f"{stem}_{k}.png" for k in range(1, samples + 1)]


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_dev, status.st_ino


def plan_outputs(out: Path, inputs: list[Path], samples: int, overwrite: bool, also_read: list[Path] = ()) -> dict[Path, list[Path]]:
    """{input: the files it will be written to}; a UserError for an output that would replace an
    input (or a file in `also_read`, such as a mask), an existing file without `overwrite`, or a
    file two inputs would both write."""
    read = {_identity(p): p for p in [*inputs, *also_read] if _identity(p) is not None}
    claimed: dict[Path, Path] = {}
    plan = {}
    for path in inputs:
        targets = output_names(out, path.stem, samples)
        for target in targets:
            key = Path(os.path.abspath(target))
            if key in claimed:
                raise UserError(f"{claimed[key]} and {path} would both be written to {target}; "
                                f"run them separately (another --out) or rename one")
            source = read.get(_identity(target))
            if source is not None:
                raise UserError(f"{target} is the input {source}: writing it would destroy the input; choose another --out")
            if target.exists() and not overwrite:
                raise UserError(f"{target} exists (the output for {path}); it is kept: choose another --out, "
                                f"or --overwrite to replace it")
            claimed[key] = path
        plan[path] = targets
    return plan


def save_png(pixels: np.ndarray, target: Path) -> None:
    image = Image.fromarray(pixels)
    atomic_write(target, lambda f: image.save(f, format="PNG"))
