import numpy as np
import pytest

from diffmodel.data.synthetic import LANDSCAPE_CLASSES, LANDSCAPE_SUPERCLASSES, render_faces, render_landscapes
from diffmodel.data.synthetic import landscapes as landscape_palettes

LUMA = np.array([0.299, 0.587, 0.114])


@pytest.fixture(scope="module")
def faces():
    return render_faces(64, 32, seed=0)


@pytest.fixture(scope="module")
def landscapes():
    return render_landscapes(64, 32, seed=0)


def test_shapes_and_dtypes(faces, landscapes):
    assert faces.shape == (64, 32, 32, 3) and faces.dtype == np.uint8
    images, labels = landscapes
    assert images.shape == (64, 32, 32, 3) and images.dtype == np.uint8
    assert labels.shape == (64,) and labels.dtype == np.int64
    assert render_faces(3, 16, seed=0).shape == (3, 16, 16, 3)
    assert render_landscapes(2, 48, seed=0)[0].shape == (2, 48, 48, 3)
    assert render_faces(0, 32, seed=0).shape == (0, 32, 32, 3)


def test_same_seed_gives_identical_bytes_and_other_seeds_differ(faces, landscapes):
    assert render_faces(64, 32, seed=0).tobytes() == faces.tobytes()
    again, labels = render_landscapes(64, 32, seed=0)
    assert again.tobytes() == landscapes[0].tobytes() and np.array_equal(labels, landscapes[1])
    assert render_faces(64, 32, seed=1).tobytes() != faces.tobytes()
    assert render_landscapes(64, 32, seed=1)[0].tobytes() != landscapes[0].tobytes()


def test_images_differ_from_each_other_and_use_the_range(faces, landscapes):
    for images in (faces, landscapes[0]):
        flat = images.reshape(len(images), -1).astype(np.int64)
        assert len({row.tobytes() for row in images}) == len(images)
        assert flat.std(axis=1).min() > 10  # no blank images
        assert images.min() < 40 and images.max() > 215


def test_every_landscape_class_appears_and_the_superclasses_look_different(landscapes):
    images, labels = landscapes
    assert set(labels.tolist()) == set(range(len(LANDSCAPE_CLASSES)))
    # rows of tree crowns make forests busier from left to right than smooth mountain flanks
    gray = images.astype(np.float64) @ LUMA
    busyness = np.abs(np.diff(gray, axis=2)).mean(axis=(1, 2))
    forest = np.isin(labels, [LANDSCAPE_CLASSES.index(c) for c in LANDSCAPE_SUPERCLASSES["forest"]])
    assert busyness[forest].mean() > 1.1 * busyness[~forest].mean()


@pytest.mark.parametrize("pair", [(landscape_palettes._ROCK, landscape_palettes._RED_ROCK), (landscape_palettes._MEADOW, landscape_palettes._DESERT),
                                  (landscape_palettes._LEAVES[None], landscape_palettes._AUTUMN),
                                  (landscape_palettes._SUMMER_GRASS, landscape_palettes._AUTUMN_GRASS)])
def test_the_two_classes_of_a_superclass_share_luminance_not_hue(pair):
    # only the label tells them apart in gray: each twin colour has its twin's luminance (1 level) ...
    first, second = (np.atleast_2d(p).astype(np.float64) for p in pair)
    assert np.abs(first @ LUMA - second @ LUMA).max() < 1.0
    # ... and another hue: red minus green differs by far more than that
    assert np.abs((first[:, 0] - first[:, 1]) - (second[:, 0] - second[:, 1])).min() > 30


def test_twin_classes_differ_in_colour_not_in_gray():
    images, labels = render_landscapes(256, 32, seed=3)
    gray = images.astype(np.float64) @ LUMA
    redness = images[..., 0].astype(np.float64) - images[..., 1]
    for first, second in LANDSCAPE_SUPERCLASSES.values():
        a, b = labels == LANDSCAPE_CLASSES.index(first), labels == LANDSCAPE_CLASSES.index(second)
        assert abs(gray[a].mean() - gray[b].mean()) < 5  # of 255
        assert redness[b].mean() - redness[a].mean() > 15  # red rock, autumn: redder


def test_one_class_only_and_unknown_classes(landscapes):
    _, labels = render_landscapes(8, 16, seed=0, classes=("summer_forest",))
    assert np.all(labels == 0)
    with pytest.raises(ValueError, match="unknown landscape class 'desert'"):
        render_landscapes(4, 16, seed=0, classes=("alpine", "desert"))


def chroma_explained(images: np.ndarray, train: int) -> float:
    """Fraction of chroma variance a per-pixel linear regression on (gray, position)
    features explains on held-out images (0: no better than the mean colour)."""
    x = images.astype(np.float64) / 255
    gray = x @ LUMA
    n, h, w = gray.shape
    rows, cols = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij")
    rows, cols = np.broadcast_to(rows, gray.shape), np.broadcast_to(cols, gray.shape)
    features = np.stack([np.ones_like(gray), gray, gray**2, gray**3, rows, rows**2, cols**2,
                         gray * rows, gray * cols**2, gray**2 * rows], axis=-1)
    chroma = x - gray[..., None]
    fit_x, fit_y = features[:train].reshape(-1, features.shape[-1]), chroma[:train].reshape(-1, 3)
    test_x, test_y = features[train:].reshape(-1, features.shape[-1]), chroma[train:].reshape(-1, 3)
    coef, *_ = np.linalg.lstsq(fit_x, fit_y, rcond=None)
    regression = ((test_x @ coef - test_y) ** 2).mean()
    mean_colour = ((fit_y.mean(axis=0) - test_y) ** 2).mean()
    return 1 - regression / mean_colour


def channels_shuffled(images: np.ndarray) -> np.ndarray:
    """The same images with colour no longer tied to structure: RGB channels permuted per image."""
    rng = np.random.default_rng(0)
    return np.stack([image[..., rng.permutation(3)] for image in images])


@pytest.mark.parametrize("domain,least", [("faces", 0.15), ("landscapes", 0.25)])
def test_colour_is_predictable_from_gray_structure(faces, landscapes, domain, least):
    # Colorization can only beat its grayscale input if chroma follows what gray shows.
    images = faces if domain == "faces" else landscapes[0]
    explained = chroma_explained(images, train=48)
    control = chroma_explained(channels_shuffled(images), train=48)
    assert explained > least
    assert explained > control + 0.1
