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


# ----------------------------------------------------------------------------- exact values, worked by hand

@pytest.mark.parametrize("dtype", ["<u2", ">u2"])  # I;16 and I;16B
def test_sixteen_bit_gray_is_scaled_to_eight_bits_and_rounded(tmp_path, dtype):
    deep = Image.fromarray(np.array([[0, 257, 32767, 32768, 65407, 65535]], dtype=dtype))
    assert deep.mode in ("I;16", "I;16B")
    deep.save(tmp_path / "deep.tif")
    # v * 255 / 65535 = v / 257, rounded half up: 0, 1, 127.498 -> 127, 127.502 -> 128, 254.502 -> 255, 255
    assert photos.read_photo(tmp_path / "deep.tif")[0, :, 0].tolist() == [0, 1, 127, 128, 255, 255]
    # a dark 16-bit photo is still 16-bit: 100 / 257 = 0.39 -> 0, 200 / 257 = 0.78 -> 1, 255 / 257 -> 1
    Image.fromarray(np.array([[0, 100, 200, 255]], dtype=dtype)).save(tmp_path / "dark.tif")
    assert photos.read_photo(tmp_path / "dark.tif")[0, :, 0].tolist() == [0, 0, 1, 1]


def test_thirty_two_bit_gray_is_scaled_only_when_it_exceeds_eight_bits(tmp_path):
    Image.fromarray(np.array([[0, 100, 255]], np.int32)).save(tmp_path / "eight.tif")
    Image.fromarray(np.array([[0, 256, 65535]], np.int32)).save(tmp_path / "sixteen.tif")
    assert photos.read_photo(tmp_path / "eight.tif")[0, :, 0].tolist() == [0, 100, 255]  # already 0-255: kept
    assert photos.read_photo(tmp_path / "sixteen.tif")[0, :, 0].tolist() == [0, 1, 255]  # 256 / 257 + 0.5 -> 1
    Image.fromarray(np.array([[0, 128, 256]], np.int32)).save(tmp_path / "just_over.tif")
    assert photos.read_photo(tmp_path / "just_over.tif")[0, :, 0].tolist() == [0, 0, 1]  # 256 > 255: 16-bit
    Image.fromarray(np.array([[-70000, 0, 70000]], np.int32)).save(tmp_path / "outside.tif")
    assert photos.read_photo(tmp_path / "outside.tif")[0, :, 0].tolist() == [0, 0, 255]  # +-70000 / 257 = +-272: clipped


def test_transparency_of_every_kind_is_composited_on_white(tmp_path):
    palette = Image.fromarray(np.array([[0, 1]], np.uint8), mode="P")
    palette.putpalette([200, 0, 0, 0, 0, 200])  # index 0 red, 1 blue
    palette.save(tmp_path / "palette.png", transparency=0)  # red is the transparent entry
    assert photos.read_photo(tmp_path / "palette.png")[0].tolist() == [[255, 255, 255], [0, 0, 200]]
    gray_alpha = Image.fromarray(np.array([[[0, 0], [0, 255], [0, 102]]], np.uint8), mode="LA")
    gray_alpha.save(tmp_path / "la.png")
    # black at alpha a over white: 255 * (1 - a / 255) -> 255, 0, 153
    assert np.abs(photos.read_photo(tmp_path / "la.png")[0, :, 0].astype(int) - [255, 0, 153]).max() <= 1
    # blue at alpha 102 over white: 255 * (1 - 0.4) = 153 in red and green
    Image.fromarray(np.array([[[0, 0, 255, 102]]], np.uint8), mode="RGBA").save(tmp_path / "rgba.png")
    assert np.abs(photos.read_photo(tmp_path / "rgba.png")[0, 0].astype(int) - [153, 153, 255]).max() <= 1
    # a colour key (PNG tRNS) in an RGB or a gray image: that colour, and only it, is transparent
    Image.fromarray(np.array([[[200, 0, 0], [200, 0, 1]]], np.uint8)).save(tmp_path / "key.png", transparency=(200, 0, 0))
    assert photos.read_photo(tmp_path / "key.png")[0].tolist() == [[255, 255, 255], [200, 0, 1]]
    Image.fromarray(np.array([[7, 8]], np.uint8)).save(tmp_path / "gray_key.png", transparency=7)
    assert photos.read_photo(tmp_path / "gray_key.png")[0].tolist() == [[255, 255, 255], [8, 8, 8]]


def ycbcr_601(rgb) -> tuple[float, float, float]:
    """ITU-R BT.601 (full range), written out from the standard's constants."""
    r, g, b = (float(v) for v in rgb)
    return (0.299 * r + 0.587 * g + 0.114 * b, -0.168736 * r - 0.331264 * g + 0.5 * b, 0.5 * r - 0.418688 * g - 0.081312 * b)


def test_the_colour_goes_under_the_photos_luminance_scaled_down_only_as_far_as_the_gamut_needs():
    rng = np.random.default_rng(0)
    cases = [(128, (200, 60, 40)), (250, (255, 0, 0)), (10, (0, 0, 255)), (0, (0, 255, 0)), (128, (128, 128, 128)),
             *((int(rng.integers(0, 256)), tuple(int(v) for v in rng.integers(0, 256, 3))) for _ in range(40)),
             # at the gamut's ends a faint colour already leaves [0, 255]: chroma of a fraction of a level
             *((luma, tuple(int(v) for v in 128 + rng.integers(-2, 3, 3))) for luma in (0, 1, 254, 255) for _ in range(10))]
    cases = [((luma,) * 3, colour) for luma, colour in cases]
    # photos whose luminance is a fraction of a level from the ends: 254.66 and 0.34, under chroma of under a level
    cases += [(pixel, tuple(int(v) for v in 128 + rng.integers(-1, 2, 3))) for pixel in ((255, 255, 252), (0, 0, 3))
              for _ in range(10)]
    for pixel, colour in cases:
        luma = ycbcr_601(pixel)[0]
        _, cb, cr = ycbcr_601(colour)
        offset = np.array([1.402 * cr, -0.344136 * cb - 0.714136 * cr, 1.772 * cb])  # what Cb, Cr add to R, G, B

        def fits(s):
            return bool(np.all(luma + s * offset >= -1e-9) and np.all(luma + s * offset <= 255 + 1e-9))

        low, high = 0.0, 1.0  # the largest s in [0, 1] that keeps every channel in [0, 255], by bisection
        if fits(1.0):
            low = 1.0
        for _ in range(60):
            middle = (low + high) / 2
            low, high = (middle, high) if fits(middle) and low < 1 else (low, middle)
        exact = np.clip(luma + low * offset, 0, 255)
        out = photos.with_chroma(np.full((6, 4, 3), pixel, np.uint8), np.full((2, 2, 3), colour, np.uint8))
        assert out.shape == (6, 4, 3)
        assert np.abs(out.astype(float) - exact).max() <= 0.5 + 1e-6, (luma, colour, out[0, 0], exact)  # the nearest level


def test_the_context_window_follows_the_documented_rule():
    def window(shape, rows, cols, model_size=16):
        hole = np.zeros(shape, bool)
        hole[rows, cols] = True
        return photos.context_window(hole, model_size)

    # 30 x 10 hole: a square 4 x 30 = 120 wide, centred on the hole's centre (115, 205)
    assert window((300, 400), slice(100, 130), slice(200, 210)) == (55, 145, 120, 120)
    # at the bottom-right corner: 4 x 20 = 80, moved inside the photo
    assert window((300, 400), slice(280, 300), slice(385, 400)) == (220, 320, 80, 80)
    # a 2 x 2 hole at the top-left: the model's own size, 32, from the corner
    assert window((300, 400), slice(0, 2), slice(0, 2), model_size=32) == (0, 0, 32, 32)
    # 4 x 30 = 120 is more than the 101 rows: the largest square, 101 (odd), centred on column 110
    assert window((101, 300), slice(30, 60), slice(100, 120)) == (0, 60, 101, 101)
    # a hole as tall as the photo still fits a square of the photo's height
    assert window((100, 200), slice(0, 100), slice(50, 60)) == (0, 5, 100, 100)
    # a tall photo: the narrower side, 101 columns, bounds it; rows centred on 115: 115 - 101 // 2 = 65
    assert window((400, 101), slice(100, 130), slice(30, 60)) == (65, 0, 101, 101)


def test_resize_uses_the_filter_it_is_given():
    small = np.array([[0, 255], [90, 30]], np.uint8)
    blocks = np.kron(small, np.ones((2, 3), np.uint8))  # nearest, 2 x 3 up: each pixel a block
    assert np.array_equal(photos.resize(np.repeat(small[..., None], 3, -1), 6, 4, Image.Resampling.NEAREST)[..., 0], blocks)
    assert np.array_equal(photos.resize(small.astype(np.float64) / 7, 6, 4, Image.Resampling.NEAREST),
                          (blocks / 7).astype(np.float32))


def test_box_and_mask_holes_are_exactly_the_pixels_given(tmp_path):
    expected = np.zeros((10, 12), bool)
    expected[3:5, 5:9] = True
    assert np.array_equal(photos.box_hole((10, 12), (5, 3, 4, 2)), expected)  # X, Y, W, H
    corner = np.zeros((10, 12), bool)
    corner[0:2, 0:2] = True
    assert np.array_equal(photos.box_hole((10, 12), (-2, 0, 4, 2)), corner)  # clipped at the edge
    Image.fromarray(np.array([[127, 128, 129, 0]], np.uint8)).convert("RGB").save(tmp_path / "edge.png")
    assert photos.mask_hole(tmp_path / "edge.png", (1, 4)).tolist() == [[False, True, True, False]]  # white half: fill
    Image.fromarray(np.array([[255, 0], [0, 255]], np.uint8)).save(tmp_path / "small.png")
    block = np.kron(np.array([[1, 0], [0, 1]]), np.ones((2, 3))).astype(bool)  # nearest: whole blocks, no blur
    assert np.array_equal(photos.mask_hole(tmp_path / "small.png", (4, 6)), block)
    Image.fromarray(np.array([[130, 0, 130]], np.uint8)).save(tmp_path / "faint.png")  # a smooth filter would
    assert photos.mask_hole(tmp_path / "faint.png", (1, 9)).tolist() == [[True] * 3 + [False] * 3 + [True] * 3]  # erode it


class Spy:
    """Stands in for diffusion.sample: records what it is given, returns the condition."""

    def __init__(self):
        self.calls = []

    def __call__(self, network, schedule, condition, mask, known, **settings):
        self.calls.append({"condition": condition, "mask": mask, "known": known, **settings})
        return torch.zeros_like(condition), []


def test_the_sampling_settings_and_labels_reach_the_sampler(models, monkeypatch):
    from diffmodel.classes import NO_LABEL, ClassScheme
    from diffmodel.model.diffusion import Guidance
    from diffmodel.model.inference import LoadedModel

    spy = Spy()
    monkeypatch.setattr(photos, "sample", spy)
    classes = ClassScheme.build("landscapes", ("alpine", "red_rock", "forest"), {"mountain": ("alpine", "red_rock"),
                                                                                 "trees": ("forest",)})
    plain = load_model(models / "colorizer")
    model = LoadedModel(UNet(MODEL, SIZE, classes=classes), plain.schedule, plain.task, SIZE, None, classes)
    guidance = Guidance("superclass", 1.5)
    photos.colorize(model, [photo(20, 24), photo(30, 20)], seed=1, sampler="ddpm", steps=7, fine=2, guidance=guidance)
    photos.colorize(model, [photo(20, 24)], seed=1)
    given, default = spy.calls
    assert (given["sampler"], given["steps"], given["guidance"]) == ("ddpm", 7, guidance)
    assert given["labels"][0].tolist() == [2, 2] and given["labels"][1].tolist() == [1, 1]  # forest: trees
    assert (default["sampler"], default["steps"], default["guidance"]) == ("ddim", 20, Guidance())  # colorization's default
    assert default["labels"][0].tolist() == [NO_LABEL]
    assert torch.equal(given["mask"], torch.ones(2, 1, SIZE, SIZE)) and not given["known"].any()



def test_the_inpainting_model_sees_the_known_pixels_and_noise_in_every_pixel_the_hole_touches(models, monkeypatch):
    """A 64 px photo, one colour outside an unaligned hole: the window is the whole photo, brought to the
    model's 16 px by 4 x 4 blocks. Known: that colour exactly (the hole is filled with the mean known colour
    before resizing, so nothing of it smears out), 0 where generated; the condition adds noise there that
    does not depend on the photo; the sampler runs inpainting's defaults."""
    spy = Spy()
    monkeypatch.setattr(photos, "sample", spy)
    model = load_model(models / "inpainter")
    hole = photos.box_hole((64, 64), (5, 17, 17, 16))  # columns 5-21, rows 17-32
    assert photos.context_window(hole, SIZE) == (0, 0, 64, 64)
    colours = [(200, 40, 90), (20, 220, 60)]
    for colour in colours:
        picture = np.empty((64, 64, 3), np.uint8)
        picture[:] = colour
        picture[hole] = (255, 0, 255)  # what the user wants removed
        photos.inpaint(model, picture, hole, seed=5)
    expected_mask = torch.tensor([[hole[4 * i : 4 * i + 4, 4 * j : 4 * j + 4].any() for j in range(16)] for i in range(16)])
    assert expected_mask.sum() == 25  # blocks 1-5 across, 4-8 down
    for call, colour in zip(spy.calls, colours):
        assert (call["sampler"], call["steps"]) == ("ddim", 50)  # inpainting's default steps
        mask = call["mask"][0, 0].bool()
        assert torch.equal(mask, expected_mask)
        level = torch.tensor(colour, dtype=torch.float32)[:, None] / 127.5 - 1
        assert torch.allclose(call["known"][0][:, ~mask], level.expand(3, int((~mask).sum())), atol=1e-6)
        assert torch.equal(call["known"][0][:, mask], torch.zeros(3, 25))
        assert torch.equal(call["condition"][0][:, ~mask], call["known"][0][:, ~mask])
    noise = [call["condition"][0][:, call["mask"][0, 0].bool()] for call in spy.calls]
    assert torch.equal(noise[0], noise[1]) and torch.isfinite(noise[0]).all() and noise[0].std() > 0.5


def test_a_hole_over_the_whole_photo_leaves_no_known_pixel_and_no_warning(models, monkeypatch):
    import warnings

    spy = Spy()
    monkeypatch.setattr(photos, "sample", spy)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a mean of no known pixels would warn (and be NaN)
        photos.inpaint(load_model(models / "inpainter"), photo(40, 40), np.ones((40, 40), bool), seed=0, steps=2)
    assert torch.equal(spy.calls[0]["mask"], torch.ones(1, 1, SIZE, SIZE)) and not spy.calls[0]["known"].any()
