"""The comparison tables are computed from the files given, not assumed."""

from diffmodel.compare import epochs_to_reach, markdown_tables


def timing(epochs, seconds_per_epoch, init="scratch", final_val_loss=0.5):
    return {"epochs": epochs, "seconds_per_epoch": seconds_per_epoch, "total_seconds": epochs * seconds_per_epoch,
            "images_seen": 0, "sessions": 1, "resumes": 0, "initialisation": init, "final_val_loss": final_val_loss}


METRICS = {
    "base": {"psnr_masked": 20.0, "ssim": 0.8, "fid": None, "input_psnr_masked": 5.0, "mean_fill_psnr_masked": 15.0},
    "baseline_batch": {"psnr_masked": 21.0, "ssim": 0.82, "fid": None},
    "colorize_faces": {"psnr": 25.0, "ssim": 0.9, "fid": 30.0, "input_psnr": 20.0},
    "scratch_colorization": {"psnr": 22.5, "ssim": 0.85, "fid": 40.0},
    "colorize_landscapes": {"psnr": 24.0, "ssim": 0.9, "fid": None, "input_psnr": 19.0},
    "scratch_landscapes": {"psnr": 24.5, "ssim": 0.91, "fid": None},
}
TIMINGS = {
    "base": timing(12, 10.0),
    "baseline_batch": timing(12, 40.0),
    "colorize_faces": timing(6, 10.0, "base", final_val_loss=0.20),
    "scratch_colorization": timing(6, 10.0, final_val_loss=0.30),
    "colorize_landscapes": timing(6, 12.0, "colorize_faces", final_val_loss=0.25),
    "scratch_landscapes": timing(6, 12.0, final_val_loss=0.24),
}
HISTORIES = {
    "scratch_colorization": [{"epoch": e, "val_loss": v} for e, v in enumerate([0.9, 0.5, 0.4, 0.35, 0.32, 0.30], 1)],
    "scratch_landscapes": [{"epoch": e, "val_loss": v} for e, v in enumerate([0.8, 0.5, 0.25, 0.24, 0.24, 0.24], 1)],
}


def test_ratios_come_from_the_inputs():
    _, summary = markdown_tables(METRICS, TIMINGS, HISTORIES)
    assert summary["inpainting"]["time_per_epoch_ratio"] == 4.0
    assert summary["inpainting"]["total_time_ratio"] == 4.0
    assert summary["inpainting"]["psnr_masked_gain"] == -1.0  # incremental lost 1 dB: reported, not hidden
    assert summary["colorization_faces"]["psnr_gain"] == 2.5
    assert summary["colorization_faces"]["fid_gain"] == 10.0
    assert summary["colorization_faces"]["scratch_epochs_to_match_adapted_val_loss"] is None  # never reached 0.20
    assert summary["colorization_landscapes"]["scratch_epochs_to_match_adapted_val_loss"] == 3
    assert summary["colorization_landscapes"]["fid_gain"] is None  # no FID: no made-up difference


def test_tables_show_our_numbers_beside_the_papers():
    text, _ = markdown_tables(METRICS, TIMINGS, HISTORIES)
    assert "| base (ours (chain)) | scratch | 12 | 10.00 | 120.0 | n/a (no Inception weights) | 20.00 | 0.800 | 24.93 | 200 | 8 | 26.6 |" in text
    assert "| colorize_faces (ours (chain)) | base | 6 | 10.00 | 60.0 | 30.00 | 25.00 | 0.900 | 14.18 | 20 | 8 | 2.6 |" in text
    assert "mean-colour fill 15.00" in text


def test_epochs_to_reach():
    history = [{"epoch": 1, "val_loss": 1.0}, {"epoch": 2, "val_loss": 0.5}]
    assert epochs_to_reach(history, 0.5) == 2
    assert epochs_to_reach(history, 0.4) is None
