"""A training stage's live view with DVCLive: reports/live/MODEL/, rewritten from the model's own
history every time training starts, then one step per epoch.

While `dvc exp run` trains, `dvc exp show` in another terminal reads metrics.json (the latest
epoch as `step`, its validation loss and the training seconds so far), and `dvc plots diff`
overlays plots/metrics/*.tsv of several experiments. DVCLive's own resume (`resume=True`) would
go on from the last step it wrote, which may be an epoch the interrupted run never saved: here
the history in meta.json is the truth, so a resumed run's files hold each epoch exactly once.
"""

from __future__ import annotations

from pathlib import Path

from dvclive import Live

from diffmodel.checkpoints.meta import EpochRecord

LIVE_ROOT = Path("reports/live")


class LiveHistory:
    """Called by the Trainer with the whole history: rebuilds the directory on the first call, then
    appends the epochs it has not logged."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.live: Live | None = None
        self.logged: list[EpochRecord] = []
        self.train_seconds = 0.0
        self.images = 0

    def __call__(self, history: list[EpochRecord]) -> None:
        if self.live is None or history[:len(self.logged)] != self.logged:
            self._restart()
        for record in history[len(self.logged):]:
            self._log(record)

    def _restart(self) -> None:
        # resume=False: DVCLive empties its metrics.json and plots first
        self.live = Live(str(self.directory), resume=False, report=None, save_dvc_exp=False, dvcyaml=False)
        self.logged, self.train_seconds, self.images = [], 0.0, 0
        self.live.make_summary()  # an empty view at once: no stale metrics.json from another run

    def _log(self, record: EpochRecord) -> None:
        live = self.live
        self.train_seconds += record.seconds
        self.images += record.images
        live.step = record.epoch
        live.log_metric("train_loss", record.train_loss)
        live.log_metric("val_loss", record.val_loss)
        live.log_metric("seconds", record.seconds)
        live.log_metric("train_s", round(self.train_seconds, 3))
        live.log_metric("images", self.images)
        # metrics.json, the model's training row (and DVCLive's `step`, the epoch): few, short columns,
        # so `dvc exp show` and `dvc metrics show` stay readable
        live.summary = {"val_loss": record.val_loss, "train_s": round(self.train_seconds, 1)}
        live.next_step()
        self.logged.append(record)
