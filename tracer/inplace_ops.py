"""In-place ops, casts and comparisons: the tensor surface around autograd.

An in-place op changes the very object everyone holds: its version counter is bumped (so a node that saved it
refuses to unpack it), and, where a graph is being recorded, its history is rebased: `grad_fn` becomes the new
node, whose edge for `self` is the old history (`rebase_history`). Index assignment, `t[index] = value`, is one
of them too; it lives with indexing (`indexing.setitem`).

Comparisons return bool tensors and record nothing; casts record ToCopyBackward0, whose backward casts the
gradient back to the input's dtype.
"""

from __future__ import annotations

import numpy as np

from tracer.graph import Node
from tracer.pointwise import AddBackward0, ExpBackward0, MulBackward0, SubBackward0
from tracer.recording import NO_EDGE, as_tensor, record
from tracer.reductions import sum_to
from tracer.tensor import Tensor, _grad_enabled, _tangents


def check_inplace(a: Tensor) -> None:
    """An in-place op may not change a leaf that requires grad (or a view of one) while grad mode is on."""
    if not _grad_enabled[0]:
        return
    if a.grad_fn is None and a._requires_grad:
        raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
    base = a._base
    if base is not None and base.grad_fn is None and base._requires_grad:
        raise RuntimeError("a view of a leaf Variable that requires grad is being used in an in-place operation.")


def rebase_history(a: Tensor, node: Node) -> None:
    """An in-place op's result: `a` now ends in `node`; a retained gradient follows it to the new node."""
    retains = a._retains_grad
    if retains and a.grad_fn is not None and a._output_nr in a.grad_fn._retain_grad:
        del a.grad_fn._retain_grad[a._output_nr]
    a.grad_fn, a._output_nr = node, 0
    if retains:
        node.retain_grad_of(a)


# --- arithmetic in place: add_, sub_, mul_, zero_, and the rest ------------------------------------------------


def add_(a: Tensor, b, alpha=1.0) -> Tensor:
    """`a += alpha * b` in place. On a non-leaf the history is rebased: `a.grad_fn` becomes the new node."""
    check_inplace(a)
    b = as_tensor(b, a)
    if _grad_enabled[0] and (a.requires_grad or b.requires_grad):
        node = AddBackward0((a.gradient_edge(), b.gradient_edge()))
        node.self_shape, node.other_shape, node.alpha = a.shape, b.shape, alpha
        rebase_history(a, node)
    if _tangents[0] is not None and (a in _tangents[0] or b in _tangents[0]):  # forward mode: ta += alpha * tb
        _tangents[0][a] = _tangents[0].get(a, 0) + alpha * _tangents[0].get(b, np.zeros_like(b.data))
    a.data += alpha * b.data if alpha != 1 else b.data
    a._bump_version()
    return a


def sub_(a: Tensor, b) -> Tensor:
    """`a -= b` in place, as `add_` is `a += b`: the object everyone holds changes; its history is rebased."""
    check_inplace(a)
    b = as_tensor(b, a)
    if _grad_enabled[0] and (a.requires_grad or b.requires_grad):
        node = SubBackward0((a.gradient_edge(), b.gradient_edge()))
        node.self_shape, node.other_shape = a.shape, b.shape
        rebase_history(a, node)
    if _tangents[0] is not None and (a in _tangents[0] or b in _tangents[0]):  # forward mode: ta -= tb
        _tangents[0][a] = _tangents[0].get(a, 0) - _tangents[0].get(b, np.zeros_like(b.data))
    a.data -= b.data
    a._bump_version()
    return a


def mul_(a: Tensor, scalar: float) -> Tensor:
    """`a *= scalar` in place (a Python scalar, so nothing needs saving)."""
    check_inplace(a)
    if _grad_enabled[0] and a.requires_grad:
        node = MulBackward0((a.gradient_edge(), NO_EDGE))
        node.self_shape, node.other_shape = a.shape, ()
        node.save("other", Tensor(np.asarray(scalar, a.dtype)))
        rebase_history(a, node)
    if _tangents[0] is not None and a in _tangents[0]:
        _tangents[0][a] = _tangents[0][a] * scalar
    a.data *= scalar
    a._bump_version()
    return a


def zero_(a: Tensor) -> Tensor:
    check_inplace(a)
    a.data[...] = 0
    a._bump_version()
    return a


class FillBackward0(Node):
    @staticmethod
    def jvp(out, x, t, **_):
        return np.zeros_like(t[0])

    def backward(self, g):
        return (g * 0,)


def fill_(a: Tensor, value) -> Tensor:
    check_inplace(a)
    if _grad_enabled[0] and a.requires_grad:
        rebase_history(a, FillBackward0((a.gradient_edge(),)))
    a.data[...] = getattr(value, "data", value)
    a._bump_version()
    return a


class CopyBackwards(Node):
    inputs = ("self", "src")
    src_shape: tuple
    src_dtype: np.dtype

    def backward(self, g):
        grad_src = sum_to(g, self.src_shape) if self.should_compute_output(1) else None
        if grad_src is not None and grad_src.dtype != self.src_dtype:
            grad_src = to(grad_src, self.src_dtype) if isinstance(grad_src, Tensor) else grad_src.astype(self.src_dtype)
        return (g * 0 if self.should_compute_output(0) else None), grad_src


def copy_(a: Tensor, src) -> Tensor:
    check_inplace(a)
    src = as_tensor(src, a)
    if _grad_enabled[0] and (a.requires_grad or src.requires_grad):
        node = CopyBackwards((a.gradient_edge(), src.gradient_edge()))
        node.src_shape, node.src_dtype = src.shape, src.dtype
        rebase_history(a, node)
    a.data[...] = src.data
    a._bump_version()
    return a


def detach_(a: Tensor) -> Tensor:
    if a._base is not None:
        raise RuntimeError("Can't detach views in-place. Use detach() instead.")
    a.grad_fn, a._requires_grad, a._output_nr = None, False, 0
    return a


def exp_(a: Tensor) -> Tensor:
    check_inplace(a)
    record_node = _grad_enabled[0] and a.requires_grad
    node = ExpBackward0((a.gradient_edge(),)) if record_node else None
    np.exp(a.data, out=a.data)
    a._bump_version()
    if node is not None:
        rebase_history(a, node)
        node.save("result", a, is_output=True)
    return a


# --- casts ---------------------------------------------------------------------------------------------------


class ToCopyBackward0(Node):
    self_dtype: np.dtype

    @staticmethod
    def jvp(out, x, t, **_):
        return t[0].astype(out.dtype)

    def backward(self, g):
        return (to(g, self.self_dtype) if isinstance(g, Tensor) else g.astype(self.self_dtype),)


def to(a: Tensor, dtype=None, *args, **kwargs) -> Tensor:
    """`a.to(dtype)`: `a` itself when the dtype is already its own, else a copy recorded as ToCopyBackward0."""
    dtype = kwargs.get("dtype", dtype)
    if dtype is None or isinstance(dtype, str) and dtype == "cpu":
        return a
    dtype = np.dtype(dtype)
    if dtype == a.dtype:
        return a
    if dtype.kind not in "fc":  # an integer or bool result has no gradient
        return Tensor(a.data.astype(dtype))
    return record(a.data.astype(dtype), ToCopyBackward0, a, self_dtype=a.dtype)


# --- comparisons: bool tensors, no graph -------------------------------------------------------------------


def _compare(ufunc):
    def compare(a, b):
        return Tensor(ufunc(a.data, getattr(b, "data", b)))

    return compare


def install() -> None:
    casts = {
        "double": np.float64,
        "float": np.float32,
        "half": np.float16,
        "long": np.int64,
        "int": np.int32,
        "bool": np.bool_,
    }
    for name, dtype in casts.items():
        setattr(Tensor, name, lambda a, _d=dtype: to(a, _d))
    comparisons = {
        "__eq__": np.equal,
        "__ne__": np.not_equal,
        "__lt__": np.less,
        "__le__": np.less_equal,
        "__gt__": np.greater,
        "__ge__": np.greater_equal,
    }
    for name, ufunc in comparisons.items():
        setattr(Tensor, name, _compare(ufunc))
        setattr(Tensor, name.strip("_"), _compare(ufunc))
    Tensor.__hash__ = object.__hash__  # tensors stay hashable by identity, as torch's are
    for name, fn in {
        "to": to,
        "type_as": lambda a, other: to(a, other.dtype),
        "__iadd__": add_,
        "__isub__": sub_,
        "__imul__": mul_,
        "add_": add_,
        "sub_": sub_,
        "mul_": mul_,
        "zero_": zero_,
        "fill_": fill_,
        "copy_": copy_,
        "detach_": detach_,
        "exp_": exp_,
    }.items():
        setattr(Tensor, name, fn)
    Tensor.all = lambda a: Tensor(np.all(a.data))
    Tensor.any = lambda a: Tensor(np.any(a.data))


install()
