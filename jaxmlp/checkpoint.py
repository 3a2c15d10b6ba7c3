"""Crash-safe files: atomic writes for small files and orbax for the training state.

Every small file is written to a temporary sibling and renamed over the old
one (rename is atomic on POSIX), so a crash mid-write leaves either the old
file or the new one, never half of either. Orbax commits a checkpoint the
same way: it writes a temporary directory and renames it when complete.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

import jax
import orbax.checkpoint as ocp

from jaxmlp.errors import ConfigError


def write_atomic(path: str, data: bytes | str) -> None:
    """Write `data` to `path` so that readers see the old file or the whole new one."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; give the file the permissions open() would
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_json(path: str, obj: Any) -> None:
    write_atomic(path, json.dumps(obj, indent=2) + "\n")


class Checkpointer:
    """The latest few checkpoints of one run: the state pytree plus a small JSON of loop bookkeeping."""

    def __init__(self, directory: str, max_to_keep: int = 2):
        self.directory = os.path.abspath(directory)
        self._manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, enable_async_checkpointing=False,
                                                 create=True))

    def save(self, step: int, state: Any, meta: dict) -> None:
        self._manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                          meta=ocp.args.JsonSave(meta)), force=True)
        self._manager.wait_until_finished()

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def restore(self, like: Any) -> tuple[Any, dict]:
        """Restore the newest checkpoint into the structure of `like` (an example state)."""
        step = self.latest_step()
        if step is None:
            raise ConfigError(f"{self.directory}: no checkpoint to restore; the run never finished an epoch "
                              "or its checkpoints were deleted (start it again with --overwrite)")
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
        try:
            out = self._manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract),
                                                                      meta=ocp.args.JsonRestore()))
        except Exception as e:  # orbax raises many types for damaged files
            raise ConfigError(f"{self.directory}/{step}: checkpoint is corrupt or from a different model "
                              f"({type(e).__name__}); delete that folder to fall back to an older one") from None
        return out["state"], out["meta"]

    def close(self) -> None:
        self._manager.close()
