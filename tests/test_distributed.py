"""Several processes under torchrun (DDP; gloo on the CPU): the path a user with several GPUs takes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import torch
import yaml

from diffmodel.data.subsets import rank_share
from diffmodel.training.distributed import Ranks
from tests.pipeline_fixture import MICRO_PARAMS

ROOT = Path(__file__).resolve().parents[1]


def test_every_rank_gets_the_same_number_of_distinct_images():
    indices = torch.randperm(15)
    shares = [rank_share(indices, rank, 2) for rank in range(2)]
    assert [len(s) for s in shares] == [7, 7]
    assert not set(shares[0].tolist()) & set(shares[1].tolist())
    assert rank_share(indices, 0, 1).tolist() == indices.tolist()


def test_ranks_draw_different_noise_and_the_same_rank_draws_it_again():
    def draws(rank: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        generator = torch.Generator()
        Ranks(rank, 2).seed(seed=0, step=step, generator=generator)
        return torch.randn(4, generator=generator), torch.rand(4)  # loop noise, dropout's global RNG

    for first, second in zip(draws(0, 10), draws(1, 10)):
        assert not torch.equal(first, second)
    for first, second in zip(draws(1, 10), draws(1, 10)):
        assert torch.equal(first, second)


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, pending = [], [pid]
    while pending:
        below = children.get(pending.pop(), [])
        found += below
        pending += below
    return found


def torchrun(cwd: Path, *args: str, program: tuple[str, ...] = ("-m", "stages.train", "base")) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DIFFMODEL_QUIET": "1", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *program, *args]
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=90)
    except subprocess.TimeoutExpired:  # ranks that disagree on the number of steps wait for each other forever
        for pid in [process.pid, *descendants(process.pid)]:  # torchrun starts each rank in a session of its own
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        process.communicate()
        raise AssertionError("torchrun hung: its ranks are waiting for each other") from None
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def test_torchrun_trains_pauses_and_resumes_with_uneven_subsets(tmp_path):
    params = json.loads(json.dumps(MICRO_PARAMS))
    params["data"]["faces"]["train"] = 31  # subsets of 16 and 15 images: 15 does not split evenly over 2 ranks
    params["train"].update(epochs=2, subset_epochs=1, batch_size=4, session_epochs=1)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DIFFMODEL_QUIET": "1"}
    subprocess.run([sys.executable, "-m", "stages.prepare"], cwd=tmp_path, env=env, check=True, capture_output=True)

    first = torchrun(tmp_path, "--max-sessions", "1")
    assert first.returncode != 0  # torchrun reports the ranks' exit status 75 (paused) as a failure
    assert "paused (--max-sessions 1 reached) at epoch 2/2" in first.stdout + first.stderr
    assert not (tmp_path / "reports/loss/base.csv").exists()

    second = torchrun(tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "base: complete after 2 epochs, 3 steps" in second.stdout
    meta = json.loads((tmp_path / "models/base/meta.json").read_text())
    assert meta["complete"] and meta["resumes"] == 1
    # per epoch: steps x batch 4 x 2 ranks - 16 images, then 14 of 15 (one left out to keep the ranks in step)
    assert [h["images"] for h in meta["history"]] == [16, 8]
    assert [(s["start_epoch"], s["end_epoch"]) for s in meta["sessions"]] == [(0, 1), (1, 2)]
    assert (tmp_path / "reports/loss/base.csv").read_text().count("\n") == 3


def test_torchrun_accumulates_gradients_over_micro_batches(tmp_path):
    params = json.loads(json.dumps(MICRO_PARAMS))
    params["train"].update(epochs=1, subset_epochs=1, batch_size=2, accumulate=2, session_epochs=1)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DIFFMODEL_QUIET": "1"}
    subprocess.run([sys.executable, "-m", "stages.prepare"], cwd=tmp_path, env=env, check=True, capture_output=True)

    result = torchrun(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    # 16 images of subset 0 over 2 ranks: 8 each, micro-batches of 2, 2 per step -> 2 steps
    assert "base: complete after 1 epochs, 2 steps" in result.stdout
    assert json.loads((tmp_path / "models/base/meta.json").read_text())["history"][0]["images"] == 16


DISAGREEING_RANKS = """
import os
from pathlib import Path

from diffmodel.chain import MODELS
from diffmodel.config import load_params
from diffmodel.training.batches import TrainingData
from diffmodel.training.job import Limits, TrainJob
from diffmodel.training.loop import Trainer

rank = int(os.environ["RANK"])
# the ranks' validation losses differ (as floats from different GPUs can, in the last bit): rank 0's
# has reached the target, rank 1's has not
TrainingData.validation_loss = lambda self, ema, task, schedule: 0.5 if rank == 0 else 0.9
params, spec = load_params("params.yaml"), MODELS["base"]
job = TrainJob("base", spec.task, spec.domain, Path("data/prepared/faces"), Path("models/base"), params.model,
               params.diffusion, spec.schedule(params), target_val_loss=0.6)
print(f"rank {rank}: {Trainer(job, Limits(quiet=True)).run().value}", flush=True)
"""


def test_the_ranks_stop_at_rank_0s_decision_when_their_validation_losses_differ(tmp_path):
    params = json.loads(json.dumps(MICRO_PARAMS))
    params["train"].update(epochs=3, subset_epochs=1, batch_size=4, session_epochs=3)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    (tmp_path / "disagreeing_ranks.py").write_text(DISAGREEING_RANKS)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DIFFMODEL_QUIET": "1"}
    subprocess.run([sys.executable, "-m", "stages.prepare"], cwd=tmp_path, env=env, check=True, capture_output=True)

    result = torchrun(tmp_path, program=("disagreeing_ranks.py",))  # a rank leaving the loop alone hangs the other
    assert result.returncode == 0, result.stdout + result.stderr
    assert "rank 0: complete" in result.stdout and "rank 1: complete" in result.stdout
    meta = json.loads((tmp_path / "models/base/meta.json").read_text())
    assert meta["epoch"] == 1 and [h["val_loss"] for h in meta["history"]] == [0.5]
