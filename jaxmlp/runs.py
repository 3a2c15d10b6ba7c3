"""A run directory: where one training run keeps everything it produced.

runs/<name>/
  jaxmlp-run.json  the marker that makes the folder a jaxmlp run: format version and the run's id
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

A folder is a jaxmlp run only when it holds the marker `jaxmlp-run.json` that jaxmlp wrote when it created the run;
`--overwrite` replaces nothing else (a folder that merely has a config.json and a checkpoints/ folder, a run
without the marker, a symlink, `/`, $HOME, the current folder or one above it). What jaxmlp deletes is a run,
staging folder or moved-aside run that holds its marker, an empty staging folder, or its own lock file; and it
writes through no symlink. Readers (`eval`, `plot`) change nothing: the clean-up of what a killed process left
(orbax's temporary folders, staging folders, a half-done replacement) happens in `train`, under the run's lock,
and when a run is created, for every other run of the same parent folder whose lock is free.

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
import re
import shlex
import shutil
import signal
import stat
import uuid
import zipfile

import jax
import numpy as np

from jaxmlp.config import TrainConfig
from jaxmlp.errors import ConfigError
from jaxmlp.files import FileLock, open_nofollow, refuse_link, sha256_text, write_atomic, write_json

MARKER = "jaxmlp-run.json"  # written in every run jaxmlp creates: what makes a folder a jaxmlp run
MARKER_KIND, MARKER_FORMAT = "jaxmlp run", 1
CHECKPOINT_OVERHEAD = 256 * 1024  # bytes beside the arrays: orbax's metadata files, metrics, step log


def run_marker(path: str) -> dict | None:
    """The marker of the run at `path` (a real folder, not a link), or None when it holds no valid one."""
    try:
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            return None
        fd = open_nofollow(os.path.join(path, MARKER), os.O_RDONLY)
    except (OSError, ConfigError):
        return None
    try:
        with os.fdopen(fd, "rb") as f:
            marker = json.loads(f.read(4096))
    except (ValueError, UnicodeDecodeError):
        return None
    ok = isinstance(marker, dict) and marker.get("kind") == MARKER_KIND and marker.get("format") == MARKER_FORMAT
    return marker if ok and isinstance(marker.get("id"), str) else None


def is_run(path: str) -> bool:
    return run_marker(path) is not None


def _own_staging(path: str) -> bool:
    """Whether `path` is a staging folder jaxmlp made: a real folder with the marker, or empty (killed before it)."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode) and (is_run(path) or not os.listdir(path))
    except OSError:
        return False


def _refuse_place(path: str) -> None:
    """A run never goes at `/`, $HOME, the current folder or a folder above it, or a symlink: one line saying which."""
    given = path.rstrip(os.sep) or os.sep
    if os.path.islink(given):
        raise ConfigError(f"--out {path} is a symlink (to {os.readlink(given)}); give the folder itself, not a link")
    real, cwd = os.path.realpath(path), os.path.realpath(os.getcwd())
    if real == os.sep:
        raise ConfigError(f"--out {path} is the root folder /; give a folder for the run, such as runs/NAME")
    if real == os.path.realpath(os.path.expanduser("~")):
        raise ConfigError(f"--out {path} is your home folder ($HOME); give a folder for the run, such as runs/NAME")
    if real == cwd:
        raise ConfigError(f"--out {path} is the current folder; give a folder for the run, such as runs/NAME")
    if cwd.startswith(real.rstrip(os.sep) + os.sep):
        raise ConfigError(f"--out {path} is above the current folder; give a folder for the run, such as runs/NAME")
    if os.path.exists(path) and not os.path.isdir(path):
        raise ConfigError(f"--out {path} is a file, not a folder; give a folder for the run")


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
    def __init__(self, path: str, config: TrainConfig | None = None, committed: bool = True, read_only: bool = True):
        self.path = path
        self.committed = committed  # False: not yet on disk (a new run before its first checkpoint)
        self.read_only = read_only  # a reader (eval, plot): nothing on disk is changed or deleted
        self._config = config
        self._lock: FileLock | None = None
        self._made: list[str] = []
        self._staged = False  # this process made the staging folder
        self._checkpointer = None
        # the lock and staging names come from the real path, so two names of one run share one lock
        parent, name = os.path.split(os.path.realpath(path))
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
        _refuse_place(path)
        run = cls(path, config, committed=False, read_only=False)
        if lock:
            run._take_lock()
        try:
            if lock:
                run._recover()
                _sweep(os.path.dirname(run.lock_path), keep=run.lock_path)
            run._check_new(overwrite)
        except BaseException:
            run.release()
            raise
        return run

    def _check_new(self, overwrite: bool) -> None:
        path = self.path
        if os.path.exists(path) and os.listdir(path):
            if not is_run(path):
                raise ConfigError(
                    f"--out {path} is not empty and is not a jaxmlp run (it has no {MARKER}, the marker jaxmlp writes "
                    "in every run it creates), so jaxmlp will not write there or delete it; pick another --out (a run "
                    "folder without the marker can still be resumed, evaluated and plotted, but not replaced)"
                )
            if not overwrite:
                raise ConfigError(
                    f"--out {path} already holds a run; pick another --out, continue it with "
                    f"--resume {shlex.quote(path)}, or replace it with --overwrite"
                )

    @classmethod
    def open(cls, path: str, lock: bool = False, read_only: bool = True) -> RunDir:
        """An existing run; `lock=True` (to train it) takes its lock and finishes an interrupted replacement.

        `read_only=False`: this process writes the run (train; every process of a multi-process run)."""
        run = cls(path, read_only=read_only)
        if lock:
            run._take_lock()
            try:
                run._recover()
            except BaseException:
                run.release()
                raise
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

    def _recover(self) -> None:
        """Finish or undo what a killed process left half-done, under the lock: a staged run that holds a
        checkpoint replaces the run, one that does not is deleted, and a run moved aside is deleted or put back.
        Only folders with jaxmlp's marker (or an empty staging folder) are moved or deleted."""
        real = os.path.join(os.path.dirname(self.lock_path), os.path.basename(os.path.realpath(self.path)))
        if os.path.lexists(self.staging_path):
            if not _own_staging(self.staging_path):
                raise ConfigError(f"{self.staging_path} is not jaxmlp's staging folder (no {MARKER}); move it away")
            if _has_checkpoint(os.path.join(self.staging_path, "checkpoints")):
                if os.path.lexists(real) and not os.path.lexists(self.aside_path) and is_run(real):
                    os.replace(real, self.aside_path)
                if not os.path.lexists(real):
                    os.replace(self.staging_path, real)
            if os.path.lexists(self.staging_path):
                shutil.rmtree(self.staging_path)
        if os.path.lexists(self.aside_path):
            if not is_run(self.aside_path):
                raise ConfigError(f"{self.aside_path} is not a run jaxmlp moved aside (no {MARKER}); move it away")
            if os.path.lexists(real):
                shutil.rmtree(self.aside_path)
            else:
                os.replace(self.aside_path, real)

    def release(self) -> None:
        """Close the checkpoint manager and drop the lock."""
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None
        if self._lock is not None:
            if not self.committed and self._staged and _own_staging(self.staging_path):
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
            self._checkpointer = Checkpointer(self.checkpoint_dir, read_only=self.read_only)
            if self._lock is not None:  # only the trainer, under the lock, removes what a killed one left
                self._checkpointer.clean_temp()
        return self._checkpointer

    def save(self, state, meta: dict, metrics: list[dict], steps: dict[str, np.ndarray], writer: bool) -> None:
        """Commit one checkpoint with the metrics and step log it belongs to (see the module docstring).

        `writer`: this process writes the small files (one process of a multi-process run does)."""
        meta = {**meta, "metrics_sha256": sha256_text(metrics_text(metrics)), "steps_sha256": steps_digest(steps)}
        meta["config"] = self.config().to_json()  # so a config.json edited later is named as such on restore
        self._check_space(sum(leaf.nbytes for leaf in jax.tree.leaves(state)))
        if writer:
            if not self.committed and not self._staged:
                self._stage()
            write_atomic(self.metrics_path, metrics_text(metrics))
            buf = io.BytesIO()
            np.savez(buf, **steps)
            write_atomic(self.steps_path, buf.getvalue())
        crash_point("files-written")
        self.checkpointer().save(int(state.step), state, meta)
        crash_point("checkpoint-committed")
        if not self.committed:
            self._publish(writer)

    def _stage(self) -> None:
        """Make the staging folder (never an existing one) and write the marker in it first, then config.json."""
        refuse_link(self.staging_path)
        try:
            os.mkdir(self.staging_path)
        except FileExistsError:
            raise ConfigError(f"{self.staging_path} appeared while the run trained; move it away, run again") from None
        self._staged = True
        marker = {"kind": MARKER_KIND, "format": MARKER_FORMAT, "id": uuid.uuid4().hex}
        marker["created"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        write_json(os.path.join(self.staging_path, MARKER), marker)
        write_json(self.config_path, self.config().to_json())

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
            refuse_link(self.path.rstrip(os.sep) or os.sep)
            if os.path.lexists(self.path) and (not os.path.isdir(self.path) or os.listdir(self.path)):
                if not is_run(self.path):
                    raise ConfigError(
                        f"{self.path} changed while the run trained and is no longer a jaxmlp run; "
                        "it is left as it is: move it away, then run again"
                    )
                os.replace(self.path, self.aside_path)
                crash_point("old-run-moved-aside")
            elif os.path.isdir(self.path):
                os.rmdir(self.path)
            os.replace(self.staging_path, self.path)
            if is_run(self.aside_path):
                shutil.rmtree(self.aside_path)
        _sync_processes("jaxmlp: run published")
        self.committed = True

    def restore(self, like, shape: dict[str, int]) -> tuple[object, dict, list[dict], dict[str, np.ndarray]]:
        """The latest checkpoint's state and meta, and the metrics rows and step log committed with it."""
        state, meta = self.checkpointer().restore(like, shape, self.config().to_json())
        return (state, meta, *self.history(meta, int(state.step)))

    def check_history(self) -> None:
        """Check metrics.jsonl and steps.npz against the latest checkpoint (for `jaxmlp plot`)."""
        trainer = FileLock.holder(self.lock_path)
        for attempt in (1, 2):
            try:
                checkpointer = self.checkpointer()
                step = checkpointer.latest_step()
                self.history(checkpointer.read_meta(step), step)
                return
            except ConfigError:
                if trainer is None:
                    raise
                if attempt == 2:
                    raise ConfigError(
                        f"training in progress (pid {trainer}): its checkpoints changed while they were read; "
                        "run the command again"
                    ) from None
                self.release()  # a fresh look at the checkpoints folder

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


def _sweep(parent: str, keep: str) -> None:
    """Clean what killed runs left in `parent` (staging folders, moved-aside runs, lock files), each only when its
    lock is free and only what holds jaxmlp's marker; the lock `keep` (this run's own) is left alone."""
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for name in sorted({m[1] for m in map(_LEFTOVER.fullmatch, names) if m}):
        other = RunDir(os.path.join(parent, name), read_only=False)
        if other.lock_path == keep or os.path.islink(other.path):
            continue
        try:
            other._take_lock()
        except ConfigError:
            continue  # in use, or not ours to touch
        try:
            other._recover()
        except (ConfigError, OSError):
            pass  # something foreign there: left as it is
        finally:
            other.release()


_LEFTOVER = re.compile(r"\.(.+)\.jaxmlp-(?:new|old|lock)")
