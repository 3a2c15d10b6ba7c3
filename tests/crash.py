"""Fault injection for the crash tests, kept out of jaxmlp's code: a kill between the steps of a checkpoint's commit.

`python -m tests.crash POINT[:N] ARGS...` runs `jaxmlp ARGS`, killed with SIGKILL the N-th time (default: the first)
it passes POINT. Each point is the end of one step of `RunDir.save`, a method of its own:

    files-written          `History.write`: the metrics and step log are written, the checkpoint is not
    checkpoint-committed   `RunDir._commit`: the checkpoint is committed, a new run is not yet published
    old-run-moved-aside    `RunDir._move_aside`: `--overwrite` moved the old run aside, the new one is not in place
"""

import os
import signal
import sys

from jaxmlp.runs.history import History
from jaxmlp.runs.lifecycle import RunDir

POINTS = {
    "files-written": (History, "write"),
    "checkpoint-committed": (RunDir, "_commit"),
    "old-run-moved-aside": (RunDir, "_move_aside"),
}


def sigkill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def kill_after(point: str, nth: int = 1, kill=sigkill, setattr=setattr) -> None:
    """Make the `nth` pass through `point` end in `kill()` (pass pytest's `monkeypatch.setattr` to undo it)."""
    owner, name = POINTS[point]
    original, passes = getattr(owner, name), []

    def step(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        passes.append(point)
        if len(passes) == nth:
            kill()
        return result

    setattr(owner, name, step)


def abandon(run: RunDir) -> None:
    """What a killed trainer leaves of `run`: its lock free (the kernel drops it), nothing cleaned up."""
    if run._checkpointer is not None:
        run._checkpointer.close()
        run._checkpointer = None
    if run._lock is not None:
        os.close(run._lock._fd)  # the lock file stays, as a killed process leaves it
        run._lock = None


if __name__ == "__main__":
    from jaxmlp.__main__ import main
    from jaxmlp.runs import interrupts

    where, _, nth = sys.argv[1].partition(":")
    kill_after(where, int(nth or 1))
    status = main(sys.argv[2:])
    if status == interrupts.EXIT_STATUS:
        interrupts.exit_process(status)
    sys.exit(status)
