"""Real image folders: CelebA-HQ (one folder of images) and Places2 (one subfolder per class).

Files are listed first and decoded only as far as needed, in the order asked (prepare: a
seeded shuffle, stopping at train+val+test images). Each is turned to RGB, centre-cropped to a square and resized with an antialiasing
filter, and handed on in order (to a file writer: prepare's memory does not grow with the
dataset). A file that cannot be
decoded is skipped and reported (path and reason); a class of which no file could be
read is an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image, ImageOps
from tqdm import tqdm

from ..errors import UserError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


class FolderError(UserError):
    """A one-line, user-facing problem with an image folder."""


@dataclass
class ImageFiles:
    """The image files of a folder, or of its class subfolders, before any is decoded."""

    root: Path
    folders: list[Path]  # one per class; just the root without classes
    paths: list[Path]
    labels: np.ndarray  # (len(paths),) index into folders


def list_images(root: str | Path, classes: Sequence[str] = ()) -> ImageFiles:
    """Every image file under `root` (recursively), sorted, label 0; or with `classes`, those
    under each root/<class>, label k meaning classes[k]."""
    root = Path(root)
    if not root.is_dir():
        raise FolderError(f"{root}: image folder not found" if not root.exists() else f"{root}: not a folder")
    folders = _class_folders(root, tuple(classes))
    paths, labels = [], []
    for label, folder in enumerate(folders):
        found = image_files(folder)
        if not found:
            raise FolderError(f"{folder}: no image files ({', '.join(IMAGE_SUFFIXES)}) found")
        paths += found
        labels += [label] * len(found)
    return ImageFiles(root, folders, paths, np.array(labels, np.int64))


def read_images(
    files: ImageFiles,
    image_size: int,
    count: int | None = None,
    order: Sequence[int] | None = None,
    progress: bool = False,
    sink: Callable[[np.ndarray], None] | None = None,
) -> tuple[np.ndarray | None, np.ndarray, list[dict]]:
    """Decode files (in `order`, default: as listed) until `count` (default: all) are usable.

    Returns images (n, image_size, image_size, 3) uint8 with n <= count - fewer only when
    the files ran out - (None when each image was handed to `sink` instead, in order), their
    labels, and the files skipped as unreadable, as {"path": ..., "reason": ...}. A class
    whose every file tried was unreadable (all of them, or at least 10) is an error.
    One process decodes: two processes were slower on 2 cores (3000 256px JPEGs: 642-742
    against 717-966 images/s), moving the decoded arrays between processes costing more than
    the decoding."""
    order = np.arange(len(files.paths)) if order is None else np.asarray(order)
    count = len(order) if count is None else count
    if image_size < 1:
        raise ValueError(f"need image_size >= 1, got {image_size}")
    images = np.empty((count, image_size, image_size, 3), np.uint8) if sink is None else None
    labels = np.empty(count, np.int64)
    skipped: list[dict] = []
    tried, failed = np.zeros(len(files.folders), int), np.zeros(len(files.folders), int)
    first_failure: dict[int, dict] = {}
    kept = 0
    with tqdm(total=count, desc=f"reading {files.root}", unit="img", disable=not progress, leave=False) as bar:
        for index in order[: len(order) if count else 0]:
            image, error = _try_load(files.paths[index], image_size)
            path, label = files.paths[index], int(files.labels[index])
            tried[label] += 1
            if error is not None:
                skipped.append({"path": str(path), "reason": error})
                failed[label] += 1
                first_failure.setdefault(label, skipped[-1])
                continue
            if sink is None:
                images[kept] = image
            else:
                sink(image)
            labels[kept] = label
            kept += 1
            bar.update(1)
            if kept == count:  # before the next file is decoded
                break
    in_class = np.bincount(files.labels, minlength=len(files.folders))
    for label, folder in enumerate(files.folders):
        # a few unreadable files are skipped; a class whose every file tried fails - all of
        # them, or 10 at least - is a broken folder, not bad luck
        if tried[label] >= min(10, in_class[label]) and failed[label] == tried[label] > 0:
            first = first_failure[label]
            raise FolderError(f"{folder}: none of the {tried[label]} image files tried could be read "
                              f"(first: {Path(first['path']).name}: {first['reason']})")
    return (None if images is None else images[:kept]), labels[:kept], skipped


def _try_load(path: Path, size: int) -> tuple[np.ndarray | None, str | None]:
    try:
        return load_image(path, size), None
    except Exception as err:  # Pillow's decoders raise many types on damaged files
        return None, one_line(err)


def load_folder(
    root: str | Path, image_size: int, classes: Sequence[str] = (), progress: bool = False
) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Every readable image under `root` (see list_images), its label, and the skipped files."""
    return read_images(list_images(root, classes), image_size, progress=progress)


def load_image(path: Path, size: int) -> np.ndarray:
    """One image file as (size, size, 3) uint8: RGB, centre square, antialiased resize."""
    with Image.open(path) as image:
        # JPEG can decode at 1/2, 1/4 or 1/8 scale directly: a 1024px CelebA-HQ face read for
        # 256px costs a fraction of a full decode. The draft keeps both sides >= size.
        image.draft("RGB", (size, size))
        image = ImageOps.exif_transpose(image)  # phone photos store their rotation in EXIF
        image = image.convert("RGB")
        width, height = image.size
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        # crop first: resize(box=...) would let the filter reach outside the square
        square = image.crop((left, top, left + side, top + side))
        return np.asarray(square.resize((size, size), Image.Resampling.LANCZOS, reducing_gap=3.0))


def _class_folders(root: Path, classes: tuple[str, ...]) -> list[Path]:
    if not classes:
        return [root]
    missing = [name for name in classes if not (root / name).is_dir()]
    if missing:
        present = sorted(p.name for p in root.iterdir() if p.is_dir())
        found = f"found: {', '.join(present[:10])}{', ...' if len(present) > 10 else ''}" if present else "it has no subfolders"
        raise FolderError(f"{root}: class folder {missing[0]!r} not found ({found})")
    return [root / name for name in classes]


def image_files(folder: Path) -> list[Path]:
    """Image files under `folder`, recursively, in a sorted (platform-independent) order."""
    found = (p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {text[:200]}" if text else type(err).__name__
