"""`python -m jaxmlp` and the `jaxmlp` command.

Signals are handled from the first line: importing JAX takes seconds, and a Ctrl-C, SIGTERM or SIGHUP (the
terminal closed) then must end as cleanly as one later (a line on stderr, exit status 130, no traceback).
"""

import os
import signal
import sys
import threading

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _exit_at_once(signum, frame):
    """While the command's modules load, nothing has been written, so a signal ends the process on the spot.

    It must not raise there: a KeyboardInterrupt raised inside a native module's initializer (jaxlib's `_jax` and
    MLIR modules, while `import jax` runs) crashes the process with a segfault or C++'s terminate."""
    os.write(2, b"interrupted\n")
    os._exit(130)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _redeliver_interrupts(unraisable, default=sys.unraisablehook):
    """A signal that lands in a garbage-collection callback or `__del__` raises there, where Python can only
    print and drop the exception: deliver it again, to be raised where the program is."""
    if issubclass(unraisable.exc_type, KeyboardInterrupt):  # a moment later, so it is not raised in here
        threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT)).start()
    else:
        default(unraisable)


def main(argv: list[str] | None = None) -> int:
    for s in STOP_SIGNALS:
        signal.signal(s, _exit_at_once)
    from jaxmlp.cli import main as cli_main

    signal.signal(signal.SIGINT, signal.default_int_handler)  # from here on a signal unwinds, so cleanup runs
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    sys.unraisablehook = _redeliver_interrupts
    code = None
    while True:  # an interrupt may land anywhere, this function's own lines included
        try:
            if code is None:
                code = cli_main(argv)
            for s in STOP_SIGNALS:
                signal.signal(s, signal.SIG_IGN)  # the command is over: a late signal changes nothing now
            return code
        except KeyboardInterrupt:
            if code is None:  # it landed before the command could report it
                print("interrupted", file=sys.stderr)
            code = 130


def _exit_after_interrupt(code: int) -> None:
    """Leave with status 130 even after an interrupt that passed through `exec` of a string.

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


if __name__ == "__main__":
    status = main()
    if status == 130:
        _exit_after_interrupt(status)
    sys.exit(status)
