"""Many small trainings at once: one compiled program trains every (learning rate, seed) pair of a grid.

A sweep of learning rates times seeds run as separate `jaxmlp.runs.loop.fit` calls is, on a CPU, mostly
compile time: each call builds its own program. Here the learning rate and the seed are traced
arguments, so `jax.vmap` runs the whole grid in one program, and the epochs run in one `lax.scan`.
Everything else (architecture, optimizer, schedule, dropout rate, normalization, loss scale) is static: one
compile per `Spec`. The model is `jaxmlp.core.model.MLP` and the optimizer `jaxmlp.core.optim.make_optimizer`,
the very pieces `jaxmlp train` uses; shuffling and dropout keys are derived from the seed.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxmlp.core.model import MLP
from jaxmlp.core.optim import make_optimizer, make_schedule
from jaxmlp.core.train import cross_entropies


@dataclasses.dataclass(frozen=True)
class Spec:
    """What one compiled program trains: the static part of a run."""

    optimizer: str = "sgd"
    hidden: tuple[int, ...] = (128, 64)
    epochs: int = 5
    batch_size: int = 64
    dropout: float = 0.0
    norm: str = "none"
    weight_decay: float = 0.0
    loss_scale: float = 1.0  # the loss is multiplied by this (gradient-scale invariance); reported losses are not
    schedule: str = "constant"  # one of jaxmlp.core.optim.SCHEDULES: the learning rate over the run's steps, peak = lr
    warmup_steps: int = 0  # for "warmup_cosine"


def _model(spec: Spec, num_features: int, num_classes: int, key: jax.Array) -> MLP:
    return MLP(num_features, spec.hidden, num_classes, dropout=spec.dropout, norm=spec.norm, rngs=nnx.Rngs(params=key))


def init_params(spec: Spec, num_features: int, num_classes: int, seed: jax.Array):
    """(graphdef, params, batch_stats) of the MLP initialized from `seed`, as `jaxmlp train --seed` would draw it."""
    init_key, _ = jax.random.split(jax.random.key(seed))
    return nnx.split(_model(spec, num_features, num_classes, init_key), nnx.Param, nnx.BatchStat)


def apply(graphdef, params, batch_stats, x, *, train: bool, key=None):
    """Logits and the updated batch statistics (changed only when `train`, with batch norm)."""
    model = nnx.merge(graphdef, params, batch_stats, copy=True)
    logits = model(x, train=train, rngs=nnx.Rngs(dropout=key) if key is not None else None)
    return logits, nnx.state(model, nnx.BatchStat)


def _evaluate(graphdef, params, batch_stats, x, y) -> dict:
    logits, _ = apply(graphdef, params, batch_stats, x, train=False)
    return {"loss": cross_entropies(logits, y).mean(), "accuracy": jnp.mean(jnp.argmax(logits, -1) == y)}


def _train_one(spec: Spec, num_classes: int, data: dict, lr: jax.Array, seed: jax.Array) -> dict:
    """One run: `spec.epochs` epochs of shuffled minibatches; per epoch, every split in `data` evaluated."""
    x, y = data["train"]
    graphdef, params, stats = init_params(spec, x.shape[1], num_classes, seed)
    steps = x.shape[0] // spec.batch_size
    if spec.schedule != "constant":  # the schedule's shape with peak 1, times the traced peak lr
        unit, peak = make_schedule(1.0, spec.schedule, spec.epochs * steps, spec.warmup_steps), lr
        lr = lambda count: peak * unit(count)  # noqa: E731
    tx = make_optimizer(spec.optimizer, lr, weight_decay=spec.weight_decay)
    run_key = jax.random.split(jax.random.key(seed))[1]

    def step(carry, inputs):
        params, stats, opt = carry
        idx, key = inputs

        def loss_fn(p):
            logits, new_stats = apply(graphdef, p, stats, x[idx], train=True, key=key if spec.dropout else None)
            return cross_entropies(logits, y[idx]).mean() * spec.loss_scale, new_stats

        (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt = tx.update(grads, opt, params)
        return (optax.apply_updates(params, updates), stats, opt), loss / spec.loss_scale

    def epoch(carry, e):
        epoch_key = jax.random.fold_in(run_key, e)
        perm = jax.random.permutation(epoch_key, x.shape[0])[: steps * spec.batch_size]
        keys = jax.random.split(jax.random.fold_in(epoch_key, 1), steps)
        carry, losses = jax.lax.scan(step, carry, (perm.reshape(steps, spec.batch_size), keys))
        evals = {name: _evaluate(graphdef, carry[0], carry[1], *xy) for name, xy in data.items()}
        return carry, (losses, evals)

    (params, stats, opt), (losses, evals) = jax.lax.scan(
        epoch, (params, stats, tx.init(params)), jnp.arange(spec.epochs)
    )
    return {"step_loss": losses.reshape(-1), "evals": evals, "params": params, "batch_stats": stats, "opt_state": opt}


@functools.partial(jax.jit, static_argnames=("spec", "num_classes"))
def _train_grid(spec: Spec, num_classes: int, data: dict, lrs: jax.Array, seeds: jax.Array) -> dict:
    return jax.vmap(lambda lr, seed: _train_one(spec, num_classes, data, lr, seed))(lrs, seeds)


def train_grid(spec: Spec, data: dict, lrs, seeds) -> dict:
    """Train every (lr, seed) in the product of `lrs` and `seeds`; arrays come back shaped (len(lrs), len(seeds), ...).

    `data` maps split names to (x, y) arrays and must hold "train"; every split is evaluated (eval mode) after
    each epoch. Returns NumPy arrays: `step_loss` (..., steps), `<split>_loss` and `<split>_accuracy`
    (..., epochs), and the final `params`, `batch_stats` and `opt_state` as pytrees. A diverged run shows NaN.
    """
    lr_grid, seed_grid = np.meshgrid(np.asarray(lrs, np.float32), np.asarray(seeds, np.int32), indexing="ij")
    num_classes = max(int(np.max(y)) for _, y in data.values()) + 1  # labels are 0..K-1
    data = {name: (jnp.asarray(x), jnp.asarray(y)) for name, (x, y) in data.items()}
    out = _train_grid(spec, num_classes, data, jnp.asarray(lr_grid.ravel()), jnp.asarray(seed_grid.ravel()))
    shape = lr_grid.shape
    result = {"step_loss": out["step_loss"]}
    for name, ev in out["evals"].items():
        result[f"{name}_loss"], result[f"{name}_accuracy"] = ev["loss"], ev["accuracy"]
    reshape = lambda a: np.asarray(a).reshape(*shape, *np.shape(a)[1:])
    result = {k: reshape(v) for k, v in result.items()}
    for k in ("params", "batch_stats", "opt_state"):
        result[k] = jax.tree.map(reshape, out[k])
    return result
