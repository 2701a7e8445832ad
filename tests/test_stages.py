"""Stage commands as a user meets them: --help that explains, one-line errors on bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_stage(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", f"stages.{module}", *args], cwd=cwd, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "DIFFMODEL_QUIET": "1"})


@pytest.mark.parametrize("module, mentions", [
    ("prepare", ["data/prepared", "manifest.json", "data.*"]),
    ("train", ["models/MODEL", "--max-sessions", "--time-limit", "75", "colorize_faces"]),
    ("evaluate", ["scores.json", "timings.json", "METRICS_DIR/MODEL.json", "SWD", "FID", "evaluate.*"]),
    ("compare", ["tables.md", "summary.json", "reports/metrics/vs_*.json", "time_to_quality"]),
    ("samplers", ["reports/samplers.json", "samplers.*", "SWD"]),
])
def test_every_stage_says_what_it_reads_and_writes(tmp_path, module, mentions):
    result = run_stage(module, "--help", cwd=tmp_path)
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for word in mentions:
        assert word in text, word


BOTH = (("prepare", ()), ("train", ("base",)))


@pytest.mark.parametrize("params, named, stages", [
    ("train:\n  epochz: 3\n", "train.epochz: unknown key", BOTH),
    ("train:\n  lr: fast\n", "train.lr", BOTH),
    ("data:\n  image_size: 30\n", "data.image_size", BOTH),
    ("model: [1, 2\n", "not valid YAML", BOTH),
    ("data:\n  faces:\n    source: folder\n    root: /no/such/celeba\n", "data.faces.root: folder not found: /no/such/celeba",
     (("prepare", ()),)),
])
def test_bad_params_stop_before_any_work_with_one_line(tmp_path, params, named, stages):
    (tmp_path / "params.yaml").write_text(params)
    for module, args in stages:
        result = run_stage(module, *args, cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: "), result.stderr
        assert named in result.stderr
    assert not (tmp_path / "data").exists() and not (tmp_path / "models").exists()


def test_training_without_prepared_data_says_what_to_run(tmp_path):
    (tmp_path / "params.yaml").write_text("{}\n")
    result = run_stage("train", "base", cwd=tmp_path)
    assert result.returncode == 2
    assert "run the prepare stage first" in result.stderr and result.stderr.count("\n") == 1


def test_adapting_without_a_parent_checkpoint_says_so(tmp_path):
    (tmp_path / "params.yaml").write_text("data:\n  faces: {train: 8, val: 2, test: 2}\n  landscapes: {train: 8, val: 2, test: 2}\n")
    assert run_stage("prepare", cwd=tmp_path).returncode == 0
    result = run_stage("train", "colorize_faces", cwd=tmp_path)
    assert result.returncode == 2
    assert "models/base" in result.stderr and result.stderr.count("\n") == 1


def test_unknown_model_is_refused(tmp_path):
    result = run_stage("train", "nope", cwd=tmp_path)
    assert result.returncode == 2 and "unknown model 'nope'" in result.stderr
