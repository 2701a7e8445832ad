"""The checkpoint directory: weights for consumers, resume states, and meta.json (meta.py).

    models/<name>/
      model.pt          EMA weights (what a child stage or `diffmodel` loads); a PEFT model
                        ("stores": "delta") holds only the tensors it trained, and loading
                        rebuilds the rest from its parent, whose hash must match
      state-<step>.pt   resume state: online + EMA weights, optimizer, RNG states, counters;
                        the newest two are kept, so a damaged one falls back to the other
      meta.json         the record: what the model is, its history, and the sha256 of each file

A save writes the new resume state (a new file), then meta.json naming it and the new weights'
hash - the commit - and last model.pt, which holds exactly the state's EMA weights. A crash
before the commit leaves the old model whole; a crash after it leaves meta.json describing
weights the newest state holds, and repair() writes model.pt from it. Every file is written
atomically (temp file, fsync, rename). Everything is loaded with weights_only=True: a
checkpoint is data, never code.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import torch

from ..files import atomic_write, sha256_file
from .meta import META, CheckpointError, ModelMeta, StateRecord

WEIGHTS = "model.pt"
KEEP_STATES = 2


def read_meta(directory: Path) -> ModelMeta | None:
    return ModelMeta.read(directory)


def weights_bytes(state: dict) -> bytes:
    """model.pt's content for a resume state: its EMA weights (a PEFT state's: the trained tensors)."""
    buffer = io.BytesIO()
    torch.save({"ema": state["ema"]}, buffer)
    return buffer.getvalue()


def save(directory: Path, state: dict, meta: ModelMeta) -> ModelMeta:
    """Write resume state `state` and the weights it holds, committed by meta.json in between; drop old states."""
    directory = Path(directory)
    name = f"state-{state['step']:09d}.pt"
    atomic_write(directory / name, lambda f: torch.save(state, f))
    weights = weights_bytes(state)
    # Only older states are fallbacks: a later one belongs to a run this one resumed before
    # (because that state was damaged), and would push the intact fallback out.
    previous = [s for s in meta.states if s.step < state["step"] and (directory / s.file).exists()]
    newest = StateRecord(name, sha256_file(directory / name), state["epoch"], state["step"])
    meta = meta.replace(states=[newest, *previous][:KEEP_STATES], weights_sha256=hashlib.sha256(weights).hexdigest())
    meta.write(directory)
    atomic_write(directory / WEIGHTS, lambda f: f.write(weights))
    kept = {s.file for s in meta.states}
    for old in directory.glob("state-*.pt"):
        if old.name not in kept:
            old.unlink(missing_ok=True)
    for partial in directory.glob(".*.tmp"):  # left by a process killed mid-write (SIGKILL, power loss)
        partial.unlink(missing_ok=True)
    return meta


def load_state(directory: Path, meta: ModelMeta, log=print) -> dict | None:
    """The newest resume state whose checksum matches; a damaged one is reported and skipped."""
    for entry in meta.states:
        path = Path(directory) / entry.file
        if not path.exists():
            log(f"resume state {path} is missing; trying an older one")
            continue
        if sha256_file(path) != entry.sha256:
            log(f"resume state {path} is corrupted (checksum mismatch); trying an older one")
            continue
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # a file that hashes right but does not unpickle: report, do not crash
            log(f"resume state {path} cannot be read ({type(err).__name__}); trying an older one")
    return None


def weights_intact(directory: Path, meta: ModelMeta) -> bool:
    path = Path(directory) / WEIGHTS
    return path.exists() and sha256_file(path) == meta.weights_sha256


def repair(directory: Path, meta: ModelMeta) -> bool:
    """Finish a save a crash interrupted after its commit: write model.pt from the newest state when
    it holds the weights meta.json describes. Whether model.pt now matches meta.json."""
    if weights_intact(directory, meta):
        return True
    newest = meta.states[0] if meta.states else None
    if newest is None or not (Path(directory) / newest.file).exists() or sha256_file(Path(directory) / newest.file) != newest.sha256:
        return False
    weights = weights_bytes(torch.load(Path(directory) / newest.file, map_location="cpu", weights_only=True))
    if hashlib.sha256(weights).hexdigest() != meta.weights_sha256:
        return False
    atomic_write(Path(directory) / WEIGHTS, lambda f: f.write(weights))
    return True


def load_weights(directory: Path) -> tuple[dict, ModelMeta]:
    """({"ema": full EMA state dict}, meta) of a finished checkpoint directory, a PEFT delta
    rebuilt on its parent chain (each parent's hash verified); one-line errors otherwise."""
    weights, meta = _load_own_weights(Path(directory))
    if meta.stores == "delta":
        weights = {"ema": _on_parent(Path(directory), meta, weights["ema"])}
    return weights, meta


def parent_directory(directory: Path, meta: ModelMeta) -> Path | None:
    """Where a model's parent is: its recorded path (relative to the working directory, as the
    stages write it) or a sibling of the same name (a models/ folder copied elsewhere) - the one
    holding the weights it was trained from, else the first that exists (to report it)."""
    recorded = Path(meta.parent.path)
    found = [c for c in (recorded, Path(directory).parent / recorded.name) if (c / META).exists()]
    for candidate in found:
        parent_meta = _meta_or_none(candidate)
        if parent_meta is not None and parent_meta.weights_sha256 == meta.parent.sha256:
            return candidate
    return found[0] if found else None


def _meta_or_none(directory: Path) -> ModelMeta | None:
    try:
        return read_meta(directory)
    except CheckpointError:
        return None


def _on_parent(directory: Path, meta: ModelMeta, stored: dict) -> dict:
    parent = meta.parent
    if parent is None:
        raise CheckpointError(f"{directory}: stores a delta but names no parent in {META}")
    where = parent_directory(directory, meta)
    if where is None:
        raise CheckpointError(
            f"{directory} stores only the tensors PEFT trained; its parent {parent.path} is missing: restore it "
            f"(`dvc pull` or `dvc repro train@{parent.name}`), or `diffmodel export` it where the parent exists")
    try:
        parent_weights, parent_meta = load_weights(where)
    except CheckpointError as err:
        raise CheckpointError(f"{directory} needs its parent: {err}") from None
    if parent_meta.weights_sha256 != parent.sha256:
        raise CheckpointError(
            f"{directory} was fine-tuned (PEFT) from {where} with weights {parent.sha256[:12]}, but {where} now holds "
            f"{str(parent_meta.weights_sha256)[:12]}: retrain it (`dvc repro train@{meta.name}`) or restore "
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
    exported = meta.replace(stores="full", states=[], weights_sha256=sha256_file(out / WEIGHTS),
                            exported_from={"path": str(directory), "weights_sha256": meta.weights_sha256})
    exported.write(out)
    return out / WEIGHTS


def _load_own_weights(directory: Path) -> tuple[dict, ModelMeta]:
    """What the directory's own model.pt holds (a PEFT model's: its delta), verified against meta.json."""
    meta = read_meta(directory)
    if meta is None:
        raise CheckpointError(f"{directory}: not a checkpoint directory (no readable {META})")
    if not meta.complete:
        raise CheckpointError(f"{directory}: training is not finished (epoch {meta.epoch} of {meta.epochs}); "
                              f"run its stage again to continue it")
    path = directory / WEIGHTS
    if not path.exists():
        raise CheckpointError(f"{path}: missing")
    if sha256_file(path) != meta.weights_sha256:
        raise CheckpointError(f"{path}: does not match {META} (corrupted, or its last save was interrupted: run "
                              f"`dvc repro train@{meta.name}` to restore it from the resume state)")
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


__all__ = ["CheckpointError", "META", "WEIGHTS", "ModelMeta", "check_architecture", "export", "load_state",
           "load_weights", "parent_directory", "read_meta", "repair", "save", "weights_intact"]
