"""Where a domain's images come from: the built-in synthetic generator or a folder of real images.

Both give the same thing: train, val and test uint8 arrays (N, H, W, 3). Test and val are
fixed by the seed alone, so growing the training set never changes what models are
evaluated on.
"""

from __future__ import annotations

import numpy as np

from ..config import ConfigError, DomainConfig
from . import synthetic
from .folders import list_images, read_images

SPLIT_SEEDS = {"train": 0, "val": 1, "test": 2}
DOMAIN_SEEDS = {"faces": 0, "landscapes": 1}


def domain_splits(name: str, cfg: DomainConfig, image_size: int, seed: int, progress: bool = False) -> tuple[dict[str, np.ndarray], dict]:
    """({split: images}, info for the manifest) of domain `name` ("faces" or "landscapes")."""
    counts = {"train": cfg.train, "val": cfg.val, "test": cfg.test}
    if cfg.source == "synthetic":
        splits = {split: _render(name, cfg, count, image_size, seed * 100 + 10 * DOMAIN_SEEDS[name] + SPLIT_SEEDS[split])
                  for split, count in counts.items()}
        return splits, {"source": "synthetic", "classes": list(cfg.classes), "skipped": []}

    files = list_images(cfg.root, cfg.classes)
    needed = sum(counts.values())
    if len(files.paths) < needed:
        raise ConfigError(f"data.{name}: {cfg.root} has {len(files.paths)} image files, but train+val+test = {needed}; "
                          f"lower data.{name}.train")
    # a seeded shuffle of the file list, read until `needed` images decode: test, then val, then
    # train, so a larger training set never changes what is evaluated, and files past what is
    # needed are never decoded
    order = np.random.default_rng(seed).permutation(len(files.paths))
    images, labels, skipped = read_images(files, image_size, count=needed, order=order, progress=progress)
    if len(images) < needed:
        raise ConfigError(f"data.{name}: {cfg.root} has {len(images)} readable images ({len(skipped)} of its "
                          f"{len(files.paths)} files could not be read), but train+val+test = {needed}; lower data.{name}.train")
    test, val = cfg.test, cfg.test + cfg.val
    splits = {"train": images[val:], "val": images[test:val], "test": images[:test]}  # views: no copies
    class_counts = {c: int((labels[val:] == k).sum()) for k, c in enumerate(cfg.classes)}
    info = {"source": "folder", "root": str(cfg.root), "classes": list(cfg.classes), "train_class_counts": class_counts,
            "image_files": len(files.paths), "skipped": skipped}
    return splits, info


def _render(name: str, cfg: DomainConfig, count: int, size: int, seed: int) -> np.ndarray:
    if name == "faces":
        return synthetic.render_faces(count, size, seed)
    images, _ = synthetic.render_landscapes(count, size, seed, cfg.classes or synthetic.LANDSCAPE_CLASSES)
    return images
