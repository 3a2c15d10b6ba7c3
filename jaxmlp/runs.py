"""A run directory: where one training run keeps everything it produced.

runs/<name>/
  config.json      the full TrainConfig (what `--resume` and `eval` rebuild from)
  metrics.jsonl    one JSON line per epoch
  steps.npz        every step's loss, per-layer gradient norm and update/param ratio
  checkpoints/     orbax checkpoints (params, batch statistics, optimizer state, step, key)
  figures/         PNGs from `jaxmlp plot`

A new run touches nothing until its first checkpoint: it is built in a hidden sibling,
`.<name>.jaxmlp-new`, and renamed to `<name>` once that checkpoint is committed (an old run
replaced with `--overwrite` is moved aside only then). So a run that fails or is stopped before
its first checkpoint leaves nothing behind, and an old run is never lost to a new one that did
not start. One process at a time may train a run: it holds `.<name>.jaxmlp-lock` beside it.

Each checkpoint commits the metrics and step log with it: both files are written first, and the
checkpoint records their checksums (and its own parameters' checksum). A resume keeps the rows
up to the checkpoint and checks them against those checksums, so a kill between the writes
cannot lose or duplicate an epoch, and a damaged or missing file is reported, not trained over.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import io
import json
import os
import shlex
import shutil
import signal
import zipfile

import jax
import numpy as np

from jaxmlp.config import TrainConfig
from jaxmlp.errors import ConfigError
from jaxmlp.files import FileLock, sha256_text, write_atomic, write_json

RUN_FILES = ("config.json", "checkpoints")  # what makes a folder a jaxmlp run
CHECKPOINT_OVERHEAD = 256 * 1024  # bytes beside the arrays: orbax's metadata files, metrics, step log


def is_run(path: str) -> bool:
    return all(os.path.exists(os.path.join(path, name)) for name in RUN_FILES)


def model_shape(ds) -> dict[str, int]:
    """What a checkpoint must match to be restored for the `Dataset` `ds`."""
    return {"num_features": ds.num_features, "num_classes": ds.num_classes}


def steps_before(arrays: dict[str, np.ndarray], step: int) -> dict[str, np.ndarray]:
    """The step log as it stood before step `step` ran: its losses, and the layer statistics taken before it."""
    if set(arrays) != {"loss", "stats_step", "grad_norm", "update_ratio", "layers"}:
        return arrays  # damaged or missing: its checksum will not match
    keep = arrays["stats_step"] < step
    return {
        "loss": arrays["loss"][:step],
        **{k: arrays[k][keep] for k in ("stats_step", "grad_norm", "update_ratio")},
        "layers": arrays["layers"],
    }


def metrics_text(rows: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def steps_digest(arrays: dict[str, np.ndarray]) -> str:
    """A checksum of the step log's arrays (names, dtypes, shapes and bytes)."""
    h = hashlib.sha256()
    for name, a in sorted(arrays.items()):
        h.update(f"{name}:{a.dtype.str}:{a.shape}:".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


class RunDir:
    def __init__(self, path: str, config: TrainConfig | None = None, committed: bool = True):
        self.path = path
        self.committed = committed  # False: not yet on disk (a new run before its first checkpoint)
        self._config = config
        self._lock: FileLock | None = None
        self._made: list[str] = []
        self._checkpointer = None
        parent, name = os.path.split(os.path.abspath(path))
        self.staging_path = os.path.join(parent, f".{name}.jaxmlp-new")
        self.aside_path = os.path.join(parent, f".{name}.jaxmlp-old")
        self.lock_path = os.path.join(parent, f".{name}.jaxmlp-lock")

    folder = property(lambda self: self.path if self.committed else self.staging_path)
    config_path = property(lambda self: os.path.join(self.folder, "config.json"))
    metrics_path = property(lambda self: os.path.join(self.folder, "metrics.jsonl"))
    steps_path = property(lambda self: os.path.join(self.folder, "steps.npz"))
    checkpoint_dir = property(lambda self: os.path.join(self.folder, "checkpoints"))
    figures_dir = property(lambda self: os.path.join(self.folder, "figures"))

    @staticmethod
    def default_path(config: TrainConfig, root: str = "runs") -> str:
        """`runs/<timestamp>-<dataset>` (a `--data-dir` run: its folder's name), numbered if it exists."""
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        dataset = config.dataset or os.path.basename(os.path.normpath(config.data_dir or "data"))
        base = os.path.join(root, f"{stamp}-{dataset}")
        path, i = base, 1
        while os.path.exists(path):
            i += 1
            path = f"{base}-{i}"
        return path

    @classmethod
    def create(cls, path: str, config: TrainConfig, overwrite: bool = False, lock: bool = True) -> RunDir:
        """A new run at `path`, written at its first checkpoint. An existing non-empty folder is an error
        unless `overwrite`, and `overwrite` replaces only a jaxmlp run."""
        run = cls(path, config, committed=False)
        if lock:
            run._take_lock()
        try:
            run._check_new(overwrite)
        except BaseException:
            run.release()
            raise
        return run

    def _check_new(self, overwrite: bool) -> None:
        path = self.path
        if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
            if not overwrite:
                raise ConfigError(
                    f"--out {path} already holds a run; pick another --out, continue it with "
                    f"--resume {shlex.quote(path)}, or replace it with --overwrite"
                )
            if not is_run(path):
                raise ConfigError(
                    f"--out {path} is not a jaxmlp run (no config.json and checkpoints/), so --overwrite "
                    "will not delete it; pick another --out"
                )

    @classmethod
    def open(cls, path: str, lock: bool = False) -> RunDir:
        """An existing run; `lock=True` (to train it) takes its lock and finishes an interrupted replacement."""
        run = cls(path)
        if lock:
            run._take_lock()
        if not os.path.isfile(run.config_path):
            run.release()
            raise ConfigError(f"{path}: not a run directory (no config.json); pass the folder `jaxmlp train` printed")
        return run

    def _take_lock(self) -> None:
        parent = os.path.dirname(self.lock_path)
        folder = parent  # record the folders above the run that we create: removed again if it never commits
        while not os.path.exists(folder):
            self._made.append(folder)
            folder = os.path.dirname(folder)
        try:
            os.makedirs(parent, exist_ok=True)
            self._lock = FileLock(self.lock_path, f"{self.path} is in use by another jaxmlp train").acquire()
        except OSError as e:
            raise ConfigError(f"{parent}: cannot write there ({e.strerror}); pick a writable --out") from None
        self._recover()

    def _recover(self) -> None:
        """Finish or undo what a killed process left half-done, under the lock: a staged run that holds a
        checkpoint replaces the run, one that does not is deleted, and a run moved aside is deleted or put back."""
        if os.path.isdir(self.staging_path):
            if _has_checkpoint(os.path.join(self.staging_path, "checkpoints")):
                if os.path.exists(self.path) and not os.path.exists(self.aside_path):
                    os.replace(self.path, self.aside_path)
                if not os.path.exists(self.path):
                    os.replace(self.staging_path, self.path)
            shutil.rmtree(self.staging_path, ignore_errors=True)
        if os.path.exists(self.aside_path):
            if os.path.exists(self.path):
                shutil.rmtree(self.aside_path)
            else:
                os.replace(self.aside_path, self.path)

    def release(self) -> None:
        """Close the checkpoint manager and drop the lock."""
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None
        if self._lock is not None:
            if not self.committed:
                shutil.rmtree(self.staging_path, ignore_errors=True)
            self._lock.release()
            self._lock = None
            for folder in [] if self.committed else self._made:
                try:
                    os.rmdir(folder)
                except OSError:
                    break

    def config(self) -> TrainConfig:
        if self._config is None:
            try:
                with open(self.config_path) as f:
                    self._config = TrainConfig.from_json(json.load(f), complete=True).validate()
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise ConfigError(f"{self.config_path}: not valid JSON ({e}); restore it or start a new run") from None
            except ConfigError as e:
                raise ConfigError(f"{self.config_path}: {e}; restore it or start a new run") from None
        return self._config

    def extend(self, epochs: int, writer: bool) -> None:
        """Train this committed run to `epochs` in all: config.json says so (written atomically); the checkpoint stays.

        `writer`: this process writes the file (one process of a multi-process run does)."""
        self._config = dataclasses.replace(self.config(), epochs=epochs)
        if writer:
            write_json(self.config_path, self._config.to_json())

    def read_metrics(self) -> list[dict]:
        if not os.path.exists(self.metrics_path):
            return []
        try:
            with open(self.metrics_path) as f:
                rows = [json.loads(line) for line in f if line.strip()]
            if not all(isinstance(r, dict) and isinstance(r.get("epoch"), int) for r in rows):
                raise ValueError("a line is not an epoch's row")
        except (ValueError, UnicodeDecodeError) as e:
            raise ConfigError(f"{self.metrics_path}: damaged ({e}); restore it or start the run again") from None
        return rows

    def read_steps(self) -> dict[str, np.ndarray]:
        """Per optimizer step: loss, and per layer the gradient norm and update/param ratio."""
        if not os.path.exists(self.steps_path):
            return {}
        try:
            with np.load(self.steps_path) as f:
                return dict(f)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
            raise ConfigError(f"{self.steps_path}: damaged ({e}); restore it or start the run again") from None

    def checkpointer(self):
        from jaxmlp.checkpoint import Checkpointer  # orbax, only for the commands that need it

        if self._checkpointer is None:
            self._checkpointer = Checkpointer(self.checkpoint_dir)
        return self._checkpointer

    def save(self, state, meta: dict, metrics: list[dict], steps: dict[str, np.ndarray], writer: bool) -> None:
        """Commit one checkpoint with the metrics and step log it belongs to (see the module docstring).

        `writer`: this process writes the small files (one process of a multi-process run does)."""
        meta = {**meta, "metrics_sha256": sha256_text(metrics_text(metrics)), "steps_sha256": steps_digest(steps)}
        self._check_space(sum(leaf.nbytes for leaf in jax.tree.leaves(state)))
        if writer:
            if not self.committed and not os.path.isdir(self.staging_path):
                os.makedirs(self.staging_path)
                write_json(self.config_path, self.config().to_json())
            write_atomic(self.metrics_path, metrics_text(metrics))
            buf = io.BytesIO()
            np.savez(buf, **steps)
            write_atomic(self.steps_path, buf.getvalue())
        crash_point("files-written")
        self.checkpointer().save(int(state.step), state, meta)
        crash_point("checkpoint-committed")
        if not self.committed:
            self._publish(writer)

    def _check_space(self, state_bytes: int) -> None:
        """Refuse a checkpoint the disk cannot hold before writing a byte of it: a write that fails
        inside orbax leaves its worker threads reporting into a closed event loop."""
        folder = self.folder if os.path.isdir(self.folder) else os.path.dirname(os.path.abspath(self.folder))
        free, needed = shutil.disk_usage(folder).free, 2 * state_bytes + CHECKPOINT_OVERHEAD
        if free < needed:
            then = "resume with --resume (the last checkpoint is kept)" if self.committed else "run it again"
            raise ConfigError(
                f"{folder}: {free // 1024} KiB free, but a checkpoint needs about {needed // 1024} KiB; "
                f"free space, then {then}"
            )

    def _publish(self, writer: bool) -> None:
        """Move the staged run to its path, replacing (after moving it aside) any old run there."""
        self._checkpointer.close()
        self._checkpointer = None
        if writer:
            if os.path.exists(self.path) and (not os.path.isdir(self.path) or os.listdir(self.path)):
                os.replace(self.path, self.aside_path)
                crash_point("old-run-moved-aside")
            elif os.path.isdir(self.path):
                os.rmdir(self.path)
            os.replace(self.staging_path, self.path)
            shutil.rmtree(self.aside_path, ignore_errors=True)
        _sync_processes("jaxmlp: run published")
        self.committed = True

    def restore(self, like, shape: dict[str, int]) -> tuple[object, dict, list[dict], dict[str, np.ndarray]]:
        """The latest checkpoint's state and meta, and the metrics rows and step log committed with it."""
        state, meta = self.checkpointer().restore(like, shape)
        return (state, meta, *self.history(meta, int(state.step)))

    def check_history(self) -> None:
        """Check metrics.jsonl and steps.npz against the latest checkpoint (for `jaxmlp plot`)."""
        checkpointer = self.checkpointer()
        self.history(checkpointer.read_meta(), checkpointer.latest_step())

    def history(self, meta: dict, step: int) -> tuple[list[dict], dict[str, np.ndarray]]:
        """The metrics rows and step log as they were when the checkpoint (`meta`, at `step`) was committed."""
        metrics = [r for r in self.read_metrics() if r["epoch"] <= meta["epoch"]]
        self._check(self.metrics_path, sha256_text(metrics_text(metrics)), meta.get("metrics_sha256"))
        steps = steps_before(self.read_steps(), step)
        self._check(self.steps_path, steps_digest(steps), meta.get("steps_sha256"))
        return metrics, steps

    @staticmethod
    def _check(path: str, digest: str, expected: str | None) -> None:
        if expected is not None and digest != expected:
            what = "is missing" if not os.path.exists(path) else "does not match the latest checkpoint"
            raise ConfigError(
                f"{path} {what}; restore it from a copy, or start the run again with --overwrite "
                "(a resume needs the full history to continue exactly)"
            )


def crash_point(name: str) -> None:
    """For the crash tests: `JAXMLP_CRASH_AT=name:n` kills this process (SIGKILL) the n-th time it passes `name`."""
    target, _, nth = os.environ.get("JAXMLP_CRASH_AT", "").partition(":")
    if target == name:
        _passes[name] = _passes.get(name, 0) + 1
        if _passes[name] == int(nth or 1):
            os.kill(os.getpid(), signal.SIGKILL)


_passes: dict[str, int] = {}


def _has_checkpoint(directory: str) -> bool:
    return os.path.isdir(directory) and any(name.isdigit() for name in os.listdir(directory))


def _sync_processes(name: str) -> None:
    import jax

    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)
