"""Preparing a domain from a folder of real images: the split, what is decoded, the arrays written, the content hash."""

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diffmodel.config import DomainConfig
from diffmodel.data.prepared import SPLITS, load_domain, save_domain
from diffmodel.config import ConfigError
from diffmodel.data import folders
from diffmodel.data.sources import prepare_domain


def domain_splits(name, cfg, image_size, seed, directory=None):
    """The splits prepare writes for a domain, read back, and its manifest (as the stage does it)."""
    domain_splits.runs = getattr(domain_splits, "runs", 0) + 1
    directory = directory or Path(f"/tmp/diffmodel-test-prepared-{os.getpid()}-{domain_splits.runs}")
    manifest = prepare_domain(name, cfg, image_size, seed, 1, directory)
    prepared = load_domain(directory)
    return {split: np.array(getattr(prepared, split)) for split in SPLITS}, manifest


@pytest.fixture
def places_folder(tmp_path):
    """Two class folders of single-colour images; the red channel numbers each image."""
    root = tmp_path / "places"
    for cls, count, green in (("mountain", 12, 0), ("forest", 8, 200)):
        (root / cls).mkdir(parents=True)
        for i in range(count):
            Image.new("RGB", (10, 10), (10 * i + (0 if cls == "mountain" else 5), green, 0)).save(root / cls / f"{i:02d}.png")
    return root


def test_folder_splits_are_disjoint_views_of_a_seeded_shuffle(places_folder):
    cfg = DomainConfig(source="folder", root=str(places_folder), classes=("mountain", "forest"), train=14, val=2, test=3)
    splits, info = domain_splits("landscapes", cfg, image_size=8, seed=5)
    assert {k: len(v) for k, v in splits.items()} == {"train": 14, "val": 2, "test": 3}
    ids = {split: [(int(img[0, 0, 0]), int(img[0, 0, 1])) for img in images] for split, images in splits.items()}
    every = [i for split in ids.values() for i in split]
    assert len(set(every)) == 19, "an image is in two splits"
    assert info["image_files"] == 20 and not info["skipped"]
    forest_in_train = sum(1 for _, green in ids["train"] if green == 200)
    assert info["train_class_counts"] == {"mountain": 14 - forest_in_train, "forest": forest_in_train}
    again, _ = domain_splits("landscapes", cfg, image_size=8, seed=5)
    assert all(np.array_equal(again[s], splits[s]) for s in SPLITS)
    other, _ = domain_splits("landscapes", cfg, image_size=8, seed=6)
    assert not np.array_equal(other["train"], splits["train"])


def test_only_the_images_the_splits_need_are_decoded(places_folder, monkeypatch):
    decoded = []
    real_load_image = folders.load_image
    monkeypatch.setattr(folders, "load_image", lambda path, size: decoded.append(path) or real_load_image(path, size))
    cfg = DomainConfig(source="folder", root=str(places_folder), classes=("mountain", "forest"), train=3, val=1, test=1)
    splits, _ = domain_splits("landscapes", cfg, image_size=8, seed=5)
    assert len(decoded) == 5 and len(set(decoded)) == 5


def test_a_larger_training_set_keeps_val_and_test(places_folder):
    small = DomainConfig(source="folder", root=str(places_folder), classes=("mountain", "forest"), train=4, val=2, test=3)
    large = DomainConfig(source="folder", root=str(places_folder), classes=("mountain", "forest"), train=15, val=2, test=3)
    (first, _), (second, _) = (domain_splits("landscapes", cfg, image_size=8, seed=5) for cfg in (small, large))
    assert np.array_equal(first["test"], second["test"]) and np.array_equal(first["val"], second["val"])
    assert np.array_equal(first["train"], second["train"][:4])


def test_unreadable_files_skipped_until_too_few_remain(places_folder):
    for i in range(6):
        (places_folder / "forest" / f"{i:02d}.png").write_bytes(b"not a png")  # 6 of forest's 8 now unreadable
    cfg = DomainConfig(source="folder", root=str(places_folder), classes=("mountain", "forest"), train=10, val=2, test=2)
    splits, info = domain_splits("landscapes", cfg, image_size=8, seed=5)
    assert len(splits["train"]) == 10 and all(item["reason"] for item in info["skipped"])
    more = DomainConfig(source="folder", root=str(places_folder), classes=("mountain", "forest"), train=12, val=2, test=2)
    with pytest.raises(ConfigError, match=r"^data.landscapes: .* has 14 readable images \(6 of its 20 files could not be read\), "
                                          r"but train\+val\+test = 16; lower data.landscapes.train$"):
        domain_splits("landscapes", more, image_size=8, seed=5)


def test_saved_arrays_load_back_and_the_hash_covers_names_shapes_and_bytes(tmp_path):
    rng = np.random.default_rng(0)
    splits = {s: rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8) for s, n in (("train", 12), ("val", 2), ("test", 3))}
    manifest = save_domain(tmp_path / "d", splits, num_subsets=3, info={"source": "test"})
    expected = hashlib.sha256()
    for split in SPLITS:
        expected.update(split.encode() + str(splits[split].shape).encode() + splits[split].tobytes())
    assert manifest["content_hash"] == expected.hexdigest()[:16]
    loaded = load_domain(tmp_path / "d")
    assert all(np.array_equal(getattr(loaded, s), splits[s]) for s in SPLITS)
    assert loaded.subsets == [(0, 4), (4, 8), (8, 12)]

    splits["val"][0, 0, 0, 0] ^= 1
    assert save_domain(tmp_path / "e", splits, 3, {"source": "test"})["content_hash"] != manifest["content_hash"]


def test_a_split_file_appears_only_complete(tmp_path):
    from diffmodel.data.prepared import NpyWriter

    images = np.arange(4 * 2 * 2 * 3, dtype=np.uint8).reshape(4, 2, 2, 3)
    writer = NpyWriter(tmp_path / "train.npy", images.shape)
    writer.write(images[:1])
    writer.write(images[1:])
    assert not (tmp_path / "train.npy").exists()  # until finish()
    writer.finish()
    assert np.array_equal(np.load(tmp_path / "train.npy"), images)
    short = NpyWriter(tmp_path / "val.npy", (3, 2, 2, 3))
    short.write(images[:2])
    with pytest.raises(ValueError, match="2 images written, 3 expected"):
        short.finish()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.npy"]  # no partial file left
