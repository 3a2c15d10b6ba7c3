"""The training state on disk, through orbax.

Orbax commits a checkpoint the way `jaxmlp.files` commits a small file: it writes a temporary
directory and renames it when complete, so a crash leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp

from jaxmlp.errors import ConfigError


class Checkpointer:
    """The latest few checkpoints of one run: the state pytree plus a small JSON of loop bookkeeping."""

    def __init__(self, directory: str, max_to_keep: int = 2):
        self.directory = os.path.abspath(directory)
        self._manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(
                max_to_keep=max_to_keep, enable_async_checkpointing=False, create=True
            ),
        )

    def save(self, step: int, state: Any, meta: dict) -> None:
        self._manager.save(
            step, args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)), force=True
        )
        self._manager.wait_until_finished()

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def restore(self, like: Any) -> tuple[Any, dict]:
        """Restore the newest checkpoint into the structure of `like` (an example state)."""
        step = self.latest_step()
        if step is None:
            raise ConfigError(
                f"{self.directory}: no checkpoint to restore; the run never finished an epoch "
                "or its checkpoints were deleted (start it again with --overwrite)"
            )
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
        try:
            out = self._manager.restore(
                step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore())
            )
        except Exception as e:  # orbax raises many types for damaged files
            raise ConfigError(
                f"{self.directory}/{step}: checkpoint is corrupt or from a different model "
                f"({type(e).__name__}); delete that folder to fall back to an older one"
            ) from None
        return out["state"], out["meta"]

    def close(self) -> None:
        self._manager.close()
