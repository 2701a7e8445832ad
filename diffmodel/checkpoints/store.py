"""The checkpoint directory: weights for consumers, resume states, and meta.json (meta.py).

    models/<name>/
      model.safetensors EMA weights (what a child stage, `diffmodel` or any safetensors reader
                        loads), with the model's name, task, architecture, classes and parent
                        hash in its metadata; a PEFT model ("stores": "delta") holds only the
                        tensors it trained, and loading rebuilds the rest from its parent, whose
                        hash must match (LoRA's factors folded into the parent's weights: deltas.py)
      state-<step>.pt   resume state: online + EMA weights, optimizer, RNG states, counters (a
                        torch file: optimizer and RNG states are not flat tensors); the newest
                        two are kept, so a damaged one falls back to the other
      meta.json         the record: what the model is, its history, and the sha256 of each file

A save writes the new resume state (a new file), then meta.json naming it and the new weights'
hash - the commit - and last the weights file, which holds exactly the state's EMA weights. A
crash before the commit leaves the old model whole; a crash after it leaves meta.json
describing weights the newest state holds, and repair() writes the weights from it. Every file
is written atomically (temp file, fsync, rename). Nothing is unpickled but resume states, and
those with weights_only=True: a checkpoint is data, never code. Directories written before
safetensors hold model.pt (LEGACY_WEIGHTS), still read the same safe way.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from ..files import atomic_write, sha256_file
from .deltas import merge_low_rank, stored_keys
from .meta import META, CheckpointError, ModelMeta, StateRecord

WEIGHTS = "model.safetensors"
METADATA_KEY = "diffmodel"  # the weights file's metadata: what model it is, as JSON
LEGACY_WEIGHTS = "model.pt"  # a torch file {"ema": state dict}, written before 2026-12-02
KEEP_STATES = 2


def read_meta(directory: Path) -> ModelMeta | None:
    return ModelMeta.read(directory)


# what a weights file says about its model: enough to sample it alone (load_weights of the file)
ABOUT = ("name", "task", "domain", "method", "stores", "architecture", "diffusion", "classes")


def encode_weights(tensors: dict, meta: ModelMeta) -> bytes:
    about = {key: getattr(meta, key) for key in ABOUT} | {"parent_sha256": meta.parent.sha256 if meta.parent else None}
    # one metadata key: safetensors writes several in a random order, and the file's hash must not change
    return save_safetensors({k: v.detach().contiguous() for k, v in stored_keys(tensors).items()},
                            metadata={METADATA_KEY: json.dumps(about, sort_keys=True)})


def read_weights(path: Path) -> dict:
    """{"ema": state dict} of a weights file (safetensors, or a legacy model.pt read with weights_only)."""
    path = Path(path)
    if path.name == LEGACY_WEIGHTS:
        return torch.load(path, map_location="cpu", weights_only=True)
    return {"ema": load_safetensors(path.read_bytes())}


def weights_path(directory: Path) -> Path:
    """The directory's weights file: model.safetensors, or model.pt in a directory written before it."""
    path = Path(directory) / WEIGHTS
    legacy = Path(directory) / LEGACY_WEIGHTS
    return legacy if legacy.exists() and not path.exists() else path


def save(directory: Path, state: dict, meta: ModelMeta) -> ModelMeta:
    """Write resume state `state` and the weights it holds, committed by meta.json in between; drop old states."""
    directory = Path(directory)
    name = f"state-{state['step']:09d}.pt"
    atomic_write(directory / name, lambda f: torch.save(state, f))
    weights = encode_weights(state["ema"], meta)  # a PEFT state's EMA holds only the tensors it trains
    # Only older states are fallbacks: a later one belongs to a run this one resumed before
    # (because that state was damaged), and would push the intact fallback out.
    previous = [s for s in meta.states if s.step < state["step"] and (directory / s.file).exists()]
    newest = StateRecord(name, sha256_file(directory / name), state["epoch"], state["step"])
    meta = meta.replace(states=[newest, *previous][:KEEP_STATES], weights_sha256=hashlib.sha256(weights).hexdigest())
    meta.write(directory)
    atomic_write(directory / WEIGHTS, lambda f: f.write(weights))
    (directory / LEGACY_WEIGHTS).unlink(missing_ok=True)  # an old file beside the new one would describe other weights
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
    path = weights_path(directory)
    return path.exists() and sha256_file(path) == meta.weights_sha256


def repair(directory: Path, meta: ModelMeta) -> bool:
    """Finish a save a crash interrupted after its commit: write the weights file from the newest
    state when it holds the weights meta.json describes. Whether the weights now match meta.json."""
    if weights_intact(directory, meta):
        return True
    newest = meta.states[0] if meta.states else None
    if newest is None or not (Path(directory) / newest.file).exists() or sha256_file(Path(directory) / newest.file) != newest.sha256:
        return False
    weights = encode_weights(torch.load(Path(directory) / newest.file, map_location="cpu", weights_only=True)["ema"], meta)
    if hashlib.sha256(weights).hexdigest() != meta.weights_sha256:
        return False
    atomic_write(Path(directory) / WEIGHTS, lambda f: f.write(weights))
    return True


def load_weights(directory: Path) -> tuple[dict, ModelMeta]:
    """({"ema": full EMA state dict}, meta) of a finished checkpoint directory, a PEFT delta
    rebuilt on its parent chain (each parent's hash verified); one-line errors otherwise.
    A lone weights file (`dvc artifacts get` fetches only model.safetensors) loads too, described
    by its own metadata."""
    if Path(directory).is_file():
        return _load_weights_file(Path(directory))
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
    if meta.method == "lora":  # its factors fold into the parent's weights: plain weights from here on
        # (stored_keys: a delta written before 2026-12-02 has the factors' long training names)
        stored = merge_low_rank(parent_weights["ema"], stored_keys(stored), meta.schedule["lora_alpha"] / meta.schedule["lora_rank"])
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
    exported = meta.replace(stores="full", states=[], exported_from={"path": str(directory), "weights_sha256": meta.weights_sha256})
    content = encode_weights(weights["ema"], exported)
    atomic_write(out / WEIGHTS, lambda f: f.write(content))
    exported.replace(weights_sha256=hashlib.sha256(content).hexdigest()).write(out)
    return out / WEIGHTS


def _load_own_weights(directory: Path) -> tuple[dict, ModelMeta]:
    """What the directory's own weights file holds (a PEFT model's: its delta), verified against meta.json."""
    meta = read_meta(directory)
    if meta is None:
        raise CheckpointError(f"{directory}: not a checkpoint directory (no readable {META})")
    if not meta.complete:
        raise CheckpointError(f"{directory}: training is not finished (epoch {meta.epoch} of {meta.epochs}); "
                              f"run its stage again to continue it")
    path = weights_path(directory)
    if not path.exists():
        raise CheckpointError(f"{path}: missing")
    if sha256_file(path) != meta.weights_sha256:
        raise CheckpointError(f"{path}: does not match {META} (corrupted, or its last save was interrupted: run "
                              f"`dvc repro train@{meta.name}` to restore it from the resume state)")
    try:
        weights = read_weights(path)
    except Exception as err:  # torch's or safetensors' own error types
        raise CheckpointError(f"{path}: cannot be read ({type(err).__name__}: {str(err).splitlines()[0][:120]})") from None
    return weights, meta


def _load_weights_file(path: Path) -> tuple[dict, ModelMeta]:
    """A model.safetensors on its own: its metadata stands in for meta.json."""
    try:
        content = path.read_bytes()
        with safe_open(str(path), framework="pt") as file:
            about = json.loads((file.metadata() or {}).get(METADATA_KEY, "null"))
        tensors = load_safetensors(content)
    except Exception as err:  # safetensors' or json's own error types
        raise CheckpointError(f"{path}: not a diffmodel weights file ({type(err).__name__}: {str(err).splitlines()[0][:120]})") from None
    if not isinstance(about, dict) or not set(ABOUT) <= set(about):
        raise CheckpointError(f"{path}: its metadata does not describe a diffmodel model (written before "
                              f"2026-12-02?); load its checkpoint directory instead")
    if about["stores"] == "delta":
        raise CheckpointError(f"{path}: holds only the tensors PEFT trained on its parent; load its checkpoint directory, "
                              f"or `diffmodel export` it into a full copy first")
    meta = ModelMeta.from_json({**{key: about[key] for key in ABOUT}, "schedule": {}, "fingerprint": "", "fingerprint_parts": {},
                                "data": {}, "epochs": 0, "complete": True, "weights_sha256": hashlib.sha256(content).hexdigest()}, path)
    return {"ema": tensors}, meta


def check_architecture(expected: dict, found: dict, source: Path) -> None:
    """Refuse weights built for another U-Net, naming the first key that differs."""
    for key in sorted(set(expected) | set(found)):
        if expected.get(key) != found.get(key):
            raise CheckpointError(
                f"{source} was trained with {key}={found.get(key)!r} but params.yaml has {expected.get(key)!r}"
            )


__all__ = ["CheckpointError", "LEGACY_WEIGHTS", "META", "WEIGHTS", "ModelMeta", "check_architecture", "export", "load_state",
           "load_weights", "parent_directory", "read_meta", "read_weights", "repair", "save", "weights_intact", "weights_path"]
