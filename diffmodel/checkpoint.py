"""The checkpoint directory: weights for consumers, resume state, and meta.json.

    models/<name>/
      model.pt          EMA weights (what a child stage or `diffmodel sample` loads); a PEFT
                        model ("stores": "delta" in meta.json) holds only the tensors it trained,
                        and loading rebuilds the rest from its parent, whose hash must match
      state-<step>.pt   resume state: online + EMA weights, optimizer, RNG states, counters;
                        the newest two are kept, so a damaged one falls back to the other
      meta.json         task, domain, architecture, parent and its hash, fingerprint,
                        history, sessions, and the sha256 of every file above

Every file is written atomically (temp file, fsync, rename), and meta.json is written last:
it only ever names files that are complete. Everything is loaded with weights_only=True:
a checkpoint is data, never code.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from .errors import UserError
from .files import atomic_write, sha256_file, write_json

META = "meta.json"
WEIGHTS = "model.pt"
KEEP_STATES = 2


class CheckpointError(UserError):
    """A one-line, user-facing problem with a checkpoint directory."""


def fingerprint(parts: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def read_meta(directory: Path) -> dict | None:
    path = Path(directory) / META
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def save(directory: Path, state: dict, weights: dict, meta: dict) -> dict:
    """Write a new resume state and the consumer weights, then meta.json naming them; drop old states."""
    directory = Path(directory)
    name = f"state-{state['step']:09d}.pt"
    atomic_write(directory / name, lambda f: torch.save(state, f))
    atomic_write(directory / WEIGHTS, lambda f: torch.save(weights, f))
    # Only older states are fallbacks: a later one belongs to a run this one resumed before
    # (because that state was damaged), and would push the intact fallback out.
    previous = [s for s in meta.get("states", []) if s["step"] < state["step"] and (directory / s["file"]).exists()]
    states = [{"file": name, "sha256": sha256_file(directory / name), "epoch": state["epoch"], "step": state["step"]}]
    meta = {**meta, "states": (states + previous)[:KEEP_STATES], "weights_sha256": sha256_file(directory / WEIGHTS)}
    write_json(directory / META, meta)
    kept = {s["file"] for s in meta["states"]}
    for old in directory.glob("state-*.pt"):
        if old.name not in kept:
            old.unlink(missing_ok=True)
    for partial in directory.glob(".*.tmp"):  # left by a process killed mid-write (SIGKILL, power loss)
        partial.unlink(missing_ok=True)
    return meta


def load_state(directory: Path, meta: dict, log=print) -> dict | None:
    """The newest resume state whose checksum matches; a damaged one is reported and skipped."""
    for entry in meta.get("states", []):
        path = Path(directory) / entry["file"]
        if not path.exists():
            log(f"resume state {path} is missing; trying an older one")
            continue
        if sha256_file(path) != entry["sha256"]:
            log(f"resume state {path} is corrupted (checksum mismatch); trying an older one")
            continue
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # a file that hashes right but does not unpickle: report, do not crash
            log(f"resume state {path} cannot be read ({type(err).__name__}); trying an older one")
    return None


def load_weights(directory: Path) -> tuple[dict, dict]:
    """({"ema": full EMA state dict}, meta) of a finished checkpoint directory, a PEFT delta
    rebuilt on its parent chain (each parent's hash verified); one-line errors otherwise."""
    weights, meta = _load_own_weights(Path(directory))
    if meta.get("stores") == "delta":
        weights = {"ema": _on_parent(Path(directory), meta, weights["ema"])}
    return weights, meta


def parent_directory(directory: Path, meta: dict) -> Path | None:
    """Where a model's parent is: its recorded path (relative to the working directory, as the
    stages write it) or a sibling of the same name (a models/ folder copied elsewhere) - the one
    holding the weights it was trained from, else the first that exists (to report it)."""
    recorded = Path(meta["parent"]["path"])
    found = [c for c in (recorded, Path(directory).parent / recorded.name) if (c / META).exists()]
    for candidate in found:
        if (read_meta(candidate) or {}).get("weights_sha256") == meta["parent"].get("sha256"):
            return candidate
    return found[0] if found else None


def _on_parent(directory: Path, meta: dict, stored: dict) -> dict:
    parent = meta.get("parent") or {}
    if not parent:
        raise CheckpointError(f"{directory}: stores a delta but names no parent in {META}")
    where = parent_directory(directory, meta)
    if where is None:
        raise CheckpointError(
            f"{directory} stores only the tensors PEFT trained; its parent {parent['path']} is missing: restore it "
            f"(`dvc pull` or `dvc repro train@{parent.get('name')}`), or `diffmodel export` it where the parent exists")
    try:
        parent_weights, parent_meta = load_weights(where)
    except CheckpointError as err:
        raise CheckpointError(f"{directory} needs its parent: {err}") from None
    if parent_meta.get("weights_sha256") != parent["sha256"]:
        raise CheckpointError(
            f"{directory} was fine-tuned (PEFT) from {where} with weights {parent['sha256'][:12]}, but {where} now holds "
            f"{str(parent_meta.get('weights_sha256'))[:12]}: retrain it (`dvc repro train@{meta.get('name')}`) or restore "
            f"the {where} it was trained from")
    # a class embedder is the model's own (PEFT trains and stores it whole): new, or replacing the parent's
    own_classes = "class_embed."
    unknown = sorted(k for k in set(stored) - set(parent_weights["ema"]) if not k.startswith(own_classes))
    if unknown:
        raise CheckpointError(f"{directory}: stores tensors its parent {where} does not have ({', '.join(unknown[:3])})")
    inherited = {k: v for k, v in parent_weights["ema"].items() if not k.startswith(own_classes)}
    return {**inherited, **stored}


def export(directory: Path, out: Path) -> Path:
    """A standalone copy of a finished model in `out`: the full EMA weights (a PEFT delta
    rebuilt on its parents) and its meta.json, loadable without the parent chain."""
    directory, out = Path(directory), Path(out)
    if (out / META).exists():
        raise CheckpointError(f"{out}: already holds a model ({META}); export to a new directory")
    weights, meta = load_weights(directory)
    atomic_write(out / WEIGHTS, lambda f: torch.save(weights, f))
    exported = {k: v for k, v in meta.items() if k not in ("states", "weights_sha256")}
    exported.update(stores="full", states=[], weights_sha256=sha256_file(out / WEIGHTS),
                    exported_from={"path": str(directory), "weights_sha256": meta["weights_sha256"]})
    write_json(out / META, exported)
    return out / WEIGHTS


def _load_own_weights(directory: Path) -> tuple[dict, dict]:
    """What the directory's own model.pt holds (a PEFT model's: its delta), verified against meta.json."""
    meta = read_meta(directory)
    if meta is None:
        raise CheckpointError(f"{directory}: not a checkpoint directory (no readable {META})")
    if not meta.get("complete"):
        raise CheckpointError(f"{directory}: training is not finished (epoch {meta.get('epoch', 0)} of {meta.get('epochs', '?')}); run its stage again to continue it")
    path = directory / WEIGHTS
    if not path.exists():
        raise CheckpointError(f"{path}: missing")
    if sha256_file(path) != meta.get("weights_sha256"):
        raise CheckpointError(f"{path}: corrupted (checksum does not match {META})")
    try:
        weights = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{path}: cannot be read ({type(err).__name__}: {str(err).splitlines()[0][:120]})") from None
    return weights, meta


def check_architecture(expected: dict, found: dict, source: Path) -> None:
    """Refuse weights built for another U-Net, naming the first key that differs."""
    for key in sorted(set(expected) | set(found)):
        if expected.get(key) != found.get(key):
            raise CheckpointError(
                f"{source} was trained with {key}={found.get(key)!r} but params.yaml has {expected.get(key)!r}"
            )
