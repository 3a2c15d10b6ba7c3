"""tracer.optim follows PyTorch's update rules and defaults, and matches optax where the two coincide."""

import jax
import numpy as np
import optax
import pytest

import tracer
from tracer import optim

STEPS = 7


def quadratic_grads(p):
    """A fixed gradient field: d/dp of sum(a * p^2 + b * p)."""
    a = np.linspace(0.5, 2.0, p.size).reshape(p.shape)
    return 2 * a * p + 0.3


def run_tracer(opt_cls, **kw):
    p = tracer.tensor(np.linspace(-1, 1, 6).reshape(2, 3), requires_grad=True)
    opt = opt_cls([p], **kw)
    for _ in range(STEPS):
        opt.zero_grad()
        p.grad = tracer.tensor(quadratic_grads(p.data))
        opt.step()
    return p.data


def run_optax(tx):
    p = np.linspace(-1, 1, 6).reshape(2, 3)
    with jax.enable_x64(True):
        state = tx.init(p)
        for _ in range(STEPS):
            updates, state = tx.update(quadratic_grads(p), state, p)
            p = np.asarray(optax.apply_updates(p, updates))
    return p


@pytest.mark.parametrize(
    "kw, tx",
    [
        (dict(lr=0.1), optax.sgd(0.1)),
        (dict(lr=0.1, momentum=0.9), optax.sgd(0.1, momentum=0.9)),  # torch SGD without dampening
        (dict(lr=0.1, momentum=0.9, nesterov=True), optax.sgd(0.1, momentum=0.9, nesterov=True)),
    ],
)
def test_sgd_matches_optax(kw, tx):
    np.testing.assert_allclose(run_tracer(optim.SGD, **kw), run_optax(tx), rtol=1e-12)


def test_adam_matches_optax_same_eps():
    np.testing.assert_allclose(run_tracer(optim.Adam, lr=0.01), run_optax(optax.adam(0.01, eps=1e-8)), rtol=1e-10)


def test_adamw_default_weight_decay_is_torchs():
    assert optim.AdamW([tracer.zeros(1, requires_grad=True)]).defaults["weight_decay"] == 1e-2  # optax: 1e-4
    np.testing.assert_allclose(
        run_tracer(optim.AdamW, lr=0.01), run_optax(optax.adamw(0.01, eps=1e-8, weight_decay=1e-2)), rtol=1e-10
    )


def test_sgd_dampening_and_weight_decay_follow_torchs_formula():
    p0 = np.linspace(-1, 1, 6).reshape(2, 3)
    p, buf = p0.copy(), None
    for _ in range(STEPS):  # torch.optim.SGD's documented algorithm
        g = quadratic_grads(p) + 0.01 * p
        buf = g.copy() if buf is None else 0.9 * buf + (1 - 0.5) * g
        p = p - 0.1 * buf
    np.testing.assert_allclose(
        run_tracer(optim.SGD, lr=0.1, momentum=0.9, dampening=0.5, weight_decay=0.01), p, rtol=1e-12
    )


def test_optimizer_step_bumps_version_and_zero_grad_sets_none():
    p = tracer.ones(3, requires_grad=True)
    (p * 2).sum().backward()
    opt = optim.Adam([p])
    opt.step()
    assert p._version == 1
    opt.zero_grad()
    assert p.grad is None


def test_matches_torch_when_installed():
    torch = pytest.importorskip("torch")
    for name, kw in [
        ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=1e-3)),
        ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
        ("Adam", dict(lr=0.01, weight_decay=1e-3)),
        ("AdamW", dict(lr=0.01)),
    ]:
        t = torch.tensor(np.linspace(-1, 1, 6).reshape(2, 3), requires_grad=True)
        opt = getattr(torch.optim, name)([t], **kw)
        for _ in range(STEPS):
            opt.zero_grad()
            t.grad = torch.from_numpy(quadratic_grads(t.detach().numpy()))
            opt.step()
        np.testing.assert_allclose(run_tracer(getattr(optim, name), **kw), t.detach().numpy(), rtol=1e-10)
