"""Stopping a training run cleanly on SIGTERM or SIGINT (Ctrl-C).

While :class:`StopOnSignal` is active, the first SIGTERM or SIGINT only records the
request: the trainer finishes the chunk it is computing, writes its metrics, saves a
checkpoint and raises :class:`TrainingInterrupted` (the CLI exits with 128 + the signal's
number: 143 for SIGTERM, 130 for SIGINT). The handler gives both signals back their
default action at once, so a second one ends the process immediately, even in the middle
of a compiled call; checkpoints are committed atomically, so ``--resume`` still works.

Handlers are installed only in the main thread of a single-process run: with several
processes a stop on one of them would leave the others waiting in a collective.
"""

from __future__ import annotations

import signal
import threading

import jax

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class TrainingInterrupted(Exception):
    """Training stopped on a signal after saving; ``resume=True`` (``--resume``) continues.

    Attributes:
      signum: the signal's number.
      iteration: meta-iterations done (the saved checkpoint's step).
    """

    def __init__(self, message: str, signum: int, iteration: int):
        super().__init__(message)
        self.signum, self.iteration = signum, iteration


class StopOnSignal:
    """Context manager recording the first SIGTERM/SIGINT in ``signum`` (``None``: none)."""

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        """Whether a stop was asked for."""
        return self.signum is not None

    @property
    def name(self) -> str:
        """The signal's name (``"SIGTERM"``), or ``""`` when none arrived."""
        return signal.Signals(self.signum).name if self.signum is not None else ""

    def _handle(self, signum, frame) -> None:
        del frame
        self.signum = signum
        for s in SIGNALS:  # a second signal takes the default action: stop now
            signal.signal(s, signal.SIG_DFL)

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread() and jax.process_count() == 1:
            for s in SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()
