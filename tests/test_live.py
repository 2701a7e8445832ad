"""stages/live.py: a training stage's DVCLive view is its model's history, every epoch once.

The killed-and-resumed case, through the real stage command, is in test_resume.py
(assert_live_view_is_the_history)."""

import csv
import json

from diffmodel.checkpoints.meta import EpochRecord
from stages.live import LiveHistory


def epoch(n: int) -> EpochRecord:
    return EpochRecord(epoch=n, subset=None, train_loss=1.0 / n, val_loss=0.5 / n, seconds=2.0, images=64)


def column(directory, metric):
    with (directory / "plots" / "metrics" / f"{metric}.tsv").open() as tsv:
        return [(int(row["step"]), float(row[metric])) for row in csv.DictReader(tsv, delimiter="\t")]


def test_each_epoch_is_logged_once_as_the_history_grows(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    live = LiveHistory(tmp_path / "live")
    live([])
    assert json.loads((tmp_path / "live/metrics.json").read_text()) == {}  # a fresh view, at once
    live([epoch(1)])
    live([epoch(1), epoch(2)])
    live([epoch(1), epoch(2), epoch(3)])
    assert column(tmp_path / "live", "val_loss") == [(1, 0.5), (2, 0.25), (3, 0.5 / 3)]
    assert column(tmp_path / "live", "images") == [(1, 64), (2, 128), (3, 192)]
    assert column(tmp_path / "live", "train_s") == [(1, 2.0), (2, 4.0), (3, 6.0)]
    assert json.loads((tmp_path / "live/metrics.json").read_text()) == {"step": 3, "val_loss": 0.5 / 3, "train_s": 6.0}


def test_a_resumed_run_rebuilds_the_view_from_its_saved_history(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    killed = LiveHistory(tmp_path / "live")
    killed([epoch(1), epoch(2), epoch(3)])  # epoch 3 logged, then killed before its save
    resumed = LiveHistory(tmp_path / "live")  # the next run starts from the saved history: epochs 1-2
    resumed([epoch(1), epoch(2)])
    resumed([epoch(1), epoch(2), epoch(3)])
    for metric in ("train_loss", "val_loss", "seconds", "train_s", "images"):
        assert [step for step, _ in column(tmp_path / "live", metric)] == [1, 2, 3], metric


def test_a_history_that_is_not_an_extension_starts_the_view_again(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    live = LiveHistory(tmp_path / "live")
    live([epoch(1), epoch(2)])
    live([epoch(1)])  # training restarted from scratch in the same process (e.g. another configuration)
    assert column(tmp_path / "live", "val_loss") == [(1, 0.5)]
