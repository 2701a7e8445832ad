"""Issue 4 under real DVC: a paused `train@base` is not recorded as done, and `dvc repro`
then continues it (only the remaining epochs) instead of starting over."""

from __future__ import annotations

import copy
import json
import re

import yaml
from pipeline_fixture import MICRO_PARAMS, MicroProject

EPOCHS, SESSION_EPOCHS = 4, 2


def epoch_lines(output: str) -> list[int]:
    return [int(n) for n in re.findall(rf"base: epoch (\d+)/{EPOCHS} ", output)]


def status(project: MicroProject) -> dict:
    return json.loads(project.run("dvc", "status", "train@base", "--json").stdout or "{}")


def test_paused_train_base_is_not_recorded_and_repro_continues_it(tmp_path):
    project = MicroProject(tmp_path)
    params = copy.deepcopy(MICRO_PARAMS)
    params["train"].update(epochs=EPOCHS, session_epochs=SESSION_EPOCHS)
    project.write_params(params)
    project.commit("train@base: 4 epochs in sessions of 2")

    project.env["DIFFMODEL_MAX_SESSIONS"] = "1"  # the paper's time-limited GPU session
    paused = project.run("dvc", "repro", "train@base", check=False)
    output = paused.stdout + paused.stderr
    assert paused.returncode != 0, output
    assert epoch_lines(output) == [1, 2]
    assert "--max-sessions 1" in output and "dvc repro train@base" in output
    lock = yaml.safe_load((tmp_path / "dvc.lock").read_text()) if (tmp_path / "dvc.lock").exists() else {}
    assert "train@base" not in lock.get("stages", {}), "DVC recorded a paused stage as done"
    assert "train@base" in status(project)

    del project.env["DIFFMODEL_MAX_SESSIONS"]
    resumed = project.run("dvc", "repro", "train@base")
    assert "resuming" in resumed.stdout
    assert epoch_lines(resumed.stdout) == [3, 4]  # only the remaining epochs
    meta = json.loads((tmp_path / "models/base/meta.json").read_text())
    assert meta["complete"] and [h["epoch"] for h in meta["history"]] == list(range(1, EPOCHS + 1))
    assert len(meta["sessions"]) == 2 and meta["resumes"] == 1
    assert "Running stage 'prepare'" not in resumed.stdout  # recorded by the first run

    lock = yaml.safe_load((tmp_path / "dvc.lock").read_text())
    assert "train@base" in lock["stages"]
    assert status(project) == {}  # `dvc status train@base`: "Data and pipelines are up to date."
