"""Resume policy: which saved state a training job may continue, and what is set aside (and why).

A checkpoint directory is continued only when its fingerprint matches the job's. The
fingerprint covers everything that shapes the weights:

- the job: task, domain, U-Net shape, diffusion, the training schedule (minus the knobs in
  NOT_FINGERPRINTED), the parent's weights, the number of processes;
- the data: its content hash and, for incremental learning, its partition into subsets;
- the code: a hash of every project file the training loop imports (source_code.py), so a
  changed loss, network or mask retrains instead of passing old weights off as new ones
  (config.py aside: the values it parses are fingerprinted instead).

Anything else is moved to models/.stale/<name>/ (kept for inspection, never loaded) and the job
starts fresh, saying in one line what changed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

from . import checkpoint
from .config import TrainConfig, as_plain_dict
from .source_code import source_hashes

# Knobs that do not change what the model learns: when and how often state is saved, and
# `epochs`, because nothing in the loop looks at the total (constant learning rate after
# warm-up; subset rotation and EMA warm-up go by epoch and step). A finished run continued
# to more epochs is bitwise what a longer run from scratch gives, so `-S adapt.epochs=25`
# trains only the extra epochs.
NOT_FINGERPRINTED = {"epochs", "session_epochs", "checkpoint_every_epochs", "checkpoint_every_minutes", "num_workers"}
# meta.json keys that move with training; each state file carries them as of its own save.
PROGRESS = ("epoch", "step", "batch_in_epoch", "history", "sessions", "unfinished_session", "resumes", "partial_epoch")
TRAINING_CODE = "diffmodel.train"  # the module whose imports make up the training code
# What config.py does to training is the values it parses, and those are fingerprinted above;
# hashing its text too would retrain every model for a changed default of an unrelated section.
VALUES_NOT_CODE = {"diffmodel/config.py"}


def fingerprint_parts(job_values: dict, schedule: TrainConfig, data_hash: str, subsets: list, parent_sha256: str | None,
                      world_size: int, unused: tuple[str, ...] = ()) -> dict:
    """Everything that shapes a job's weights, as JSON-ready values (compared part by part to say what
    changed). `unused`: schedule keys that do not shape this job (label dropout without classes)."""
    ignored = NOT_FINGERPRINTED | set(unused)
    parts = {
        **job_values,  # task, domain, architecture, diffusion, classes
        "schedule": {k: v for k, v in as_plain_dict(schedule).items() if k not in ignored},
        "parent": parent_sha256,
        "data": data_hash,
        "world_size": world_size,
        "code": {path: digest for path, digest in source_hashes(TRAINING_CODE).items() if path not in VALUES_NOT_CODE},
    }
    if schedule.subset_epochs:  # batch learning visits every image every epoch, whatever the partition
        parts["data_subsets"] = [list(bounds) for bounds in subsets]
    return parts


def describe_change(old: dict, new: dict) -> str:
    """What differs between two fingerprints' parts, for a one-line message."""
    changes = []
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        if key == "code" and isinstance(before, dict):
            files = sorted(f for f in set(before) | set(after) if before.get(f) != after.get(f))
            changes.append(f"training code changed ({', '.join(files)})")
        elif key == "code":
            changes.append("trained by an older version of the code (no code hash)")
        elif key == "schedule" and isinstance(before, dict):
            keys = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
            changes.append(f"training params changed ({', '.join(keys)})")
        elif key == "data_subsets":
            changes.append("data subsets changed (data.num_subsets)")
        elif key == "parent":
            changes.append("parent weights changed")
        else:
            changes.append(f"{key} changed")
    return "; ".join(changes) or "settings changed"


class ResumePolicy:
    """Decides, for one checkpoint directory, between continuing it, keeping it as finished,
    and setting it aside."""

    def __init__(self, name: str, out_dir: Path, schedule: TrainConfig, fingerprint: str, parts: dict,
                 fresh_meta: Callable[[], dict], log: Callable[[str], None], target_val_loss: float | None = None):
        self.name, self.out_dir, self.schedule = name, Path(out_dir), schedule
        self.fingerprint, self.parts = fingerprint, parts
        self.fresh_meta, self.log = fresh_meta, log
        self.target_val_loss = target_val_loss

    def finished(self, meta: dict) -> bool:
        """Complete at the epochs asked, or - with a target - complete having reached it."""
        if not meta.get("complete"):
            return False
        if self.target_val_loss is not None and any(row["val_loss"] <= self.target_val_loss for row in meta["history"]):
            return meta["epoch"] <= self.schedule.epochs
        return meta["epoch"] == self.schedule.epochs

    def find(self) -> tuple[dict, dict | None]:
        """(meta, resume state): a fresh meta and None to start over, a finished meta and None
        when there is nothing to train, or the state to continue from."""
        meta = checkpoint.read_meta(self.out_dir)
        if meta is None:
            if self.out_dir.exists() and any(self.out_dir.iterdir()):
                self.set_aside("no readable meta.json")
            return self.fresh_meta(), None
        if meta.get("fingerprint") != self.fingerprint:
            self.set_aside(describe_change(meta.get("fingerprint_parts", {}), self.parts))
            return self.fresh_meta(), None
        wanted = self.schedule.epochs
        if self.finished(meta):  # the weights are all a finished run needs
            return meta, None
        if epochs_begun(meta) > wanted:
            self.set_aside(f"it was trained for more than the {wanted} epochs now asked")
            return self.fresh_meta(), None
        state = checkpoint.load_state(self.out_dir, meta, self.log)
        if state is None:
            self.set_aside("no intact resume state")
            return self.fresh_meta(), None
        if meta.get("complete"):
            goal = f"{wanted} epochs" if self.target_val_loss is None else \
                f"validation loss {self.target_val_loss:.6f} (at most {wanted} epochs)"
            self.log(f"{self.name}: continuing the finished {meta['epoch']}-epoch run to {goal}")
        return self.continued(meta, state), state

    def read_kept(self) -> tuple[dict, dict | None]:
        """What find() kept, for the processes of a DDP run other than rank 0 (which decided)."""
        meta = checkpoint.read_meta(self.out_dir)
        if meta and self.finished(meta):
            return meta, None
        state = checkpoint.load_state(self.out_dir, meta) if meta else None
        return (self.continued(meta, state), state) if state is not None else (self.fresh_meta(), None)

    def continued(self, meta: dict, state: dict) -> dict:
        """meta.json for training on from `state`, up to the epochs asked now."""
        meta = rewound(meta, state)
        unfinished = meta.pop("unfinished_session", None)
        if unfinished:  # the run that saved `state` died before it could end its session
            meta["sessions"] = [*meta["sessions"], {**unfinished, "ended": "abruptly (counted to its last save)"}]
        return {**meta, "complete": False, "epochs": self.schedule.epochs, "schedule": as_plain_dict(self.schedule)}

    def set_aside(self, reason: str) -> None:
        """Move an unusable checkpoint directory out of the way (kept for inspection, never loaded)."""
        aside = self.out_dir.parent / ".stale" / self.out_dir.name
        if aside.exists():
            shutil.rmtree(aside)
        aside.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(self.out_dir), str(aside))
        self.log(f"{self.name}: {reason}; starting fresh, old state moved to {aside}")


def rewound(meta: dict, state: dict) -> dict:
    """meta.json as it was when `state` was saved: after falling back to an older state (the newest
    was damaged), history and sessions must not keep the epochs that are about to be trained again."""
    if "progress" in state:
        meta = {**{k: v for k, v in meta.items() if k not in PROGRESS}, **json.loads(state["progress"])}
    kept = [s for s in meta.get("states", []) if s["step"] <= state["step"]]  # drop the rejected newer ones
    return {**meta, "states": kept}


def epochs_begun(meta: dict) -> int:
    """Finished epochs, plus the one in progress when the state is from the middle of it."""
    return meta["epoch"] + (1 if meta.get("batch_in_epoch") else 0)
