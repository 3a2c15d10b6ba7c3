"""tracer's gradients equal jax.grad's (float64, rtol 1e-9) on random programs.

Each program is written once against an array namespace (`xp`), then run on
both backends, so the two sides cannot drift apart.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tracer
from tests.tracer_programs import AMBIGUOUS, NORM_PROGRAMS, PROGRAMS, JaxNS, TracerNS, inputs, jit_reference
from tracer import viz
from tracer.nn import functional as F


@functools.cache
def _jax_grad_of(program, arity=2):
    return jit_reference(jax.grad(lambda *xs: program(JaxNS, *xs), argnums=tuple(range(arity))))


def jax_grads(program, a, b):
    with jax.enable_x64(True):
        ga, gb = _jax_grad_of(program)(jnp.asarray(a), jnp.asarray(b))
        return np.asarray(ga), np.asarray(gb)


def tracer_grads(program, a, b):
    ta, tb = tracer.tensor(a, requires_grad=True), tracer.tensor(b, requires_grad=True)
    program(TracerNS, ta, tb).backward()
    return ta.grad.data, tb.grad.data


@pytest.mark.parametrize("name", sorted(PROGRAMS))
@given(ab=inputs())
def test_gradients_equal_jax(name, ab):
    a, b = ab
    if name in AMBIGUOUS:
        a = a + np.arange(a.size).reshape(a.shape) * (np.sqrt(2) * 1e-3) + np.pi * 1e-4
    expected = jax_grads(PROGRAMS[name], a, b)
    got = tracer_grads(PROGRAMS[name], a, b)
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, rtol=1e-9, atol=1e-12)


@given(
    x=hnp.arrays(
        np.float64,
        st.tuples(st.integers(2, 6), st.integers(2, 5)),
        elements=st.floats(-3, 3, allow_nan=False, allow_subnormal=False),
    )
)
def test_batch_and_layer_norm_gradients_equal_jax(x):
    x = x + np.arange(x.size).reshape(x.shape) * 0.05  # keep every variance away from zero
    w = np.linspace(0.5, 1.5, x.shape[1])
    bias = np.linspace(-0.2, 0.3, x.shape[1])
    for norm, program in NORM_PROGRAMS.items():
        lw = np.linspace(0.5, 1.5, x.shape[1]) if norm == "layer_norm" else w
        with jax.enable_x64(True):
            expected = _jax_grad_of(program, 3)(x, lw, bias)
        ts = [tracer.tensor(v, requires_grad=True) for v in (x, lw, bias)]
        program(TracerNS, *ts).backward()
        for t, e in zip(ts, expected):
            np.testing.assert_allclose(t.grad.data, e, rtol=1e-9, atol=1e-10)


def test_autograd_grad_several_inputs_leaves_grad_untouched():
    rng = np.random.default_rng(0)
    a, b, c = (rng.standard_normal((3, 4)) for _ in range(3))
    ta, tb, tc = (tracer.tensor(v, requires_grad=True) for v in (a, b, c))
    out = ((ta * tb).tanh() * tc).sum()
    ga, gc = tracer.autograd.grad(out, [ta, tc])
    with jax.enable_x64(True):
        ea, ec = jax.grad(lambda a, c: jnp.sum(jnp.tanh(a * b) * c), argnums=(0, 1))(a, c)
    np.testing.assert_allclose(ga.data, ea, rtol=1e-9)
    np.testing.assert_allclose(gc.data, ec, rtol=1e-9)
    assert ta.grad is None and tb.grad is None and tc.grad is None


def test_mlp_cross_entropy_matches_jax():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 20))
    y = rng.integers(0, 5, 8)
    ws = [rng.standard_normal(s) * 0.3 for s in [(16, 20), (16,), (8, 16), (8,), (5, 8), (5,)]]
    params = [tracer.tensor(w, requires_grad=True) for w in ws]
    h = tracer.tensor(x)
    for i in range(0, 6, 2):
        h = F.linear(h, params[i], params[i + 1])
        if i < 4:
            h = F.relu(h)
    F.cross_entropy(h, y).backward()

    def loss(ws):
        h = x
        for i in range(0, 6, 2):
            h = h @ ws[i].T + ws[i + 1]
            if i < 4:
                h = jax.nn.relu(h)
        return -jnp.mean(jax.nn.log_softmax(h)[jnp.arange(8), y])

    with jax.enable_x64(True):
        expected = jax.grad(loss)([jnp.asarray(w) for w in ws])
    for p, e in zip(params, expected):
        np.testing.assert_allclose(p.grad.data, e, rtol=1e-9, atol=1e-12)


def test_pytorch_edge_cases():
    x = tracer.tensor([0.0, -1.0, 2.0], requires_grad=True)
    x.abs().sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, -1.0, 1.0])  # torch: abs'(0) = 0 (jax gives 1)

    x = tracer.tensor([0.0, 0.5, 1.0, 2.0], requires_grad=True)
    x.clamp(0.0, 1.0).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [1.0, 1.0, 1.0, 0.0])  # torch: boundaries pass the gradient

    x = tracer.tensor([[3.0, 3.0, 1.0]], requires_grad=True)
    values, idx = x.max(1)
    values.sum().backward()
    assert idx.data.tolist() == [0]
    np.testing.assert_array_equal(x.grad.data, [[1.0, 0.0, 0.0]])  # torch max(dim): all to the returned index

    x = tracer.tensor([3.0, 3.0, 1.0], requires_grad=True)
    x.max().backward()
    np.testing.assert_array_equal(x.grad.data, [0.5, 0.5, 0.0])  # torch max(): ties share evenly


def test_programs_reach_the_nodes_they_are_named_for():
    a, b = tracer.tensor(np.ones((2, 3)), requires_grad=True), tracer.tensor(np.ones(3), requires_grad=True)
    names = lambda program: {n.name() for n in viz.walk(PROGRAMS[program](TracerNS, a, b).grad_fn)}
    assert {"PowBackward1"} <= names("pow_tensor") and {"PowBackward2"} <= names("pow_scalar_base")
    assert "ReciprocalBackward0" in names("reciprocal")
    first = PROGRAMS["broadcast_first"](TracerNS, a, b).grad_fn
    adds = [n for n in viz.walk(first) if n.name() == "AddBackward0" and n.self_shape == (3,)]
    assert any(n.other_shape == (2, 3) for n in adds)  # the broadcast operand is `self`, the first
