"""The `diffmodel` command: a trained checkpoint used on a user's own image files."""

import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from test_resume import make_workspace, stage_env, train
from diffmodel.config import Params


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A micro base model trained by the real stage, and two image files of other sizes."""
    workdir = make_workspace(tmp_path_factory.mktemp("cli") / "run")
    train(workdir)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)).save(workdir / "face.png")
    Image.new("RGB", (64, 64), (200, 150, 120)).save(workdir / "plain.jpg")
    (workdir / "notes.png").write_text("not an image\n")
    return workdir


def diffmodel(workdir, *args):
    return subprocess.run([sys.executable, "-m", "diffmodel.cli", *args], cwd=workdir, env=stage_env(),
                          capture_output=True, text=True, timeout=120)


def test_sample_writes_one_row_per_image_with_one_column_per_sample(workdir):
    shutil.rmtree(workdir / "out", ignore_errors=True)
    one = diffmodel(workdir, "sample", "models/base", "face.png", "plain.jpg", "--out", "out/one", "--steps", "3")
    two = diffmodel(workdir, "sample", "models/base", "face.png", "--out", "out/two", "--steps", "3", "--samples", "2")
    assert one.returncode == 0 and two.returncode == 0, one.stderr + two.stderr
    assert "face.png -> out/one/face.png" in one.stdout and "plain.jpg -> out/one/plain.png" in one.stdout
    with Image.open(workdir / "out/one/face.png") as single, Image.open(workdir / "out/two/face.png") as double:
        assert double.width > single.width and double.height == single.height


def test_sample_names_a_file_it_cannot_read_in_one_line(workdir):
    broken = diffmodel(workdir, "sample", "models/base", "notes.png", "--steps", "3")
    missing = diffmodel(workdir, "sample", "models/base", "nowhere.png", "--steps", "3")
    for result, says in ((broken, "notes.png: not a readable image"), (missing, "nowhere.png: no such image file")):
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert result.stderr.strip().count("\n") == 0 and says in result.stderr


def test_inspect_says_what_a_checkpoint_is(workdir):
    result = diffmodel(workdir, "inspect", "models/base")
    assert result.returncode == 0, result.stderr
    assert "inpainting on faces, complete" in result.stdout and "initialised from: scratch" in result.stdout
    # the fixture's U-Net is far narrower than precision.WIDE_ENOUGH: auto trains it in fp32 on any CPU
    trained_in = "fp32" if not torch.cuda.is_available() else ""
    assert f"trained in: {trained_in}" in result.stdout and "(precision setting: auto)" in result.stdout


def test_export_makes_a_peft_model_standalone_and_inspect_says_what_it_stores(workdir, tmp_path):
    adapt = subprocess.run([sys.executable, "-m", "stages.train", "peft_faces", "--quiet"], cwd=workdir, env=stage_env(),
                           capture_output=True, text=True, timeout=300)
    assert adapt.returncode == 0, adapt.stderr
    inspected = diffmodel(workdir, "inspect", "models/peft_faces")
    assert "initialised from: base" in inspected.stdout and f"method: {Params().peft_twins.method}" in inspected.stdout
    assert "only the trained tensors" in inspected.stdout
    exported = diffmodel(workdir, "export", "models/peft_faces", str(tmp_path / "alone"))
    assert exported.returncode == 0, exported.stderr
    assert "full weights" in diffmodel(workdir, "inspect", str(tmp_path / "alone")).stdout
    shutil.copy(workdir / "face.png", tmp_path)
    sampled = diffmodel(tmp_path, "sample", "alone", "face.png", "--steps", "2")  # no models/base anywhere near
    assert sampled.returncode == 0, sampled.stderr
    refused = diffmodel(workdir, "export", "models/nothing", str(tmp_path / "none"))
    assert refused.returncode == 2 and "not a checkpoint directory" in refused.stderr
