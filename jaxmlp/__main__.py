"""`python -m jaxmlp` and the `jaxmlp` command.

Signals are handled from the first line: importing JAX takes seconds, and a Ctrl-C or SIGTERM
then must end as cleanly as one later (a line on stderr, exit status 130, no traceback).
"""

import signal
import sys


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _interrupt)  # SIGINT already raises KeyboardInterrupt
    try:
        from jaxmlp.cli import main as cli_main

        code = cli_main(argv)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, signal.SIG_IGN)  # the command is over: a late signal must not turn into a traceback
    return code


if __name__ == "__main__":
    sys.exit(main())
