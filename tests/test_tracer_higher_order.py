"""Gradients of gradients. tracer's double backward (`create_graph=True`) and `tracer.autograd.functional` against
JAX's transformations (float64, rtol 1e-9), on the random programs of tests/tracer_programs.py: each program is written
once and run on both backends."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tracer
from tests.tracer_programs import AMBIGUOUS, NORM_PROGRAMS, PROGRAMS, JaxNS, TracerNS, inputs, jit_reference
from tracer import viz
from tracer.autograd import forward_ad, functional
from tracer.nn import functional as F


def _nudged(name, a):
    """Programs with a kink or a tie get `a` moved off it, as in test_tracer_vs_jax."""
    return a + np.arange(a.size).reshape(a.shape) * (np.sqrt(2) * 1e-3) + np.pi * 1e-4 if name in AMBIGUOUS else a


def tracer_hvp_by_double_backward(program, args, vectors):
    """H·v the PyTorch way: grad with create_graph=True, then the gradient of (grad · v)."""
    ts = [tracer.tensor(x, requires_grad=True) for x in args]
    grads = tracer.autograd.grad(program(TracerNS, *ts), ts, create_graph=True)
    dot = sum((g * tracer.tensor(v)).sum() for g, v in zip(grads, vectors))
    if not dot.requires_grad:  # a gradient without a graph: the program is linear in every input
        return [np.zeros_like(x) for x in args]
    hv = tracer.autograd.grad(dot, ts, allow_unused=True)
    return [np.zeros_like(x) if h is None else h.data for h, x in zip(hv, args)]


# The JAX references are jitted, one compiled program per (program, reference, shapes), with the quick compile options
# of tests/tracer_programs.py: run eagerly, JAX dispatches every primitive of a Hessian one at a time.
@functools.cache
def _jax_hvp_of(program):
    def hvp(args, vectors):
        grad = jax.grad(lambda *xs: program(JaxNS, *xs), tuple(range(len(args))))
        return jax.jvp(grad, tuple(args), tuple(vectors))[1]

    return jit_reference(hvp)


def jax_hvp(program, args, vectors):
    with jax.enable_x64(True):
        return [np.asarray(o) for o in _jax_hvp_of(program)(tuple(args), tuple(vectors))]


@functools.cache
def _jax_hessian_of(name):
    return jit_reference(jax.hessian(lambda x, y: PROGRAMS[name](JaxNS, x, y), argnums=(0, 1)))


@functools.cache
def _jax_functional_of(name):
    """jvp, vjp (pulling back `u`), Jacobian of the vector program; Hessian-vector product of the scalar one."""

    def theirs(x, y):  # a vector output, so that the Jacobian has rows
        return PROGRAMS[name](JaxNS, x, y) * jnp.array([1.0, -2.0])

    def references(xs, vs, u):
        out, jv = jax.jvp(theirs, xs, vs)
        _, pullback = jax.vjp(theirs, *xs)
        jac = jax.jacrev(theirs, argnums=(0, 1))(*xs)
        scalar = lambda x, y: PROGRAMS[name](JaxNS, x, y)
        hv = jax.jvp(jax.grad(scalar, argnums=(0, 1)), xs, vs)[1]
        return out, jv, pullback(u), jac, hv

    return jit_reference(references)


def _point(name, ab, seed):
    """The inputs (a nudged off any kink) and a random direction for each."""
    a, b = ab
    a = _nudged(name, a)
    rng = np.random.default_rng(seed)
    return [a, b], [rng.standard_normal(a.shape), rng.standard_normal(b.shape)]


def _close(got, expected):
    for g, e in zip(got, expected):
        np.testing.assert_allclose(np.asarray(g), np.asarray(e), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("name", sorted(PROGRAMS))
@given(ab=inputs(), seed=st.integers(0, 2**31))
def test_double_backward_hvp_equals_jax_jvp_of_grad(name, ab, seed):
    args, vectors = _point(name, ab, seed)
    _close(tracer_hvp_by_double_backward(PROGRAMS[name], args, vectors), jax_hvp(PROGRAMS[name], args, vectors))


@pytest.mark.parametrize("name", sorted(PROGRAMS))
@given(ab=inputs())
def test_functional_hessian_equals_jax_hessian(name, ab):
    a, b = ab
    a = _nudged(name, a)
    got = functional.hessian(lambda x, y: PROGRAMS[name](TracerNS, x, y), (tracer.tensor(a), tracer.tensor(b)))
    with jax.enable_x64(True):
        expected = _jax_hessian_of(name)(a, b)
    for got_row, expected_row in zip(got, expected):
        _close([t.data for t in got_row], expected_row)


@pytest.mark.parametrize("name", sorted(PROGRAMS))
@given(ab=inputs(), seed=st.integers(0, 2**31))
def test_functional_vjp_jvp_jacobian_hvp_vhp_equal_jax(name, ab, seed):
    (a, b), (va, vb) = _point(name, ab, seed)

    def ours(x, y):  # a vector output, so that the Jacobian has rows
        return PROGRAMS[name](TracerNS, x, y) * tracer.tensor(np.array([1.0, -2.0]))

    xs, ts, vs = (a, b), (tracer.tensor(a), tracer.tensor(b)), (tracer.tensor(va), tracer.tensor(vb))
    u = np.array([0.7, -0.3])
    with jax.enable_x64(True):
        out, jv, expected_vjp, jac, hv = _jax_functional_of(name)(xs, (va, vb), u)
    got_out, got_jv = functional.jvp(ours, ts, vs)
    _close([got_out.data, got_jv.data], [out, jv])
    _close([t.data for t in functional.vjp(ours, ts, tracer.tensor(u))[1]], expected_vjp)
    _close([t.data for t in functional.jacobian(ours, ts)], jac)
    scalar_ours = lambda x, y: PROGRAMS[name](TracerNS, x, y)
    _close([t.data for t in functional.hvp(scalar_ours, ts, vs)[1]], hv)
    _close([t.data for t in functional.vhp(scalar_ours, ts, vs)[1]], hv)  # H is symmetric


@given(x=inputs())
def test_batch_and_layer_norm_double_backward_equals_jax(x):
    a, _ = x
    if a.shape[0] < 2:
        return  # batch norm of one row normalizes to zero: nothing to compare
    a = a + np.arange(a.size).reshape(a.shape) * 0.05  # keep every variance away from zero
    w, bias = np.linspace(0.5, 1.5, a.shape[1]), np.linspace(-0.2, 0.3, a.shape[1])
    rng = np.random.default_rng(0)
    vectors = [rng.standard_normal(v.shape) for v in (a, w, bias)]
    for program in NORM_PROGRAMS.values():
        _close(tracer_hvp_by_double_backward(program, [a, w, bias], vectors), jax_hvp(program, [a, w, bias], vectors))


def _mlp_loss(xp, w1, params, x, y):
    """The user's MLP (here 20-16-8-5) with cross-entropy, as a function of the first layer's weights."""
    h = xp.relu(xp.linear(x, w1, params["b1"]))
    h = xp.relu(xp.linear(h, params["w2"], params["b2"]))
    return xp.cross_entropy(xp.linear(h, params["w3"], params["b3"]), y)


class TracerMLP:
    linear, relu, cross_entropy = staticmethod(F.linear), staticmethod(F.relu), staticmethod(F.cross_entropy)


class JaxMLP:
    linear = staticmethod(lambda h, w, b: h @ w.T + b)
    relu = staticmethod(jax.nn.relu)
    cross_entropy = staticmethod(lambda h, y: -jnp.mean(jax.nn.log_softmax(h)[jnp.arange(len(y)), y]))


def test_mlp_cross_entropy_hvp_wrt_first_layer_equals_jax():
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((8, 20)), rng.integers(0, 5, 8)
    shapes = {"b1": (16,), "w2": (8, 16), "b2": (8,), "w3": (5, 8), "b3": (5,)}
    params = {k: rng.standard_normal(s) * 0.3 for k, s in shapes.items()}
    w1, v = rng.standard_normal((16, 20)) * 0.3, rng.standard_normal((16, 20))
    ours = {k: tracer.tensor(p) for k, p in params.items()}
    _, got = functional.hvp(
        lambda w: _mlp_loss(TracerMLP, w, ours, tracer.tensor(x), y), tracer.tensor(w1), tracer.tensor(v)
    )
    with jax.enable_x64(True):
        expected = jax.jvp(jax.grad(lambda w: _mlp_loss(JaxMLP, w, params, x, y)), (w1,), (v,))[1]
    _close([got.data], [expected])
    assert np.abs(expected).max() > 1e-3  # a real curvature, not zeros on both sides


def test_triple_backward_equals_jax():
    x = np.array([0.3, -1.1, 0.8])
    t = tracer.tensor(x, requires_grad=True)
    (g,) = tracer.autograd.grad((t.tanh() * t.exp()).sum(), t, create_graph=True)
    (h,) = tracer.autograd.grad(g.sum(), t, create_graph=True)
    (k,) = tracer.autograd.grad(h.sum(), t)
    f = lambda v: jnp.tanh(v) * jnp.exp(v)
    with jax.enable_x64(True):
        third = jax.vmap(jax.grad(jax.grad(jax.grad(f))))(x)
    _close([k.data], [third])


def tracer_forward_tangents(program, args, vectors):
    with forward_ad.dual_level():
        duals = [forward_ad.make_dual(tracer.tensor(x), tracer.tensor(v)) for x, v in zip(args, vectors)]
        out = forward_ad.unpack_dual(program(TracerNS, *duals) * tracer.tensor(np.array([1.0, -2.0])))
    return out.primal.data, out.tangent.data


@functools.cache
def _jax_forward_tangents_of(program):
    f = lambda *xs: program(JaxNS, *xs) * jnp.array([1.0, -2.0])
    return jit_reference(lambda args, vectors: jax.jvp(f, args, vectors))


def jax_forward_tangents(program, args, vectors):
    with jax.enable_x64(True):
        return tuple(np.asarray(r) for r in _jax_forward_tangents_of(program)(tuple(args), tuple(vectors)))


@pytest.mark.parametrize("name", sorted(PROGRAMS))
@given(ab=inputs(), seed=st.integers(0, 2**31))
def test_forward_mode_tangents_equal_jax_jvp(name, ab, seed):
    args, vectors = _point(name, ab, seed)
    _close(tracer_forward_tangents(PROGRAMS[name], args, vectors), jax_forward_tangents(PROGRAMS[name], args, vectors))


def test_forward_mode_through_batch_norm_layer_norm_and_the_mlp_equals_jax():
    rng = np.random.default_rng(4)
    a = rng.standard_normal((6, 4))
    w, bias = np.linspace(0.5, 1.5, 4), np.linspace(-0.2, 0.3, 4)
    vectors = [rng.standard_normal(v.shape) for v in (a, w, bias)]
    for program in NORM_PROGRAMS.values():
        _close(
            tracer_forward_tangents(program, [a, w, bias], vectors),
            jax_forward_tangents(program, [a, w, bias], vectors),
        )
    x, y = rng.standard_normal((8, 20)), rng.integers(0, 5, 8)
    shapes = {"b1": (16,), "w2": (8, 16), "b2": (8,), "w3": (5, 8), "b3": (5,)}
    params = {k: rng.standard_normal(s) * 0.3 for k, s in shapes.items()}
    w1, v = rng.standard_normal((16, 20)) * 0.3, rng.standard_normal((16, 20))
    with forward_ad.dual_level():
        ours = {k: tracer.tensor(p) for k, p in params.items()}
        loss = _mlp_loss(
            TracerMLP, forward_ad.make_dual(tracer.tensor(w1), tracer.tensor(v)), ours, tracer.tensor(x), y
        )
        got = forward_ad.unpack_dual(loss).tangent.data
    with jax.enable_x64(True):
        expected = jax.jvp(lambda w: _mlp_loss(JaxMLP, w, params, x, y), (w1,), (v,))[1]
    _close([got], [expected])


def test_tangents_end_with_their_level():
    with forward_ad.dual_level():
        d = forward_ad.make_dual(tracer.ones(2), tracer.ones(2))
        assert forward_ad.unpack_dual(d * 2).tangent is not None
    assert forward_ad.unpack_dual(d).tangent is None and forward_ad.unpack_dual(d * 2).tangent is None


def test_explain_puts_tracer_hvp_beside_jax_jvp_of_grad(tmp_path, capsys):
    from jaxmlp.show.explain import explain_autograd

    explain_autograd(str(tmp_path))
    section = capsys.readouterr().out.split("6. Second order")[1]
    assert "{ lambda" in section  # the jaxpr of jax.jvp(jax.grad(loss))
    difference = float(section.rsplit("max |difference| = ", 1)[1].split()[0])
    assert difference < 1e-5  # float32 on both sides


def test_viz_draws_the_graph_of_a_create_graph_gradient():
    x = tracer.tensor([0.5, -1.0], requires_grad=True)
    (g,) = tracer.autograd.grad((x.exp() * x).sum(), x, create_graph=True)
    text = viz.dump(g, {"x": x})
    assert "ExpBackward0" in text and "MulBackward0" in text and "AccumulateGrad -> x (2,)" in text
    dot = viz.make_dot(g, {"x": x})
    assert 'label="ExpBackward0"' in dot and 'label="x\n(2,)"' in dot
