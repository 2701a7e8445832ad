"""The comparison tables are computed from the files given, not assumed: worked examples."""

import pytest

from diffmodel.reporting.tables import COMPARISONS, epochs_to_reach, markdown_tables, metric_row


def timing(epochs, seconds_per_epoch, init="scratch", final_val_loss=0.5):
    return {"epochs": epochs, "seconds_per_epoch": seconds_per_epoch, "total_seconds": epochs * seconds_per_epoch,
            "images_seen": 0, "sessions": 1, "resumes": 0, "initialisation": init, "final_val_loss": final_val_loss}


def history(seconds_per_epoch, losses):
    return [{"epoch": e, "val_loss": v, "seconds": seconds_per_epoch} for e, v in enumerate(losses, 1)]


SCORES = {
    "base": {"psnr_masked": 20.0, "ssim": 0.8, "swd": 50.0, "fid": None, "input_psnr_masked": 5.0, "mean_fill_psnr_masked": 15.0},
    "baseline_batch": {"psnr_masked": 21.0, "ssim": 0.82, "swd": 45.0, "fid": None},
    "colorize_faces": {"psnr": 25.0, "ssim": 0.9, "swd": 30.0, "fid": 30.0, "input_psnr": 20.0},
    "scratch_colorization": {"psnr": 22.5, "ssim": 0.85, "swd": 40.0, "fid": 40.0},
    "colorize_landscapes": {"psnr": 24.0, "ssim": 0.9, "swd": 35.0, "fid": None, "input_psnr": 19.0},
    "scratch_landscapes": {"psnr": 24.5, "ssim": 0.91, "swd": 36.0, "fid": None},
}
TIMINGS = {
    "base": timing(12, 10.0, final_val_loss=0.5),  # 120 s
    "baseline_batch": timing(3, 40.0, final_val_loss=0.45),
    "colorize_faces": timing(6, 10.0, "base", final_val_loss=0.20),  # 60 s
    "scratch_colorization": timing(6, 10.0, final_val_loss=0.30),
    "colorize_landscapes": timing(6, 12.0, "colorize_faces", final_val_loss=0.25),  # 72 s
    "scratch_landscapes": timing(3, 12.0, final_val_loss=0.25),
}
HISTORIES = {
    "baseline_batch": history(40.0, [0.9, 0.6, 0.45]),  # reaches base's 0.5 at epoch 3: 120 s
    "scratch_colorization": history(10.0, [0.9, 0.5, 0.4, 0.35, 0.32, 0.30]),  # never reaches 0.20 (its cap)
    "scratch_landscapes": history(12.0, [0.8, 0.5, 0.25]),  # reaches 0.25 at epoch 3: 36 s
}


@pytest.fixture(scope="module")
def summary():
    return markdown_tables(SCORES, TIMINGS, HISTORIES)[1]


def test_equal_quality_ratios_are_worked_out_from_the_histories(summary):
    batch = summary["inpainting"]["equal_quality"]
    assert batch["reached"] and batch["baseline_epochs"] == 3 and batch["baseline_seconds"] == 120.0
    assert batch["time_x"] == 1.0 and batch["epochs_x"] == 0.25  # 120 s / 120 s; 3 / 12 epochs
    assert "time_x_total" not in batch  # the base has no parents

    landscapes = summary["colorization_landscapes"]["equal_quality"]
    assert landscapes["time_x"] == 0.5  # 36 s against 72 s
    assert landscapes["ours_seconds_with_parents"] == 252.0 and landscapes["time_x_total"] == 0.143  # 36 / (72 + 60 + 120)


def test_a_baseline_that_never_got_there_gives_lower_bounds_only(summary):
    faces = summary["colorization_faces"]["equal_quality"]
    assert not faces["reached"] and faces["baseline_epochs"] == 6
    assert "time_x" not in faces and faces["time_x_min"] == 1.0  # at least 60 s / 60 s
    assert faces["time_x_total_min"] == 0.333  # at least 60 / (60 + 120)
    assert metric_row(summary["colorization_faces"]) == {"time_x_min": 1.0}


def test_quality_gains_come_from_the_scores(summary):
    assert summary["inpainting"]["psnr_masked_gain"] == -1.0  # incremental lost 1 dB: reported, not hidden
    assert summary["inpainting"]["swd_gain"] == -5.0  # positive would mean ours is closer to real images
    assert summary["colorization_faces"]["psnr_gain"] == 2.5
    assert summary["colorization_faces"]["fid_gain"] == 10.0
    assert summary["colorization_landscapes"]["fid_gain"] is None  # no FID: no made-up difference


def test_tables_show_our_numbers_beside_the_papers():
    text, _ = markdown_tables(SCORES, TIMINGS, HISTORIES)
    assert "| base (ours (chain)) | scratch | 12 | 10.00 | 120.0 | 0.5000 | n/a | 20.00 | 0.800 | 50.0 | 24.93 | 200 | 8 | 26.6 |" in text
    assert "mean-colour fill 15.00" in text
    assert "scratch_colorization did not reach colorize_faces's validation loss 0.2000 in 6 epochs (60.0 s)" in text
    assert "Paper: 300 h against 26.6 h, 11.3x." in text  # Tables 1-2 of the paper


def test_every_comparison_has_a_short_metrics_row():
    assert len({c.row for c in COMPARISONS}) == 3
    assert all(len(f"reports/metrics/{c.row}.json") <= 45 for c in COMPARISONS)


def test_epochs_to_reach():
    rows = [{"epoch": 1, "val_loss": 1.0}, {"epoch": 2, "val_loss": 0.5}]
    assert epochs_to_reach(rows, 0.5) == 2
    assert epochs_to_reach(rows, 0.4) is None
