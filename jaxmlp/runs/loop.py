"""The training loop: the only place that talks to the host (progress, files, signals).

It drives the pure functions of `jaxmlp.core.train`, evaluates after every epoch,
writes `metrics.jsonl`, checkpoints, and stops cleanly at a chunk boundary on
SIGINT/SIGTERM/SIGHUP or on a non-finite loss.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import sys
import time
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmlp.config import TrainConfig
from jaxmlp.core.parallel import make_mesh, put_replicated
from jaxmlp.core.train import (
    EvalSet,
    Program,
    TrainState,
    epoch_permutation,
    initial_state,
    linear_kernels,
    make_evaluate,
    make_probe,
    make_program,
    make_train_chunk,
    shuffle,
    state_shapes,
)
from jaxmlp.data.datasets import Dataset, validation_split
from jaxmlp.errors import UserError
from jaxmlp.runs.interrupts import Training
from jaxmlp.runs.lifecycle import RunDir, model_shape


class Diverged(UserError):
    exit_code = 3


@dataclasses.dataclass
class Outcome:
    status: str  # "finished" or "interrupted"
    metrics: list[dict]
    state: TrainState
    steps: dict  # per-step arrays: loss, grad_norm and update_ratio (steps x layers), layers
    compile_seconds: float
    wall_seconds: float


class Progress:
    """A tqdm bar per epoch on a terminal; one plain line per epoch otherwise."""

    def __init__(self, epochs: int, steps: int, enabled: bool | None = None, verbose: bool = True):
        self.epochs, self.steps, self.verbose = epochs, steps, verbose
        self.tty = verbose and (sys.stderr.isatty() if enabled is None else enabled)
        self.bar = None

    def start(self, epoch: int, done: int) -> None:
        if self.tty:
            from tqdm import tqdm

            self.bar = tqdm(
                total=self.steps,
                initial=done,
                desc=f"epoch {epoch}/{self.epochs}",
                unit="step",
                leave=False,
                file=sys.stderr,
                dynamic_ncols=True,
            )

    def update(self, n: int, loss: float) -> None:
        if self.bar is not None:
            self.bar.update(n)
            self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

    def end(self, row: dict) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if not self.verbose:
            return
        parts = [
            f"epoch {row['epoch']:>3}/{self.epochs}",
            f"train loss {row['train_loss']:.4f} acc {row['train_accuracy']:.4f}",
        ]
        if "val_accuracy" in row:
            parts.append(f"val loss {row['val_loss']:.4f} acc {row['val_accuracy']:.4f}")
        parts += [
            f"test loss {row['test_loss']:.4f} acc {row['test_accuracy']:.4f}",
            f"{row['seconds']:.2f}s",
            f"{row['samples_per_second']:,.0f} samples/s",
        ]
        print("  ".join(parts), flush=True)


class StepLog:
    """What happened step by step: every step's loss, and per-layer statistics at each chunk boundary."""

    def __init__(self, layers: list[str], previous: dict | None = None):
        self.layers = layers
        previous = previous or {}
        self.loss = list(previous.get("loss", []))
        self.stats_step = list(previous.get("stats_step", []))
        self.grad_norm = list(previous.get("grad_norm", []))
        self.update_ratio = list(previous.get("update_ratio", []))

    def add_losses(self, losses: np.ndarray) -> None:
        self.loss.extend(losses.tolist())

    def add_layer_stats(self, step: int, stats: dict) -> None:
        self.stats_step.append(step)
        self.grad_norm.append(stats["grad_norm"])
        self.update_ratio.append(stats["update_ratio"])

    def arrays(self) -> dict[str, np.ndarray]:
        n = len(self.layers)
        return {
            "loss": np.asarray(self.loss, np.float32),
            "stats_step": np.asarray(self.stats_step, np.int64),
            "grad_norm": np.asarray(self.grad_norm, np.float32).reshape(-1, n),
            "update_ratio": np.asarray(self.update_ratio, np.float32).reshape(-1, n),
            "layers": np.asarray(self.layers),
        }


class Totals(NamedTuple):
    """Running sums over the steps of the epoch under way (a checkpoint stores them as a list)."""

    loss: float = 0.0
    correct: int = 0
    steps: int = 0

    def add(self, loss: np.ndarray, correct: np.ndarray) -> Totals:
        return Totals(
            self.loss + float(np.sum(loss, dtype=np.float64)), self.correct + int(correct.sum()), self.steps + len(loss)
        )


@dataclasses.dataclass
class Compiled:
    """Everything an epoch needs on the device: the compiled functions and the data they run on."""

    program: Program
    train_chunk: Callable
    evaluate: Callable
    probe: Callable
    x: jax.Array
    y: jax.Array
    probe_batch: tuple[jax.Array, jax.Array]  # a fixed batch for the per-layer statistics
    evals: dict[str, EvalSet]  # row prefix -> set evaluated after every epoch ("train_eval", "val", "test")
    seconds: float
    orders: dict = dataclasses.field(default_factory=dict)  # (root key bytes, epoch) -> that epoch's order, drawn early

    def order(self, key: np.ndarray, epoch: int) -> jax.Array:
        """Epoch `epoch`'s sample order for the root key `key`: the one drawn ahead of time if there is one."""
        found = self.orders.pop((key.tobytes(), epoch), None)
        return found if found is not None else self.draw_order(key, epoch)

    def draw_order(self, key: np.ndarray, epoch: int) -> jax.Array:
        program = self.program
        return shuffle(key, epoch, program.num_train, program.steps_per_epoch, program.config.batch_size)

    def draw_ahead(self, key: np.ndarray, epoch: int) -> None:
        """Draw epoch `epoch`'s order now, while the device trains on the one before (kept for one epoch only)."""
        self.orders = {(key.tobytes(), epoch): self.draw_order(key, epoch)}


@dataclasses.dataclass
class Position:
    """Where the run stands: finished epochs, steps into the current one, its totals, and the history."""

    state: TrainState
    epoch: int = 0
    batch: int = 0
    totals: Totals = Totals()
    metrics: list[dict] = dataclasses.field(default_factory=list)
    log: StepLog | None = None


def prepare(
    config: TrainConfig, ds: Dataset, devices: int | None, eval_train: bool, verbose: bool = False
) -> tuple[Compiled, TrainState]:
    """Check that `config` fits `ds` and the devices, then put the data on the mesh and compile every step.

    Nothing here writes a file, so a run that fails here has touched nothing."""
    val_arrays = None
    if config.val_fraction:
        ds, val_arrays = validation_split(ds, config.val_fraction, seed=config.seed)
    if config.batch_size > len(ds.y_train):
        raise UserError(
            f"--batch-size {config.batch_size} is larger than the {len(ds.y_train)} training images; "
            "use a smaller batch"
        )
    mesh = make_mesh(devices, config.batch_size)
    if verbose:
        print("compiling the model, the training step and the evaluation…", flush=True)
    t0 = time.perf_counter()
    program = make_program(config, ds, mesh)
    evals = {"train_eval": (ds.x_train, ds.y_train)} if eval_train else {}
    evals.update({"val": val_arrays} if val_arrays is not None else {})
    evals["test"] = (ds.x_test, ds.y_test)
    evals = {k: EvalSet.from_arrays(*v, mesh=mesh) for k, v in evals.items()}
    x, y = put_replicated((ds.x_train, ds.y_train), mesh)
    probe_batch = put_replicated((ds.x_train[:256], ds.y_train[:256]), mesh)
    evaluate, probe = make_evaluate(program), make_probe(program)
    # XLA compiles in parallel threads. The training chunk, the longest to compile, is traced first (from the
    # state's shapes) and compiled in the background while the other programs are traced: the initial state's,
    # and evaluation's, probe's and shuffle's, warmed on a stand-in state of zeros (the same shapes and placement,
    # so the real state finds them compiled).
    with concurrent.futures.ThreadPoolExecutor(5) as pool:
        like = state_shapes(config, ds.num_features, ds.num_classes, program.tx, mesh)
        steps, bs = program.steps_per_epoch, config.batch_size
        perm = jax.eval_shape(lambda k: epoch_permutation(k, 0, program.num_train, steps, bs), like.key)
        train_chunk = pool.submit(make_train_chunk(program).lower(like, x, y, perm, jnp.int32(0)).compile)
        built = pool.submit(initial_state, config, ds.num_features, ds.num_classes, program.tx)
        stand_in = put_replicated(jax.tree.map(lambda a: np.zeros(a.shape, a.dtype), like), mesh)
        warm = [
            pool.submit(evaluate, stand_in, evals["test"]),  # so epoch timings are steady-state
            pool.submit(probe, stand_in, *probe_batch),
            pool.submit(shuffle, stand_in.key, 0, program.num_train, steps, bs),
        ]
        for done in warm:
            done.result()
        state = put_replicated(built.result(), mesh)
        train_chunk = train_chunk.result()
    seconds = time.perf_counter() - t0
    return Compiled(program, train_chunk, evaluate, probe, x, y, probe_batch, evals, seconds), state


def resume_position(run: RunDir, state: TrainState, ds: Dataset, layers: list[str]) -> Position:
    """The position of `run`'s latest checkpoint, its metrics and step log checked against it."""
    state, meta, metrics, steps = run.restore(state, model_shape(ds))
    return Position(state, meta["epoch"], meta["batch"], Totals(*meta["sums"]), metrics, StepLog(layers, steps))


@dataclasses.dataclass(frozen=True)
class Saving:
    """Where and when `fit` checkpoints: after the first epoch, then whenever `interval` seconds have passed at an
    epoch's end, at the last epoch, and on a stop. `resume` continues `run` from its latest checkpoint;
    `stop_after_epochs` pauses the run (checkpoint, status "interrupted") after that many epochs of its
    schedule, as if interrupted there."""

    run: RunDir | None
    resume: bool = False
    interval: float = 30.0
    stop_after_epochs: int | None = None


@dataclasses.dataclass(frozen=True)
class Reporting:
    """What `fit` shows and records: a progress bar (None: on a terminal), its epoch lines (`verbose=False` prints
    nothing), the training set's eval-mode loss and accuracy in every epoch's row (`eval_train`), and more fields
    for the row from `epoch_hook(state)` (the studies use it)."""

    progress: bool | None = None
    verbose: bool = True
    eval_train: bool = False
    epoch_hook: Callable[[TrainState], dict] | None = None


def fit(
    config: TrainConfig,
    ds: Dataset,
    saving: Saving | None = None,
    reporting: Reporting = Reporting(),
    devices: int | None = None,
) -> Outcome:
    """Train `config` on `ds`. With `saving`, write metrics and checkpoints to its run (and resume from them).

    `devices`: how many devices to split each batch over (default: all, across every process of the run).
    A signal stops it at the next chunk boundary (see `jaxmlp.runs.interrupts`), with status "interrupted".
    """
    t_start = time.perf_counter()
    saving = saving or Saving(run=None, interval=0.0)  # no run: nothing is saved
    run, interval, stop_after_epochs = saving.run, saving.interval, saving.stop_after_epochs
    compiled, state = prepare(config, ds, devices, reporting.eval_train, reporting.verbose)
    layers = list(linear_kernels(state.params))
    pos = resume_position(run, state, ds, layers) if saving.resume else Position(state, log=StepLog(layers))
    bar = Progress(config.epochs, compiled.program.steps_per_epoch, reporting.progress, reporting.verbose)
    last_save, status = time.perf_counter(), "finished"

    def save():
        meta = {"epoch": pos.epoch, "batch": pos.batch, "sums": list(pos.totals), **model_shape(ds)}
        run.save(pos.state, meta, pos.metrics, pos.log.arrays())

    with Training() as stop:
        while pos.epoch < config.epochs:
            t_epoch = time.perf_counter()
            bar.start(pos.epoch + 1, pos.batch)
            train_epoch(compiled, pos, bar, stop, run)
            if pos.batch < compiled.program.steps_per_epoch:  # stopped mid-epoch
                status = "interrupted"
                break
            row = _epoch_row(compiled, pos, t_epoch, reporting.epoch_hook)
            pos.metrics.append(row)
            bar.end(row)
            pos.epoch, pos.batch, pos.totals = pos.epoch + 1, 0, Totals()
            pause = stop.stopping or pos.epoch == stop_after_epochs
            if pause and pos.epoch < config.epochs:
                status = "interrupted"
                break
            due = pos.epoch in (1, config.epochs) or time.perf_counter() - last_save > interval
            if due and run is not None:
                save()
                last_save = time.perf_counter()
        if status == "interrupted" and run is not None:
            save()
    if stop.stopping:  # even one that came as the last epoch ended: the caller must stop too
        status = "interrupted"
    return Outcome(status, pos.metrics, pos.state, pos.log.arrays(), compiled.seconds, time.perf_counter() - t_start)


def train_epoch(compiled: Compiled, pos: Position, bar: Progress, stop: Training | None, run: RunDir | None) -> None:
    """Run chunks of the current epoch until it ends or a signal asks to stop; check every loss.

    The host waits for the device once a chunk: the probe and the chunk are queued together, and while the
    epoch's last chunk runs, the host draws the next epoch's order (NumPy sorts), so neither waits on the other.
    Public for `benchmarks/throughput.py`, which times this very loop as `jaxmlp-cli`."""
    program, steps = compiled.program, compiled.program.steps_per_epoch
    key = np.asarray(pos.state.key)  # the root key, on the host: the state is handed to the chunk (donated)
    perm = compiled.order(key, pos.epoch)
    while pos.batch < steps:
        step = int(pos.state.step)
        probe = None
        if step not in pos.log.stats_step[-1:]:
            probe = compiled.probe(pos.state, *compiled.probe_batch)
        state, stats = compiled.train_chunk(pos.state, compiled.x, compiled.y, perm, jnp.int32(pos.batch))
        if pos.batch + program.chunk_steps >= steps and pos.epoch + 1 < program.config.epochs:
            compiled.draw_ahead(key, pos.epoch + 1)
        if probe is not None:
            pos.log.add_layer_stats(step, jax.device_get(probe))
        stats = jax.device_get(stats)
        stats = {k: v[stats["valid"]] for k, v in stats.items()}
        loss = stats["loss"]
        if not np.all(np.isfinite(loss)):
            raise _diverged(program.config, loss, pos, int(state.step), run)
        pos.state, pos.totals = state, pos.totals.add(loss, stats["correct"])
        pos.log.add_losses(loss)
        pos.batch += len(loss)
        bar.update(len(loss), float(loss[-1]))
        if stop is not None and stop.stopping:
            return


def _diverged(config: TrainConfig, loss: np.ndarray, pos: Position, step: int, run: RunDir | None) -> Diverged:
    bad = int(np.argmin(np.isfinite(loss)))
    if run is None:
        kept = "no checkpoint is kept (no run directory)"
    elif run.committed:
        kept = f"the last good checkpoint is kept in {run.checkpoint_dir}"
    else:
        kept = "the run had no checkpoint yet, so nothing was written"
    return Diverged(
        f"loss became {loss[bad]} at epoch {pos.epoch + 1}, step {pos.batch + bad + 1} "
        f"(global step {step - len(loss) + bad + 1}); lower --lr "
        f"(now {config.lr:g}) or add --clip-norm 1.0; {kept}"
    )


def _epoch_row(compiled: Compiled, pos: Position, t_epoch: float, epoch_hook) -> dict:
    """The metrics line of the epoch just trained (which began at `t_epoch`): its totals, then every evaluation."""
    train_seconds = time.perf_counter() - t_epoch
    config = compiled.program.config
    row = {
        "epoch": pos.epoch + 1,
        "step": int(pos.state.step),
        "train_loss": pos.totals.loss / pos.totals.steps,
        "train_accuracy": pos.totals.correct / (pos.totals.steps * config.batch_size),
    }
    for name, eval_set in compiled.evals.items():
        r = compiled.evaluate(pos.state, eval_set)
        row.update({f"{name}_loss": r["loss"], f"{name}_accuracy": r["accuracy"]})
    if epoch_hook is not None:
        row.update(epoch_hook(pos.state))
    row["seconds"] = time.perf_counter() - t_epoch
    row["samples_per_second"] = compiled.program.steps_per_epoch * config.batch_size / train_seconds
    return row
