"""The prepared-data directory one domain's stages read: uint8 arrays plus a manifest.

    data/prepared/<domain>/
      train.npy  val.npy  test.npy   uint8 (N, H, W, 3); train is pre-shuffled, so
                                     Algorithm 2's subsets are contiguous ranges
      train_labels.npy ...           int64 (N,): each image's fine class (diffmodel/classes.py)
      manifest.json                  counts, source, size, subsets, classes and superclasses,
                                     content hash, skipped files

Arrays are written a few images at a time (NpyWriter) and memory-mapped when read, so a
CelebA-HQ-sized training set is never in RAM at once. No torch here (data/tensors.py turns
images into tensors): preparing data does not pay for loading it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..classes import ClassScheme
from ..errors import UserError
from ..files import atomic_write, write_json
from .subsets import subset_ranges

SPLITS = ("train", "val", "test")


class PreparedDataError(UserError):
    """A one-line problem with a prepared-data directory."""


@dataclass
class PreparedDomain:
    directory: Path
    manifest: dict
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    labels: dict[str, np.ndarray]  # split -> fine-class labels, aligned with the split's images

    @property
    def scheme(self) -> ClassScheme:
        return ClassScheme.from_dict(self.manifest)

    @property
    def content_hash(self) -> str:
        return self.manifest["content_hash"]

    @property
    def subsets(self) -> list[tuple[int, int]]:
        return [tuple(r) for r in self.manifest["subsets"]]

    @property
    def image_size(self) -> int:
        return self.manifest["image_size"]


class NpyWriter:
    """A uint8 (N, H, W, 3) .npy file written a few images at a time, so memory holds what one
    write() is given whatever N. It becomes `path` (atomically) at finish(), once all N are in."""

    def __init__(self, path: Path, shape: tuple[int, ...]):
        self.path, self.shape, self.count = Path(path), tuple(int(n) for n in shape), 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        self.file = os.fdopen(fd, "wb")
        self._io(lambda: np.lib.format.write_array_header_1_0(
            self.file, {"descr": "|u1", "fortran_order": False, "shape": self.shape}))

    def write(self, images: np.ndarray) -> None:
        images = np.ascontiguousarray(images, dtype=np.uint8).reshape(-1, *self.shape[1:])
        if self.count + len(images) > self.shape[0]:
            raise ValueError(f"{self.path}: more than the {self.shape[0]} images it was opened for")
        self._io(lambda: self.file.write(memoryview(images).cast("B")))
        self.count += len(images)

    def finish(self) -> None:
        if self.count != self.shape[0]:
            self.discard()
            raise ValueError(f"{self.path}: {self.count} images written, {self.shape[0]} expected")
        self._io(lambda: (self.file.flush(), os.fsync(self.file.fileno())))
        self.file.close()
        os.replace(self.tmp, self.path)

    def discard(self) -> None:
        self.file.close()
        Path(self.tmp).unlink(missing_ok=True)

    def _io(self, action) -> None:
        try:
            action()
        except OSError as err:  # a full disk: one line, and no half-written file left behind
            self.discard()
            raise PreparedDataError(f"could not write {self.path}: {err.strerror or err}") from None


def save_domain(directory: Path, splits: dict[str, np.ndarray], labels: dict[str, np.ndarray], num_subsets: int,
                scheme: ClassScheme, info: dict) -> dict:
    """Write in-memory splits (the synthetic source), their labels and the manifest."""
    for split in SPLITS:
        writer = NpyWriter(Path(directory) / f"{split}.npy", splits[split].shape)
        writer.write(splits[split])
        writer.finish()
    return write_manifest(directory, num_subsets, labels, scheme, info)


def labels_path(directory: Path, split: str) -> Path:
    return Path(directory) / f"{split}_labels.npy"


def write_manifest(directory: Path, num_subsets: int, labels: dict[str, np.ndarray], scheme: ClassScheme, info: dict) -> dict:
    """The labels files and manifest.json of the split files already in `directory`: counts,
    subsets, classes, content hash (of the images and the labels)."""
    directory = Path(directory)
    for split in SPLITS:
        values = np.asarray(labels[split], np.int64)
        if values.min(initial=0) < 0 or values.max(initial=0) >= len(scheme.classes):
            raise ValueError(f"{split} labels outside 0..{len(scheme.classes) - 1}")
        atomic_write(labels_path(directory, split), lambda f: np.save(f, values))
    shapes, digest = {}, hashlib.sha256()
    for split in SPLITS:
        digest.update(labels_path(directory, split).read_bytes())
    for split in SPLITS:  # read back in blocks: the hash never needs a split in memory
        with open(directory / f"{split}.npy", "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shapes[split] = read_header(f)[0]
            digest.update(split.encode() + str(shapes[split]).encode())
            for block in iter(lambda: f.read(1 << 22), b""):
                digest.update(block)
    manifest = {
        **info,
        **scheme.as_dict(),
        "class_counts": {split: {c: int((np.asarray(labels[split]) == k).sum()) for k, c in enumerate(scheme.classes)}
                         for split in SPLITS},
        "image_size": shapes["train"][1],
        "counts": {split: int(shapes[split][0]) for split in SPLITS},
        "num_subsets": num_subsets,
        "subsets": subset_ranges(shapes["train"][0], num_subsets),
        "content_hash": digest.hexdigest()[:16],
    }
    write_json(directory / "manifest.json", manifest)
    return manifest


def load_domain(directory: Path) -> PreparedDomain:
    directory = Path(directory)
    manifest_path = directory / "manifest.json"
    if not manifest_path.exists():
        raise PreparedDataError(f"{directory}: no prepared data (missing manifest.json); run the prepare stage first")
    manifest = json.loads(manifest_path.read_text())
    arrays, labels = {}, {}
    for split in SPLITS:
        for path, into in ((directory / f"{split}.npy", arrays), (labels_path(directory, split), labels)):
            try:
                into[split] = np.load(path, mmap_mode="r")
            except (OSError, ValueError) as err:
                raise PreparedDataError(f"{path}: cannot be read ({err}); run the prepare stage again") from None
            if len(into[split]) != manifest["counts"][split]:
                raise PreparedDataError(f"{path}: {len(into[split])} entries but manifest.json says {manifest['counts'][split]}; "
                                        f"run the prepare stage again")
    return PreparedDomain(directory, manifest, **arrays, labels=labels)
