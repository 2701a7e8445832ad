"""The fingerprint of a model: everything that shapes its weights, hashed.

- the job: task, domain, U-Net shape, diffusion, classes, the training schedule (minus the
  knobs in NOT_FINGERPRINTED), the parent's weights, the number of processes;
- the data: its content hash and, for incremental learning, its partition into subsets;
- the code: the code of every project file the training loop imports (source_code.py: the
  syntax tree, so comments and docstrings do not count), so a changed loss, network or mask
  retrains instead of passing old weights off as new ones (the config package aside: the
  values it parses are fingerprinted instead).

A checkpoint is resumed only by a job with the same fingerprint (training/resume.py).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ..config import TrainConfig, as_plain_dict
from .source_code import source_hashes

# Knobs that do not change what the model learns: when and how often state is saved, and
# `epochs`, because nothing in the loop looks at the total (constant learning rate after
# warm-up; subset rotation and EMA warm-up go by epoch and step). A finished run continued
# to more epochs is bitwise what a longer run from scratch gives, so `-S adapt.epochs=25`
# trains only the extra epochs.
NOT_FINGERPRINTED = {"epochs", "session_epochs", "checkpoint_every_epochs", "checkpoint_every_minutes"}
TRAINING_CODE = "diffmodel.training.loop"  # the module whose imports make up the training code
# What the config package does to training is the values it parses, and those are fingerprinted
# above; hashing its code too would retrain every model for a changed default of an unrelated section.
VALUES_NOT_CODE = "diffmodel/config/"


def fingerprint(parts: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def training_code() -> dict[str, str]:
    """{path: digest} of the code the training loop runs."""
    return {path: digest for path, digest in source_hashes(TRAINING_CODE).items() if not path.startswith(VALUES_NOT_CODE)}


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
        "code": training_code(),
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
