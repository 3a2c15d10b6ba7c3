"""The training loop: the only place that talks to the host (progress, files, signals).

It drives the pure functions of `train.py`, evaluates after every epoch,
writes `metrics.jsonl`, checkpoints, and stops cleanly at a chunk boundary on
SIGINT/SIGTERM or on a non-finite loss.
"""

from __future__ import annotations

import dataclasses
import signal
import sys
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxmlp.config import TrainConfig
from jaxmlp.data import Dataset, validation_split
from jaxmlp.errors import UserError
from jaxmlp.parallel import make_mesh, put_replicated
from jaxmlp.runs import RunDir
from jaxmlp.train import (
    EvalSet,
    TrainState,
    epoch_permutation,
    init,
    linear_kernels,
    make_evaluate,
    make_probe,
    make_train_chunk,
)


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


class StopOnSignal:
    """Turn the first SIGINT/SIGTERM into a flag the loop polls; a second one aborts at once."""

    def __init__(self):
        self.signal: int | None = None

    def _handle(self, signum, frame):
        if self.signal is not None:
            raise KeyboardInterrupt
        self.signal = signum
        print(
            f"\n{signal.Signals(signum).name}: stopping at the next step boundary (again to abort)...",
            file=sys.stderr,
            flush=True,
        )

    def __enter__(self):
        self._old = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)


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

    def __init__(self, layers: list[str], previous: dict | None = None, upto: int = 0):
        self.layers = layers
        previous = previous or {}
        self.loss = list(previous.get("loss", [])[:upto])
        keep = np.asarray(previous.get("stats_step", []), np.int64) <= upto
        self.stats_step = list(np.asarray(previous.get("stats_step", []))[keep])
        self.grad_norm = list(np.asarray(previous.get("grad_norm", []))[keep])
        self.update_ratio = list(np.asarray(previous.get("update_ratio", []))[keep])

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


def fit(
    config: TrainConfig,
    ds: Dataset,
    run: RunDir | None = None,
    *,
    resume: bool = False,
    checkpoint_interval: float = 30.0,
    progress: bool | None = None,
    stop_after_epochs: int | None = None,
    eval_train: bool = False,
    epoch_hook: Callable[[TrainState], dict] | None = None,
    verbose: bool = True,
    devices: int | None = None,
) -> Outcome:
    """Train `config` on `ds`. With a `run`, write metrics and checkpoints there (and resume from them).

    `stop_after_epochs` pauses the run (checkpoint, status "interrupted") after that many
    epochs of its schedule, as if interrupted there; `resume=True` continues it.
    `eval_train` adds the training set's eval-mode loss and accuracy to every epoch's row;
    `epoch_hook(state)` returns more fields for the row (the studies use it); `verbose=False` prints nothing.
    `devices`: how many devices to split each batch over (default: all, across every process of the run).
    """
    t_start = time.perf_counter()
    val_arrays = None
    if config.val_fraction:
        ds, val_arrays = validation_split(ds, config.val_fraction, seed=config.seed)
    if config.batch_size > len(ds.y_train):
        raise UserError(
            f"--batch-size {config.batch_size} is larger than the {len(ds.y_train)} training images; "
            "use a smaller batch"
        )
    mesh = make_mesh(devices, config.batch_size)
    program, state = init(config, ds, mesh)
    val = EvalSet.from_arrays(*val_arrays, mesh=mesh) if val_arrays is not None else None
    writes_files = run is not None and jax.process_index() == 0  # one process writes; orbax saves collectively
    checkpointer = run.checkpointer() if run is not None else None
    epoch, batch, sums, metrics = 0, 0, [0.0, 0.0, 0], []
    layers = list(linear_kernels(state.params))
    log = StepLog(layers)
    if resume:
        state, meta = checkpointer.restore(state)
        epoch, batch, sums = meta["epoch"], meta["batch"], meta["sums"]
        metrics = [r for r in run.read_metrics() if r["epoch"] <= epoch]
        log = StepLog(layers, run.read_steps(), upto=int(state.step))

    x, y = put_replicated((ds.x_train, ds.y_train), mesh)
    test = EvalSet.from_arrays(ds.x_test, ds.y_test, mesh=mesh)
    train_eval = EvalSet.from_arrays(ds.x_train, ds.y_train, mesh=mesh) if eval_train else None
    t0 = time.perf_counter()
    perm0 = epoch_permutation(state.key, 0, program.num_train, program.steps_per_epoch, config.batch_size)
    train_chunk = make_train_chunk(program).lower(state, x, y, perm0, jnp.int32(0)).compile()
    evaluate = make_evaluate(program)
    evaluate(state, test)  # compile evaluation too, so epoch timings are steady-state
    probe = make_probe(program)
    probe_x, probe_y = put_replicated((ds.x_train[:256], ds.y_train[:256]), mesh)  # fixed batch for layer stats
    probe(state, probe_x, probe_y)
    compile_seconds = time.perf_counter() - t0

    steps = program.steps_per_epoch
    bar = Progress(config.epochs, steps, progress, verbose)
    last_save = time.perf_counter()

    def save(epoch_, batch_, sums_):
        if run is None:
            return
        checkpointer.save(int(state.step), state, {"epoch": epoch_, "batch": batch_, "sums": sums_})
        if writes_files:
            run.write_metrics(metrics)
            run.write_steps(log.arrays())

    status = "finished"
    with StopOnSignal() as stop:
        while epoch < config.epochs:
            t_epoch = time.perf_counter()
            perm = epoch_permutation(state.key, epoch, program.num_train, steps, config.batch_size)
            bar.start(epoch + 1, batch)
            while batch < steps:
                if int(state.step) not in log.stats_step[-1:]:
                    log.add_layer_stats(int(state.step), jax.device_get(probe(state, probe_x, probe_y)))
                state, stats = train_chunk(state, x, y, perm, jnp.int32(batch))
                stats = jax.device_get(stats)
                stats = {k: v[stats["valid"]] for k, v in stats.items()}
                loss = stats["loss"]
                if not np.all(np.isfinite(loss)):
                    bad = int(np.argmin(np.isfinite(loss)))
                    kept = (
                        f"the last good checkpoint is kept in {checkpointer.directory}"
                        if checkpointer is not None and checkpointer.latest_step() is not None
                        else "no checkpoint had been written yet"
                    )
                    raise Diverged(
                        f"loss became {loss[bad]} at epoch {epoch + 1}, step {batch + bad + 1} "
                        f"(global step {int(state.step) - len(loss) + bad + 1}); lower --lr "
                        f"(now {config.lr:g}) or add --clip-norm 1.0; {kept}"
                    )
                sums = [
                    sums[0] + float(np.sum(loss, dtype=np.float64)),
                    sums[1] + int(stats["correct"].sum()),
                    sums[2] + len(loss),
                ]
                log.add_losses(loss)
                batch += len(loss)
                bar.update(len(loss), float(loss[-1]))
                if stop.signal is not None and batch < steps:
                    status = "interrupted"
                    break
            if status == "interrupted":
                save(epoch, batch, sums)
                break
            train_seconds = time.perf_counter() - t_epoch
            row = {
                "epoch": epoch + 1,
                "step": int(state.step),
                "train_loss": sums[0] / sums[2],
                "train_accuracy": sums[1] / (sums[2] * config.batch_size),
            }
            if train_eval is not None:
                r = evaluate(state, train_eval)
                row.update(train_eval_loss=r["loss"], train_eval_accuracy=r["accuracy"])
            if val is not None:
                v = evaluate(state, val)
                row.update(val_loss=v["loss"], val_accuracy=v["accuracy"])
            t = evaluate(state, test)
            row.update(test_loss=t["loss"], test_accuracy=t["accuracy"])
            if epoch_hook is not None:
                row.update(epoch_hook(state))
            row.update(
                seconds=time.perf_counter() - t_epoch, samples_per_second=steps * config.batch_size / train_seconds
            )
            metrics.append(row)
            bar.end(row)
            epoch, batch, sums = epoch + 1, 0, [0.0, 0.0, 0]
            pause = stop.signal is not None or epoch == stop_after_epochs
            if epoch == config.epochs or pause or time.perf_counter() - last_save > checkpoint_interval:
                save(epoch, batch, sums)
                last_save = time.perf_counter()
            if pause and epoch < config.epochs:
                status = "interrupted"
                break
    if checkpointer is not None:
        checkpointer.close()
    return Outcome(status, metrics, state, log.arrays(), compile_seconds, time.perf_counter() - t_start)
