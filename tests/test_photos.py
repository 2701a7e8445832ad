"""`diffmodel colorize` and `diffmodel inpaint`: whole photos at their own size.

The guarantees hold for any network, so a random (untrained) U-Net stands in for a trained one:
sizes, the input's luminance kept, pixels outside the hole untouched, seeds, bad files, wrong task.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from records import record
from typer.testing import CliRunner

from diffmodel.checkpoints import store as checkpoint
from diffmodel.cli import photos
from diffmodel.cli.app import app
from diffmodel.config import DiffusionConfig, ModelConfig
from diffmodel.data import synthetic
from diffmodel.model.inference import load_model
from diffmodel.model.unet import UNet

MODEL = ModelConfig(channels=8, channel_mults=(1, 2), attention_resolutions=(), head_channels=8, groups=4)
SIZE = 16
runner = CliRunner()


def write_model(directory, task: str) -> None:
    """A finished checkpoint directory holding a random U-Net whose output depends on its input."""
    torch.manual_seed(0)
    network = UNet(MODEL, SIZE)
    with torch.no_grad():
        for p in network.parameters():
            p.add_(0.05 * torch.randn_like(p))
    meta = record(directory.name, task, MODEL, SIZE, DiffusionConfig(steps=50), complete=True)
    checkpoint.save(directory, {"step": 0, "epoch": 0, "ema": network.state_dict()}, meta)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    write_model(root / "colorizer", "colorization")
    write_model(root / "inpainter", "inpainting")
    return root


def photo(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A landscape of the built-in generator, brought to a photo's size and aspect."""
    scene = synthetic.render_landscapes(1, 128, seed)[0][0]
    return np.asarray(Image.fromarray(scene).resize((width, height), Image.Resampling.BICUBIC))


def y_psnr(a: np.ndarray, b: np.ndarray) -> float:
    error = np.mean((photos.luminance(a) - photos.luminance(b)) ** 2)
    return float("inf") if error == 0 else 10 * np.log10(255**2 / error)


def test_colorize_keeps_the_photos_size_and_luminance(models, tmp_path):
    Image.fromarray(photo(640, 480)).save(tmp_path / "photo.jpg", quality=90)
    result = runner.invoke(app, ["colorize", str(models / "colorizer"), str(tmp_path / "photo.jpg"),
                                 "--out", str(tmp_path / "out"), "--steps", "3"])
    assert result.exit_code == 0, result.output
    assert "1 written" in result.output and "0 failed" in result.output
    with Image.open(tmp_path / "out/photo.png") as out, Image.open(tmp_path / "photo.jpg") as source:
        assert out.size == (640, 480)
        coloured, original = np.asarray(out.convert("RGB")), np.asarray(source.convert("RGB"))
    assert y_psnr(coloured, original) >= 40
    assert np.abs(coloured.astype(int) - photos.luminance(original)[..., None]).max() > 2  # it is not gray


def test_same_seed_same_colours_other_samples_differ(models):
    model = load_model(models / "colorizer")
    picture = photo(48, 40)
    first, again = (photos.colorize(model, [picture], seed=7, steps=3)[0] for _ in range(2))
    other = photos.colorize(model, [picture], seed=8, steps=3)[0]
    assert np.array_equal(first, again) and not np.array_equal(first, other)


def test_inpaint_leaves_every_pixel_outside_the_hole_unchanged(models, tmp_path):
    picture = photo(120, 90)
    Image.fromarray(picture).save(tmp_path / "face.png")
    result = runner.invoke(app, ["inpaint", str(models / "inpainter"), str(tmp_path / "face.png"),
                                 "--box", "30,20,40,30", "--out", str(tmp_path / "out"), "--steps", "3"])
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "out/face.png") as out:
        filled = np.asarray(out)
    hole = photos.box_hole((90, 120), (30, 20, 40, 30))
    assert filled.shape == picture.shape
    assert np.array_equal(filled[~hole], picture[~hole])
    assert not np.array_equal(filled[hole], picture[hole])


def test_a_mask_of_another_size_is_resized_and_the_window_fits_the_hole(models, tmp_path):
    model = load_model(models / "inpainter")
    picture = photo(200, 100)
    mask = np.zeros((50, 100), np.uint8)
    mask[10:20, 40:60] = 255  # at half the photo's size: rows 20-40, columns 80-120
    Image.fromarray(mask).save(tmp_path / "mask.png")
    hole = photos.mask_hole(tmp_path / "mask.png", picture.shape[:2])
    assert hole.sum() == 20 * 40 and hole[20:40, 80:120].all()
    assert photos.context_window(hole, 16) == (0, 50, 100, 100)  # 4 x 40 is more than 100 rows: the largest square
    assert photos.context_window(np.ones((100, 200), bool), 16) == (0, 0, 100, 200)  # no square holds it: the photo
    bigger = np.zeros((300, 400), bool)
    bigger[20:40, 80:120] = True
    assert photos.context_window(bigger, 16) == (0, 20, 160, 160)  # 4 x the hole's width, moved inside the photo
    filled = photos.inpaint(model, picture, hole, seed=0, steps=3)
    assert np.array_equal(filled[~hole], picture[~hole])


def test_folder_input_bad_files_are_skipped_and_counted(models, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(photo(40, 30)).save(folder / "good.png")
    (folder / "broken.jpg").write_bytes(b"not an image")
    result = runner.invoke(app, ["colorize", str(models / "colorizer"), str(folder), "--out", str(tmp_path / "out"),
                                 "--steps", "2"])
    assert result.exit_code == 1
    assert "broken.jpg: skipped, not a readable image" in result.output
    assert "1 written" in result.output and "1 failed" in result.output
    assert (tmp_path / "out/good.png").exists() and not (tmp_path / "out/broken.png").exists()


def test_samples_write_one_file_each(models, tmp_path):
    Image.fromarray(photo(40, 30)).save(tmp_path / "p.png")
    result = runner.invoke(app, ["colorize", str(models / "colorizer"), str(tmp_path / "p.png"),
                                 "--out", str(tmp_path / "out"), "--samples", "2", "--steps", "2"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["p_1.png", "p_2.png"]


def test_a_model_of_the_wrong_task_is_one_line(models, tmp_path):
    Image.fromarray(photo(40, 30)).save(tmp_path / "p.png")
    result = runner.invoke(app, ["colorize", str(models / "inpainter"), str(tmp_path / "p.png"), "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.strip() == (f"error: {models / 'inpainter'} was trained for inpainting; "
                                     "`diffmodel colorize` needs a colorization model")
    neither = runner.invoke(app, ["inpaint", str(models / "inpainter"), str(tmp_path / "p.png"), "--out", str(tmp_path)])
    assert neither.exit_code == 2 and "--mask MASK.png or as --box" in neither.output


def test_every_kind_of_image_file_reads_as_upright_rgb(tmp_path):
    picture = photo(40, 30)
    Image.fromarray(picture).convert("L").save(tmp_path / "gray.png")
    Image.fromarray(picture).convert("CMYK").save(tmp_path / "cmyk.jpg")
    Image.fromarray(picture).convert("P").save(tmp_path / "palette.png")
    rgba = Image.fromarray(picture).convert("RGBA")
    rgba.putalpha(0)
    rgba.save(tmp_path / "clear.png")
    sixteen = (photos.luminance(picture) * 257).astype(np.uint16)
    Image.fromarray(sixteen).save(tmp_path / "deep.png")
    rotated = Image.fromarray(picture)
    exif = rotated.getexif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees to view
    rotated.save(tmp_path / "phone.jpg", exif=exif)
    for name in ("gray.png", "cmyk.jpg", "palette.png", "clear.png", "deep.png"):
        pixels = photos.read_photo(tmp_path / name)
        assert pixels.dtype == np.uint8 and pixels.shape == (30, 40, 3), name
    assert (photos.read_photo(tmp_path / "clear.png") == 255).all()  # transparent: white
    deep = photos.read_photo(tmp_path / "deep.png")[..., 0].astype(float)
    assert np.abs(deep - photos.luminance(picture).astype(np.uint16)).max() <= 1  # 16 bits scaled, not clipped
    assert photos.read_photo(tmp_path / "phone.jpg").shape == (40, 30, 3)


def test_two_inputs_with_one_output_name_are_refused_before_any_work(models, tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        Image.fromarray(photo(40, 30)).save(tmp_path / folder / "IMG_1.jpg")
    result = runner.invoke(app, ["colorize", str(models / "colorizer"), str(tmp_path / "a"), str(tmp_path / "b"),
                                 "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "would both be written to" in result.output
    assert not (tmp_path / "out").exists()


def test_nothing_of_what_the_hole_held_survives_not_even_at_its_rim(models):
    """Two photos the same outside the hole and each with another saturated object exactly under it:
    inpainted with the same seed, they must come out identical - the fill knows nothing of the object."""
    model = load_model(models / "inpainter")
    hole = photos.box_hole((256, 256), (96, 96, 64, 64))
    with_magenta, with_green = photo(256, 256).copy(), photo(256, 256).copy()
    with_magenta[hole], with_green[hole] = (255, 0, 255), (0, 255, 0)
    filled = [photos.inpaint(model, picture, hole, seed=3, steps=3) for picture in (with_magenta, with_green)]
    assert np.array_equal(filled[0], filled[1])
    near_magenta = np.abs(filled[0][hole].astype(int) - (255, 0, 255)).max(axis=1) < 60
    assert not near_magenta.any()
    assert np.array_equal(filled[0][~hole], with_magenta[~hole])


def test_an_output_that_would_replace_its_input_is_refused_and_the_input_kept(models, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Image.fromarray(photo(120, 90)).save("face.png")
    before = (tmp_path / "face.png").read_bytes()
    for overwrite in ([], ["--overwrite"]):  # not even when asked to overwrite
        result = runner.invoke(app, ["inpaint", str(models / "inpainter"), "face.png", "--box", "30,20,40,30", "--out", ".",
                                     "--steps", "2", *overwrite])
        assert result.exit_code == 2
        assert result.output.strip() == "error: face.png is the input face.png: writing it would destroy the input; choose another --out"
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(photo(40, 30)).save(folder / "a.png")
    result = runner.invoke(app, ["colorize", str(models / "colorizer"), str(folder), "--out", str(folder), "--steps", "2"])
    assert result.exit_code == 2 and f"{folder / 'a.png'} is the input {folder / 'a.png'}" in result.output
    assert (tmp_path / "face.png").read_bytes() == before and sorted(p.name for p in folder.iterdir()) == ["a.png"]


def test_an_existing_output_is_kept_unless_overwrite_is_asked(models, tmp_path):
    Image.fromarray(photo(40, 30)).save(tmp_path / "p.jpg")
    command = ["colorize", str(models / "colorizer"), str(tmp_path / "p.jpg"), "--out", str(tmp_path / "out"), "--steps", "2"]
    assert runner.invoke(app, command).exit_code == 0
    (tmp_path / "out/p.png").write_bytes(b"the user's own file")
    kept = runner.invoke(app, command)
    assert kept.exit_code == 2
    assert kept.output.strip() == (f"error: {tmp_path / 'out/p.png'} exists (the output for {tmp_path / 'p.jpg'}); "
                                   "it is kept: choose another --out, or --overwrite to replace it")
    assert (tmp_path / "out/p.png").read_bytes() == b"the user's own file"
    assert runner.invoke(app, [*command, "--overwrite"]).exit_code == 0
    with Image.open(tmp_path / "out/p.png") as replaced:
        assert replaced.size == (40, 30)
    assert not list((tmp_path / "out").glob(".*.tmp"))  # written through a temp file, renamed whole
