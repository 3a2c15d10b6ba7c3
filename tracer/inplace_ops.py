"""In-place ops, index assignment, casts and comparisons: the tensor surface around autograd.

An in-place op changes the very object everyone holds: its version counter is bumped (so a node that saved it
refuses to unpack it), and, where a graph is being recorded, its history is rebased: `grad_fn` becomes the new
node, whose edge for `self` is the old history. `t[index] = value` is `index_put_` (IndexPutBackward0): the
gradient of `self` is the incoming one with zeros at `index`, that of `value` is the incoming one at `index`,
summed back to value's shape.

Comparisons return bool tensors and record nothing; casts record ToCopyBackward0, whose backward casts the
gradient back to the input's dtype.
"""

from __future__ import annotations

import numpy as np

from tracer.graph import Node
from tracer.ops import ExpBackward0, as_tensor, rebase_history, save_indices, sum_to
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


def _rebase(a: Tensor, node: Node) -> None:
    rebase_history(a, node)


def normalize_index(index):
    """PyTorch's reading of an index: tensors as their arrays, and a list holding slices or sequences as a tuple."""
    if isinstance(index, list) and any(
        isinstance(i, (slice, list, tuple, Tensor, np.ndarray)) or i is None or i is Ellipsis for i in index
    ):
        index = tuple(index)
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index.data if isinstance(index, Tensor) else index


class IndexPutBackward0(Node):
    inputs = ("self", "values")
    key: object
    values_shape: tuple
    advanced = False

    @staticmethod
    def jvp(out, x, t, key, **_):
        tangent = np.array(t[0], copy=True)
        tangent[key] = t[1]
        return tangent

    def backward(self, g):
        if self.advanced:
            self.saved_data("indices")  # freed after a backward without retain_graph
        grad_self = grad_values = None
        if self.should_compute_output(0):
            mask = np.ones(g.shape, dtype=bool)
            mask[self.key] = False
            grad_self = g * mask
        if self.should_compute_output(1):
            grad_values = sum_to(g[self.key], self.values_shape)
        return grad_self, grad_values


def setitem(a: Tensor, index, value) -> None:
    """`a[index] = value` (torch's index_put_): in place, version bumped, history rebased."""
    check_inplace(a)
    key = normalize_index(index)
    value = as_tensor(value, a)
    if _grad_enabled[0] and (a.requires_grad or value.requires_grad):
        node = IndexPutBackward0((a.gradient_edge(), value.gradient_edge()))
        node.key, node.values_shape = key, value.shape
        parts = key if isinstance(key, tuple) else (key,)
        if not all(isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis for i in parts):
            node.advanced = True
            save_indices(node)
        _rebase(a, node)
    tangents = _tangents[0]
    if tangents is not None and (a in tangents or value in tangents):
        tangent = np.array(tangents.get(a, np.zeros_like(a.data)), copy=True)
        tangent[key] = tangents.get(value, 0)
        tangents[a] = tangent
    if not a.data.flags.writeable:  # an expand()'s broadcast view: written as a copy of its own
        a.data = np.array(a.data)
    a.data[key] = value.data
    a._bump_version()


class FillBackward0(Node):
    @staticmethod
    def jvp(out, x, t, **_):
        return np.zeros_like(t[0])

    def backward(self, g):
        return (g * 0,)


def fill_(a: Tensor, value) -> Tensor:
    check_inplace(a)
    if _grad_enabled[0] and a.requires_grad:
        _rebase(a, FillBackward0((a.gradient_edge(),)))
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
        _rebase(a, node)
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
        _rebase(a, node)
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
    from tracer.ops import record

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
        "__setitem__": setitem,
        "fill_": fill_,
        "copy_": copy_,
        "detach_": detach_,
        "exp_": exp_,
    }.items():
        setattr(Tensor, name, fn)
    Tensor.all = lambda a: Tensor(np.all(a.data))
    Tensor.any = lambda a: Tensor(np.any(a.data))


install()
