"""Preparing a domain from a folder of real images: the split, what is decoded, the arrays written, the content hash."""

import hashlib
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diffmodel.classes import ClassScheme
from diffmodel.config import ConfigError, DomainConfig
from diffmodel.data import folders
from diffmodel.data.prepared import SPLITS, labels_path, load_domain, save_domain
from diffmodel.data.sources import prepare_domain


def domain_splits(name, cfg, image_size, seed):
    """The splits prepare writes for a domain, read back (copied: the folder is removed), and its manifest."""
    with tempfile.TemporaryDirectory(prefix="diffmodel-test-prepared-") as directory:
        manifest = prepare_domain(name, cfg, image_size, seed, 1, Path(directory))
        prepared = load_domain(directory)
        domain_splits.labels = {split: np.array(prepared.labels[split]) for split in SPLITS}
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
    assert info["class_counts"]["train"] == {"mountain": 14 - forest_in_train, "forest": forest_in_train}
    # each image keeps its class (the folder it came from: green 200 is forest) through the shuffle
    for split, images in splits.items():
        assert domain_splits.labels[split].tolist() == [1 if img[0, 0, 1] == 200 else 0 for img in images]
    # without a superclasses mapping the superclass is the domain
    assert info["classes"] == ["mountain", "forest"] and info["superclasses"] == {"landscapes": ["mountain", "forest"]}
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


def test_saved_arrays_load_back_and_the_hash_covers_names_shapes_bytes_and_labels(tmp_path):
    rng = np.random.default_rng(0)
    splits = {s: rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8) for s, n in (("train", 12), ("val", 2), ("test", 3))}
    labels = {s: rng.integers(0, 3, len(images)) for s, images in splits.items()}
    scheme = ClassScheme.build("d", ("a", "b", "c"), {"x": ("a", "c"), "y": ("b",)})
    manifest = save_domain(tmp_path / "d", splits, labels, 3, scheme, {"source": "test"})
    expected = hashlib.sha256()
    for split in SPLITS:
        expected.update(labels_path(tmp_path / "d", split).read_bytes())
    for split in SPLITS:
        expected.update(split.encode() + str(splits[split].shape).encode() + splits[split].tobytes())
    assert manifest["content_hash"] == expected.hexdigest()[:16]
    loaded = load_domain(tmp_path / "d")
    assert all(np.array_equal(getattr(loaded, s), splits[s]) for s in SPLITS)
    assert all(np.array_equal(loaded.labels[s], labels[s]) for s in SPLITS)
    assert loaded.subsets == [(0, 4), (4, 8), (8, 12)]
    assert loaded.scheme == scheme and loaded.scheme.superclass_of == (0, 1, 0)

    splits["val"][0, 0, 0, 0] ^= 1
    assert save_domain(tmp_path / "e", splits, labels, 3, scheme, {"source": "test"})["content_hash"] != manifest["content_hash"]
    splits["val"][0, 0, 0, 0] ^= 1
    labels["train"][0] = (labels["train"][0] + 1) % 3
    assert save_domain(tmp_path / "f", splits, labels, 3, scheme, {"source": "test"})["content_hash"] != manifest["content_hash"]


def test_synthetic_landscapes_keep_their_classes_through_prepare_and_subsets(tmp_path):
    from diffmodel.config import DataConfig
    from diffmodel.data.synthetic import render_landscapes

    cfg = DataConfig().landscapes
    cfg = DomainConfig(classes=cfg.classes, superclasses=cfg.superclasses, train=40, val=4, test=6)
    prepare_domain("landscapes", cfg, 16, 0, 4, tmp_path / "l")
    prepared = load_domain(tmp_path / "l")
    images, labels = render_landscapes(40, 16, seed=10)  # what prepare renders for landscapes' train split (seed 0)
    assert np.array_equal(prepared.train, images) and np.array_equal(prepared.labels["train"], labels)
    for start, stop in prepared.subsets:  # a subset is a range of train: its labels are the same range
        assert np.array_equal(prepared.labels["train"][start:stop], labels[start:stop])
    assert prepared.scheme.classes == ("alpine", "red_rock", "summer_forest", "autumn_forest")
    assert [prepared.scheme.superclasses[s] for s in prepared.scheme.superclass_of] == ["mountain", "mountain", "forest", "forest"]


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


def test_prepare_does_not_load_torch():
    # torch alone is ~650 MB of resident memory; prepare's peak must not grow with it (3,000 256-px
    # JPEGs: 218 MB with this, 738 MB with torch loaded - issue 13)
    import subprocess
    import sys

    probe = "import sys, stages.prepare; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert result.stdout.strip() == "False", result.stderr


@pytest.mark.parametrize("name,cfg,message", [
    ("faces", DomainConfig(classes=("smiling",)), "data.faces.classes: the synthetic faces have one class"),
    ("landscapes", DomainConfig(classes=("mountain", "forest")),
     "data.landscapes.classes: 'mountain' is not a built-in landscape class \\(choose from alpine, red_rock"),
])
def test_synthetic_classes_must_be_ones_the_generator_draws(tmp_path, name, cfg, message):
    with pytest.raises(ConfigError, match=message):
        prepare_domain(name, cfg, 8, 0, 1, tmp_path / name)


def test_synthetic_landscapes_without_classes_get_all_four_in_their_superclasses(tmp_path):
    manifest = prepare_domain("landscapes", DomainConfig(train=8, val=2, test=2), 8, 0, 1, tmp_path / "l")
    assert manifest["superclasses"] == {"mountain": ["alpine", "red_rock"], "forest": ["summer_forest", "autumn_forest"]}
