"""`python -m jaxmlp` and the `jaxmlp` command.

Signals are handled from the first line: importing JAX takes seconds, and a Ctrl-C, SIGTERM or SIGHUP (the
terminal closed) then must end as cleanly as one later (a line on stderr, exit status 130, no traceback).
`jaxmlp.runs.interrupts` holds the handling of each phase: loading, the command, training.
"""

import sys

from jaxmlp.runs import interrupts


def main(argv: list[str] | None = None) -> int:
    interrupts.loading()
    from jaxmlp.cli import main as cli_main

    return interrupts.run_command(lambda: cli_main(argv))


if __name__ == "__main__":
    status = main()
    if status == interrupts.EXIT_STATUS:
        interrupts.exit_process(status)
    sys.exit(status)
