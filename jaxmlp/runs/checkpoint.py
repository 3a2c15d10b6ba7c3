"""The training state on disk, through orbax.

Orbax commits a checkpoint the way `jaxmlp.files` commits a small file: it writes a temporary directory and
renames it when complete, so a crash leaves the previous checkpoint intact (the temporary `*.orbax-checkpoint-tmp*`
folders a crash leaves are removed when `train` opens the run again, under its lock; a reader such as
`eval` opens the checkpoints read-only and removes nothing). Orbax does not checksum array data, so each
checkpoint records a SHA-256 of the state it holds, and after the commit a manifest of every file's SHA-256:
damage is found before orbax reads a byte (its failures mid-restore leave threads calling into a closed event
loop), and a restore that reads back other numbers is an error rather than a model with NaN weights.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
import re
import shutil
import stat
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from jaxmlp.core.parallel import to_host
from jaxmlp.errors import ConfigError
from jaxmlp.files import write_json

MANIFEST = "jaxmlp-files.json"  # beside orbax's items in each checkpoint folder: every file's SHA-256


def state_digest(state: Any) -> str:
    """SHA-256 over every leaf of `state` (dtype, shape and bytes), read from this process's replica."""
    h = hashlib.sha256()
    for leaf in jax.tree.leaves(to_host(state)):
        a = np.ascontiguousarray(leaf)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _file_digests(folder: str) -> dict[str, str]:
    """SHA-256 of every file under `folder` but the manifest, by relative path."""
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            rel = os.path.relpath(path, folder)
            if rel != MANIFEST:
                with open(path, "rb") as f:
                    out[rel] = hashlib.sha256(f.read()).hexdigest()
    return dict(sorted(out.items()))


def _drop_tracebacks(record: logging.LogRecord) -> bool:
    return record.exc_info is None


def _changed(saved: dict | None, config: dict | None) -> dict:
    """The config fields (but epochs, which a resume may raise) whose saved value differs from config.json's."""
    if not saved or not config:
        return {}
    return {k: v for k, v in saved.items() if k != "epochs" and config.get(k) != v}


def _drop_read_only_notes(record: logging.LogRecord) -> bool:
    message = record.getMessage()  # notes of a read-only manager, and of a checkpoint removed while it lists them
    return not any(note in message for note in ("read only", "read_only", "Metadata file does not exist"))


def _read_only_manager(directory: str, **kwargs) -> ocp.CheckpointManager:
    """An orbax manager that creates, deletes and writes nothing (and does not log that it is read-only)."""
    absl_log = logging.getLogger("absl")
    absl_log.addFilter(_drop_read_only_notes)
    options = ocp.CheckpointManagerOptions(
        read_only=True, create=False, save_interval_steps=0, max_to_keep=None, enable_async_checkpointing=False
    )
    try:
        for _ in range(5):  # a trainer may delete an old checkpoint while orbax lists them: look again
            try:
                return ocp.CheckpointManager(directory, options=options, **kwargs)
            except FileNotFoundError:
                continue
        raise ConfigError(f"{directory}: its checkpoints kept changing while being read (a trainer is writing them)")
    finally:
        absl_log.removeFilter(_drop_read_only_notes)


def _os_error(e: BaseException | None) -> OSError | None:
    """The OSError behind an orbax exception, if any: orbax wraps them, and TensorStore reports
    them as ValueError("... [os_error_code='28']")."""
    while e is not None and not isinstance(e, OSError):
        code = re.search(r"os_error_code='(\d+)'", str(e))
        if code:
            return OSError(int(code[1]), os.strerror(int(code[1])))
        e = e.__cause__ or e.__context__
    return e


class Checkpointer:
    """The latest few checkpoints of one run: the state pytree plus a small JSON of loop bookkeeping."""

    def __init__(self, directory: str, max_to_keep: int = 2, read_only: bool = False):
        self.directory = os.path.abspath(directory)
        if read_only:
            self._manager = _read_only_manager(self.directory)
        else:
            self._manager = ocp.CheckpointManager(
                self.directory,
                options=ocp.CheckpointManagerOptions(
                    max_to_keep=max_to_keep, enable_async_checkpointing=False, create=True
                ),
            )

    def clean_temp(self) -> None:
        """Remove the temporary folders of checkpoints a killed process never committed (only the trainer, locked)."""
        for stale in glob.glob(os.path.join(glob.escape(self.directory), "[0-9]*.orbax-checkpoint-tmp*")):
            if stat.S_ISDIR(os.lstat(stale).st_mode):  # a real folder, never a link's target
                shutil.rmtree(stale)

    def save(self, step: int, state: Any, meta: dict) -> None:
        """Commit `state` and `meta` (plus the state's checksum) as checkpoint `step`, then its manifest."""
        meta = {**meta, "state_sha256": state_digest(state)}
        absl_log = logging.getLogger("absl")
        absl_log.addFilter(_drop_tracebacks)  # orbax logs its worker threads' errors, then raises them here
        try:
            self._manager.save(
                step,
                args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
                force=True,
            )
            self._manager.wait_until_finished()
            write_json(os.path.join(self._step_dir(step), MANIFEST), _file_digests(self._step_dir(step)))
        except Exception as e:
            cause = _os_error(e)
            if cause is None:
                raise
            raise ConfigError(
                f"{self.directory}: cannot write checkpoint {step} ({cause.strerror or cause}); free space or make "
                "the folder writable, then resume (the previous checkpoint is kept)"
            ) from None
        finally:
            absl_log.removeFilter(_drop_tracebacks)

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def read_meta(self, step: int | None = None) -> dict:
        """The loop bookkeeping of checkpoint `step` (default: the newest), its files checked first (cheap: no arrays
        are read)."""
        step = self._latest() if step is None else step
        try:
            self._check_files(step)
        except FileNotFoundError:
            raise ConfigError(
                f"{self._step_dir(step)}: removed while being read (a newer checkpoint replaced it)"
            ) from None
        return self._read(step, meta=ocp.args.JsonRestore())["meta"]

    def _latest(self) -> int:
        step = self.latest_step()
        if step is None:
            raise ConfigError(
                f"{self.directory}: no checkpoint to restore; the run never finished an epoch "
                "or its checkpoints were deleted (start it again with --overwrite)"
            )
        return step

    def restore(self, like: Any, shape: dict[str, int], config: dict | None = None) -> tuple[Any, dict]:
        """Restore the newest checkpoint into the structure of `like` (an example state).

        `shape` ({"num_features": ..., "num_classes": ...}) is the model the caller built, and `config` the
        run's config.json it was built from: a checkpoint of another model is reported as such (naming the
        config field that differs), not as damage."""
        step = self._latest()
        where = self._step_dir(step)
        meta = self.read_meta(step)  # checks the checkpoint's files against its manifest first
        for key, value in shape.items():
            if key in meta and meta[key] != value:
                raise ConfigError(
                    f"{where}: the model was trained with {key} = {meta[key]}, but this data has {value}; "
                    "evaluate on a dataset of the same image size and classes"
                )
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
        self._check_model(step, like, meta.get("config"), config)
        try:
            state = self._read(step, state=ocp.args.StandardRestore(abstract))["state"]
        except ConfigError:
            changed = _changed(meta.get("config"), config)
            if changed:  # its files match their checksums: the model of config.json is not this checkpoint's
                raise self._mismatch(step, changed, config) from None
            raise
        if "state_sha256" in meta and state_digest(state) != meta["state_sha256"]:
            raise ConfigError(
                f"{where}: checkpoint data fails its checksum (damaged on disk); "
                "delete that folder to fall back to an older one, or start the run again"
            )
        return state, meta

    def _check_model(self, step: int, like: Any, saved: dict | None, config: dict | None) -> None:
        """A checkpoint whose arrays are not the shapes `like` has: the model of config.json is another one."""
        try:
            handlers = {"state": ocp.StandardCheckpointHandler(), "meta": ocp.JsonCheckpointHandler()}
            manager = _read_only_manager(self.directory, item_handlers=handlers)
            tree = manager.item_metadata(step)["state"]
            found = sorted((tuple(a.shape), str(a.dtype)) for a in jax.tree.leaves(getattr(tree, "tree", tree)))
        except Exception:  # no readable metadata: the restore itself will tell
            return
        wanted = sorted((tuple(a.shape), str(a.dtype)) for a in jax.tree.leaves(like))
        if found == wanted:
            return
        changed = _changed(saved, config)
        if changed:
            raise self._mismatch(step, changed, config)
        raise ConfigError(
            f"{self._step_dir(step)}: config.json describes another model than this checkpoint holds (its arrays "
            "have other shapes); the checkpoint is fine: if config.json was edited, put it back as the run wrote it"
        )

    def _mismatch(self, step: int, changed: dict, config: dict) -> ConfigError:
        was = ", ".join(f'"{k}": {json.dumps(v)}' for k, v in changed.items())
        now = ", ".join(f"{k} = {json.dumps(config.get(k))}" for k in changed)
        return ConfigError(
            f"{self._step_dir(step)}: config.json says {now}, but this checkpoint was trained with {was}; "
            "the checkpoint is fine: put those values back in config.json"
        )

    def _step_dir(self, step: int) -> str:
        return os.path.join(self.directory, str(step))

    def _check_files(self, step: int) -> None:
        """Compare the checkpoint's files with the manifest written after its commit (absent if killed before)."""
        manifest = os.path.join(self._step_dir(step), MANIFEST)
        if not os.path.exists(manifest):
            return
        try:
            with open(manifest) as f:
                expected = json.load(f)
        except (ValueError, UnicodeDecodeError):
            expected = None
        found = _file_digests(self._step_dir(step))
        if expected != found:
            bad = sorted(k for k in set(found) | set(expected or {}) if (expected or {}).get(k) != found.get(k))
            raise ConfigError(
                f"{self._step_dir(step)}: checkpoint is corrupt ({', '.join(bad[:3]) or MANIFEST} changed since it "
                "was written); delete that folder to fall back to an older one, or start the run again"
            )

    def _read(self, step: int, **items) -> dict:
        try:
            return self._manager.restore(step, args=ocp.args.Composite(**items))
        except Exception as e:  # orbax raises many types for damaged files
            raise ConfigError(
                f"{self.directory}/{step}: checkpoint is corrupt ({type(e).__name__}); "
                "delete that folder to fall back to an older one, or start the run again"
            ) from None

    def close(self) -> None:
        self._manager.close()
