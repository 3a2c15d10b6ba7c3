"""From a few config fields to one optax `GradientTransformation`.

Each optimizer is an optax chain that computes what its `torch.optim` namesake computes. RMSProp is
`torch.optim.RMSprop`:
α = 0.99, ε = 1e-8 added *outside* the square root,

    v ← α·v + (1 - α)·g²,    θ ← θ - η·g / (√v + ε),

which is `optax.rmsprop(..., eps_in_sqrt=False)` (optax's default puts ε inside, η·g / √(v + ε): with
(1 - α)·g² around 1e-8 early on, that is a different step, not a rounding difference).
Weight decay follows PyTorch's meaning:
for SGD-family, RMSProp and Adam it is L2 added to the gradient before the
update (`add_decayed_weights` first in the chain); for AdamW it is decoupled
(optax's own `weight_decay` argument, applied after the Adam direction).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import optax


def make_schedule(lr: float, schedule: str, total_steps: int, warmup_steps: int = 0) -> optax.Schedule:
    if schedule == "constant":
        return optax.constant_schedule(lr)
    if schedule == "cosine":
        return optax.cosine_decay_schedule(lr, decay_steps=max(total_steps, 1))
    if schedule == "warmup_cosine":
        # A warm-up longer than the run (a short run of a long recipe) is cut to leave one decay step.
        total_steps = max(total_steps, 2)
        warmup_steps = min(max(warmup_steps, 1), total_steps - 1)
        return optax.warmup_cosine_decay_schedule(
            init_value=0.0, peak_value=lr, warmup_steps=warmup_steps, decay_steps=total_steps
        )
    raise ValueError(f"unknown schedule {schedule!r}")


def scale_by_adam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> optax.GradientTransformation:
    """`optax.scale_by_adam`, with the bias corrections 1 - βᵗ computed as -expm1(t·log β).

    In float32, 1 - 0.999**t loses about four digits for small t (0.999 itself rounds to 0.99900001,
    so 1 - 0.999 comes out 1.3e-5 too small), and optax's Adam drifts from PyTorch's (which computes
    it in double) by ~2e-5 relative within 100 steps. log β taken in double and expm1 keep full
    float32 precision; everything else is optax's update rule and state.
    """

    def init(params):
        return optax.ScaleByAdamState(
            count=jnp.zeros([], jnp.int32),
            mu=optax.tree_utils.tree_zeros_like(params),
            nu=optax.tree_utils.tree_zeros_like(params),
        )

    def update(updates, state, params=None):
        mu = optax.tree_utils.tree_update_moment(updates, state.mu, b1, 1)
        nu = optax.tree_utils.tree_update_moment_per_elem_norm(updates, state.nu, b2, 2)
        count = optax.safe_increment(state.count)
        c1 = -jnp.expm1(count * math.log(b1))  # math.log: log β in double, before any float32 rounding
        c2 = -jnp.expm1(count * math.log(b2))
        updates = jax.tree.map(lambda m, v: (m / c1) / (jnp.sqrt(v / c2) + eps), mu, nu)
        return updates, optax.ScaleByAdamState(count=count, mu=mu, nu=nu)

    return optax.GradientTransformation(init, update)


def make_optimizer(
    name: str,
    learning_rate: optax.ScalarOrSchedule,
    *,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    clip_norm: float = 0.0,
) -> optax.GradientTransformation:
    """`name` in OPTIMIZERS; `learning_rate` a float or an optax schedule."""
    if name == "adamw":
        core = optax.chain(
            scale_by_adam(), optax.add_decayed_weights(weight_decay), optax.scale_by_learning_rate(learning_rate)
        )
    else:
        core = {
            "sgd": lambda: optax.sgd(learning_rate),
            "momentum": lambda: optax.sgd(learning_rate, momentum=momentum),
            "nesterov": lambda: optax.sgd(learning_rate, momentum=momentum, nesterov=True),
            "rmsprop": lambda: optax.rmsprop(learning_rate, decay=0.99, eps=1e-8, eps_in_sqrt=False),
            "adam": lambda: optax.chain(scale_by_adam(), optax.scale_by_learning_rate(learning_rate)),
        }[name]()
        if weight_decay:
            core = optax.chain(optax.add_decayed_weights(weight_decay), core)
    if clip_norm:
        core = optax.chain(optax.clip_by_global_norm(clip_norm), core)
    return core
