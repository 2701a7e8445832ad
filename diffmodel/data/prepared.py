"""The prepared-data directory one domain's stages read: uint8 arrays plus a manifest.

    data/prepared/<domain>/
      train.npy  val.npy  test.npy   uint8 (N, H, W, 3); train is pre-shuffled, so
                                     Algorithm 2's subsets are contiguous ranges
      manifest.json                  counts, source, size, subsets, content hash, skipped files

Arrays are memory-mapped, so a CelebA-HQ-sized training set is not read into RAM at once.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import atomic_write, write_json
from ..errors import UserError
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

    @property
    def content_hash(self) -> str:
        return self.manifest["content_hash"]

    @property
    def subsets(self) -> list[tuple[int, int]]:
        return [tuple(r) for r in self.manifest["subsets"]]

    @property
    def image_size(self) -> int:
        return self.manifest["image_size"]


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (B,H,W,3) -> float (B,3,H,W) in [-1, 1]."""
    return torch.from_numpy(np.require(images, requirements=["C", "W"])).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def save_domain(directory: Path, splits: dict[str, np.ndarray], num_subsets: int, info: dict) -> dict:
    directory = Path(directory)
    digest = hashlib.sha256()
    for split in SPLITS:
        array = np.ascontiguousarray(splits[split], dtype=np.uint8)
        digest.update(split.encode() + str(array.shape).encode())
        digest.update(memoryview(array).cast("B"))  # the bytes in place: tobytes() would copy them
        atomic_write(directory / f"{split}.npy", lambda f, a=array: np.save(f, a))
    size = splits["train"].shape[1]
    manifest = {
        **info,
        "image_size": size,
        "counts": {split: int(len(splits[split])) for split in SPLITS},
        "num_subsets": num_subsets,
        "subsets": subset_ranges(len(splits["train"]), num_subsets),
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
    arrays = {}
    for split in SPLITS:
        path = directory / f"{split}.npy"
        try:
            arrays[split] = np.load(path, mmap_mode="r")
        except (OSError, ValueError) as err:
            raise PreparedDataError(f"{path}: cannot be read ({err}); run the prepare stage again") from None
        if len(arrays[split]) != manifest["counts"][split]:
            raise PreparedDataError(f"{path}: {len(arrays[split])} images but manifest.json says {manifest['counts'][split]}; run the prepare stage again")
    return PreparedDomain(directory, manifest, **arrays)
