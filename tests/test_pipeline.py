"""The pipeline as a user runs it: real `dvc repro` and `dvc exp run` on a micro configuration."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from PIL import Image
from pipeline_fixture import MICRO_PARAMS, MicroProject
from diffmodel.config import Params

CHAIN_STAGES = {"prepare", "train@base", "train@colorize_faces", "train@colorize_landscapes", "evaluate@chain"}
BASELINE_STAGES = {"train@baseline_batch", "train@scratch_colorization", "train@scratch_landscapes", "evaluate@baselines"}
PEFT_STAGES = {"train@peft_faces", "train@peft_landscapes", "evaluate_peft"}
ALL_STAGES = CHAIN_STAGES | BASELINE_STAGES | PEFT_STAGES | {"samplers", "guidance", "photos", "compare"}


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
    scores = json.loads((project.path / "reports/scores.json").read_text())
    assert set(scores) == {"base", "colorize_faces", "colorize_landscapes"}
    assert "psnr_masked" in scores["base"] and "mean_fill_psnr_masked" in scores["base"]
    for model in scores.values():
        assert model["fid"] is None or model["fid"] >= 0
        assert model["fid"] is not None or model["fid_unavailable"]
        assert model["swd"] > 0
    timings = json.loads((project.path / "reports/timings.json").read_text())
    assert timings["base"]["epochs"] == 2 and timings["colorize_faces"]["epochs"] == 1
    assert timings["colorize_faces"]["initialisation"] == "base"
    row = json.loads((project.path / "reports/metrics/base.json").read_text())
    assert row == {"psnr": scores["base"]["psnr_masked"], "swd": scores["base"]["swd"], "fid": scores["base"]["fid"]}
    # its training row is its live view's: the latest epoch, the training seconds, the validation loss
    live = json.loads((project.path / "reports/live/base/metrics.json").read_text())
    assert live == {"step": 2, "train_s": pytest.approx(timings["base"]["total_seconds"], abs=0.05),
                    "val_loss": timings["base"]["final_val_loss"]}


def test_baselines_train_until_they_match_their_chain_model_or_their_cap(project):
    timings = json.loads((project.path / "reports/timings.json").read_text())
    baselines = json.loads((project.path / "reports/baselines/timings.json").read_text())
    cap_factor = 3  # the default of baselines.cap_factor
    for baseline, ours in (("baseline_batch", "base"), ("scratch_colorization", "colorize_faces"),
                           ("scratch_landscapes", "colorize_landscapes")):
        history = baselines[baseline]
        reached = history["final_val_loss"] <= timings[ours]["final_val_loss"]
        assert reached or history["epochs"] == cap_factor * timings[ours]["epochs"], baseline


def test_dvc_metrics_show_fits_a_terminal(project):
    result = project.run("dvc", "metrics", "show")
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 120, result.stdout
    rows = {line.split()[0] for line in lines[1:] if line.strip()}
    assert {"reports/metrics/base.json", "reports/live/base/metrics.json", "reports/metrics/vs_scratch_faces.json"} <= rows


def test_figures_are_pngs_of_the_documented_size(project):
    from PIL import Image

    from diffmodel.reporting.figures import GAP, HEADER_HEIGHT

    cell = 16 * 4 + GAP  # 16px images drawn 4x, with a gap
    for name in ("base", "colorize_faces", "colorize_landscapes"):
        with Image.open(project.path / f"reports/samples/{name}.png") as grid:
            assert grid.format == "PNG"
            assert grid.size == (GAP + 3 * cell, HEADER_HEIGHT + GAP + 8 * cell)  # 3 columns, 8 test images
    with Image.open(project.path / "reports/samples/base_process.png") as strip:
        frames = min(8, MICRO_PARAMS["evaluate"]["steps"]["inpainting"] + 1)  # from the noise to the output, at most 8
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
    assert "**Equal quality**" in tables and "## Samplers: time per image against quality" in tables
    assert "| ddpm | 50 | 8 |" in tables  # every step of the micro schedule
    for png in ("loss_curves.png", "time_to_quality/inpainting.png", "time_to_quality/colorization_landscapes.png"):
        assert (project.path / "reports" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_photos_stage_draws_the_commands_on_photos_at_their_own_size(project):
    from diffmodel.reporting.figures import GAP, HEADER_HEIGHT

    with Image.open(project.path / "reports/photos/colorize.png") as colorize:  # 2 x 2 photos of 384 x 256
        assert colorize.size == (GAP + 2 * (384 + GAP), GAP + 2 * (HEADER_HEIGHT + 256 + GAP))
    with Image.open(project.path / "reports/photos/inpaint.png") as inpaint:  # the face and its fill, 256 x 256
        assert inpaint.size == (GAP + 2 * (256 + GAP), GAP + HEADER_HEIGHT + 256 + GAP)


def test_the_peft_twins_store_deltas_and_compare_tables_them(project):
    tables = (project.path / "reports/tables.md").read_text()
    assert "## Full fine-tuning vs PEFT" in tables and "configs/paper.yaml" in tables
    twins = json.loads((project.path / "reports/summary.json").read_text())["peft"]["twins"]
    for full, twin in (("colorize_faces", "peft_faces"), ("colorize_landscapes", "peft_landscapes")):
        stored, whole = ((project.path / "models" / name / "model.safetensors").stat().st_size for name in (twin, full))
        assert twins[full]["stored_percent"] == round(100 * stored / whole, 2) < 50
        meta = json.loads((project.path / "models" / twin / "meta.json").read_text())
        assert meta["stores"] == "delta" and meta["method"] == Params().peft_twins.method
        assert f"| {twin} | {Params().peft_twins.method} |" in tables and f"| {full} | full |" in tables


def test_the_guidance_stage_tables_every_setting_and_draws_every_class(project):
    result = json.loads((project.path / "reports/guidance/scores.json").read_text())
    settings = [row["setting"] for row in result["rows"]]
    assert settings == ["no label", "superclass only", "class (conditional)", "cfg guidance 2", "superclass guidance 2",
                        "wrong class, conditional", "wrong class, superclass guidance 1.5"]  # scales [2.0]; evaluate's default
    for row in result["rows"]:
        assert 0 <= row["class_accuracy"] <= 1 and row["psnr"] > 0
    assert result["classes"]["superclasses"] == {"mountain": ["alpine", "red_rock"], "forest": ["summer_forest", "autumn_forest"]}
    tables = (project.path / "reports/tables.md").read_text()
    assert "## Class-aware colorization (FineDiffusion)" in tables and "| superclass guidance 2 | true |" in tables
    grid = Image.open(project.path / "reports/guidance/classes.png")
    assert grid.width > grid.height  # ground truth, input and one column per class (4): wider than its 4 rows
    meta = json.loads((project.path / "models/colorize_landscapes/meta.json").read_text())
    assert meta["classes"]["classes"] == ["alpine", "red_rock", "summer_forest", "autumn_forest"]
    inspect = project.run("python", "-m", "diffmodel.cli", "inspect", "models/colorize_landscapes")
    assert "classes (--class), by superclass: mountain: alpine, red_rock; forest: summer_forest, autumn_forest" in inspect.stdout


def test_users_choose_the_class_by_name_and_a_wrong_name_lists_the_known_ones(project):
    Image.new("RGB", (20, 20), (90, 90, 90)).save(project.path / "gray.png")
    cli = ("python", "-m", "diffmodel.cli")
    ok = project.run(*cli, "sample", "models/colorize_landscapes", "gray.png", "--class", "autumn_forest",
                     "--guidance", "superclass", "--guidance-scale", "2", "--steps", "2", "--out", "out")
    assert "gray.png -> out/gray.png" in ok.stdout
    colorized = project.run(*cli, "colorize", "models/colorize_landscapes", "gray.png", "--class", "red_rock",
                            "--steps", "2", "--out", "photos")
    assert "1 written to photos" in colorized.stdout
    for args, says in ((("--class", "oak"), "error: unknown class 'oak'; this model knows: mountain: alpine, red_rock; "
                                            "forest: summer_forest, autumn_forest"),
                       (("--guidance", "cfg"), "error: --guidance cfg steers towards a class: give one with --class"),
                       (("--class", "alpine", "--guidance", "strong"), "error: --guidance: must be one of none, cfg, superclass, got 'strong'")):
        wrong = project.run(*cli, "sample", "models/colorize_landscapes", "gray.png", "--steps", "2", *args, check=False)
        assert wrong.returncode == 2 and wrong.stderr.strip() == says
    faces = project.run(*cli, "sample", "models/colorize_faces", "gray.png", "--class", "alpine", "--steps", "2", check=False)
    assert faces.returncode == 2
    assert faces.stderr.strip() == "error: models/colorize_faces has no classes to choose from (it was trained on one); drop --class"


def test_repro_again_does_nothing(project):
    result = project.run("dvc", "repro")
    assert stages_run(result.stdout) == set()
    assert "up to date" in result.stdout


def test_exp_run_with_changed_adapt_epochs_reruns_only_what_adapt_shapes(project):
    result = project.run("dvc", "exp", "run", "-S", "adapt.epochs=2")
    assert stages_run(result.stdout) == {
        "train@colorize_faces", "train@colorize_landscapes", "evaluate@chain",
        "train@scratch_colorization", "train@scratch_landscapes", "evaluate@baselines", "samplers", "compare",
        "train@peft_faces", "train@peft_landscapes", "evaluate_peft", "guidance", "photos",
    }
    # the persisted 1-epoch model is continued, not retrained; its child has a new parent
    assert "colorize_faces: continuing the finished 1-epoch run to 2 epochs" in result.stdout
    assert "colorize_landscapes: parent weights changed; starting fresh" in result.stdout
    timings = json.loads((project.path / "reports/timings.json").read_text())
    assert timings["colorize_faces"]["epochs"] == 2
    diff = project.run("dvc", "metrics", "diff", "--json")
    changed = json.loads(diff.stdout)
    assert changed["reports/live/colorize_faces/metrics.json"]["step"] == {"old": 1, "new": 2, "diff": 1}
    # DVCLive's view of the continued run: both epochs, each once, and the latest as `step` for `dvc exp show`
    live = project.path / "reports/live/colorize_faces"
    assert json.loads((live / "metrics.json").read_text())["step"] == 2
    assert (live / "plots/metrics/val_loss.tsv").read_text().splitlines()[1:] == [
        f"{h['epoch']}\t{h['val_loss']}" for h in json.loads((project.path / "models/colorize_faces/meta.json").read_text())["history"]]


@pytest.mark.parametrize("section, key, value, expected", [
    ("train", "epochs", 3, {"train@base", "train@baseline_batch"}),
    ("adapt", "lr", 0.001, {"train@colorize_faces", "train@colorize_landscapes", "train@scratch_colorization",
                            "train@scratch_landscapes", "train@peft_faces", "train@peft_landscapes"}),
    # the twins take their method from peft_twins: they only say "already complete"
    ("adapt", "method", "lora", {"train@colorize_faces", "train@colorize_landscapes", "train@scratch_colorization",
                                 "train@scratch_landscapes", "train@peft_faces", "train@peft_landscapes"}),
    ("peft_twins", "lr", 0.001, {"train@peft_faces", "train@peft_landscapes"}),
    ("evaluate", "steps", {"inpainting": 2, "colorization": 3}, {"evaluate@chain", "evaluate@baselines", "evaluate_peft", "guidance", "photos"}),
    # `dvc exp run -S evaluate.guidance_scale=3`: evaluation only, no training
    ("evaluate", "guidance_scale", 3.0, {"evaluate@chain", "evaluate@baselines", "evaluate_peft", "guidance", "photos"}),
    ("guidance", "scales", [1.0], {"guidance"}),
    ("baselines", "cap_factor", 4, {"train@baseline_batch", "train@scratch_colorization", "train@scratch_landscapes"}),
    ("data", "num_subsets", 4, {"prepare"}),
])
def test_a_changed_param_invalidates_exactly_the_stages_that_read_it(project, section, key, value, expected):
    """`dvc repro --dry` lists the stages whose own inputs changed (their successors follow through
    the checkpoint and data directories they consume, which the real runs above exercise)."""
    original = (project.path / "params.yaml").read_text()
    params = yaml.safe_load(original)
    params.setdefault(section, {})[key] = value
    project.write_params(params)
    try:
        result = project.run("dvc", "repro", "--dry")
    finally:
        (project.path / "params.yaml").write_text(original)
    assert stages_run(result.stdout) == expected


def test_code_no_training_stage_imports_reruns_evaluation_only(project):
    report = project.path / "diffmodel/reporting/figures.py"  # drawing figures: no training stage imports it
    report.write_text(report.read_text() + "\n# an edit\n")
    result = project.run("dvc", "repro")
    assert stages_run(result.stdout) == {"evaluate@chain", "evaluate@baselines", "evaluate_peft", "guidance", "photos", "compare"}


def test_a_comment_in_the_training_code_retrains_nothing_and_an_edited_loss_retrains(project):
    """The cache never records new code against old weights: an edit to the code of the loss starts
    the model fresh (its children follow because their parent's weights changed: test_exp_run...
    above). An edited comment changes the file, so DVC runs the stage, but not the code: nothing trains."""
    loop = project.path / "diffmodel/training/loop.py"
    original = loop.read_text()
    loop.write_text(original.replace("class Trainer:", "class Trainer:  # an edited comment", 1))
    result = project.run("dvc", "repro", "train@base")
    assert stages_run(result.stdout) == {"train@base"}
    assert "base: already complete" in result.stdout and "starting fresh" not in result.stdout
    loop.write_text(original)

    diffusion = project.path / "diffmodel/model/diffusion.py"
    original = diffusion.read_text()
    edited = original.replace("err = (output - target).square()", "err = (target - output).square()")
    assert edited != original
    diffusion.write_text(edited)
    result = project.run("dvc", "repro", "train@base")
    assert stages_run(result.stdout) == {"train@base"}
    assert "base: training code changed (diffmodel/model/diffusion.py); starting fresh" in result.stdout
    assert "already complete" not in result.stdout
    assert stages_run(project.run("dvc", "repro", "train@base").stdout) == set()
    diffusion.write_text(original)


def test_a_new_subset_partition_retrains_the_incremental_models_only(project):
    params = yaml.safe_load((project.path / "params.yaml").read_text())
    params["data"]["num_subsets"] = 4
    project.write_params(params)
    result = project.run("dvc", "repro", "train@base", "train@baseline_batch")
    assert stages_run(result.stdout) == {"prepare", "train@base", "train@baseline_batch"}
    [fresh] = [line for line in result.stdout.splitlines() if line.startswith("base:") and "starting fresh" in line]
    assert "data subsets changed (data.num_subsets)" in fresh
    # batch learning sees every image every epoch: the partition does not shape it
    assert "baseline_batch: already complete" in result.stdout
