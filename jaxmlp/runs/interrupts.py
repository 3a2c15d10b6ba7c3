"""How a signal stops a jaxmlp command: Ctrl-C (SIGINT), SIGTERM, or SIGHUP (the terminal closed).

Every command passes through three phases, and this module is the one place that handles signals in each:

- loading (`loading`): while the command's modules import (JAX takes seconds), nothing has been written, so a
  signal ends the process on the spot: "interrupted" on stderr, exit status 130. It must not raise there: a
  KeyboardInterrupt raised inside a native module's initializer (jaxlib's `_jax` and MLIR modules, while
  `import jax` runs) crashes the process with a segfault or C++'s terminate.
- command (`run_command`): the command's own work (train's set-up and compilation, eval, plot, a study): a signal
  raises KeyboardInterrupt where the program is, so every `finally` cleans up; the command reports "interrupted"
  (`interrupted`) and exits with status 130.
- training (`Training`, inside `jaxmlp.runs.loop.fit`): the first signal sets a flag that the loop polls at every
  chunk boundary, where it writes a checkpoint and stops; a second one aborts at once (KeyboardInterrupt). A
  caller that cannot use a stopped run (a study) ends the command with `Interrupted`.

This module needs nothing but the standard library: it is in place before anything else is imported.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import NoReturn

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
EXIT_STATUS = 130  # 128 + SIGINT, as a shell reports a command stopped by Ctrl-C


class Interrupted(KeyboardInterrupt):
    """A signal stopped the command: raised where a signal that the training phase turned into its flag must
    still end the whole command (a study averages no cut-short run into its report)."""


def loading() -> None:
    """Phase 1, from the first line of the `jaxmlp` process: a signal ends it at once."""
    for s in SIGNALS:
        signal.signal(s, _exit_at_once)


def _exit_at_once(signum, frame) -> NoReturn:
    os.write(2, b"interrupted\n")
    os._exit(EXIT_STATUS)


def interrupted(message: str = "interrupted") -> int:
    """Say that the command was stopped (on stderr) and give its exit status."""
    print(message, file=sys.stderr)
    return EXIT_STATUS


def run_command(command: Callable[[], int]) -> int:
    """Phase 2: run `command` (the modules are loaded) with signals raising KeyboardInterrupt, and return its exit
    status. An interrupt that lands anywhere, this function's own lines included, ends it with status 130."""
    signal.signal(signal.SIGINT, signal.default_int_handler)  # from here on a signal unwinds, so cleanup runs
    signal.signal(signal.SIGTERM, _raise)
    signal.signal(signal.SIGHUP, _raise)
    sys.unraisablehook = _redeliver
    code = None
    while True:
        try:
            if code is None:
                code = command()
            for s in SIGNALS:
                signal.signal(s, signal.SIG_IGN)  # the command is over: a late signal changes nothing now
            return code
        except KeyboardInterrupt:
            if code is None:  # it landed before the command could report it
                interrupted()
            code = EXIT_STATUS


def _raise(signum, frame) -> NoReturn:
    raise KeyboardInterrupt


def _redeliver(unraisable, default=sys.unraisablehook) -> None:
    """A signal that lands in a garbage-collection callback or `__del__` raises there, where Python can only
    print and drop the exception: deliver it again, to be raised where the program is."""
    if issubclass(unraisable.exc_type, KeyboardInterrupt):  # a moment later, so it is not raised in here
        threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT)).start()
    else:
        default(unraisable)


def exit_process(code: int) -> NoReturn:
    """Leave with `code` even after an interrupt that passed through `exec` of a string.

    CPython (3.11 at least) marks such an interrupt as unhandled although it was caught, and `python -m` then ends
    by re-raising SIGINT instead of returning the status: an interrupt while a module builds a dataclass (whose
    methods are made with `exec`) would look to the caller like a kill. The command's work is done and written by
    now; only the interpreter's own shutdown is skipped."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except OSError:
            pass
    os._exit(code)


class Training:
    """Phase 3, as a context manager around the training loop: the first signal sets `signal`, which the loop
    polls at each chunk boundary; a second raises KeyboardInterrupt at once. The handlers before it come back
    on exit."""

    def __init__(self):
        self.signal: int | None = None

    @property
    def stopping(self) -> bool:
        return self.signal is not None

    def _handle(self, signum, frame) -> None:
        if self.signal is not None:
            raise KeyboardInterrupt
        self.signal = signum
        print(
            f"\n{signal.Signals(signum).name}: stopping at the next chunk boundary (again to abort)...",
            file=sys.stderr,
            flush=True,
        )

    def __enter__(self) -> Training:
        self._old = {s: signal.signal(s, self._handle) for s in SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)
