"""`python -m jaxmlp` and the `jaxmlp` command.

Signals are handled from the first line: importing JAX takes seconds, and a Ctrl-C or SIGTERM
then must end as cleanly as one later (a line on stderr, exit status 130, no traceback).
"""

import os
import signal
import sys
import threading


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
    signal.signal(signal.SIGTERM, _interrupt)  # SIGINT already raises KeyboardInterrupt
    sys.unraisablehook = _redeliver_interrupts
    code, report = None, False
    while True:  # an interrupt may land anywhere, this function's own lines included
        try:
            if code is None:
                from jaxmlp.cli import main as cli_main

                code = cli_main(argv)
            if report:
                report = False
                print("interrupted", file=sys.stderr)
            for s in (signal.SIGINT, signal.SIGTERM):
                signal.signal(s, signal.SIG_IGN)  # the command is over: a late signal changes nothing now
            return code
        except KeyboardInterrupt:
            report, code = code is None, 130


if __name__ == "__main__":
    sys.exit(main())
