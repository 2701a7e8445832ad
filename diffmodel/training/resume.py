"""Resume policy: which saved state a training job may continue, and what is set aside (and why).

A checkpoint directory is continued only when its fingerprint (checkpoints/fingerprint.py)
matches the job's. Anything else is moved to models/.stale/<name>-<time>-<fingerprint>/ - each
set-aside kept under a name of its own, never loaded, listed by `diffmodel inspect` - and the
job starts fresh, saying in one line what changed.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path
from typing import Callable

from ..checkpoints import store
from ..checkpoints.fingerprint import describe_change
from ..checkpoints.meta import CheckpointError, ModelMeta
from ..config import TrainConfig, as_plain_dict

STALE = ".stale"


def stale_directories(out_dir: Path) -> list[Path]:
    """The set-aside states of the model in `out_dir`, oldest first."""
    out_dir = Path(out_dir)
    return sorted((out_dir.parent / STALE).glob(f"{out_dir.name}-*"))


class ResumePolicy:
    """Decides, for one checkpoint directory, between continuing it, keeping it as finished,
    and setting it aside."""

    def __init__(self, name: str, out_dir: Path, schedule: TrainConfig, fingerprint: str, parts: dict,
                 fresh_meta: Callable[[], ModelMeta], log: Callable[[str], None], target_val_loss: float | None = None):
        self.name, self.out_dir, self.schedule = name, Path(out_dir), schedule
        self.fingerprint, self.parts = fingerprint, parts
        self.fresh_meta, self.log = fresh_meta, log
        self.target_val_loss = target_val_loss

    def finished(self, meta: ModelMeta) -> bool:
        """Complete at the epochs asked, or - with a target - complete having reached it."""
        if not meta.complete:
            return False
        if self.target_val_loss is not None and any(row.val_loss <= self.target_val_loss for row in meta.history):
            return meta.epoch <= self.schedule.epochs
        return meta.epoch == self.schedule.epochs

    def find(self) -> tuple[ModelMeta, dict | None]:
        """(meta, resume state): a fresh meta and None to start over, a finished meta and None
        when there is nothing to train, or the state to continue from."""
        meta = self._readable_meta()
        if meta is None:
            if self.out_dir.exists() and any(self.out_dir.iterdir()):
                self.set_aside("no readable meta.json")
            return self.fresh_meta(), None
        if meta.fingerprint != self.fingerprint:
            self.set_aside(describe_change(meta.fingerprint_parts, self.parts), meta.fingerprint)
            return self.fresh_meta(), None
        wanted = self.schedule.epochs
        if self.finished(meta):  # the weights are all a finished run needs
            if store.repair(self.out_dir, meta):
                return meta, None
            self.set_aside("its weights file does not match meta.json and no resume state holds those weights", meta.fingerprint)
            return self.fresh_meta(), None
        if epochs_begun(meta) > wanted:
            self.set_aside(f"it was trained for more than the {wanted} epochs now asked", meta.fingerprint)
            return self.fresh_meta(), None
        state = store.load_state(self.out_dir, meta, self.log)
        if state is None:
            self.set_aside("no intact resume state", meta.fingerprint)
            return self.fresh_meta(), None
        if meta.complete:
            goal = f"{wanted} epochs" if self.target_val_loss is None else \
                f"validation loss {self.target_val_loss:.6f} (at most {wanted} epochs)"
            self.log(f"{self.name}: continuing the finished {meta.epoch}-epoch run to {goal}")
        return self.continued(meta, state), state

    def read_kept(self) -> tuple[ModelMeta, dict | None]:
        """What find() kept, for the processes of a DDP run other than rank 0 (which decided)."""
        meta = self._readable_meta()
        if meta and self.finished(meta):
            return meta, None
        state = store.load_state(self.out_dir, meta) if meta else None
        return (self.continued(meta, state), state) if state is not None else (self.fresh_meta(), None)

    def continued(self, meta: ModelMeta, state: dict) -> ModelMeta:
        """meta.json for training on from `state`, up to the epochs asked now."""
        meta = rewound(meta, state)
        if meta.unfinished_session:  # the run that saved `state` died before it could end its session
            dead = dataclasses.replace(meta.unfinished_session, ended="abruptly (counted to its last save)")
            meta = meta.replace(sessions=[*meta.sessions, dead], unfinished_session=None)
        return meta.replace(complete=False, epochs=self.schedule.epochs, schedule=as_plain_dict(self.schedule))

    def set_aside(self, reason: str, old_fingerprint: str | None = None) -> None:
        """Move an unusable checkpoint directory out of the way, under a name no later set-aside takes
        (kept for inspection, never loaded)."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        base = self.out_dir.parent / STALE / f"{self.out_dir.name}-{stamp}-{(old_fingerprint or 'unknown')[:8]}"
        aside, n = base, 1
        while aside.exists():
            n += 1
            aside = base.with_name(f"{base.name}-{n}")
        aside.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(self.out_dir), str(aside))
        self.log(f"{self.name}: {reason}; starting fresh, old state moved to {aside} "
                 f"(`rm -r {aside}` deletes it)")

    def _readable_meta(self) -> ModelMeta | None:
        try:
            return store.read_meta(self.out_dir)
        except CheckpointError:  # a record this code cannot read: like no record, set aside
            return None


def rewound(meta: ModelMeta, state: dict) -> ModelMeta:
    """meta.json as it was when `state` was saved: after falling back to an older state (the newest
    was damaged), history and sessions must not keep the epochs that are about to be trained again."""
    if "progress" in state:
        meta = meta.rewound(state["progress"])
    return meta.replace(states=[s for s in meta.states if s.step <= state["step"]])  # drop the rejected newer ones


def epochs_begun(meta: ModelMeta) -> int:
    """Finished epochs, plus the one in progress when the state is from the middle of it."""
    return meta.epoch + (1 if meta.batch_in_epoch else 0)
