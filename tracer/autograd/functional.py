"""Jacobians, Hessians and their products, as `torch.autograd.functional` computes them: from reverse mode alone.

- `vjp(f, x, v)`: vᵀ·J, one backward pass.
- `jvp(f, x, v)`: J·v by the *double-vjp trick*: g(u) = Jᵀ·u is linear in a dummy u that requires grad, so
  differentiating uᵀ... once more, d(g(u)·v)/du = J·v. Two backward passes, the first with `create_graph=True`.
- `jacobian(f, x)`: one vjp per output element (a one-hot v), stacked.
- `hessian(f, x)`: the Jacobian of the gradient, whose graph `create_graph=True` kept.
- `vhp(f, x, v)`: vᵀ·H, the gradient of (∇f·v); `hvp(f, x, v)`: H·v, the double-vjp trick applied to ∇f
  (a third backward pass; H is symmetric, so both agree, as JAX's `jvp(grad(f))` does).

`inputs` is a tensor or a tuple of tensors and results follow the same structure, as in PyTorch. Results are
detached unless `create_graph=True`. A gradient that does not exist (an output that ignores an input) is zeros.
"""

from __future__ import annotations

import numpy as np

from tracer import ops
from tracer.autograd import grad
from tracer.tensor import Tensor, enable_grad

__all__ = ["vjp", "jvp", "jacobian", "hessian", "vhp", "hvp"]


def _as_tuple(x) -> tuple[tuple, bool]:
    return ((x,), False) if isinstance(x, Tensor) else (tuple(x), True)


def _prepare(inputs: tuple, create_graph: bool) -> tuple:
    """Inputs that require grad: linked to the caller's graph by a view when one is being built, else fresh."""
    return tuple(
        ops.view(t, t.shape) if create_graph and t.requires_grad else t.detach().requires_grad_() for t in inputs
    )


def _finish(tensors: tuple, create_graph: bool, is_tuple: bool):
    tensors = tuple(t if create_graph else t.detach() for t in tensors)
    return tensors if is_tuple else tensors[0]


def _zeros_like(t: Tensor) -> Tensor:
    return Tensor(np.zeros(t.shape, t.dtype))


def _grad(outputs: tuple, inputs: tuple, grad_outputs: tuple, create_graph: bool) -> tuple:
    """autograd.grad over the outputs that have a graph, keeping it; zeros for every missing gradient."""
    pairs = [(o, g) for o, g in zip(outputs, grad_outputs) if o.requires_grad]
    if not pairs:
        return tuple(_zeros_like(t) for t in inputs)
    grads = grad(
        [o for o, _ in pairs],
        inputs,
        [g for _, g in pairs],
        retain_graph=True,
        create_graph=create_graph,
        allow_unused=True,
    )
    return tuple(_zeros_like(t) if g is None else g for g, t in zip(grads, inputs))


def _vectors(v, like: tuple, name: str) -> tuple:
    """`v` as a tuple shaped like `like`; omitted only where every tensor of `like` has one element."""
    if v is None:
        if any(t.data.size != 1 for t in like):
            raise RuntimeError(
                f"The vector v can only be None if the {name} to the user-provided function is a single Tensor "
                "with a single element."
            )
        return tuple(Tensor(np.ones(t.shape, t.dtype)) for t in like)
    v, _ = _as_tuple(v)
    if len(v) != len(like) or any(a.shape != b.shape for a, b in zip(v, like)):
        raise RuntimeError(f"v has the wrong shape: it must match the {name} of the user-provided function.")
    return v


def _double_vjp(outputs: tuple, xs: tuple, v: tuple, create_graph: bool) -> tuple:
    """J·v from reverse mode: g(u) = Jᵀ·u is linear in a dummy u, so the vjp of g with v is J·v."""
    dummies = tuple(_zeros_like(o).requires_grad_() for o in outputs)  # u
    transposed = _grad(outputs, xs, dummies, create_graph=True)  # Jᵀ·u, recorded
    return _grad(transposed, dummies, v, create_graph)


def _first_order(name: str, func, inputs, v, create_graph: bool):
    """(func(inputs), vᵀ·J for "vjp", shaped like the inputs, or J·v for "jvp", shaped like the outputs)."""
    xs, tuple_in = _as_tuple(inputs)
    with enable_grad():
        xs = _prepare(xs, create_graph)
        outputs, tuple_out = _as_tuple(func(*xs))
        if name == "vjp":
            result, is_tuple = _grad(outputs, xs, _vectors(v, outputs, "output"), create_graph), tuple_in
        else:
            result, is_tuple = _double_vjp(outputs, xs, _vectors(v, xs, "input"), create_graph), tuple_out
    return _finish(outputs, create_graph, tuple_out), _finish(result, create_graph, is_tuple)


def vjp(func, inputs, v=None, create_graph: bool = False):
    """(func(inputs), vᵀ·J)."""
    return _first_order("vjp", func, inputs, v, create_graph)


def jvp(func, inputs, v=None, create_graph: bool = False):
    """(func(inputs), J·v), by the double-vjp trick."""
    return _first_order("jvp", func, inputs, v, create_graph)


def _stack_rows(rows: list, shape: tuple) -> Tensor:
    return ops.view(ops.stack(rows), shape)


def jacobian(func, inputs, create_graph: bool = False):
    """d outputs / d inputs, each block shaped output.shape + input.shape (nested tuples as in PyTorch)."""
    xs, tuple_in = _as_tuple(inputs)
    with enable_grad():
        xs = _prepare(xs, create_graph)
        outputs, tuple_out = _as_tuple(func(*xs))
        blocks = []
        for out in outputs:
            rows = []  # one vjp per output element: row k holds d out[k] / d each input
            for k in range(out.data.size):
                onehot = np.zeros(out.data.size, out.dtype)
                onehot[k] = 1
                rows.append(_grad((out,), xs, (Tensor(onehot.reshape(out.shape)),), create_graph))
            blocks.append(tuple(_stack_rows([r[i] for r in rows], out.shape + x.shape) for i, x in enumerate(xs)))
    blocks = [_finish(b, create_graph, tuple_in) for b in blocks]
    return tuple(blocks) if tuple_out else blocks[0]


def _single_output(func, name: str):
    def scalar(*xs):
        out = func(*xs)
        if not isinstance(out, Tensor) or out.data.size != 1:
            raise RuntimeError(f"The function given to {name} should return a Tensor with a single element")
        return out

    return scalar


def hessian(func, inputs, create_graph: bool = False):
    """The Jacobian of the gradient: blocks shaped input_i.shape + input_j.shape."""
    scalar = _single_output(func, "hessian")
    _, tuple_in = _as_tuple(inputs)

    def gradient(*xs):
        return jacobian(lambda *ys: ops.view(scalar(*ys), ()), xs if tuple_in else xs[0], create_graph=True)

    return jacobian(gradient, inputs, create_graph)


def _second_order(name: str, func, inputs, v, create_graph: bool):
    """(func(inputs), vᵀ·H for "vhp" or H·v for "hvp"), from the recorded gradient ∇f."""
    xs, tuple_in = _as_tuple(inputs)
    with enable_grad():
        xs = _prepare(xs, create_graph)
        out = _single_output(func, name)(*xs)
        gradient = _grad((out,), xs, (Tensor(np.ones(out.shape, out.dtype)),), create_graph=True)
        v = _vectors(v, xs, "input")
        if name == "vhp":
            result = _grad(gradient, xs, v, create_graph)  # the gradient of ∇f·v
        else:
            result = _double_vjp(gradient, xs, v, create_graph)  # the Jacobian of ∇f (H) times v
    return _finish((out,), create_graph, False), _finish(result, create_graph, tuple_in)


def vhp(func, inputs, v=None, create_graph: bool = False):
    """(func(inputs), vᵀ·H)."""
    return _second_order("vhp", func, inputs, v, create_graph)


def hvp(func, inputs, v=None, create_graph: bool = False):
    """(func(inputs), H·v)."""
    return _second_order("hvp", func, inputs, v, create_graph)
