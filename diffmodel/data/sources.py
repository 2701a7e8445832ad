"""Where a domain's images come from: the built-in synthetic generator or a folder of real images.

Both give the same thing: data/prepared/<domain>/ with train, val and test uint8 arrays
(N, H, W, 3). Test and val are fixed by the seed alone, so growing the training set never
changes what models are evaluated on. Folder images go from the decoder straight into the
split files: memory does not grow with the dataset.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..classes import ClassScheme
from ..config import ConfigError, DomainConfig
from . import synthetic
from .folders import list_images, read_images
from .prepared import NpyWriter, save_domain, write_manifest

SPLIT_SEEDS = {"train": 0, "val": 1, "test": 2}
DOMAIN_SEEDS = {"faces": 0, "landscapes": 1}


def prepare_domain(name: str, cfg: DomainConfig, image_size: int, seed: int, num_subsets: int, out: Path,
                   progress: bool = False) -> dict:
    """Write domain `name` ("faces" or "landscapes") to `out` (data/prepared/<name>); returns its manifest."""
    counts = {"train": cfg.train, "val": cfg.val, "test": cfg.test}
    if cfg.source == "synthetic":
        scheme = _synthetic_scheme(name, cfg)
        splits, labels = {}, {}
        for split, count in counts.items():
            splits[split], labels[split] = _render(name, cfg, count, image_size, seed * 100 + 10 * DOMAIN_SEEDS[name] + SPLIT_SEEDS[split])
        return save_domain(out, splits, labels, num_subsets, scheme, {"source": "synthetic", "skipped": []})

    scheme = ClassScheme.build(name, cfg.classes, cfg.superclasses)
    files = list_images(cfg.root, cfg.classes)
    needed = sum(counts.values())
    if len(files.paths) < needed:
        raise ConfigError(f"data.{name}: {cfg.root} has {len(files.paths)} image files, but train+val+test = {needed}; "
                          f"lower data.{name}.train")
    # a seeded shuffle of the file list, read until `needed` images decode: test, then val, then
    # train, so a larger training set never changes what is evaluated, and files past what is
    # needed are never decoded
    order = np.random.default_rng(seed).permutation(len(files.paths))
    in_read_order = ("test", "val", "train")
    writers = [NpyWriter(Path(out) / f"{split}.npy", (counts[split], image_size, image_size, 3)) for split in in_read_order]
    ends = np.cumsum([counts[split] for split in in_read_order])
    written = 0

    def write(image: np.ndarray) -> None:
        nonlocal written
        writers[int(np.searchsorted(ends, written, side="right"))].write(image[None])
        written += 1

    try:
        _, labels, skipped = read_images(files, image_size, count=needed, order=order, progress=progress, sink=write)
        if written < needed:
            raise ConfigError(f"data.{name}: {cfg.root} has {written} readable images ({len(skipped)} of its "
                              f"{len(files.paths)} files could not be read), but train+val+test = {needed}; "
                              f"lower data.{name}.train")
        for writer in writers:
            writer.finish()
    except BaseException:
        for writer in writers:
            writer.discard()
        raise
    val_end = cfg.test + cfg.val
    split_labels = {"test": labels[:cfg.test], "val": labels[cfg.test:val_end], "train": labels[val_end:]}
    info = {"source": "folder", "root": str(cfg.root), "image_files": len(files.paths), "skipped": skipped}
    return write_manifest(out, num_subsets, split_labels, scheme, info)


def _synthetic_scheme(name: str, cfg: DomainConfig) -> ClassScheme:
    """The built-in generator's classes: faces have one; landscapes the built-in ones asked for
    (all four, in their two superclasses, when data.landscapes.classes is empty)."""
    if name == "faces":
        if cfg.classes:
            raise ConfigError("data.faces.classes: the synthetic faces have one class; classes name the "
                              "subfolders of folder data (source: folder)")
        return ClassScheme.build(name, (), None)
    unknown = [c for c in cfg.classes if c not in synthetic.LANDSCAPE_CLASSES]
    if unknown:
        raise ConfigError(f"data.landscapes.classes: {unknown[0]!r} is not a built-in landscape class "
                          f"(choose from {', '.join(synthetic.LANDSCAPE_CLASSES)})")
    if not cfg.classes:
        return ClassScheme.build(name, synthetic.LANDSCAPE_CLASSES, synthetic.LANDSCAPE_SUPERCLASSES)
    return ClassScheme.build(name, cfg.classes, cfg.superclasses)


def _render(name: str, cfg: DomainConfig, count: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if name == "faces":
        return synthetic.render_faces(count, size, seed), np.zeros(count, np.int64)
    return synthetic.render_landscapes(count, size, seed, cfg.classes or synthetic.LANDSCAPE_CLASSES)
