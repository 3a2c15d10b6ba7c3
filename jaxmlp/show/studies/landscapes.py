"""Optimizers on 2-D surfaces, where a path can be drawn: an ill-conditioned valley, Rosenbrock, a saddle.

The optimizers are the very optax transforms the MLP trains with (`jaxmlp.core.optim`).
The learning rate is a traced argument, so one compiled program runs a whole
learning-rate grid at once (`vmap` over the grid).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxmlp.core.optim import make_optimizer

# name -> (function of p = [x, y], start, minimum or None, plotting box (xmin, xmax, ymin, ymax), steps)
SURFACES = {
    "ill-conditioned quadratic": (
        lambda p: 0.5 * (p[0] ** 2 + 50.0 * p[1] ** 2),
        (-4.0, 1.0),
        (0.0, 0.0),
        (-4.5, 4.5, -1.5, 1.5),
        300,
    ),
    "Rosenbrock": (
        lambda p: (1 - p[0]) ** 2 + 100.0 * (p[1] - p[0] ** 2) ** 2,
        (-1.5, 2.0),
        (1.0, 1.0),
        (-2.0, 2.0, -1.0, 3.0),
        1000,
    ),
    "saddle": (lambda p: p[0] ** 2 - p[1] ** 2, (-2.0, 1e-3), None, (-2.2, 2.2, -2.2, 2.2), 60),
}
LR_GRID = np.logspace(-4, 0, 17)


@functools.partial(jax.jit, static_argnames=("surface", "optimizer", "steps"))
def trajectories(lrs: jax.Array, surface: str, optimizer: str, steps: int) -> jax.Array:
    """(len(lrs), steps + 1, 2): the path of `optimizer` from the surface's start, for each learning rate."""
    f, start = SURFACES[surface][:2]

    def path(lr):
        tx = make_optimizer(optimizer, lr)
        p0 = jnp.asarray(start, jnp.float32)

        def step(carry, _):
            p, s = carry
            updates, s = tx.update(jax.grad(f)(p), s, p)
            p = p + updates
            return (p, s), p

        _, ps = jax.lax.scan(step, (p0, tx.init(p0)), None, length=steps)
        return jnp.concatenate([p0[None], ps])

    return jax.vmap(path)(lrs)


def steps_to_tolerance(path: np.ndarray, surface: str, tol: float) -> int | None:
    """First step whose distance to the minimum is below `tol` and stays below it; None if never."""
    minimum = SURFACES[surface][2]
    dist = np.linalg.norm(path - np.asarray(minimum), axis=-1)
    bad = np.flatnonzero(~(dist < tol))
    if len(bad) == len(dist) or (len(bad) and bad[-1] == len(dist) - 1):
        return None
    return int(bad[-1] + 1) if len(bad) else 0


def tune(surface: str, optimizer: str, tol: float, grid=LR_GRID) -> tuple[float, np.ndarray, int | None]:
    """The grid learning rate that reaches `tol` soonest (else: ends closest to the minimum)."""
    steps = SURFACES[surface][4]
    paths = np.asarray(trajectories(jnp.asarray(grid, jnp.float32), surface, optimizer, steps))
    hits = [steps_to_tolerance(p, surface, tol) for p in paths]
    final = np.linalg.norm(paths[:, -1] - np.asarray(SURFACES[surface][2]), axis=-1)
    final = np.where(np.isfinite(final), final, np.inf)
    order = sorted(range(len(grid)), key=lambda i: (hits[i] is None, hits[i] or 0, final[i]))
    best = order[0]
    return float(grid[best]), paths[best], hits[best]
