import pytest
import torch

from diffmodel.model.tasks import Colorization, Inpainting, grayscale, make_task


def clean_images(batch=4, size=32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, size, size, generator=generator) * 2 - 1


# ----------------------------------------------------------------------------- inpainting masks

@pytest.mark.parametrize("size", [32, 64, 256])
def test_masks_are_one_square_hole_of_a_quarter_of_the_image(size):
    task = Inpainting()
    for seed in range(20):
        masks = task.masks(16, size, torch.Generator().manual_seed(seed))
        assert masks.shape == (16, 1, size, size)
        assert torch.all((masks == 0) | (masks == 1))
        masks = masks[:, 0].bool()
        rows, cols = masks.any(dim=2), masks.any(dim=1)  # which rows / columns the hole touches
        # one filled axis-aligned square: its bounding box is square and completely filled
        height, width = rows.sum(dim=1), cols.sum(dim=1)
        assert torch.equal(height, width)
        assert torch.equal(masks.sum(dim=(1, 2)), height * width)
        assert torch.all(rows.int().diff(dim=1).abs().sum(dim=1) <= 2)  # the rows form one run
        assert torch.all((masks.float().mean(dim=(1, 2)) - 0.25).abs() < 0.02)


@pytest.mark.parametrize("size", [32, 64, 256])
def test_masks_stay_inside_the_image_and_do_move(size):
    task = Inpainting()
    masks = task.masks(256, size, torch.Generator().manual_seed(1))[:, 0]
    side = round(size * 0.5)
    # a hole cut by the image border would be smaller than side x side
    assert torch.all(masks.sum(dim=(1, 2)) == side * side)
    tops = masks.any(dim=2).float().argmax(dim=1)
    lefts = masks.any(dim=1).float().argmax(dim=1)
    assert len(set(tops.tolist())) > 1 and len(set(lefts.tolist())) > 1  # jittered, not fixed
    # the hole is centred near the image centre (within the jitter)
    centre = (size - side) / 2
    assert torch.all((tops - centre).abs() <= size * task.jitter + 1)
    assert torch.all((lefts - centre).abs() <= size * task.jitter + 1)


def test_large_jitter_is_clamped_inside_the_image():
    task = Inpainting(area=0.25, jitter=0.5)
    masks = task.masks(200, 32, torch.Generator().manual_seed(3))
    assert torch.all(masks.sum(dim=(1, 2, 3)) == 16 * 16)


def test_same_generator_seed_gives_same_masks_and_noise():
    task = Inpainting()
    y0 = clean_images()
    a = task.degrade(y0, torch.Generator().manual_seed(7))
    b = task.degrade(y0, torch.Generator().manual_seed(7))
    c = task.degrade(y0, torch.Generator().manual_seed(8))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_condition_is_noise_in_the_hole_and_the_image_elsewhere():
    y0 = clean_images(batch=8, size=64)
    condition, mask = Inpainting().degrade(y0, torch.Generator().manual_seed(0))
    assert condition.shape == y0.shape and mask.shape == (8, 1, 64, 64)
    known = (mask == 0).expand_as(y0)
    assert torch.equal(condition[known], y0[known])
    hole = ~known
    noise = condition[hole]
    # standard normal noise, unrelated to the image it replaces
    assert abs(noise.mean().item()) < 0.05 and abs(noise.std().item() - 1) < 0.05
    assert noise.abs().max() > 2  # values outside [-1, 1]: not image content
    assert abs(torch.corrcoef(torch.stack([noise, y0[hole]]))[0, 1].item()) < 0.05


# ----------------------------------------------------------------------------- colorization

def test_colorization_gives_itu_601_luma_in_three_identical_channels():
    y0 = clean_images(batch=3, size=16)
    condition, mask = Colorization().degrade(y0)
    luma = 0.299 * y0[:, 0] + 0.587 * y0[:, 1] + 0.114 * y0[:, 2]
    for channel in range(3):
        assert torch.allclose(condition[:, channel], luma, atol=1e-6)
    assert torch.equal(mask, torch.ones(3, 1, 16, 16))


def test_grayscale_keeps_gray_images_unchanged():
    gray = clean_images(batch=2, size=8)[:, :1].expand(-1, 3, -1, -1)
    assert torch.allclose(grayscale(gray), gray, atol=1e-6)


def test_make_task_knows_both_tasks_and_names_unknown_ones():
    assert make_task("inpainting").name == "inpainting"
    assert make_task("colorization").name == "colorization"
    with pytest.raises(ValueError, match="unknown task 'uncropping'"):
        make_task("uncropping")


def test_the_hole_moves_over_exactly_the_jitter_range_and_large_jitter_reaches_the_borders():
    # size 32: side 16, centred top-left 8, jitter 0.125 -> shifts of -4..4 in each axis
    masks = Inpainting().masks(4000, 32, torch.Generator().manual_seed(0))[:, 0].bool()
    tops = masks.any(dim=2).float().argmax(dim=1)
    lefts = masks.any(dim=1).float().argmax(dim=1)
    assert set(tops.tolist()) == set(range(4, 13)) and set(lefts.tolist()) == set(range(4, 13))
    wide = Inpainting(jitter=0.5).masks(400, 32, torch.Generator().manual_seed(0))[:, 0].bool()
    wide_tops = wide.any(dim=2).float().argmax(dim=1)
    assert wide_tops.min().item() == 0 and wide_tops.max().item() == 16  # clamped at the borders, not before


def test_an_odd_margin_puts_the_unjittered_hole_one_row_above_centre_and_a_tiny_image_still_gets_one_pixel():
    # 9 px, area 0.25: side round(4.5) = 4, margin 5 -> rows and columns 2-5 (5 // 2), never half a pixel
    mask = Inpainting(area=0.25, jitter=0.0).masks(1, 9)[0, 0]
    expected = torch.zeros(9, 9)
    expected[2:6, 2:6] = 1
    assert torch.equal(mask, expected)
    assert Inpainting(area=0.25, jitter=0.0).masks(3, 2).sum(dim=(1, 2, 3)).tolist() == [1, 1, 1]  # side round(1.0) = 1
    assert Inpainting(area=0.01, jitter=0.0).masks(1, 4).sum().item() == 1  # round(0.4) = 0: at least one pixel


def test_an_unknown_task_or_guidance_is_refused_naming_every_choice():
    from diffmodel.model.diffusion import Guidance

    with pytest.raises(ValueError, match=r"^unknown task 'uncrop' \(known: inpainting, colorization\)$"):
        make_task("uncrop")
    with pytest.raises(ValueError, match=r"^unknown guidance 'clip' \(choose from none, cfg, superclass\)$"):
        Guidance("clip")
