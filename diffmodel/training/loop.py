"""The one training loop: every training stage is this loop with another task, domain, init and schedule.

    run()                       resume point -> networks -> epochs -> complete
      _train_epoch()            optimizer steps (step.py); a mid-epoch save every checkpoint_every_minutes
      _record_epoch()           train and validation loss, one EpochRecord, handed to `on_history`
      _epoch_boundary()         end a session, save, honour a stop request or a session limit

Training runs in sessions of `session_epochs` epochs (the paper's time-limited Colab sessions).
State is saved at the end of every session and every `checkpoint_every_epochs` epochs or
`checkpoint_every_minutes` minutes, and on SIGINT/SIGTERM at the next step. Running the same
job again continues from the newest good state whose fingerprint (params, parent weights, data
and training code) matches (resume.py); anything else is set aside and training starts fresh.
On CPU a resumed run is bitwise identical to an uninterrupted one: data order depends only on
(seed, epoch) and every RNG is restored (rng.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from tqdm import tqdm

from ..checkpoints.meta import EpochRecord, ModelMeta
from ..data.prepared import load_domain
from ..data.subsets import subset_for_epoch
from ..devices import default_device, kernel_set
from ..model import peft
from ..model.diffusion import Schedule
from ..model.tasks import make_task
from . import precision
from .batches import TrainingData
from .distributed import Ranks
from .job import Limits, Outcome, TrainJob
from .record import Parent
from .rng import seed_everything
from .saving import Checkpoints
from .session import EpochTally, Position, Session, Stop, StopRequest
from .setup import Networks, build_networks, for_training, restore
from .step import StepTensors, train_step


@dataclass
class Run:
    """One call of Trainer.run: the record it writes, where it stands, its session and its clocks."""

    meta: ModelMeta
    at: Position
    session: Session
    networks: Networks
    generator: torch.Generator
    step_tensors: StepTensors | None = None
    stop: StopRequest | None = None
    tally: EpochTally | None = None
    steps_per_epoch: int = 0
    sessions_done: int = 0
    started: float = field(default_factory=time.monotonic)
    last_save: float = field(default_factory=time.monotonic)


class Trainer:
    """`on_history`, if given, is called (on the rank that writes files) with the run's whole epoch
    history when it starts - the epochs a resumed run has - and again after every epoch: a live
    view rebuilt from it never holds an epoch twice, nor one that the run it resumed did not save."""

    def __init__(self, job: TrainJob, limits: Limits = Limits(), log: Callable[[str], None] = print,
                 on_history: Callable[[list[EpochRecord]], None] | None = None):
        self.job, self.limits, self.schedule = job, limits, job.schedule
        self.ranks = Ranks.join()
        self.log = log if self.ranks.writes else (lambda message: None)
        self.on_history = on_history if self.ranks.writes else None
        self.device = default_device()
        self.precision = precision.resolve(self.schedule.precision, self.device, job.model.channels)
        data = load_domain(job.data_dir)
        self.data, self.classes, self.image_size = TrainingData(data, self.schedule, self.ranks, self.device), data.scheme, data.image_size
        self.task, self.noise_schedule = make_task(job.task), Schedule(job.diffusion)
        self.parent = Parent.load(job, self.image_size)
        self.checkpoints = Checkpoints.for_job(job, data, self.parent, self.ranks, self.log)
        self.ema: torch.nn.Module | None = None  # the weights being trained, for a caller that wants them in memory

    def run(self) -> Outcome:
        meta, state = self.checkpoints.resume_point()
        self._publish(meta.history)
        if meta.complete:
            self.log(f"{self.job.name}: already complete ({meta.epoch} epochs); nothing to train")
            outcome = Outcome.COMPLETE
        else:
            run = self._begin(meta, state)
            with StopRequest() as run.stop:
                outcome = self._train(run)
        self.ranks.barrier()  # leave together: a rank that exits first gets the others killed by torchrun, mid-save perhaps
        return outcome

    def _train(self, run: Run) -> Outcome:
        """Epochs until the last one asked (or a baseline's target), in sessions, saving as it goes."""
        while run.at.epoch < self.schedule.epochs:
            stop = self._train_epoch(run)
            if stop is None:
                val_loss = self._record_epoch(run)
                self._publish(run.meta.history)
                last = run.at.epoch == self.schedule.epochs or self._reached(val_loss)
                stop = self._epoch_boundary(run, last)
                if last:
                    break
            if stop is not None:
                return self._stopped(run, stop)
        if not run.meta.complete:  # resumed exactly where it ends now: a longer run paused there
            run.meta = self._save(run, run.meta.replace(complete=True))
        target = f" (validation loss reached the target {self.job.target_val_loss:.6f})" if run.at.epoch < self.schedule.epochs else ""
        self.log(f"{self.job.name}: complete after {run.at.epoch} epochs, {run.at.step} steps{target}")
        return Outcome.COMPLETE

    def _train_epoch(self, run: Run) -> Stop | None:
        """The optimizer steps of the epoch in progress, from where it stands; on a stop request the
        state is saved in mid-epoch and the Stop returned."""
        at, cfg = run.at, self.schedule
        indices = self.data.epoch(at.epoch)
        run.steps_per_epoch = self.data.steps_per_epoch(indices)
        run.tally = EpochTally.start(run.meta.partial_epoch, at.batch_in_epoch, self.device)
        run.meta = run.meta.replace(partial_epoch=None)
        with tqdm(total=run.steps_per_epoch, initial=at.batch_in_epoch, desc=f"{self.job.name} epoch {at.epoch + 1}/{cfg.epochs}",
                  disable=self.limits.quiet or not self.ranks.writes or None, leave=False, unit="step") as bar:
            for i in range(at.batch_in_epoch, run.steps_per_epoch):
                micro_batches = self.data.micro_batches(indices, i, run.generator)
                run.tally.loss_sum += train_step(run.networks.model, run.networks.ema, run.networks.optimizer, micro_batches,
                                                 self.task, self.noise_schedule, cfg, at.step, run.generator, self.precision,
                                                 run.step_tensors)
                at.step, at.batch_in_epoch = at.step + 1, i + 1
                bar.update(1)
                stop, overdue = self._check(run)
                if (stop or overdue) and at.batch_in_epoch < run.steps_per_epoch:
                    self._save_mid_epoch(run, stop)
                    if stop:
                        return stop
        return None

    def _save_mid_epoch(self, run: Run, stop: Stop | None) -> None:
        """A save inside an epoch: its tally so far goes with it, so the resumed epoch logs the same mean loss."""
        done = (run.at.batch_in_epoch - run.tally.first_step) * self.schedule.accumulate
        meta = run.meta.replace(partial_epoch=run.tally.partial(self.ranks.mean(run.tally.loss_sum), done))
        meta = run.session.ended(meta, run.at) if stop else run.session.marked_open(meta, run.at)
        saved = self._save(run, meta)
        if not stop:
            run.meta, run.last_save = saved.replace(partial_epoch=None), time.monotonic()  # this run keeps its own tally

    def _record_epoch(self, run: Run) -> float:
        """The finished epoch's losses and time in the history; returns the validation loss (rank 0's, on every rank)."""
        at, cfg, tally = run.at, self.schedule, run.tally
        seconds = tally.seconds_so_far()
        batches = tally.batches + (run.steps_per_epoch - tally.first_step) * cfg.accumulate
        train_loss = self.ranks.mean(tally.loss_sum).item() / batches
        val_loss = self.ranks.from_rank0(self.data.validation_loss(run.networks.ema, self.task, self.noise_schedule), self.device)
        subset = subset_for_epoch(at.epoch, cfg.subset_epochs, len(self.data.data.subsets))
        run.meta.history.append(EpochRecord(at.epoch + 1, subset, round(train_loss, 6), round(val_loss, 6), round(seconds, 3),
                                            run.steps_per_epoch * cfg.batch_size * cfg.accumulate * self.ranks.world,
                                            tally.first_step > 0))
        self.log(f"{self.job.name}: epoch {at.epoch + 1}/{cfg.epochs} subset {'all' if subset is None else subset} "
                 f"loss {train_loss:.4f} val {val_loss:.4f} ({seconds:.1f}s)")
        at.epoch, at.batch_in_epoch = at.epoch + 1, 0
        return val_loss

    def _epoch_boundary(self, run: Run, last: bool) -> Stop | None:
        """End the session when its epochs are done (or training is), save when due, and say whether to stop."""
        at, cfg = run.at, self.schedule
        session_done = at.epoch - run.session.start_epoch >= cfg.session_epochs or last
        stop, overdue = self._check(run)
        due = at.epoch % cfg.checkpoint_every_epochs == 0 or overdue
        if session_done:
            run.sessions_done += 1
            run.meta = run.session.ended(run.meta, at).replace(complete=last)
            if self.limits.max_sessions and run.sessions_done >= self.limits.max_sessions and not last:
                stop = stop or Stop(f"--max-sessions {self.limits.max_sessions} reached", Outcome.PAUSED)
            run.session = self._session(run.meta, at, resumed=False)
        elif stop:
            run.meta = run.session.ended(run.meta, at)
        if session_done or due or stop:
            run.meta = self._save(run, run.session.marked_open(run.meta, at))
            run.last_save = time.monotonic()
        return None if last else stop

    def _check(self, run: Run) -> tuple[Stop | None, bool]:
        """(a stop - asked here or on another rank -, whether a timed save is due), agreed by every rank."""
        limit = self.limits.time_limit_minutes
        stop = run.stop.requested() or (Stop(f"time limit of {limit:g} min reached", Outcome.PAUSED)
                                        if limit is not None and time.monotonic() - run.started > 60 * limit else None)
        overdue = time.monotonic() - run.last_save > 60 * self.schedule.checkpoint_every_minutes
        any_stop, any_overdue = self.ranks.any([stop is not None, overdue], self.device)
        return stop or (Stop("another rank stopped", Outcome.PAUSED) if any_stop else None), any_overdue

    def _publish(self, history: list[EpochRecord]) -> None:
        if self.on_history is not None:
            self.on_history(list(history))

    def _reached(self, val_loss: float) -> bool:
        return self.job.target_val_loss is not None and val_loss <= self.job.target_val_loss

    def _stopped(self, run: Run, stop: Stop) -> Outcome:
        at = run.at
        where = f"epoch {at.epoch + 1}/{self.schedule.epochs}" + (
            f", step {at.batch_in_epoch}/{run.steps_per_epoch} of it" if at.batch_in_epoch else "")
        self.log(f"{self.job.name}: paused ({stop.reason}) at {where}; state saved in {self.job.out_dir}. "
                 f"Run the stage again (`dvc repro {self.job.stage or self.job.name}`) to continue.")
        return stop.outcome

    def _begin(self, meta: ModelMeta, state: dict | None) -> Run:
        """Seeded networks - the parent's weights, or random ones - and, when resuming, the saved state."""
        job, cfg, parent = self.job, self.schedule, self.parent
        generator = seed_everything(cfg.seed)
        same_classes = parent is not None and parent.same_classes(self.classes)
        networks = build_networks(job.model, self.image_size, cfg, self.device, self.classes,
                                  parent.weights["ema"] if parent else None, same_classes)
        if parent and networks.model.class_embed is not None and not same_classes:
            self.log(f"{job.name}: classes {self.classes.describe()}; a new class embedder: it starts as "
                     f"'{parent.meta.name}' given no label")
        self.ema = networks.ema
        meta = meta.replace(training_state_mb=round(peft.training_state_bytes(networks.model, networks.ema) / 2**20, 3))
        at = Position()
        if state is not None:
            at, meta = restore(networks, state, generator), meta.replace(resumes=meta.resumes + 1)
            self.log(f"{job.name}: resuming at session {len(meta.sessions) + 1}, epoch {at.epoch + 1}/{cfg.epochs}, "
                     f"batch {at.batch_in_epoch}, step {at.step}")
        else:
            self.log(f"{job.name}: starting from {job.init} (EMA weights of '{parent.meta.name}')" if parent else
                     f"{job.name}: starting from scratch")
        self.ranks.seed(cfg.seed, at.step, generator)
        earlier = meta.precision_used()
        changed = f"; its earlier sessions trained in {earlier}" if state is not None and earlier not in (None, self.precision) else ""
        self.log(f"{job.name}: training in {self.precision} on {self.device.type} (precision setting: {cfg.precision}){changed}")
        networks = for_training(networks, self.ranks, self.device)
        return Run(meta, at, self._session(meta, at, resumed=state is not None), networks, generator,
                   StepTensors.of(networks.model, networks.ema))

    def _session(self, meta: ModelMeta, at: Position, resumed: bool) -> Session:
        return Session.next(meta, at, resumed, self.precision, kernel_set(self.device))

    def _save(self, run: Run, meta: ModelMeta) -> ModelMeta:
        with run.stop.checkpoint_write():  # a second Ctrl-C waits for the write
            return self.checkpoints.save(meta, run.at, run.networks, run.generator)
