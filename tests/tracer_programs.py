"""The random programs that tracer's gradients are checked on against JAX's (test_tracer_vs_jax,
test_tracer_higher_order): each is written once against an array namespace (`xp`), `TracerNS` or `JaxNS`, so
the two sides cannot drift apart; `inputs()` draws their arguments."""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tracer
from tracer.nn import functional as F

# XLA options for the JAX references. Each is a small float64 program compiled once per input shape and run once or
# twice, so compiling is nearly all of its cost, and XLA's fusion emitters and LLVM optimisation buy nothing back;
# nor does splitting the program into parts that LLVM compiles on several threads, which costs more CPU than a
# program this small takes to compile in one piece. With these options a reference compiles in about a quarter of
# the CPU time of the defaults (30 Hessians: 17.5 s, 6.2 s without fusion emitters and optimisation, 4.9 s in one
# piece). Optimisation can change how a result rounds (a sum's order, a fused multiply-add), not what it computes,
# and the tests compare in float64 at rtol 1e-9.
QUICK_COMPILE = {
    "xla_cpu_use_fusion_emitters": False,
    "xla_backend_optimization_level": 0,
    "xla_cpu_parallel_codegen_split_count": 1,
}


def jit_reference(fn):
    """`jax.jit(fn)` compiled with QUICK_COMPILE: for references that are called with ever new shapes."""
    return jax.jit(fn, compiler_options=QUICK_COMPILE)


class TracerNS:
    exp = staticmethod(lambda a: a.exp())
    log = staticmethod(lambda a: a.log())
    tanh = staticmethod(lambda a: a.tanh())
    sigmoid = staticmethod(lambda a: a.sigmoid())
    relu = staticmethod(lambda a: a.relu())
    sum = staticmethod(lambda a, dim=None: a.sum(dim))
    mean = staticmethod(lambda a, dim=None: a.mean(dim))
    amax = staticmethod(lambda a: a.max())
    log_softmax = staticmethod(lambda a: a.log_softmax(-1))
    mm = staticmethod(lambda a, b: a @ b)
    T = staticmethod(lambda a: a.T)
    reshape = staticmethod(lambda a, s: a.view(s))
    abs = staticmethod(lambda a: a.abs())
    clamp = staticmethod(lambda a, lo, hi: a.clamp(lo, hi))
    max_dim = staticmethod(lambda a, d: a.max(d)[0])
    expand = staticmethod(lambda a, *shape: a.expand(*shape))
    batch_norm = staticmethod(
        lambda a, w, b: F.batch_norm(
            a, tracer.zeros(a.shape[1], dtype=a.dtype), tracer.ones(a.shape[1], dtype=a.dtype), w, b, True
        )
    )
    layer_norm = staticmethod(lambda a, w, b: F.layer_norm(a, w, b))


def _jax_norm(a, w, b, axis):
    mean = a.mean(axis, keepdims=True)
    return (a - mean) / jnp.sqrt(a.var(axis, keepdims=True) + 1e-5) * w + b


class JaxNS:
    exp, log, tanh = jnp.exp, jnp.log, jnp.tanh
    sigmoid = staticmethod(jax.nn.sigmoid)
    relu = staticmethod(jax.nn.relu)
    sum = staticmethod(lambda a, dim=None: jnp.sum(a, axis=dim))
    mean = staticmethod(lambda a, dim=None: jnp.mean(a, axis=dim))
    amax = staticmethod(jnp.max)
    log_softmax = staticmethod(lambda a: jax.nn.log_softmax(a, -1))
    mm = staticmethod(lambda a, b: a @ b)
    T = staticmethod(lambda a: a.T)
    reshape = staticmethod(lambda a, s: a.reshape(s))
    abs = staticmethod(jnp.abs)
    clamp = staticmethod(lambda a, lo, hi: jnp.clip(a, lo, hi))
    max_dim = staticmethod(lambda a, d: jnp.max(a, axis=d))
    expand = staticmethod(lambda a, *shape: jnp.broadcast_to(a, shape))
    batch_norm = staticmethod(lambda a, w, b: _jax_norm(a, w, b, 0))
    layer_norm = staticmethod(lambda a, w, b: _jax_norm(a, w, b, -1))


# Programs of two inputs with broadcast-compatible shapes (a: (m, n), b: (n,) or (1, n) or (m, 1)).
PROGRAMS = {
    "add_mul": lambda xp, a, b: xp.sum((a + b) * a),
    "sub_div": lambda xp, a, b: xp.sum((a - b) / (xp.exp(b) + 1.0)),
    "pow_neg": lambda xp, a, b: xp.sum(-(a**2) * b**3),
    "rsub_log": lambda xp, a, b: xp.mean(xp.log(1.0 - xp.sigmoid(a)) * b),
    "tanh_relu": lambda xp, a, b: xp.sum(xp.tanh(a) * xp.relu(a + b)),
    "shared": lambda xp, a, b: xp.sum((a * b) * (a * b) + a * a * a),  # one tensor used several times
    "reduce_dim": lambda xp, a, b: xp.sum(xp.mean(a * b, 0) * xp.sum(a, 1).sum()),
    "max": lambda xp, a, b: xp.amax(a) * 2.0 + xp.sum(a * b),
    "log_softmax": lambda xp, a, b: xp.sum(xp.log_softmax(a + b) * a),
    "matmul_T": lambda xp, a, b: xp.sum(xp.tanh(xp.mm(a, xp.T(a + b)))),
    "view": lambda xp, a, b: xp.sum(xp.reshape(a * b, (-1,)) ** 2),
    "index": lambda xp, a, b: xp.sum(a[0] * 3.0) + xp.sum((a * b)[:, 1:] ** 2) + xp.sum(a[-1:, :1]),
    "abs_clamp": lambda xp, a, b: xp.sum(xp.abs(a - 0.123) * b + xp.clamp(a, -0.71, 0.93) * b),
    "max_dim_mean_dim": lambda xp, a, b: xp.sum(xp.max_dim(a, 1) * 2.0) + xp.sum(xp.mean(a * b, 1) ** 2),
    "expand": lambda xp, a, b: xp.sum(xp.tanh(xp.expand(xp.sum(a, 0), 3, a.shape[1]) * 0.5)) * xp.sum(xp.tanh(b)),
    # `b`, the smaller, as the *first* operand: its gradient is summed over the dimensions broadcasting added.
    "broadcast_first": lambda xp, a, b: xp.sum((b + a) * (b - a) / (b * b + 1.0) + b * xp.tanh(a)),
    "pow_tensor": lambda xp, a, b: xp.sum(xp.exp(b) ** a + xp.exp(a) ** b),  # PowBackward1, both ways round
    "pow_scalar_base": lambda xp, a, b: xp.sum(2.0 ** (a * b)),  # PowBackward2
    "reciprocal": lambda xp, a, b: xp.sum(1.0 / (xp.exp(a) + b * b)),  # ReciprocalBackward0
}
# Where a tie or a kink makes the gradient ambiguous (max over equal values, |x| at 0, clamp at a bound),
# tracer follows PyTorch (test_tracer_vs_jax's test_pytorch_edge_cases). In these programs the max, |.| and
# clamp act on `a` alone, which the tests nudge by an irrational ramp so no two entries tie and none sits on a kink.
AMBIGUOUS = {"max", "max_dim_mean_dim", "abs_clamp"}


def _norm_program(norm):
    return lambda xp, x, wt, bt: xp.sum(xp.tanh(getattr(xp, norm)(x, wt, bt)) * x)


# sum(tanh(norm(x)) * x) through each norm, on (x, weight, bias): one object each, so one jit cache per reference.
NORM_PROGRAMS = {norm: _norm_program(norm) for norm in ("batch_norm", "layer_norm")}


@st.composite
def inputs(draw):
    m, n = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    b_shape = draw(st.sampled_from([(n,), (1, n), (m, 1), (m, n)]))
    floats = st.floats(-2, 2, allow_nan=False, allow_subnormal=False)
    a = draw(hnp.arrays(np.float64, (m, n), elements=floats))
    b = draw(hnp.arrays(np.float64, b_shape, elements=floats))
    return a, b
