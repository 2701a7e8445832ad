"""Where a training run stands, and the sessions it trains in.

A run trains in sessions of `session_epochs` epochs (the paper's time-limited Colab sessions);
each is recorded in meta.json when it ends, and marked open at every save before that, so a
session killed without warning (SIGKILL, a reclaimed free GPU) is still counted, up to its
last save, by the run that resumes. SIGINT/SIGTERM become a request the loop honours at the
next step, with state saved.
"""

from __future__ import annotations

import contextlib
import resource
import signal
import sys
import time
from dataclasses import dataclass, field

import torch

from ..checkpoints.meta import ModelMeta, PartialEpoch, SessionRecord
from .job import Outcome


@dataclass
class Position:
    """How far training has got: finished epochs, optimizer steps of the epoch in progress, steps in all."""

    epoch: int = 0
    batch_in_epoch: int = 0
    step: int = 0


@dataclass(frozen=True)
class Stop:
    """Why a run stops before its last epoch, and what that makes its outcome."""

    reason: str
    outcome: Outcome


@dataclass
class Session:
    number: int
    start_epoch: int
    start_step: int
    resumed: bool
    precision: str
    kernels: str
    clock: float = field(default_factory=time.monotonic)

    @classmethod
    def next(cls, meta: ModelMeta, position: Position, resumed: bool, precision: str, kernels: str) -> Session:
        return cls(len(meta.sessions) + 1, position.epoch, position.step, resumed, precision, kernels)

    def record(self, position: Position) -> SessionRecord:
        return SessionRecord(self.number, self.start_epoch, self.start_step, self.resumed, position.epoch, position.step,
                             round(time.monotonic() - self.clock, 3), peak_memory_mb(), self.precision, self.kernels)

    def ended(self, meta: ModelMeta, position: Position) -> ModelMeta:
        """`meta` with this session recorded as ended at `position`."""
        return meta.replace(sessions=[*meta.sessions, self.record(position)], unfinished_session=None)

    def marked_open(self, meta: ModelMeta, position: Position) -> ModelMeta:
        """`meta` with this session, still in progress, counted up to `position`."""
        if position.step == self.start_step or any(s.session == self.number for s in meta.sessions):
            return meta  # nothing trained in it yet, or it has ended
        return meta.replace(unfinished_session=self.record(position))


@dataclass
class EpochTally:
    """An epoch's time and summed loss so far, including what a saved partial epoch brought in."""

    seconds: float
    loss_sum: torch.Tensor  # on the device: the loop never waits for it
    batches: int
    first_step: int  # the epoch's first optimizer step in this run (0 unless resumed mid-epoch)
    clock: float = field(default_factory=time.monotonic)

    @classmethod
    def start(cls, partial: PartialEpoch | None, first_step: int, device: torch.device) -> EpochTally:
        """A tally that goes on from `partial` (the summed loss carried as the same float32 sum an
        uninterrupted epoch would hold at that step), or from zero."""
        partial = partial or PartialEpoch()
        return cls(partial.seconds, torch.tensor(partial.loss_sum, dtype=torch.float32, device=device), partial.batches,
                   first_step)

    def seconds_so_far(self) -> float:
        return self.seconds + time.monotonic() - self.clock

    def partial(self, mean_loss_sum: torch.Tensor, batches_done: int) -> PartialEpoch:
        """The tally as a mid-epoch save keeps it; `mean_loss_sum`: the loss sum, averaged over the ranks."""
        return PartialEpoch(self.seconds_so_far(), mean_loss_sum.item(), self.batches + batches_done)


class StopRequest:
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

    def requested(self) -> Stop | None:
        if self.signum is None:
            return None
        return Stop(f"{signal.Signals(self.signum).name} received", Outcome.INTERRUPTED)

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def peak_memory_mb() -> float:
    """Peak memory of this process so far: allocated on the GPU, else resident (RSS) on the CPU."""
    if torch.cuda.is_available():
        return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return round(peak_rss_mb(), 1)


def peak_rss_mb() -> float:
    """Peak resident memory (RSS) of this process so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux
