"""From a few config fields to one optax `GradientTransformation`.

Each optimizer is an optax chain; weight decay follows PyTorch's meaning:
for SGD-family, RMSProp and Adam it is L2 added to the gradient before the
update (`add_decayed_weights` first in the chain); for AdamW it is decoupled
(optax's own `weight_decay` argument, applied after the Adam direction).
"""

from __future__ import annotations

import optax

OPTIMIZERS = ("sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "warmup_cosine")


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
            init_value=0.0, peak_value=lr, warmup_steps=warmup_steps, decay_steps=total_steps)
    raise ValueError(f"unknown schedule {schedule!r}")


def make_optimizer(name: str, learning_rate: optax.ScalarOrSchedule, *, momentum: float = 0.9,
                   weight_decay: float = 0.0, clip_norm: float = 0.0) -> optax.GradientTransformation:
    """`name` in OPTIMIZERS; `learning_rate` a float or an optax schedule."""
    if name == "adamw":
        core = optax.adamw(learning_rate, weight_decay=weight_decay)
    else:
        core = {
            "sgd": lambda: optax.sgd(learning_rate),
            "momentum": lambda: optax.sgd(learning_rate, momentum=momentum),
            "nesterov": lambda: optax.sgd(learning_rate, momentum=momentum, nesterov=True),
            "rmsprop": lambda: optax.rmsprop(learning_rate, decay=0.99, eps=1e-8),  # PyTorch's alpha and eps
            "adam": lambda: optax.adam(learning_rate),
        }[name]()
        if weight_decay:
            core = optax.chain(optax.add_decayed_weights(weight_decay), core)
    if clip_norm:
        core = optax.chain(optax.clip_by_global_norm(clip_norm), core)
    return core
