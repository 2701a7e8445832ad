"""Where a domain's images come from: the built-in synthetic generator or a folder of real images.

Both give the same thing: train, val and test uint8 arrays (N, H, W, 3). Test and val are
fixed by the seed alone, so growing the training set never changes what models are
evaluated on.
"""

from __future__ import annotations

import numpy as np

from ..config import ConfigError, DomainConfig
from . import synthetic
from .folders import load_folder

SPLIT_SEEDS = {"train": 0, "val": 1, "test": 2}
DOMAIN_SEEDS = {"faces": 0, "landscapes": 1}


def domain_splits(name: str, cfg: DomainConfig, image_size: int, seed: int, progress: bool = False) -> tuple[dict[str, np.ndarray], dict]:
    """({split: images}, info for the manifest) of domain `name` ("faces" or "landscapes")."""
    counts = {"train": cfg.train, "val": cfg.val, "test": cfg.test}
    if cfg.source == "synthetic":
        splits = {split: _render(name, cfg, count, image_size, seed * 100 + 10 * DOMAIN_SEEDS[name] + SPLIT_SEEDS[split])
                  for split, count in counts.items()}
        return splits, {"source": "synthetic", "classes": list(cfg.classes), "skipped": []}

    images, labels, skipped = load_folder(cfg.root, image_size, classes=cfg.classes, progress=progress)
    needed = sum(counts.values())
    if len(images) < needed:
        raise ConfigError(
            f"data.{name}: {cfg.root} has {len(images)} usable images, but train+val+test = {needed}; "
            f"lower data.{name}.train"
        )
    order = np.random.default_rng(seed).permutation(len(images))
    permute_rows_in_place(images, order)
    labels = labels[order]
    test, val = cfg.test, cfg.test + cfg.val
    splits = {"train": images[val:needed], "val": images[test:val], "test": images[:test]}  # views: no copies
    class_counts = {c: int((labels[val:needed] == k).sum()) for k, c in enumerate(cfg.classes)}
    info = {"source": "folder", "root": str(cfg.root), "classes": list(cfg.classes), "train_class_counts": class_counts,
            "usable_images": int(len(images)), "skipped": skipped}
    return splits, info


def permute_rows_in_place(array: np.ndarray, order: np.ndarray) -> None:
    """array[:] = array[order] with one row of extra memory (fancy indexing would copy the
    whole array: 6 GB more for CelebA-HQ at 256px). Follows each cycle of the permutation."""
    placed = np.zeros(len(order), bool)
    for start in range(len(order)):
        if placed[start]:
            continue
        saved = array[start].copy()
        i = start
        while order[i] != start:
            array[i] = array[order[i]]
            placed[i] = True
            i = order[i]
        array[i] = saved
        placed[i] = True


def _render(name: str, cfg: DomainConfig, count: int, size: int, seed: int) -> np.ndarray:
    if name == "faces":
        return synthetic.render_faces(count, size, seed)
    images, _ = synthetic.render_landscapes(count, size, seed, cfg.classes or synthetic.LANDSCAPE_CLASSES)
    return images
