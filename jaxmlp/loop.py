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

import jax
import jax.numpy as jnp
import numpy as np

from jaxmlp.data import Dataset, validation_split
from jaxmlp.errors import UserError
from jaxmlp.runs import RunDir
from jaxmlp.train import EvalSet, TrainState, epoch_permutation, init, make_evaluate, make_train_chunk


class Diverged(UserError):
    exit_code = 3


@dataclasses.dataclass
class Outcome:
    status: str              # "finished" or "interrupted"
    metrics: list[dict]
    state: TrainState
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
        print(f"\n{signal.Signals(signum).name}: stopping at the next step boundary (again to abort)...",
              file=sys.stderr, flush=True)

    def __enter__(self):
        self._old = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)


class Progress:
    """A tqdm bar per epoch on a terminal; one plain line per epoch otherwise."""

    def __init__(self, epochs: int, steps: int, enabled: bool | None = None):
        self.epochs, self.steps = epochs, steps
        self.tty = sys.stderr.isatty() if enabled is None else enabled
        self.bar = None

    def start(self, epoch: int, done: int) -> None:
        if self.tty:
            from tqdm import tqdm
            self.bar = tqdm(total=self.steps, initial=done, desc=f"epoch {epoch}/{self.epochs}",
                            unit="step", leave=False, file=sys.stderr, dynamic_ncols=True)

    def update(self, n: int, loss: float) -> None:
        if self.bar is not None:
            self.bar.update(n)
            self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

    def end(self, row: dict) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        parts = [f"epoch {row['epoch']:>3}/{self.epochs}", f"train loss {row['train_loss']:.4f} acc {row['train_accuracy']:.4f}"]
        if "val_accuracy" in row:
            parts.append(f"val loss {row['val_loss']:.4f} acc {row['val_accuracy']:.4f}")
        parts += [f"test loss {row['test_loss']:.4f} acc {row['test_accuracy']:.4f}",
                  f"{row['seconds']:.2f}s", f"{row['samples_per_second']:,.0f} samples/s"]
        print("  ".join(parts), flush=True)


def fit(ds: Dataset, run: RunDir, *, resume: bool = False, checkpoint_interval: float = 30.0,
        progress: bool | None = None, stop_after_epochs: int | None = None) -> Outcome:
    """Train `run.config()` on `ds`, resuming from the run's latest checkpoint when `resume`.

    `stop_after_epochs` pauses the run (checkpoint, status "interrupted") after that many
    epochs of its schedule, as if interrupted there; `resume=True` continues it.
    """
    t_start = time.perf_counter()
    config = run.config()
    val = None
    if config.val_fraction:
        ds, (x_val, y_val) = validation_split(ds, config.val_fraction, seed=config.seed)
        val = EvalSet.from_arrays(x_val, y_val)
    if config.batch_size > len(ds.y_train):
        raise UserError(f"--batch-size {config.batch_size} is larger than the {len(ds.y_train)} training images; "
                        "use a smaller batch")
    program, state = init(config, ds)
    checkpointer = run.checkpointer()
    epoch, batch, sums, metrics = 0, 0, [0.0, 0.0, 0], []
    step_losses: list[float] = []
    if resume:
        state, meta = checkpointer.restore(state)
        epoch, batch, sums = meta["epoch"], meta["batch"], meta["sums"]
        metrics = [r for r in run.read_metrics() if r["epoch"] <= epoch]
        step_losses = list(run.read_step_losses()[: int(state.step)])

    x, y = jax.device_put(ds.x_train), jax.device_put(ds.y_train)
    test = EvalSet.from_arrays(ds.x_test, ds.y_test)
    t0 = time.perf_counter()
    perm0 = epoch_permutation(state.key, 0, program.num_train, program.steps_per_epoch, config.batch_size)
    train_chunk = make_train_chunk(program).lower(state, x, y, perm0, jnp.int32(0)).compile()
    evaluate = make_evaluate(program)
    evaluate(state, test)  # compile evaluation too, so epoch timings are steady-state
    compile_seconds = time.perf_counter() - t0

    steps, chunk = program.steps_per_epoch, program.chunk_steps
    bar = Progress(config.epochs, steps, progress)
    last_save = time.perf_counter()

    def save(epoch_, batch_, sums_):
        checkpointer.save(int(state.step), state, {"epoch": epoch_, "batch": batch_, "sums": sums_})
        run.write_metrics(metrics)
        run.write_step_losses(np.asarray(step_losses, np.float32))

    status = "finished"
    with StopOnSignal() as stop:
        while epoch < config.epochs:
            t_epoch = time.perf_counter()
            perm = epoch_permutation(state.key, epoch, program.num_train, steps, config.batch_size)
            bar.start(epoch + 1, batch)
            while batch < steps:
                state, (loss, correct, valid) = train_chunk(state, x, y, perm, jnp.int32(batch))
                loss, correct, valid = jax.device_get((loss, correct, valid))
                loss, correct = loss[valid], correct[valid]
                if not np.all(np.isfinite(loss)):
                    bad = int(np.argmin(np.isfinite(loss)))
                    kept = (f"the last good checkpoint is kept in {checkpointer.directory}"
                            if checkpointer.latest_step() is not None else "no checkpoint had been written yet")
                    raise Diverged(f"loss became {loss[bad]} at epoch {epoch + 1}, step {batch + bad + 1} "
                                   f"(global step {int(state.step) - len(loss) + bad + 1}); lower --lr "
                                   f"(now {config.lr:g}) or add --clip-norm 1.0; {kept}")
                sums = [sums[0] + float(np.sum(loss, dtype=np.float64)), sums[1] + int(correct.sum()), sums[2] + len(loss)]
                step_losses.extend(loss.tolist())
                batch += len(loss)
                bar.update(len(loss), float(loss[-1]))
                if stop.signal is not None and batch < steps:
                    status = "interrupted"
                    break
            if status == "interrupted":
                save(epoch, batch, sums)
                break
            train_seconds = time.perf_counter() - t_epoch
            row = {"epoch": epoch + 1, "step": int(state.step),
                   "train_loss": sums[0] / sums[2], "train_accuracy": sums[1] / (sums[2] * config.batch_size)}
            if val is not None:
                v = evaluate(state, val)
                row.update(val_loss=v["loss"], val_accuracy=v["accuracy"])
            t = evaluate(state, test)
            row.update(test_loss=t["loss"], test_accuracy=t["accuracy"],
                       seconds=time.perf_counter() - t_epoch,
                       samples_per_second=steps * config.batch_size / train_seconds)
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
    checkpointer.close()
    return Outcome(status, metrics, state, compile_seconds, time.perf_counter() - t_start)

