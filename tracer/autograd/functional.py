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

from tracer.autograd import grad
from tracer.shape_ops import stack, view
from tracer.tensor import Tensor, enable_grad

__all__ = ["vjp", "jvp", "jacobian", "hessian", "vhp", "hvp"]


def _as_tuple(x, arg_name: str | None = None, fn_name: str | None = None) -> tuple[tuple, bool]:
    """`x` as a tuple of tensors and whether it was one; with names, torch's TypeError for anything else."""
    if isinstance(x, Tensor):
        return (x,), False
    if arg_name is not None and not isinstance(x, (tuple, list)):
        raise TypeError(
            f"The {arg_name} given to {fn_name} must be either a Tensor or a tuple of Tensors but the value given "
            f"has type {type(x)}."
        )
    x = tuple(x)
    for i, el in enumerate(x):
        if arg_name is not None and not isinstance(el, Tensor):
            raise TypeError(
                f"The {arg_name} given to {fn_name} must be either a Tensor or a tuple of Tensors but the value at "
                f"index {i} has type {type(el)}."
            )
    return x, True


_OUT = "outputs of the user-provided function"


def _check_strict(outputs: tuple, grads: tuple, strict: bool, jacobian_row: int | None = None) -> None:
    """strict=True: every output must depend on the inputs (torch's `_grad_postprocess` checks)."""
    if not strict:
        return
    for i, out in enumerate(outputs):
        if not out.requires_grad:
            raise RuntimeError(
                f"Output {i} of the user-provided function does not require gradients. The outputs must be "
                "computed in a differentiable manner from the input when running in strict mode."
            )
    for j, g in enumerate(grads):
        if g is None:
            if jacobian_row is not None:
                raise RuntimeError(
                    f"Output {jacobian_row} of the user-provided function is independent of input {j}. This is "
                    "not allowed in strict mode."
                )
            raise RuntimeError(
                f"The output of the user-provided function is independent of input {j}. This is not allowed in "
                "strict mode."
            )


def _prepare(inputs: tuple, create_graph: bool) -> tuple:
    """Inputs that require grad: linked to the caller's graph by a view when one is being built, else fresh."""
    return tuple(view(t, t.shape) if create_graph and t.requires_grad else t.detach().requires_grad_() for t in inputs)


def _finish(tensors: tuple, create_graph: bool, is_tuple: bool):
    tensors = tuple(t if create_graph else t.detach() for t in tensors)
    return tensors if is_tuple else tensors[0]


def _zeros_like(t: Tensor) -> Tensor:
    return Tensor(np.zeros(t.shape, t.dtype))


def _grad(outputs: tuple, inputs: tuple, grad_outputs: tuple, create_graph: bool, strict=False, row=None) -> tuple:
    """autograd.grad over the outputs that have a graph, keeping it; zeros for every missing gradient."""
    pairs = [(o, g) for o, g in zip(outputs, grad_outputs) if o.requires_grad]
    if not pairs:
        _check_strict(outputs, (), strict, row)
        return tuple(_zeros_like(t) for t in inputs)
    grads = grad(
        [o for o, _ in pairs],
        inputs,
        [g for _, g in pairs],
        retain_graph=True,
        create_graph=create_graph,
        allow_unused=True,
    )
    _check_strict(outputs, grads, strict, row)
    return tuple(_zeros_like(t) if g is None else g for g, t in zip(grads, inputs))


def _vectors(v, like: tuple, name: str, fn_name: str) -> tuple:
    """`v` as a tuple shaped like `like`; omitted only where `like` is one tensor of one element."""
    if v is None:
        if len(like) != 1 or like[0].data.size != 1:
            which = "user-provided function returns" if name == "output" else "input to the user-provided function is"
            raise RuntimeError(f"The vector v can only be None if the {which} a single Tensor with a single element.")
        return tuple(Tensor(np.ones(t.shape, t.dtype)) for t in like)
    v, _ = _as_tuple(v, "v", fn_name)
    if len(v) != len(like):
        if len(like) == 1:
            raise RuntimeError("The given v should contain a single Tensor.")
        raise RuntimeError(f"v is a tuple of invalid length: should be {len(like)} but got {len(v)}.")
    for a, b in zip(v, like):
        if a.shape != b.shape:
            raise RuntimeError(f"v has invalid size: should be {list(b.shape)} but got {list(a.shape)}.")
    return v


def _double_vjp(outputs: tuple, xs: tuple, v: tuple, create_graph: bool) -> tuple:
    """J·v from reverse mode: g(u) = Jᵀ·u is linear in a dummy u, so the vjp of g with v is J·v."""
    dummies = tuple(_zeros_like(o).requires_grad_() for o in outputs)  # u
    transposed = _grad(outputs, xs, dummies, create_graph=True)  # Jᵀ·u, recorded
    return _grad(transposed, dummies, v, create_graph)


def _first_order(name: str, func, inputs, v, create_graph: bool, strict: bool):
    """(func(inputs), vᵀ·J for "vjp", shaped like the inputs, or J·v for "jvp", shaped like the outputs)."""
    xs, tuple_in = _as_tuple(inputs, "inputs", name)
    with enable_grad():
        xs = _prepare(xs, create_graph)
        outputs, tuple_out = _as_tuple(func(*xs), _OUT, name)
        if name == "vjp":
            vs = _vectors(v, outputs, "output", name)
            result, is_tuple = _grad(outputs, xs, vs, create_graph, strict), tuple_in
        else:
            vs = _vectors(v, xs, "input", name)
            result, is_tuple = _double_vjp(outputs, xs, vs, create_graph), tuple_out
    return _finish(outputs, create_graph, tuple_out), _finish(result, create_graph, is_tuple)


def vjp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), vᵀ·J)."""
    return _first_order("vjp", func, inputs, v, create_graph, strict)


def jvp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), J·v), by the double-vjp trick."""
    return _first_order("jvp", func, inputs, v, create_graph, strict)


def _stack_rows(rows: list, shape: tuple) -> Tensor:
    return view(stack(rows), shape)


def jacobian(func, inputs, create_graph: bool = False, strict: bool = False, _name: str = "jacobian"):
    """d outputs / d inputs, each block shaped output.shape + input.shape (nested tuples as in PyTorch)."""
    xs, tuple_in = _as_tuple(inputs, "inputs", _name)
    with enable_grad():
        xs = _prepare(xs, create_graph)
        outputs, tuple_out = _as_tuple(func(*xs), _OUT, _name)
        blocks = []
        for out in outputs:
            rows = []  # one vjp per output element: row k holds d out[k] / d each input
            for k in range(out.data.size):
                onehot = np.zeros(out.data.size, out.dtype)
                onehot[k] = 1
                seed = (Tensor(onehot.reshape(out.shape)),)
                rows.append(_grad((out,), xs, seed, create_graph, strict, len(blocks)))
            blocks.append(tuple(_stack_rows([r[i] for r in rows], out.shape + x.shape) for i, x in enumerate(xs)))
    blocks = [_finish(b, create_graph, tuple_in) for b in blocks]
    return tuple(blocks) if tuple_out else blocks[0]


def _single_output(func, name: str):
    def scalar(*xs):
        out = func(*xs)
        outputs, is_tuple = _as_tuple(out, _OUT, name)
        if is_tuple:
            raise RuntimeError(f"The function given to {name} should return a single Tensor")
        if out.data.size != 1:
            raise RuntimeError(f"The Tensor returned by the function given to {name} should contain a single element")
        return out

    return scalar


def hessian(func, inputs, create_graph: bool = False, strict: bool = False):
    """The Jacobian of the gradient: blocks shaped input_i.shape + input_j.shape."""
    scalar = _single_output(func, "hessian")
    _, tuple_in = _as_tuple(inputs, "inputs", "hessian")

    def gradient(*xs):
        return jacobian(lambda *ys: view(scalar(*ys), ()), xs if tuple_in else xs[0], create_graph=True)

    return jacobian(gradient, inputs, create_graph, _name="hessian")


def _second_order(name: str, func, inputs, v, create_graph: bool):
    """(func(inputs), vᵀ·H for "vhp" or H·v for "hvp"), from the recorded gradient ∇f."""
    xs, tuple_in = _as_tuple(inputs, "inputs", name)
    with enable_grad():
        xs = _prepare(xs, create_graph)
        out = _single_output(func, name)(*xs)
        gradient = _grad((out,), xs, (Tensor(np.ones(out.shape, out.dtype)),), create_graph=True)
        v = _vectors(v, xs, "input", name)
        if name == "vhp":
            result = _grad(gradient, xs, v, create_graph)  # the gradient of ∇f·v
        else:
            result = _double_vjp(gradient, xs, v, create_graph)  # the Jacobian of ∇f (H) times v
    return _finish((out,), create_graph, False), _finish(result, create_graph, tuple_in)


def vhp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), vᵀ·H)."""
    return _second_order("vhp", func, inputs, v, create_graph)


def hvp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), H·v)."""
    return _second_order("hvp", func, inputs, v, create_graph)
