import math
import os
import urllib.error

import numpy as np
import pytest
import pytorch_fid.inception as fid_inception
import torch

from diffmodel.evaluation import metrics


def images(n=4, size=32, seed=0, low=-1.0, high=1.0):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=generator) * (high - low) + low


# ----------------------------------------------------------------------------- PSNR / MAE

def test_psnr_of_constant_offset_is_20db():
    target = images(low=-0.8, high=0.8)
    pred = target + 0.2  # 0.1 on the [0, 1] scale -> MSE 0.01
    assert torch.allclose(metrics.psnr(pred, target), torch.full((4,), 20.0, dtype=torch.float64))


def test_psnr_and_mae_are_per_image():
    target = images(n=2)
    pred = target + torch.tensor([0.1, 0.2]).view(2, 1, 1, 1)  # unit-scale errors 0.05 and 0.1
    assert metrics.psnr(pred, target).tolist() == pytest.approx([20 * math.log10(20), 20.0])
    assert metrics.mae(pred, target).tolist() == pytest.approx([0.05, 0.1])


def test_psnr_of_identical_images_is_capped():
    x = images()
    assert torch.all(metrics.psnr(x, x) == metrics.PSNR_CAP_DB)


def test_masked_psnr_and_mae_only_look_inside_the_mask():
    target = images(low=-0.8, high=0.8)
    mask = torch.zeros(4, 1, 32, 32)
    mask[:, :, 8:24, 8:24] = 1
    pred = target + 0.2 * mask
    other = pred + (1 - mask) * images(seed=1) * 0.5  # change only pixels outside the mask
    for candidate in (pred, other):
        assert torch.allclose(metrics.psnr(candidate, target, mask), torch.full((4,), 20.0, dtype=torch.float64))
        assert torch.allclose(metrics.mae(candidate, target, mask), torch.full((4,), 0.1, dtype=torch.float64))
    assert not torch.allclose(metrics.psnr(other, target), metrics.psnr(pred, target))


def test_mae_is_on_unit_scale():
    x = images(low=-0.5, high=0.5)
    assert torch.allclose(metrics.mae(x + 0.5, x), torch.full((4,), 0.25, dtype=torch.float64))


# ----------------------------------------------------------------------------- SSIM

def test_ssim_is_one_for_identical_images_and_drops_with_noise():
    x = images()
    assert torch.allclose(metrics.ssim(x, x), torch.ones(4, dtype=torch.float64))
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    slightly = metrics.ssim((x + 0.05 * noise).clamp(-1, 1), x)
    heavily = metrics.ssim((x + 0.5 * noise).clamp(-1, 1), x)
    assert torch.all(slightly < 1) and torch.all(heavily < slightly)


def test_ssim_is_symmetric_and_per_image():
    x, y = images(seed=0), images(seed=1)
    assert metrics.ssim(x, y).shape == (4,)
    assert torch.allclose(metrics.ssim(x, y), metrics.ssim(y, x))


@pytest.mark.parametrize("noise", [0.05, 0.3])
def test_ssim_matches_scikit_image(noise):
    """scikit-image's structural_similarity with Wang et al.'s settings (Gaussian window, sigma 1.5,
    population covariance) crops the border half-window before averaging: our valid convolution."""
    from skimage.metrics import structural_similarity

    x = images(n=3, size=24, seed=4)
    y = (x + noise * torch.randn(x.shape, generator=torch.Generator().manual_seed(5))).clamp(-1, 1)
    ours = metrics.ssim(y, x)
    for k in range(3):
        unit = lambda t: ((t[k].double() + 1) / 2).permute(1, 2, 0).numpy()  # noqa: E731  HWC on [0, 1]
        reference = structural_similarity(unit(y), unit(x), data_range=1.0, channel_axis=2, gaussian_weights=True,
                                          sigma=1.5, use_sample_covariance=False)
        assert ours[k].item() == pytest.approx(reference, abs=1e-6)


def test_ssim_matches_scikit_image_on_dark_images_where_its_constants_matter():
    """Near black the means are small, so C1 = (K1 L)^2 and C2 = (K2 L)^2 carry weight (on mid-gray inputs
    they barely do); the smallest image the window fits, 11x11, is accepted."""
    from skimage.metrics import structural_similarity

    for size in (11, 16):
        x = images(n=2, size=size, seed=6, low=-1.0, high=-0.9)  # [0, 0.05] on the unit scale
        y = images(n=2, size=size, seed=7, low=-1.0, high=-0.9)
        ours = metrics.ssim(y, x)
        for k in range(2):
            unit = lambda t: ((t[k].double() + 1) / 2).permute(1, 2, 0).numpy()  # noqa: E731
            reference = structural_similarity(unit(y), unit(x), data_range=1.0, channel_axis=2, gaussian_weights=True,
                                              sigma=1.5, use_sample_covariance=False)
            assert ours[k].item() == pytest.approx(reference, abs=1e-6)


def test_ssim_rejects_images_smaller_than_its_window():
    with pytest.raises(ValueError, match="at least 11x11"):
        metrics.ssim(images(size=8), images(size=8))


# ----------------------------------------------------------------------------- colourfulness

def test_colourfulness_of_gray_is_zero_and_of_saturated_is_high():
    gray = images(n=2)[:, :1].expand(2, 3, 32, 32)
    assert torch.allclose(metrics.colourfulness(gray), torch.zeros(2, dtype=torch.float64))
    red_blue = torch.full((1, 3, 32, 32), -1.0)
    red_blue[:, 0, :, :16] = 1
    red_blue[:, 2, :, 16:] = 1
    assert metrics.colourfulness(red_blue).item() > 50


def test_colourfulness_of_pure_red_matches_formula():
    red = torch.full((1, 3, 8, 8), -1.0)
    red[:, 0] = 1  # rg = 255, yb = 127.5, no spread
    assert metrics.colourfulness(red).item() == pytest.approx(0.3 * math.hypot(255, 127.5))


def test_colourfulness_matches_hasler_and_suesstrunk_per_image():
    """The paper's definition, in numpy: rg = R - G, yb = (R + G) / 2 - B on 0-255, population standard
    deviations and means over the pixels of each image, C = sqrt(s_rg^2 + s_yb^2) + 0.3 sqrt(m_rg^2 + m_yb^2)."""
    batch = images(n=3, size=8, seed=9)
    batch[1, 0] = batch[1, 0] * 0.2 + 0.7  # a reddish image beside two random ones
    rgb = ((batch.double().numpy() + 1) / 2) * 255
    for k, ours in enumerate(metrics.colourfulness(batch).tolist()):
        r, g, b = rgb[k]
        rg, yb = r - g, 0.5 * (r + g) - b
        expected = np.sqrt(rg.var() + yb.var()) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
        assert ours == pytest.approx(expected, rel=1e-9)


# ----------------------------------------------------------------------------- summary dict

def test_image_metrics_adds_masked_entries_only_for_real_holes():
    pred, target = images(seed=0), images(seed=1)
    plain = metrics.image_metrics(pred, target)
    assert set(plain) == {"psnr", "ssim", "mae", "colourfulness_output", "colourfulness_target"}
    assert all(type(value) is float for value in plain.values())
    assert metrics.image_metrics(pred, target, torch.ones(4, 1, 32, 32)) == plain
    hole = torch.zeros(4, 1, 32, 32)
    hole[..., :16, :] = 1
    masked = metrics.image_metrics(pred, target, hole)
    assert {"psnr_masked", "mae_masked"} <= set(masked)
    # the hole's own scores, rounded to 4 decimals: here the two halves differ, so the hole's are not the image's
    pred[..., :16, :] = target[..., :16, :] + 0.13  # unit-scale error 0.065: PSNR 20 log10(1 / 0.065) = 23.74173
    masked = metrics.image_metrics(pred, target, hole)
    assert masked["psnr_masked"] == 23.7417 and masked["mae_masked"] == 0.065
    assert masked["psnr"] != masked["psnr_masked"]


# ----------------------------------------------------------------------------- Frechet distance

def test_frechet_distance_matches_closed_form_for_scaled_identities():
    d = 5
    mu1, mu2 = np.zeros(d), np.ones(d)
    sigma1, sigma2 = np.eye(d), 4 * np.eye(d)
    # ||mu1 - mu2||^2 + tr(I + 4I - 2 sqrt(4I)) = d + d * (1 + 4 - 4)
    assert metrics.frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(2 * d)


# ----------------------------------------------------------------------------- FID path

def random_inception(feature_dim):
    """pytorch-fid's InceptionV3, randomly initialised with variance-preserving weights (the
    default init shrinks activations to ~1e-8 over its depth, which would make every FID ~0)."""
    torch.manual_seed(0)
    model = metrics.build_fid_inception(None, feature_dim=feature_dim)
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    return model


@pytest.fixture(scope="module")
def small_inception():
    # Stopping after block 1 (192-d) keeps this fast: sqrtm of a 2048x2048 matrix alone takes
    # ~10 s on two cores. The 2048-d network is checked separately below.
    return random_inception(feature_dim=192)


class FirstPixels(torch.nn.Module):
    """A stand-in for Inception whose 'pool3 features' are the first 4 pixel values of its [0, 1] input."""

    def forward(self, x):
        return [x.flatten(1)[:, :4, None, None]]


def test_fid_is_the_frechet_distance_of_the_features_means_and_covariances():
    from scipy import linalg

    real, fake = images(n=40, size=4, seed=11), images(n=30, size=4, seed=12, low=-0.5, high=1.0)

    def stats(batch):
        features = ((batch.double() + 1) / 2).clamp(0, 1).flatten(1)[:, :4].numpy()
        return features.mean(axis=0), np.cov(features, rowvar=False)  # one row per image

    (mu1, s1), (mu2, s2) = stats(real), stats(fake)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real)
    assert metrics.fid(real, fake, FirstPixels(), batch_size=7) == pytest.approx(expected, rel=1e-5)
    value, reason = metrics.fid_or_reason(real, fake, FirstPixels(), batch_size=7)
    assert value == pytest.approx(expected, rel=1e-5) and reason is None


def test_fid_needs_two_images_in_each_set():
    two, one = images(n=2, size=4), images(n=1, size=4)
    assert np.isfinite(metrics.fid(two, two, FirstPixels()))
    for real, fake in ((one, two), (two, one)):
        with pytest.raises(ValueError, match="^FID needs at least 2 images per set to estimate a covariance$"):
            metrics.fid(real, fake, FirstPixels())


class RunsCodeWhenUnpickled:
    def __reduce__(self):
        return (exec, ("import os; os.environ['DIFFMODEL_PICKLE_RAN'] = '1'",))


def test_a_weights_file_that_would_run_code_is_refused_unrun(tmp_path, monkeypatch):
    monkeypatch.delenv("DIFFMODEL_PICKLE_RAN", raising=False)
    crafted = tmp_path / "pt_inception.pth"
    torch.save({"weight": RunsCodeWhenUnpickled()}, crafted)
    with pytest.raises(metrics.FIDUnavailable, match="unreadable"):
        metrics.load_inception(str(crafted))
    assert "DIFFMODEL_PICKLE_RAN" not in os.environ


def test_fid_end_to_end_with_random_inception(small_inception, monkeypatch, tmp_path):
    received = []

    def fake_builder(state_dict, feature_dim=metrics.FID_FEATURE_DIM):
        received.append(state_dict)
        return small_inception

    monkeypatch.setattr(metrics, "build_fid_inception", fake_builder)
    weights = tmp_path / "inception.pt"
    torch.save({"marker": torch.zeros(1)}, weights)

    x = images(n=8, seed=0)
    noisy = (x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))).clamp(-1, 1)
    different = images(n=8, seed=2, low=-1.0, high=-0.2).flip(1)

    same, reason = metrics.evaluate_fid(x, x, str(weights), batch_size=4)
    assert reason is None and abs(same) < 1e-3
    assert "marker" in received[0]
    close, _ = metrics.evaluate_fid(x, noisy, str(weights), batch_size=4)
    far, _ = metrics.evaluate_fid(x, different, str(weights), batch_size=4)
    assert far > close > same


def test_inception_activations_are_2048_pool3_features():
    model = random_inception(feature_dim=2048)
    features = metrics.inception_activations(images(n=3), model, batch_size=2)
    assert features.shape == (3, 2048) and np.isfinite(features).all()


def test_loading_weights_reproduces_pytorch_fid_network(monkeypatch):
    """Given the same weights, our download-free build equals pytorch-fid's own InceptionV3,
    which loads them strictly (any missing key or shape mismatch would raise)."""
    weights = metrics._fid_inception_architecture().state_dict()
    monkeypatch.setattr(fid_inception, "load_state_dict_from_url", lambda *args, **kwargs: weights)
    reference = fid_inception.InceptionV3([3]).eval()
    ours = metrics.build_fid_inception(weights)
    assert not ours.training
    x = images(n=1)
    assert torch.equal(
        torch.from_numpy(metrics.inception_activations(x, ours)),
        torch.from_numpy(metrics.inception_activations(x, reference)),
    )


# ----------------------------------------------------------------------------- missing weights

def test_load_inception_names_a_missing_weights_path(tmp_path):
    missing = tmp_path / "nope" / "pt_inception.pth"
    with pytest.raises(metrics.FIDUnavailable, match="inception weights not found: .*nope"):
        metrics.load_inception(str(missing))


def test_load_inception_reports_an_unreadable_weights_file(tmp_path):
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(metrics.FIDUnavailable, match="unreadable") as refused:
        metrics.load_inception(str(broken))
    try:  # the reason names torch's own error, in one line
        torch.load(broken, weights_only=True)
    except Exception as err:
        first_words = " ".join(str(err).split())[:40]
        assert f"({type(err).__name__}: {first_words}" in str(refused.value)
        assert "\n" not in str(refused.value)


def test_a_long_reason_is_one_line_of_at_most_120_characters():
    assert metrics._short(ValueError("a  b\n\tc")) == "a b c"
    exactly = "x" * 120
    assert metrics._short(ValueError(exactly)) == exactly
    longer = metrics._short(ValueError("y" * 121))
    assert len(longer) == 120 and longer == "y" * 117 + "..."


def test_the_weights_are_looked_for_where_torch_hub_downloads_them(monkeypatch, tmp_path):
    """torch.hub.load_state_dict_from_url (which pytorch-fid downloads with) saves to $TORCH_HOME/hub/checkpoints/."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    filename = os.path.basename(fid_inception.FID_WEIGHTS_URL)
    assert metrics.inception_cache_path() == os.path.join(str(tmp_path), "hub", "checkpoints", filename)


def test_load_inception_uses_the_torch_hub_cache(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    cached = metrics.inception_cache_path()
    assert cached.startswith(str(tmp_path)) and cached.endswith(os.path.basename(fid_inception.FID_WEIGHTS_URL))
    os.makedirs(os.path.dirname(cached))
    torch.save({"cached": torch.ones(1)}, cached)
    monkeypatch.setattr(metrics, "build_fid_inception", lambda state_dict, feature_dim=2048: state_dict)
    assert "cached" in metrics.load_inception(None)


def test_evaluate_fid_offline_returns_null_with_one_line_reason(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(fid_inception, "load_state_dict_from_url", no_network)
    value, reason = metrics.evaluate_fid(images(n=2), images(n=2), None)
    assert value is None
    assert "\n" not in reason
    assert "download failed" in reason and "URLError" in reason and "evaluate.inception_weights" in reason
