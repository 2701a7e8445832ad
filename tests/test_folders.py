import numpy as np
import pytest
from PIL import Image

from diffmodel.data.folders import FolderError, list_images, load_folder, load_image, read_images

RED, GREEN, BLUE = (220, 30, 30), (30, 200, 40), (40, 50, 210)


def solid(path, size, colour, mode="RGB", **save_args):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", size, colour)
    image.convert(mode).save(path, **save_args)
    return path


def banded(path, size, colours, vertical=True):
    """Three bands of colour across the width (vertical=True) or down the height."""
    width, height = size
    pixels = np.zeros((height, width, 3), np.uint8)
    for k, colour in enumerate(colours):
        if vertical:
            pixels[:, k * width // 3 : (k + 1) * width // 3] = colour
        else:
            pixels[k * height // 3 : (k + 1) * height // 3] = colour
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def truncated_jpeg(path):
    solid(path, (64, 48), GREEN, quality=95)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def close_to(pixels, colour, tolerance=12):
    return np.abs(pixels.astype(int) - np.array(colour)).max() <= tolerance


@pytest.fixture
def faces_folder(tmp_path):
    """A CelebA-HQ-like flat folder (with one nested folder), of mixed formats, sizes and modes."""
    root = tmp_path / "celeba"
    solid(root / "a.png", (40, 30), RED)
    solid(root / "b.jpg", (30, 50), GREEN, quality=95)
    solid(root / "c.JPEG", (64, 64), BLUE, mode="L")  # grayscale file, upper-case suffix
    solid(root / "d.bmp", (17, 23), RED)
    solid(root / "e.webp", (33, 33), GREEN, lossless=True)
    solid(root / "nested" / "f.png", (20, 20), BLUE, mode="RGBA")
    solid(root / "g.png", (25, 25), RED, mode="P")
    truncated_jpeg(root / "broken.jpg")
    (root / "notes.jpg").write_text("this is not a JPEG\n")
    (root / "list_attr.txt").write_text("not an image and not named like one\n")
    return root


def test_loads_every_readable_image_and_reports_the_rest(faces_folder):
    images, labels, skipped = load_folder(faces_folder, 16)
    assert images.shape == (7, 16, 16, 3) and images.dtype == np.uint8
    assert labels.shape == (7,) and labels.dtype == np.int64 and np.all(labels == 0)
    assert sorted(item["path"] for item in skipped) == [str(faces_folder / "broken.jpg"), str(faces_folder / "notes.jpg")]
    for item in skipped:
        assert item["reason"] and "\n" not in item["reason"]
    assert "truncated" in next(i["reason"] for i in skipped if i["path"].endswith("broken.jpg")).lower()


def test_files_come_in_sorted_order_and_colours_survive(faces_folder):
    images, _, _ = load_folder(faces_folder, 8)
    # a.png b.jpg c.JPEG d.bmp e.webp g.png nested/f.png (broken.jpg, notes.jpg skipped)
    expected = [RED, GREEN, None, RED, GREEN, RED, BLUE]
    for image, colour in zip(images, expected):
        if colour is not None:
            assert close_to(image, colour)
    gray = images[2]
    assert np.all(gray[..., 0] == gray[..., 1]) and np.all(gray[..., 1] == gray[..., 2])  # L -> RGB
    again, _, _ = load_folder(faces_folder, 8)
    assert np.array_equal(images, again)


def test_centre_crop_keeps_the_middle_of_wide_and_tall_images(tmp_path):
    wide = banded(tmp_path / "wide.png", (90, 30), [RED, GREEN, BLUE], vertical=True)
    tall = banded(tmp_path / "tall.png", (30, 90), [BLUE, RED, GREEN], vertical=False)
    assert close_to(load_image(wide, 12), GREEN, tolerance=2)
    assert close_to(load_image(tall, 12), RED, tolerance=2)


def test_downscaling_is_antialiased(tmp_path):
    # one-pixel black and white stripes: a filter that averages gives flat gray, nearest
    # neighbour or an unfiltered stride would give black and white
    stripes = np.zeros((64, 64, 3), np.uint8)
    stripes[:, ::2] = 255
    Image.fromarray(stripes).save(tmp_path / "stripes.png")
    small = load_image(tmp_path / "stripes.png", 16).astype(int)
    assert np.abs(small[:, 1:-1] - 128).max() <= 4
    assert np.abs(small - 128).max() <= 16  # Lanczos rings a little at the border


def test_large_jpeg_matches_a_full_decode(tmp_path):
    # the fast reduced-scale JPEG decode must look like decoding everything, then resizing
    y, x = np.mgrid[0:384, 0:512]
    pixels = np.stack([x / 2, y / 1.5, (x + y) / 4], axis=-1).clip(0, 255).astype(np.uint8)
    path = tmp_path / "big.jpg"
    Image.fromarray(pixels).save(path, quality=95)
    fast = load_image(path, 32).astype(int)
    with Image.open(path) as image:
        reference = np.asarray(image.convert("RGB").resize((32, 32), Image.Resampling.LANCZOS, box=(64, 0, 448, 384)))
    assert np.abs(fast - reference.astype(int)).mean() < 2


@pytest.fixture
def places_folder(tmp_path):
    root = tmp_path / "places2"
    for k in range(3):
        solid(root / "mountain" / f"m{k}.jpg", (40 + k, 30), BLUE, quality=95)
    for k in range(2):
        solid(root / "forest" / f"f{k}.png", (30, 30 + k), GREEN)
    (root / "forest" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    solid(root / "desert" / "d0.png", (30, 30), RED)  # a class nobody asked for
    return root


def test_class_subfolders_give_labels_in_the_order_of_classes(places_folder):
    images, labels, skipped = load_folder(places_folder, 8, classes=("forest", "mountain"))
    assert labels.tolist() == [0, 0, 1, 1, 1]
    assert all(close_to(image, GREEN) for image in images[:2])
    assert all(close_to(image, BLUE) for image in images[2:])
    assert [item["path"] for item in skipped] == [str(places_folder / "forest" / "bad.png")]


def test_progress_bar_when_asked(places_folder, capsys):
    load_folder(places_folder, 8, classes=("mountain",), progress=True)
    assert "img" in capsys.readouterr().err
    load_folder(places_folder, 8, classes=("mountain",))
    assert capsys.readouterr().err == ""


# ----------------------------------------------------------------------------- one-line errors

def folder_error(*args, **kwargs) -> str:
    with pytest.raises(FolderError) as err:
        load_folder(*args, **kwargs)
    message = str(err.value)
    assert "\n" not in message
    return message


def test_folder_error_is_a_value_error():
    assert issubclass(FolderError, ValueError)


def test_missing_folder_is_named(tmp_path):
    missing = tmp_path / "CelebA-HQ"
    message = folder_error(missing, 16)
    assert str(missing) in message and "not found" in message
    (tmp_path / "file.jpg").write_text("x")
    assert "not a folder" in folder_error(tmp_path / "file.jpg", 16)


def test_folder_without_valid_images_is_named(tmp_path):
    root = tmp_path / "faces"
    truncated_jpeg(root / "broken.jpg")
    (root / "notes.jpg").write_text("not an image")
    message = folder_error(root, 16)
    assert str(root) in message and "none of the 2 image files tried could be read" in message


def test_folder_without_image_files_is_named(tmp_path):
    root = tmp_path / "faces"
    root.mkdir()
    (root / "readme.txt").write_text("images go here")
    message = folder_error(root, 16)
    assert str(root) in message and "no image files" in message


def test_missing_class_subfolder_is_named(places_folder):
    message = folder_error(places_folder, 8, classes=("mountain", "forrest"))
    assert str(places_folder) in message and "'forrest'" in message
    assert "desert, forest, mountain" in message  # what is there instead


def test_class_folder_without_images_is_named(places_folder):
    (places_folder / "lake").mkdir()
    message = folder_error(places_folder, 8, classes=("mountain", "lake"))
    assert str(places_folder / "lake") in message


def test_a_class_is_broken_only_when_every_file_tried_fails(tmp_path):
    root = tmp_path / "places2"
    for k in range(12):
        (root / "forest").mkdir(parents=True, exist_ok=True)
        (root / "forest" / f"bad{k:02d}.png").write_text("not a png")
        solid(root / "mountain" / f"m{k:02d}.png", (12, 12), BLUE)
    files = list_images(root, classes=("mountain", "forest"))
    forest_first = [i for i, label in enumerate(files.labels) if label == 1] + [i for i, label in enumerate(files.labels) if label == 0]
    # one unreadable forest file, then enough mountains: skipped, not an error
    images, labels, skipped = read_images(files, 8, count=3, order=[forest_first[0], *forest_first[12:]])
    assert len(images) == 3 and len(skipped) == 1
    # ten unreadable forest files in a row: the folder is broken
    with pytest.raises(FolderError, match="forest: none of the 10 image files tried could be read"):
        read_images(files, 8, count=3, order=forest_first[:10] + forest_first[12:])
