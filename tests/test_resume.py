"""Issue 4: training in resumable sessions that survive any interruption.

Every test runs the real stage command (`python -m stages.train base`) in a subprocess on a
micro configuration, interrupts it the way the world does (SIGKILL, SIGTERM/SIGINT, a session
limit, a damaged file, a changed param), runs it again, and compares the result with one
uninterrupted run: on CPU the weights must be bitwise identical.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from diffmodel.checkpoints.store import WEIGHTS, read_weights
from diffmodel.data import synthetic
from diffmodel.data.prepared import save_domain
from tests.pipeline_fixture import FACES, one_class

ROOT = Path(__file__).resolve().parents[1]
EXIT_PAUSED, EXIT_INTERRUPTED = 75, 130

EPOCHS, STEPS_PER_EPOCH = 6, 8  # 64 training images in 2 subsets of 32, batch 4
PARAMS = {
    "data": {"image_size": 16, "seed": 0, "num_subsets": 2,
             "faces": {"source": "synthetic", "train": 64, "val": 8, "test": 8},
             "landscapes": {"source": "synthetic", "train": 8, "val": 8, "test": 8}},
    "model": {"channels": 8, "channel_mults": [1, 2], "blocks_per_level": 1, "attention_resolutions": [8],
              "head_channels": 8, "groups": 4},
    "diffusion": {"steps": 50, "beta_start": 0.0001, "beta_end": 0.2},
    # dropout > 0: the global torch RNG shapes the result too, so its restore is tested
    "train": {"epochs": EPOCHS, "subset_epochs": 1, "batch_size": 4, "warmup_steps": 5, "dropout": 0.1,
              "session_epochs": 2, "checkpoint_every_epochs": 1, "seed": 3},
}


# ----------------------------------------------------------------------------- helpers

def make_workspace(path: Path, params: dict = PARAMS) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    faces, size = params["data"]["faces"], params["data"]["image_size"]
    splits = {split: synthetic.render_faces(faces[split], size, seed) for seed, split in enumerate(("train", "val", "test"))}
    save_domain(path / "data/prepared/faces", splits, one_class(splits), params["data"]["num_subsets"], FACES,
                {"source": "synthetic"})
    return path


def stage_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "stages.train", "base", "--quiet", *args]


def stage_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIFFMODEL_")}
    # one thread: bitwise results need the same thread count in every run, and the CPU is shared
    return {**env, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **extra}


def train(workdir: Path, *args: str, expect: int | None = 0, **env: str) -> subprocess.CompletedProcess:
    result = subprocess.run(stage_command(*args), cwd=workdir, env=stage_env(**env),
                            capture_output=True, text=True, timeout=300)
    if expect is not None:
        assert result.returncode == expect, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def start_and_signal(workdir: Path, after_step: int, sig: int, delay: float = 0.0) -> subprocess.CompletedProcess:
    """Start the stage, wait until it has written the resume state of step `after_step`,
    wait `delay` seconds more, then send `sig`."""
    proc = subprocess.Popen(stage_command(), cwd=workdir, env=stage_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    target = workdir / "models/base" / f"state-{after_step:09d}.pt"
    deadline = time.monotonic() + 120
    while not target.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    sent = proc.poll() is None
    if sent:
        time.sleep(delay)
        proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert sent, f"the run ended before {target.name} appeared\n{stdout}\n{stderr}"
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def meta_of(workdir: Path) -> dict:
    return json.loads((workdir / "models/base/meta.json").read_text())


def final_weights(workdir: Path) -> tuple[dict, dict]:
    """(EMA weights of the weights file, online weights of the newest resume state)."""
    directory = workdir / "models/base"
    ema = read_weights(directory / WEIGHTS)["ema"]
    newest = meta_of(workdir)["states"][0]["file"]
    online = torch.load(directory / newest, weights_only=True)["online"]
    return ema, online


def assert_bitwise_equal(got: dict, want: dict, what: str) -> None:
    assert got.keys() == want.keys(), what
    different = [k for k in want if not torch.equal(got[k], want[k])]
    assert not different, f"{what}: {len(different)} tensors differ, e.g. {different[:3]}"


def assert_same_result(workdir: Path, reference: Path) -> None:
    ema, online = final_weights(workdir)
    ref_ema, ref_online = final_weights(reference)
    assert_bitwise_equal(ema, ref_ema, "EMA weights")
    assert_bitwise_equal(online, ref_online, "online weights of the last state")
    meta, ref_meta = meta_of(workdir), meta_of(reference)
    assert meta["complete"] and meta["step"] == ref_meta["step"] == EPOCHS * STEPS_PER_EPOCH
    assert [h["epoch"] for h in meta["history"]] == list(range(1, EPOCHS + 1))
    # validation uses the EMA weights and fixed noise: equal weights at every epoch give equal losses
    assert [h["val_loss"] for h in meta["history"]] == [h["val_loss"] for h in ref_meta["history"]]
    # an epoch resumed in its middle logs the mean training loss of all its steps, as an uninterrupted one does
    assert [h["train_loss"] for h in meta["history"]] == [h["train_loss"] for h in ref_meta["history"]]


def assert_live_view_is_the_history(workdir: Path) -> None:
    """DVCLive's files (stages/live.py) hold each epoch of meta.json's history once, in order."""
    history = meta_of(workdir)["history"]
    live = workdir / "reports/live/base"
    for metric in ("train_loss", "val_loss", "seconds", "images"):
        with (live / f"plots/metrics/{metric}.tsv").open() as tsv:
            rows = list(csv.DictReader(tsv, delimiter="\t"))
        assert [int(r["step"]) for r in rows] == [h["epoch"] for h in history], metric
        assert [float(r[metric]) for r in rows] == pytest.approx(
            [h[metric] for h in history] if metric != "images" else list(itertools.accumulate(h["images"] for h in history))), metric
    summary = json.loads((live / "metrics.json").read_text())
    assert summary == {"step": EPOCHS, "val_loss": history[-1]["val_loss"],
                       "train_s": pytest.approx(sum(h["seconds"] for h in history), abs=0.05)}


def lines_with(text: str, word: str) -> list[str]:
    return [line for line in text.splitlines() if word in line]


# ----------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return make_workspace(tmp_path_factory.mktemp("template"))


@pytest.fixture(scope="module")
def reference(template, tmp_path_factory) -> Path:
    """The same training, uninterrupted."""
    workdir = tmp_path_factory.mktemp("reference") / "run"
    shutil.copytree(template, workdir)
    result = train(workdir)
    assert len(lines_with(result.stdout, f"/{EPOCHS} subset")) == EPOCHS
    return workdir


@pytest.fixture(scope="module")
def paused_template(template, tmp_path_factory) -> tuple[Path, str]:
    """(workspace, output) after `--max-sessions 1`: the first session (2 epochs) done, states
    of epochs 1 and 2 kept."""
    workdir = tmp_path_factory.mktemp("paused") / "run"
    shutil.copytree(template, workdir)
    return workdir, train(workdir, "--max-sessions", "1", expect=EXIT_PAUSED).stdout


@pytest.fixture
def workdir(template, tmp_path) -> Path:
    shutil.copytree(template, tmp_path / "run")
    return tmp_path / "run"


@pytest.fixture
def paused(paused_template, tmp_path) -> Path:
    shutil.copytree(paused_template[0], tmp_path / "run")
    return tmp_path / "run"


# ----------------------------------------------------------------------------- tests

def test_sigkill_at_three_points_then_resume_is_bitwise_identical(workdir, reference):
    # each kill comes as soon as a state file lands, so it hits the rest of that save (model.pt
    # or meta.json not written yet) or the next steps: at the ends of epochs 1 and 3 ...
    for epoch in (1, 3):
        killed = start_and_signal(workdir, epoch * STEPS_PER_EPOCH, signal.SIGKILL)
        assert killed.returncode == -signal.SIGKILL
    # ... and two steps into epoch 5, with time-based checkpoints at every step (a knob that
    # does not shape the result, so the state is kept)
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    params["train"]["checkpoint_every_minutes"] = 1e-6
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    killed = start_and_signal(workdir, 4 * STEPS_PER_EPOCH + 2, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    assert meta_of(workdir)["batch_in_epoch"] > 0 and not meta_of(workdir)["complete"]

    (workdir / "params.yaml").write_text(yaml.safe_dump(PARAMS, sort_keys=False))
    (workdir / f"models/base/.{WEIGHTS}.k1ll3d.tmp").write_bytes(b"half a file")  # as a kill mid-write leaves it
    # as a run killed after logging an epoch it never saved leaves its live view
    with (workdir / "reports/live/base/plots/metrics/val_loss.tsv").open("a") as tsv:
        tsv.write("5\t0.5\n")
    resumed = train(workdir)
    assert f"epoch 5/{EPOCHS}, batch " in resumed.stdout and f"epoch 5/{EPOCHS}, batch 0" not in resumed.stdout
    assert_same_result(workdir, reference)
    assert [h["epoch"] for h in meta_of(workdir)["history"] if h["resumed_mid_epoch"]] == [5]
    assert not list((workdir / "models/base").glob(".*.tmp")), "a killed write left its temp file behind"
    # a session killed mid-way is counted too, up to the state the next one resumed from (where
    # the first two kills land depends on timing; the third one came mid-epoch, asserted above)
    sessions = meta_of(workdir)["sessions"]
    assert [s["session"] for s in sessions] == list(range(1, len(sessions) + 1))
    assert_live_view_is_the_history(workdir)
    assert [s["start_step"] for s in sessions] == [0] + [s["end_step"] for s in sessions[:-1]]
    assert sessions[-1]["end_step"] == EPOCHS * STEPS_PER_EPOCH and sessions[-1]["ended"] is None
    assert sessions[-2]["ended"].startswith("abruptly") and sessions[-1]["resumed"]


def test_time_limit_sigterm_and_sigint_mid_epoch_save_state_and_resume_bitwise(workdir, reference):
    # a time limit of 0 minutes pauses after the first step: exit 75, mid-epoch
    paused = train(workdir, expect=EXIT_PAUSED, DIFFMODEL_TIME_LIMIT="0")
    [message] = lines_with(paused.stdout, "paused")
    assert "time limit" in message and "dvc repro train@base" in message
    assert meta_of(workdir)["batch_in_epoch"] == 1

    # the signal arrives while the epoch-end state is being saved; the loop notices it after the
    # next step, so it stops one step into the next epoch
    for epoch, sig in ((2, signal.SIGTERM), (4, signal.SIGINT)):
        stopped = start_and_signal(workdir, epoch * STEPS_PER_EPOCH, sig)
        assert stopped.returncode == EXIT_INTERRUPTED, stopped.stdout + stopped.stderr
        assert "Traceback" not in stopped.stderr
        [message] = lines_with(stopped.stdout, "paused")
        assert signal.Signals(sig).name in message and "dvc repro train@base" in message
        meta = meta_of(workdir)
        assert meta["batch_in_epoch"] > 0, "expected a stop in the middle of an epoch"
        assert meta["epoch"] == epoch and len(meta["history"]) == epoch
        state = torch.load(workdir / "models/base" / meta["states"][0]["file"], weights_only=True)
        assert (state["epoch"], state["batch_in_epoch"]) == (meta["epoch"], meta["batch_in_epoch"])
    resumed = train(workdir)
    assert "resuming" in resumed.stdout and f"epoch {epoch + 1}/{EPOCHS}, batch " in resumed.stdout
    assert_same_result(workdir, reference)
    assert [h["epoch"] for h in meta_of(workdir)["history"] if h["resumed_mid_epoch"]] == [1, 3, 5]


def test_max_sessions_pauses_with_75_and_a_second_run_finishes(paused_template, paused, reference):
    output = paused_template[1]  # of the `--max-sessions 1` run, which exited 75
    [message] = lines_with(output, "paused")
    assert "--max-sessions 1" in message and "dvc repro train@base" in message
    assert len(lines_with(output, f"/{EPOCHS} subset")) == PARAMS["train"]["session_epochs"]
    assert not meta_of(paused)["complete"]

    second = train(paused)
    assert len(lines_with(second.stdout, f"/{EPOCHS} subset")) == EPOCHS - PARAMS["train"]["session_epochs"]
    meta = meta_of(paused)
    assert len(meta["sessions"]) >= 2 and meta["resumes"] >= 1
    assert meta["sessions"][1]["resumed"] and meta["sessions"][-1]["end_epoch"] == EPOCHS
    assert_same_result(paused, reference)
    assert_live_view_is_the_history(paused)


def test_changed_lr_sets_state_aside_but_changed_session_epochs_resumes(paused):
    workdir = paused
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    params["train"]["lr"] = 0.0123  # none of the defaults
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    fresh = train(workdir, "--max-sessions", "1", expect=EXIT_PAUSED)
    [aside] = lines_with(fresh.stdout, "starting fresh")
    assert "lr" in aside and "starting fresh" in aside
    assert "resuming" not in fresh.stdout and "starting from scratch" in fresh.stdout
    assert meta_of(workdir)["resumes"] == 0
    [aside] = (workdir / "models/.stale").glob("base-*")
    assert (aside / "meta.json").exists() and aside.name in fresh.stdout

    params["train"]["session_epochs"] = 3  # when to pause is not what the model learns
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    resumed = train(workdir, "--max-sessions", "1", expect=EXIT_PAUSED)
    assert "starting fresh" not in resumed.stdout and "resuming" in resumed.stdout
    meta = meta_of(workdir)
    assert meta["resumes"] == 1 and [h["epoch"] for h in meta["history"]] == [1, 2, 3, 4, 5]


def test_corrupted_newest_state_falls_back_to_the_previous_one(paused, reference):
    workdir = paused
    newest, previous = meta_of(workdir)["states"]
    assert (newest["epoch"], previous["epoch"]) == (2, 1)
    path = workdir / "models/base" / newest["file"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 16] = bytes(b ^ 0xFF for b in data[len(data) // 2 : len(data) // 2 + 16])
    path.write_bytes(bytes(data))

    resumed = train(workdir)
    [rejected] = lines_with(resumed.stdout + resumed.stderr, "corrupted")
    assert newest["file"] in rejected
    assert f"epoch 2/{EPOCHS}, batch 0" in resumed.stdout  # continued from the end of epoch 1
    # epoch 2 is trained again, and recorded once: history is rewound with the state
    assert_same_result(workdir, reference)
    files = {p.name for p in (workdir / "models/base").iterdir()}
    assert files == {"meta.json", WEIGHTS, *(s["file"] for s in meta_of(workdir)["states"])}


def with_epochs(workdir: Path, epochs: int) -> None:
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    params["train"]["epochs"] = epochs
    (workdir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_more_epochs_continue_a_finished_run_bitwise_and_fewer_start_fresh(workdir, reference):
    with_epochs(workdir, EPOCHS - 2)
    train(workdir)
    assert meta_of(workdir)["complete"] and meta_of(workdir)["epoch"] == EPOCHS - 2

    with_epochs(workdir, EPOCHS)
    longer = train(workdir)
    assert f"continuing the finished {EPOCHS - 2}-epoch run to {EPOCHS} epochs" in longer.stdout
    assert len(lines_with(longer.stdout, f"/{EPOCHS} subset")) == 2, "only the extra epochs are trained"
    assert_same_result(workdir, reference)
    assert meta_of(workdir)["epochs"] == EPOCHS

    with_epochs(workdir, EPOCHS - 1)  # weights cannot be untrained: start again
    fewer = train(workdir)
    [aside] = lines_with(fewer.stdout, "starting fresh")
    assert f"more than the {EPOCHS - 1} epochs" in aside and "starting fresh" in aside
    meta = meta_of(workdir)
    assert meta["complete"] and meta["epoch"] == EPOCHS - 1 and meta["resumes"] == 0


def test_a_paused_run_asked_for_no_more_epochs_than_it_has_is_complete(paused):
    trained = PARAMS["train"]["session_epochs"]  # the paused run has finished its first session
    with_epochs(paused, trained)
    done = train(paused)
    assert f"complete after {trained} epochs" in done.stdout and not lines_with(done.stdout, " subset ")
    meta = meta_of(paused)
    assert meta["complete"] and meta["epoch"] == trained and len(meta["history"]) == trained
    assert "already complete" in train(paused).stdout


def test_a_second_ctrl_c_stops_at_once_without_a_traceback_and_loses_nothing(workdir, reference):
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    params["train"]["checkpoint_every_minutes"] = 1e-6  # saving all the time: the second signal may land mid-save
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    proc = subprocess.Popen(stage_command(), cwd=workdir, env=stage_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    target = workdir / "models/base" / f"state-{STEPS_PER_EPOCH + 3:09d}.pt"
    deadline = time.monotonic() + 120
    while not target.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_INTERRUPTED, stdout + stderr
    assert "Traceback" not in stderr
    assert "stopped at once" in stderr or "paused (SIGINT received)" in stdout  # the second may come too late to matter

    (workdir / "params.yaml").write_text(yaml.safe_dump(PARAMS, sort_keys=False))
    train(workdir)
    assert_same_result(workdir, reference)


def test_a_second_interrupt_during_a_checkpoint_write_waits_for_the_write():
    from diffmodel.training.session import StopRequest as _StopRequest

    stop = _StopRequest()
    stop._handle(signal.SIGINT, None)  # the first one only asks the loop to stop
    assert stop.signum == signal.SIGINT
    written = []
    with pytest.raises(KeyboardInterrupt):
        with stop.checkpoint_write():
            stop._handle(signal.SIGINT, None)  # must not break the write in the middle
            written.append("all of it")
    assert written == ["all of it"]
    with pytest.raises(KeyboardInterrupt):  # outside a write, the second one stops at once
        stop._handle(signal.SIGINT, None)
