"""The pipeline as a user runs it: real `dvc repro` and `dvc exp run` on a micro configuration."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from pipeline_fixture import MICRO_PARAMS, MicroProject

CHAIN_STAGES = {"prepare", "train_base", "adapt_colorization", "adapt_landscapes", "evaluate"}
BASELINE_STAGES = {"baseline_batch", "scratch_colorization", "scratch_landscapes", "evaluate_baselines"}
ALL_STAGES = CHAIN_STAGES | BASELINE_STAGES | {"compare"}


def stages_run(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    project = MicroProject(tmp_path_factory.mktemp("micro"))
    first = project.run("dvc", "repro")
    project.first_output = first.stdout + first.stderr
    project.commit("first run")
    return project


def test_repro_runs_every_stage_and_writes_metrics(project):
    assert stages_run(project.first_output) == ALL_STAGES
    metrics = json.loads((project.path / "reports/metrics.json").read_text())
    assert set(metrics) == {"base", "colorize_faces", "colorize_landscapes"}
    assert "psnr_masked" in metrics["base"] and "mean_fill_psnr_masked" in metrics["base"]
    for scores in metrics.values():
        assert scores["fid"] is None or scores["fid"] >= 0
        assert scores["fid"] is not None or scores["fid_unavailable"]
    timings = json.loads((project.path / "reports/timings.json").read_text())
    assert timings["base"]["epochs"] == 2 and timings["colorize_faces"]["epochs"] == 1
    assert timings["colorize_faces"]["initialisation"] == "base"


def test_figures_are_pngs_of_the_documented_size(project):
    from PIL import Image

    from diffmodel.report import GAP, HEADER_HEIGHT

    cell = 16 * 4 + GAP  # 16px images drawn 4x, with a gap
    for name in ("base", "colorize_faces", "colorize_landscapes"):
        with Image.open(project.path / f"reports/samples/{name}.png") as grid:
            assert grid.format == "PNG"
            assert grid.size == (GAP + 3 * cell, HEADER_HEIGHT + GAP + 8 * cell)  # 3 columns, 8 test images
    with Image.open(project.path / "reports/samples/base_process.png") as strip:
        frames = min(8, MICRO_PARAMS["evaluate"]["steps"] + 1)  # from the noise to the output, at most 8
        assert strip.size == (GAP + frames * cell, HEADER_HEIGHT + GAP + 4 * cell)  # 4 images
    with Image.open(project.path / "reports/baselines/samples/scratch_colorization.png") as grid:
        assert grid.size == (GAP + 3 * cell, HEADER_HEIGHT + GAP + 8 * cell)


def test_compare_writes_tables_from_the_measured_files(project):
    tables = (project.path / "reports/tables.md").read_text()
    timings = json.loads((project.path / "reports/timings.json").read_text())
    assert "| base (ours (chain)) | scratch | 2 |" in tables
    assert f"{timings['base']['total_seconds']:.1f}" in tables
    summary = json.loads((project.path / "reports/summary.json").read_text())
    baseline = json.loads((project.path / "reports/baselines/timings.json").read_text())["baseline_batch"]
    expected = round(baseline["seconds_per_epoch"] / timings["base"]["seconds_per_epoch"], 3)
    assert summary["inpainting"]["time_per_epoch_ratio"] == expected
    assert (project.path / "reports/loss_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_repro_again_does_nothing(project):
    result = project.run("dvc", "repro")
    assert stages_run(result.stdout) == set()
    assert "up to date" in result.stdout


def test_exp_run_with_changed_adapt_epochs_reruns_only_what_adapt_shapes(project):
    result = project.run("dvc", "exp", "run", "-S", "adapt.epochs=2")
    assert stages_run(result.stdout) == {
        "adapt_colorization", "adapt_landscapes", "evaluate",
        "scratch_colorization", "scratch_landscapes", "evaluate_baselines", "compare",
    }
    # the persisted 1-epoch model is continued, not retrained; its child has a new parent
    assert "colorize_faces: continuing the finished 1-epoch run to 2 epochs" in result.stdout
    assert "colorize_landscapes: existing state" in result.stdout
    timings = json.loads((project.path / "reports/timings.json").read_text())
    assert timings["colorize_faces"]["epochs"] == 2
    diff = project.run("dvc", "metrics", "diff", "--json")
    changed = json.loads(diff.stdout)
    assert "reports/timings.json" in changed
    assert any(key.startswith("colorize_faces.") for key in changed["reports/timings.json"])


@pytest.mark.parametrize("section, key, value, expected", [
    ("train", "epochs", 3, {"train_base", "baseline_batch"}),
    ("adapt", "lr", 0.001, {"adapt_colorization", "adapt_landscapes", "scratch_colorization", "scratch_landscapes"}),
    ("evaluate", "steps", 2, {"evaluate", "evaluate_baselines"}),
    ("data", "num_subsets", 4, {"prepare"}),
])
def test_a_changed_param_invalidates_exactly_the_stages_that_read_it(project, section, key, value, expected):
    """`dvc repro --dry` lists the stages whose own inputs changed (their successors follow through
    the checkpoint and data directories they consume, which the real runs above exercise)."""
    original = (project.path / "params.yaml").read_text()
    params = yaml.safe_load(original)
    params[section][key] = value
    project.write_params(params)
    try:
        result = project.run("dvc", "repro", "--dry")
    finally:
        (project.path / "params.yaml").write_text(original)
    assert stages_run(result.stdout) == expected
