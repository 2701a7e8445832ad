"""The one training loop: every training stage is this loop with another task, domain, init and schedule.

Training runs in sessions of `session_epochs` epochs (the paper's time-limited Colab
sessions). State is saved at the end of every session and every `checkpoint_every_epochs`
epochs or `checkpoint_every_minutes` minutes, and on SIGINT/SIGTERM at the next step.
Running the same job again continues from the newest good state whose fingerprint (params,
parent weights, data and training code: resume.py) matches; anything else is set aside and
training starts fresh. On CPU a resumed run is bitwise identical to an
uninterrupted one: data order depends only on (seed, epoch) and every RNG is restored.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import os
import random
import resource
import signal
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from . import checkpoint, peft, precision
from .classes import NO_LABEL, ClassScheme
from .config import DiffusionConfig, ModelConfig, TrainConfig, as_plain_dict
from .data.prepared import PreparedDomain, load_domain
from .data.tensors import to_tensor
from .data.subsets import epoch_indices, rank_share, subset_for_epoch
from .diffusion import Schedule, training_loss
from .errors import UserError
from .resume import PROGRESS, ResumePolicy, fingerprint_parts
from .tasks import make_task
from .unet import Labels, UNet, label_tensors

VAL_SEED = 20240722
LABEL_DROPOUT = ("label_dropout", "label_dropout_all")


class Outcome(Enum):
    COMPLETE = "complete"
    PAUSED = "paused"  # a session or time limit was reached; state saved
    INTERRUPTED = "interrupted"  # SIGINT/SIGTERM; state saved


@dataclass(frozen=True)
class TrainJob:
    name: str
    task: str
    domain: str
    data_dir: Path
    out_dir: Path
    model: ModelConfig
    diffusion: DiffusionConfig
    schedule: TrainConfig
    init: Path | None = None  # parent checkpoint directory; None trains from scratch
    stage: str | None = None  # the pipeline stage that runs this job, for "how to continue" messages
    # stop as soon as the validation loss is at most this (a baseline matching its counterpart's
    # quality); schedule.epochs is then a cap. Like epochs, not part of the fingerprint.
    target_val_loss: float | None = None


@dataclass(frozen=True)
class Limits:
    max_sessions: int | None = None
    time_limit_minutes: float | None = None
    quiet: bool = False


def architecture(model: ModelConfig, image_size: int) -> dict:
    return {**{f"model.{k}": v for k, v in as_plain_dict(model).items()}, "data.image_size": image_size}


def build_model(model: ModelConfig, image_size: int, dropout: float = 0.0, classes: ClassScheme | None = None) -> UNet:
    return UNet(model, image_size, dropout, classes=classes)


def start_from_parent(model: UNet, parent_weights: dict, same_classes: bool) -> bool:
    """Load a parent's weights. Its class embedder comes along only for the same classes. Otherwise
    the model starts exactly as its parent given no label, whatever label it is given: every row of
    its new embedder is the parent's "no label" row (zero when the parent had no classes).
    Returns whether the class embedder was taken over."""
    take = same_classes and model.class_embed is not None
    weights = {k: v for k, v in parent_weights.items() if take or not k.startswith("class_embed.")}
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if unexpected or any(not k.startswith("class_embed.") for k in missing):
        raise RuntimeError(f"parent weights do not fit: missing {missing}, unexpected {unexpected}")
    if model.class_embed is not None and not take:
        with torch.no_grad():
            for table in ("fine", "superclass"):
                parent_rows = parent_weights.get(f"class_embed.{table}.weight")
                getattr(model.class_embed, table).weight.copy_(
                    torch.zeros(()) if parent_rows is None else parent_rows[-1].expand_as(getattr(model.class_embed, table).weight))
    return take


class _StopRequest:
    """Turns SIGINT/SIGTERM into a flag the loop checks at step boundaries."""

    def __init__(self):
        self.signum: int | None = None
        self._saving = False
        self._urgent = False
        self._previous = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. a notebook worker): no signal handling
                pass
        return self

    def _handle(self, signum, frame):
        if self.signum is None:
            self.signum = signum
        elif self._saving:  # raised inside torch.save it would surface as a write error: wait for the save
            self._urgent = True
        else:  # a second Ctrl-C means: stop now
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def checkpoint_write(self):
        """A second Ctrl-C during a checkpoint write takes effect when the write is done."""
        self._saving = True
        try:
            yield
        finally:
            self._saving = False
        if self._urgent:
            raise KeyboardInterrupt

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _rng_state(generator: torch.Generator) -> dict:
    py_version, py_internal, py_gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "generator": generator.get_state(),
        "python": torch.tensor(py_internal, dtype=torch.int64),
        "python_gauss": py_gauss,
        "numpy": torch.from_numpy(np_keys.astype(np.int64)),
        "numpy_pos": np_pos,
        "numpy_gauss": (np_has_gauss, np_gauss),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _restore_rng(state: dict, generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    generator.set_state(state["generator"])
    random.setstate((3, tuple(state["python"].tolist()), state.get("python_gauss")))
    np_has_gauss, np_gauss = state.get("numpy_gauss", (0, 0.0))
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32), state["numpy_pos"], np_has_gauss, np_gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Trainer:
    def __init__(self, job: TrainJob, limits: Limits = Limits(), log: Callable[[str], None] = print):
        self.job, self.limits = job, limits
        self.cfg = job.schedule
        self.rank, self.world = _distributed_rank_world()
        self.log = log if self.rank == 0 else (lambda msg: None)
        self.device = torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
        self.precision = precision.resolve(self.cfg.precision, self.device, job.model.channels)
        self.data: PreparedDomain = load_domain(job.data_dir)
        self.image_size = self.data.image_size
        self.classes: ClassScheme = self.data.scheme
        self.arch = architecture(job.model, self.image_size)
        self.task = make_task(job.task)
        self.schedule = Schedule(job.diffusion)
        self.parent_meta = None
        self.parent_weights = None
        if self.cfg.method == "peft" and job.init is None:
            raise UserError(f"{job.name}: method peft fine-tunes a trained parent, but this model starts from scratch")
        if job.init is not None:
            self.parent_weights, self.parent_meta = checkpoint.load_weights(job.init)
            checkpoint.check_architecture(self.arch, self.parent_meta["architecture"], job.init)
        with torch.device("meta"):  # the architecture alone: names and sizes, no memory
            shape = build_model(job.model, self.image_size, classes=self.classes)
        self.share = peft.trainable_share(shape, self.cfg.method)
        self.stored_names = peft.stored_names(shape, self.cfg.method) if self.cfg.method == "peft" else None
        self.parts = self.fingerprint_parts()
        self.fingerprint = checkpoint.fingerprint(self.parts)
        self.resume = ResumePolicy(job.name, job.out_dir, self.cfg, self.fingerprint, self.parts, self._fresh_meta, self.log,
                                   job.target_val_loss)
        self._stop: _StopRequest | None = None  # while run() handles SIGINT/SIGTERM
        self.ema: torch.nn.Module | None = None

    def fingerprint_parts(self) -> dict:
        job = {"task": self.job.task, "domain": self.job.domain, "architecture": self.arch,
               "diffusion": as_plain_dict(self.job.diffusion), "classes": self.classes.as_dict()}
        parent = self.parent_meta["weights_sha256"] if self.parent_meta else None
        unused = () if self.classes.conditional else LABEL_DROPOUT  # a model without classes drops no labels
        return fingerprint_parts(job, self.cfg, self.data.content_hash, self.data.subsets, parent, self.world, unused)

    # ---- state -------------------------------------------------------------------------

    def _fresh_meta(self) -> dict:
        return {
            "name": self.job.name,
            "task": self.job.task,
            "domain": self.job.domain,
            "architecture": self.arch,
            "diffusion": as_plain_dict(self.job.diffusion),
            "classes": self.classes.as_dict(),  # a model with several takes labels (diffmodel/classes.py)
            "schedule": as_plain_dict(self.cfg),
            "method": self.cfg.method,
            "stores": "delta" if self.cfg.method == "peft" else "full",  # checkpoint.load_weights rebuilds a delta
            "trainable": self.share.as_dict(),
            "fingerprint": self.fingerprint,
            "fingerprint_parts": self.parts,
            "parent": {"path": str(self.job.init), "sha256": self.parent_meta["weights_sha256"], "name": self.parent_meta.get("name")} if self.parent_meta else None,
            "data": {"path": str(self.job.data_dir), "content_hash": self.data.content_hash},
            "epochs": self.cfg.epochs,
            "epoch": 0,
            "step": 0,
            "complete": False,
            "history": [],
            "sessions": [],
            "resumes": 0,
            "states": [],
        }

    def _resume_point(self) -> tuple[dict, dict | None]:
        """Rank 0 decides (and may set stale state aside); the other ranks then read what it kept."""
        if self.world == 1:
            return self.resume.find()
        if self.rank == 0:
            found = self.resume.find()
        dist.barrier()
        return found if self.rank == 0 else self.resume.read_kept()

    def _save(self, meta: dict, model, ema, optimizer, generator, epoch: int, batch_in_epoch: int, step: int) -> dict:
        if self.rank != 0:
            return meta
        state = {
            "online": self._stored(_unwrap(model).state_dict()),
            "ema": self._stored(ema.state_dict()),
            "optimizer": optimizer.state_dict(),
            "rng": _rng_state(generator),
            "epoch": epoch,
            "batch_in_epoch": batch_in_epoch,
            "step": step,
        }
        meta = {**meta, "epoch": epoch, "step": step, "batch_in_epoch": batch_in_epoch}
        state["progress"] = json.dumps({k: meta[k] for k in PROGRESS if k in meta})
        with self._stop.checkpoint_write() if self._stop else contextlib.nullcontext():
            return checkpoint.save(self.job.out_dir, state, {"ema": state["ema"]}, meta)

    def _stored(self, state: dict) -> dict:
        """What a checkpoint keeps of a state dict: all of it, or under PEFT the trained tensors."""
        return state if self.stored_names is None else peft.delta(state, self.stored_names)

    # ---- the loop ----------------------------------------------------------------------

    def run(self) -> Outcome:
        outcome = self._train()
        if self.world > 1:  # leave together: a rank that exits first gets the others killed by torchrun, mid-save perhaps
            dist.barrier()
        return outcome

    def _train(self) -> Outcome:
        cfg, job = self.cfg, self.job
        started = time.monotonic()
        meta, state = self._resume_point()
        if meta.get("complete"):
            self.log(f"{job.name}: already complete ({meta['epoch']} epochs); nothing to train")
            return Outcome.COMPLETE

        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        np.random.seed(cfg.seed)
        generator = torch.Generator().manual_seed(cfg.seed + 1)
        model = build_model(job.model, self.image_size, cfg.dropout, self.classes).to(self.device)
        if self.parent_weights is not None:
            same_classes = ClassScheme.from_dict(self.parent_meta.get("classes")) == self.classes
            start_from_parent(model, self.parent_weights["ema"], same_classes)
            if model.class_embed is not None and not same_classes:
                self.log(f"{job.name}: classes {self.classes.describe()}; a new class embedder: it starts as "
                         f"'{self.parent_meta.get('name')}' given no label")
        trainable = peft.freeze(model, cfg.method)
        ema = copy.deepcopy(model).eval().requires_grad_(False)
        peft.share_frozen(ema, model)
        self.ema = ema  # the weights being trained, for a caller that wants them in memory
        optimizer = torch.optim.Adam(trainable, lr=cfg.lr)
        meta["training_state_mb"] = round(peft.training_state_bytes(model, ema) / 2**20, 3)
        epoch, batch_in_epoch, step = 0, 0, 0
        if state is not None:  # a PEFT state holds the trained tensors; the rest are the parent's, loaded above
            model.load_state_dict({**model.state_dict(), **state["online"]})
            ema.load_state_dict({**ema.state_dict(), **state["ema"]})
            optimizer.load_state_dict(state["optimizer"])
            _restore_rng(state["rng"], generator)
            epoch, batch_in_epoch, step = state["epoch"], state["batch_in_epoch"], state["step"]
            meta["resumes"] = meta.get("resumes", 0) + 1
            session = len(meta["sessions"]) + 1
            self.log(f"{job.name}: resuming at session {session}, epoch {epoch + 1}/{cfg.epochs}, batch {batch_in_epoch}, step {step}")
        elif job.init is not None:
            self.log(f"{job.name}: starting from {job.init} (EMA weights of '{self.parent_meta.get('name')}')")
        else:
            self.log(f"{job.name}: starting from scratch")

        if self.world > 1:
            _seed_rank(cfg.seed, self.rank, step, generator)
        model = model.to(memory_format=torch.channels_last)
        if self.world > 1:
            model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[self.device.index] if self.device.type == "cuda" else None)

        earlier = meta.get("precision")
        changed = f"; its earlier sessions trained in {earlier}" if state is not None and earlier not in (None, self.precision) else ""
        meta["precision"] = self.precision  # this run's; each session records its own
        self.log(f"{job.name}: training in {self.precision} on {self.device.type} (precision setting: {cfg.precision}){changed}")
        session_start = self._new_session(meta, epoch, step, resumed=state is not None)
        session_clock = time.monotonic()
        last_save = time.monotonic()
        sessions_this_run = 0
        outcome = Outcome.COMPLETE

        with _StopRequest() as stop:
            self._stop = stop
            reached = False
            while epoch < cfg.epochs and not reached:
                epoch_clock = time.monotonic()
                indices = rank_share(epoch_indices(self.data.subsets, epoch, cfg.subset_epochs, cfg.seed), self.rank, self.world)
                steps_per_epoch = len(indices) // (cfg.batch_size * cfg.accumulate)
                if steps_per_epoch == 0:
                    raise ValueError(f"{job.name}: batch_size*accumulate={cfg.batch_size * cfg.accumulate} exceeds the {len(indices)} images of one epoch")
                partial = meta.pop("partial_epoch", None) or {"seconds": 0.0, "loss_sum": 0.0, "batches": 0}
                loss_sum = torch.zeros((), device=self.device)
                bar = tqdm(total=steps_per_epoch, initial=batch_in_epoch, desc=f"{job.name} epoch {epoch + 1}/{cfg.epochs}",
                           disable=self.limits.quiet or self.rank != 0 or None, leave=False, unit="step")
                first_step = batch_in_epoch
                for i in range(first_step, steps_per_epoch):
                    micro_batches = (
                        self._batch(np.sort(indices[start : start + cfg.batch_size].numpy()), generator)
                        for start in range(i * cfg.accumulate * cfg.batch_size, (i + 1) * cfg.accumulate * cfg.batch_size, cfg.batch_size)
                    )
                    loss_sum += train_step(model, ema, optimizer, micro_batches, self.task, self.schedule, cfg, step, generator,
                                           self.precision)
                    step += 1
                    batch_in_epoch = i + 1
                    bar.update(1)
                    reason = self._should_stop(stop, started)
                    # a long epoch is saved every checkpoint_every_minutes too: SIGKILL or a lost
                    # machine gives no warning, and must not cost more than that
                    overdue = time.monotonic() - last_save > 60 * cfg.checkpoint_every_minutes
                    if (reason or overdue) and batch_in_epoch < steps_per_epoch:
                        mid_epoch = {**meta, "partial_epoch": {
                            "seconds": partial["seconds"] + time.monotonic() - epoch_clock,
                            "loss_sum": partial["loss_sum"] + loss_sum.item(),
                            "batches": partial["batches"] + (batch_in_epoch - first_step) * cfg.accumulate,
                        }}
                        if reason:
                            bar.close()
                            mid_epoch = self._end_session(mid_epoch, session_start, session_clock, epoch, step)
                            self._save(mid_epoch, model, ema, optimizer, generator, epoch, batch_in_epoch, step)
                            return self._stopped(reason, epoch, batch_in_epoch, steps_per_epoch)
                        mid_epoch = self._mark_open_session(mid_epoch, session_start, session_clock, epoch, step)
                        saved = self._save(mid_epoch, model, ema, optimizer, generator, epoch, batch_in_epoch, step)
                        meta = {k: v for k, v in saved.items() if k != "partial_epoch"}  # this run keeps its own tally
                        last_save = time.monotonic()
                bar.close()

                if self.world > 1:  # the epoch's loss over every rank's images
                    dist.all_reduce(loss_sum)
                    loss_sum /= self.world
                epoch_seconds = partial["seconds"] + time.monotonic() - epoch_clock
                batches = partial["batches"] + (steps_per_epoch - first_step) * cfg.accumulate
                train_loss = (partial["loss_sum"] + loss_sum.item()) / batches
                val_loss = self.validation_loss(ema)
                subset = subset_for_epoch(epoch, cfg.subset_epochs, len(self.data.subsets))
                meta["history"].append({
                    "epoch": epoch + 1,
                    "subset": subset,
                    "train_loss": round(train_loss, 6),
                    "val_loss": round(val_loss, 6),
                    "seconds": round(epoch_seconds, 3),
                    "images": steps_per_epoch * cfg.batch_size * cfg.accumulate * self.world,
                    "resumed_mid_epoch": first_step > 0,
                })
                self.log(f"{job.name}: epoch {epoch + 1}/{cfg.epochs} subset {'all' if subset is None else subset} "
                         f"loss {train_loss:.4f} val {val_loss:.4f} ({epoch_seconds:.1f}s)")
                epoch, batch_in_epoch = epoch + 1, 0
                reached = job.target_val_loss is not None and val_loss <= job.target_val_loss
                last = epoch == cfg.epochs or reached

                session_done = (epoch - session_start["start_epoch"] >= cfg.session_epochs) or last
                due = epoch % cfg.checkpoint_every_epochs == 0 or time.monotonic() - last_save > 60 * cfg.checkpoint_every_minutes
                reason = self._should_stop(stop, started)
                if session_done:
                    sessions_this_run += 1
                    meta = self._end_session(meta, session_start, session_clock, epoch, step)
                    if last:
                        meta["complete"] = True
                    if self.limits.max_sessions and sessions_this_run >= self.limits.max_sessions and not last:
                        reason = reason or f"--max-sessions {self.limits.max_sessions} reached"
                    session_start = self._new_session(meta, epoch, step, resumed=False)
                    session_clock = time.monotonic()
                elif reason:
                    meta = self._end_session(meta, session_start, session_clock, epoch, step)
                if session_done or due or reason:
                    meta = self._mark_open_session(meta, session_start, session_clock, epoch, step)
                    meta = self._save(meta, model, ema, optimizer, generator, epoch, 0, step)
                    last_save = time.monotonic()
                if reason and not last:
                    return self._stopped(reason, epoch, 0, None)
        if not meta.get("complete"):  # resumed exactly where it ends now: a longer run paused there
            meta = self._save({**meta, "complete": True}, model, ema, optimizer, generator, epoch, 0, step)
        target = f" (validation loss reached the target {job.target_val_loss:.6f})" if epoch < cfg.epochs else ""
        self.log(f"{job.name}: complete after {epoch} epochs, {step} steps{target}")
        return outcome

    def _should_stop(self, stop: _StopRequest, started: float) -> str | None:
        reason = None
        if stop.signum is not None:
            reason = f"{signal.Signals(stop.signum).name} received"
        elif self.limits.time_limit_minutes is not None and time.monotonic() - started > 60 * self.limits.time_limit_minutes:
            reason = f"time limit of {self.limits.time_limit_minutes:g} min reached"
        if self.world > 1:  # every rank must stop at the same step
            flag = torch.tensor([1.0 if reason else 0.0], device=self.device)
            dist.all_reduce(flag)
            reason = reason or ("another rank stopped" if flag.item() > 0 else None)
        return reason

    def _new_session(self, meta: dict, epoch: int, step: int, resumed: bool) -> dict:
        return {"session": len(meta["sessions"]) + 1, "start_epoch": epoch, "start_step": step, "resumed": resumed,
                "precision": self.precision}

    def _end_session(self, meta: dict, session_start: dict, session_clock: float, epoch: int, step: int) -> dict:
        ended = {k: v for k, v in meta.items() if k != "unfinished_session"}
        return {**ended, "sessions": [*meta["sessions"], _session_record(session_start, session_clock, epoch, step)]}

    def _mark_open_session(self, meta: dict, session_start: dict, session_clock: float, epoch: int, step: int) -> dict:
        """meta with the session in progress as of this save: a session killed without warning
        (SIGKILL, a reclaimed free GPU) is still counted, up to this save, by the run that resumes."""
        if step == session_start["start_step"] or any(s["session"] == session_start["session"] for s in meta["sessions"]):
            return meta  # nothing trained in it yet, or it has ended
        return {**meta, "unfinished_session": _session_record(session_start, session_clock, epoch, step)}

    def _stopped(self, reason: str, epoch: int, batch: int, steps_per_epoch: int | None) -> Outcome:
        where = f"epoch {epoch + 1}/{self.cfg.epochs}" + (f", step {batch}/{steps_per_epoch} of it" if batch else "")
        self.log(f"{self.job.name}: paused ({reason}) at {where}; state saved in {self.job.out_dir}. "
                 f"Run the stage again (`dvc repro {self.job.stage or self.job.name}`) to continue.")
        return Outcome.INTERRUPTED if "received" in reason else Outcome.PAUSED

    def _batch(self, index: np.ndarray, generator: torch.Generator) -> tuple[torch.Tensor, Labels | None]:
        """Training images, and for a class-conditional model their labels with some dropped (cfg.label_dropout*)."""
        images = to_tensor(self.data.train[index]).to(self.device, memory_format=torch.channels_last)
        if not self.classes.conditional:
            return images, None
        return images, dropped_labels(self.classes, self.data.labels["train"][index], self.cfg, generator, self.device)

    @torch.no_grad()
    def validation_loss(self, ema: torch.nn.Module) -> float:
        """Loss of the EMA weights on the validation set, with the same noise every epoch (comparable
        over time); a class-conditional model is given every image's labels."""
        generator = torch.Generator().manual_seed(VAL_SEED)
        total, count = 0.0, 0
        for start in range(0, len(self.data.val), 256):
            y0 = to_tensor(self.data.val[start : start + 256]).to(self.device)
            denoiser = ema
            if self.classes.conditional:
                labels = label_tensors(self.classes, self.data.labels["val"][start : start + 256], self.device)
                denoiser = functools.partial(ema, labels=labels)
            condition, mask = self.task.degrade(y0, generator)
            total += training_loss(denoiser, self.schedule, y0, condition, mask, generator).item() * len(y0)
            count += len(y0)
        return total / count


def dropped_labels(classes: ClassScheme, fine: np.ndarray, cfg: TrainConfig, generator: torch.Generator,
                   device: torch.device) -> Labels:
    """(fine, superclass) labels of a batch with labels dropped at random, so the model also learns
    "superclass only" (fine dropped: cfg.label_dropout) and "no label" (both: cfg.label_dropout_all),
    the references of superclass and classifier-free guidance."""
    fine, superclass = label_tensors(classes, fine, "cpu")
    u = torch.rand(len(fine), generator=generator)
    fine = torch.where(u < cfg.label_dropout + cfg.label_dropout_all, NO_LABEL, fine)
    superclass = torch.where(u < cfg.label_dropout_all, NO_LABEL, superclass)
    return fine.to(device), superclass.to(device)


def train_step(model, ema, optimizer, micro_batches, task, schedule: Schedule, cfg: TrainConfig, step: int,
               generator: torch.Generator, precision_in_use: str) -> torch.Tensor:
    """One optimizer step over `cfg.accumulate` micro-batches of clean images - each a tensor, or
    (images, labels) for a class-conditional model - (Algorithm 1): degrade, loss, backward, LR
    warm-up, clipping, Adam, EMA. `precision_in_use`: fp32, or bf16 autocast for the forward and
    loss (diffmodel/precision.py). Returns the summed loss, left on the device so the loop never
    waits for it."""
    model.train()
    loss_sum = None
    distributed = isinstance(model, torch.nn.parallel.DistributedDataParallel)
    for k, batch in enumerate(micro_batches):
        y0, labels = batch if isinstance(batch, tuple) else (batch, None)
        denoiser = model if labels is None else functools.partial(model, labels=labels)
        # under DDP, gradients are averaged over ranks once per step, at the last micro-batch
        with model.no_sync() if distributed and k < cfg.accumulate - 1 else contextlib.nullcontext():
            condition, mask = task.degrade(y0, generator)
            with precision.autocast(precision_in_use, y0.device):
                loss = training_loss(denoiser, schedule, y0, condition, mask, generator)
            (loss / cfg.accumulate).backward()
        loss_sum = loss.detach() if loss_sum is None else loss_sum + loss.detach()
    for group in optimizer.param_groups:
        group["lr"] = cfg.lr * min(1.0, (step + 1) / max(1, cfg.warmup_steps))
    if cfg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], cfg.grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    _update_ema(ema, _unwrap(model), ema_decay_at(step, cfg.ema_decay))
    return loss_sum


def ema_decay_at(step: int, decay: float) -> float:
    """EMA decay warmed up as (1 + step) / (10 + step): a short run (a few hundred steps, or the
    first steps of an adaptation) otherwise keeps mostly its initial weights in the EMA."""
    return min(decay, (1 + step) / (10 + step))


@torch.no_grad()
def _update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """Only trainable tensors move; a frozen one is shared with the EMA model (peft.share_frozen)."""
    pairs = [(e, p.detach()) for e, p in zip(ema.parameters(), model.parameters()) if p.requires_grad]
    torch._foreach_lerp_([e for e, _ in pairs], [p for _, p in pairs], 1.0 - decay)
    for b_ema, b in zip(ema.buffers(), model.buffers()):
        b_ema.copy_(b)


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if hasattr(model, "module") else model


def _distributed_rank_world() -> tuple[int, int]:
    """Under torchrun (WORLD_SIZE > 1) join the process group; otherwise a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and torch.cuda.is_available():  # NCCL collectives run on the current device: one per rank
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), dist.get_world_size()) if world > 1 else (0, 1)


def _session_record(session_start: dict, session_clock: float, epoch: int, step: int) -> dict:
    return {**session_start, "end_epoch": epoch, "end_step": step, "seconds": round(time.monotonic() - session_clock, 3),
            "peak_memory_mb": peak_memory_mb()}


def peak_memory_mb() -> float:
    """Peak memory of this process so far: allocated on the GPU, else resident (RSS) on the CPU."""
    if torch.cuda.is_available():
        return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux reports KiB


def _seed_rank(seed: int, rank: int, step: int, generator: torch.Generator) -> None:
    """Under DDP every rank must draw its own noise levels, noise, masks and dropout: with one
    seed for all, the ranks would train on the same corruptions of different images. Seeded by
    (seed, rank, step), after the model is built (its initial weights must agree on every rank)
    and after a state is restored. Only rank 0's RNG state is saved, so a resumed DDP run is
    reproducible but not bitwise the uninterrupted one, as it is in a single process."""
    rank_seed = int(np.random.SeedSequence([seed, rank, step]).generate_state(1)[0])
    torch.manual_seed(rank_seed)
    generator.manual_seed(rank_seed + 1)
    random.seed(rank_seed)
    np.random.seed(rank_seed)


__all__ = ["Trainer", "TrainJob", "Limits", "Outcome", "build_model", "architecture", "train_step", "start_from_parent"]
