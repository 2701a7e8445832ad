"""dvc.yaml tells the truth about what each stage runs: every project file a stage's command
imports is one of its deps (else an edit to it would leave stale outputs cached), no dep is
code it does not run, and the training stages read the data, parent and params that
diffmodel/chain.py says their models use."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from dvc.dependency.param import ParamsDependency
from dvc.repo import Repo

from diffmodel.chain import MODELS
from diffmodel.checkpoints.source_code import source_hashes

ROOT = Path(__file__).resolve().parents[1]


def _stages() -> dict:
    with Repo(str(ROOT)) as repo:
        return {
            stage.name: {
                "cmd": stage.cmd,
                "deps": [d.def_path for d in stage.deps if not isinstance(d, ParamsDependency)],
                "params": [p for d in stage.deps if isinstance(d, ParamsDependency) for p in d.params],
            }
            for stage in repo.index.stages
        }


STAGES = _stages()


@pytest.mark.parametrize("name", sorted(STAGES))
def test_code_deps_are_exactly_the_project_files_the_command_imports(name):
    stage = STAGES[name]
    module = re.match(r"python -m (stages\.\w+)", stage["cmd"]).group(1)
    imported = set(source_hashes(module))
    listed = {dep for dep in stage["deps"] if dep.endswith(".py")}
    folders = tuple(f"{dep}/" for dep in stage["deps"] if (ROOT / dep).is_dir())  # a folder covers its files
    missing = {path for path in imported - listed if not path.startswith(folders)}
    assert not missing, f"{name} imports files missing from its deps in dvc.yaml: {sorted(missing)}"
    assert not listed - imported, f"{name}: dvc.yaml lists code it does not import: {sorted(listed - imported)}"


@pytest.mark.parametrize("model", sorted(MODELS))
def test_each_model_has_a_training_stage_with_its_data_parent_and_params(model):
    spec = MODELS[model]
    stage = STAGES[spec.stage]
    assert stage["cmd"] == f"python -m stages.train {model}"
    assert f"data/prepared/{spec.domain}" in stage["deps"]
    assert set(stage["params"]) == {"model", "diffusion", spec.schedule_section, *(["baselines"] if spec.counterpart else []),
                                    *(["peft_twins"] if spec.twin_of else [])}
    read = spec.parent or spec.counterpart  # a baseline reads the validation loss it must match
    assert [dep for dep in stage["deps"] if dep.startswith("models/")] == ([f"models/{read}"] if read else [])


def test_the_evaluations_read_every_model_they_score():
    for name, stage in STAGES.items():
        if name.startswith("evaluate"):
            scored = stage["cmd"].split("stages.evaluate ")[1].split(" --")[0].split()
            assert {f"models/{m}" for m in scored} <= set(stage["deps"])
