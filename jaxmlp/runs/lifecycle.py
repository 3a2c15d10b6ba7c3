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
cannot lose or duplicate an epoch, and a damaged or missing file is reported, not trained over
(the files themselves are `jaxmlp.runs.history`'s).

`start_training` and `resume_training` open a run to train (new, `--overwrite`, `--resume`, `--resume --epochs N`)
and say how many epochs it has finished; `resume_command` is the command that continues it.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import re
import shlex
import shutil
import stat
import uuid
from collections.abc import Callable
from typing import TypeVar

import jax
import numpy as np

from jaxmlp.config import TrainConfig
from jaxmlp.errors import ConfigError
from jaxmlp.files import FileLock, open_nofollow, refuse_link, write_json
from jaxmlp.runs.history import History, digests

T = TypeVar("T")

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


class RunDir:
    """A run's folder and its life: created (staged, then published at the first checkpoint), opened, locked,
    recovered after a kill, and committed checkpoint by checkpoint. Its metrics and step log are `self.history`."""

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
        self.history = History(self.folder)

    folder = property(lambda self: self.path if self.committed else self.staging_path)
    writer = property(lambda self: jax.process_index() == 0)  # the process that writes the files of the run
    config_path = property(lambda self: os.path.join(self.folder, "config.json"))
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

    def extend(self, epochs: int) -> TrainConfig:
        """Train this committed run to `epochs` in all: config.json says so (written atomically); checkpoints stay."""
        self._config = dataclasses.replace(self.config(), epochs=epochs)
        if self.writer:
            write_json(self.config_path, self._config.to_json())
        return self._config

    def checkpointer(self):
        from jaxmlp.runs.checkpoint import Checkpointer  # orbax, only for the commands that need it

        if self._checkpointer is None:
            self._checkpointer = Checkpointer(self.checkpoint_dir, read_only=self.read_only)
            if self._lock is not None:  # only the trainer, under the lock, removes what a killed one left
                self._checkpointer.clean_temp()
        return self._checkpointer

    def save(self, state, meta: dict, metrics: list[dict], steps: dict[str, np.ndarray]) -> None:
        """Commit one checkpoint with the metrics and step log it belongs to (see the module docstring).

        The writer process (one of a multi-process run) writes the small files; every process writes its part of
        the checkpoint. Each step is a method of its own: the crash tests kill the process between them."""
        meta = {**meta, **digests(metrics, steps)}
        meta["config"] = self.config().to_json()  # so a config.json edited later is named as such on restore
        self._check_space(sum(leaf.nbytes for leaf in jax.tree.leaves(state)))
        if self.writer:
            if not self.committed and not self._staged:
                self._stage()
            self.history.write(metrics, steps)
        self._commit(state, meta)
        if not self.committed:
            self._publish()

    def _commit(self, state, meta: dict) -> None:
        self.checkpointer().save(int(state.step), state, meta)

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

    def _publish(self) -> None:
        """Move the staged run to its path, replacing (after moving it aside) any old run there."""
        self._checkpointer.close()
        self._checkpointer = None
        if self.writer:
            refuse_link(self.path.rstrip(os.sep) or os.sep)
            if os.path.lexists(self.path) and (not os.path.isdir(self.path) or os.listdir(self.path)):
                if not is_run(self.path):
                    raise ConfigError(
                        f"{self.path} changed while the run trained and is no longer a jaxmlp run; "
                        "it is left as it is: move it away, then run again"
                    )
                self._move_aside()
            elif os.path.isdir(self.path):
                os.rmdir(self.path)
            os.replace(self.staging_path, self.path)
            if is_run(self.aside_path):
                shutil.rmtree(self.aside_path)
        _sync_processes("jaxmlp: run published")
        self.committed = True
        self.history.folder = self.path

    def _move_aside(self) -> None:
        """The old run that `--overwrite` replaces goes to `.<name>.jaxmlp-old` until the new one is in place."""
        os.replace(self.path, self.aside_path)

    def restore(self, like, shape: dict[str, int]) -> tuple[object, dict, list[dict], dict[str, np.ndarray]]:
        """The latest checkpoint's state and meta, and the metrics rows and step log committed with it."""
        state, meta = self.checkpointer().restore(like, shape, self.config().to_json())
        return (state, meta, *self.history.checked(meta, int(state.step)))

    def epochs_done(self) -> int:
        """Finished epochs at the latest checkpoint, whose history is checked against it here, so a damaged run
        is an error before anything else is said about it."""
        checkpointer = self.checkpointer()
        meta = checkpointer.read_meta()
        self.history.checked(meta, checkpointer.latest_step())
        return meta["epoch"]

    def check_history(self) -> None:
        """Check metrics.jsonl and steps.npz against the latest checkpoint (for `jaxmlp plot`)."""

        def check(checkpointer) -> None:
            step = checkpointer.latest_step()
            self.history.checked(checkpointer.read_meta(step), step)

        self.read_committed(check)

    def read_committed(self, read: Callable[[object], T]) -> tuple[T, str | None]:
        """`read(checkpointer)` of the last committed checkpoint, and the pid of a `jaxmlp train` holding the run
        (None when none does). A checkpoint the trainer replaced while it was read is read again, once, from the
        newest one; a reader writes nothing."""
        trainer = FileLock.holder(self.lock_path)
        try:  # the checkpointer is made inside: listing the checkpoints can meet one being removed
            return read(self.checkpointer()), trainer
        except ConfigError:
            if trainer is None:
                raise
        self.release()  # a fresh look at the checkpoints folder
        try:
            return read(self.checkpointer()), trainer
        except ConfigError:
            raise ConfigError(
                f"training in progress (pid {trainer}): its checkpoints changed while they were read; "
                "run the command again"
            ) from None


@dataclasses.dataclass
class TrainingRun:
    """A run opened to train: its folder, its config, how many epochs it has finished, and what to warn about."""

    run: RunDir
    config: TrainConfig
    resumed: bool = False
    epochs_done: int = 0  # at its latest checkpoint, the history checked against it (0 for a new run)
    warnings: list[str] = dataclasses.field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.epochs_done >= self.config.epochs

    def resume_command(self) -> str:
        return resume_command(self.run.path)


def start_training(path: str | None, config: TrainConfig, overwrite: bool = False, lead: bool = True) -> TrainingRun:
    """A new run of `config` at `path` (default: a new folder under runs/), not on disk until its first checkpoint;
    `overwrite` replaces a jaxmlp run there. The lead process locks it; the others of a multi-process run share it."""
    run = RunDir.create(path or RunDir.default_path(config), config, overwrite=overwrite, lock=lead)
    return TrainingRun(run, config)


def resume_training(path: str, epochs: int | None = None, lead: bool = True) -> TrainingRun:
    """The run at `path`, to continue from its latest checkpoint; `epochs` (`--resume RUN --epochs N`) raises the
    number of epochs it trains in all, and may not go below what it has finished."""
    run = RunDir.open(path, lock=lead, read_only=False)
    try:
        config, done, warnings = run.config(), run.epochs_done(), []
        if epochs is not None and epochs != config.epochs:
            if epochs < max(done, 1):
                raise ConfigError(
                    f"--epochs {epochs}: {path} has already trained {done} epochs; give more to extend it"
                )
            if config.schedule != "constant":
                warnings.append(
                    f"the {config.schedule} schedule is stretched from {config.epochs} to {epochs} epochs, so the "
                    "learning rate from here on differs from the one the run was following"
                )
            config = run.extend(epochs)
        return TrainingRun(run, config, resumed=True, epochs_done=done, warnings=warnings)
    except BaseException:
        run.release()
        raise


def resume_command(path: str) -> str:
    """The shell command that continues the run at `path` (quoted, so any folder name survives a shell)."""
    return shlex.join(["jaxmlp", "train", "--resume", path])


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
