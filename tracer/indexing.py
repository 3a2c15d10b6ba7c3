"""Indexing: reading `t[index]` and writing `t[index] = value`, each beside its backward node and JVP rule.

Reading with integers and slices gives views, recorded as chains of `SelectBackward0` / `SliceBackward0`, as in
PyTorch; any other index (lists, arrays, masks) gives a copy, recorded as `IndexBackward0`. The backward of each
places the gradient into zeros of the input's shape, and that placing has a node of its own, so that double
backward can differentiate it. `t[index] = value` is `index_put_` (IndexPutBackward0), an in-place op: the
gradient of `self` is the incoming one with zeros at `index`, that of `value` is the incoming one at `index`,
summed back to value's shape.
"""

from __future__ import annotations

import numpy as np

from tracer.graph import Node
from tracer.inplace_ops import check_inplace, rebase_history
from tracer.recording import as_tensor, record
from tracer.reductions import sum_to
from tracer.tensor import Tensor, _grad_enabled, _tangents


def normalize_index(index):
    """PyTorch's reading of an index: tensors as their arrays, and a list holding slices or sequences as a tuple."""
    if isinstance(index, list) and any(
        isinstance(i, (slice, list, tuple, Tensor, np.ndarray)) or i is None or i is Ellipsis for i in index
    ):
        index = tuple(index)
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index.data if isinstance(index, Tensor) else index


# --- reading: t[index] -----------------------------------------------------------------------------------------


class _ScatterIntoZeros(Node):
    """The backward of an indexing op: the gradient placed into zeros of the input's shape at `key`."""

    key: tuple

    @staticmethod
    def jvp(out, x, t, key, **_):
        placed = np.zeros(out.shape, t[0].dtype)
        np.add.at(placed, key, t[0])
        return placed

    def backward(self, g):
        return (g[self.key],)  # placing, differentiated, is picking the same entries back out


class SelectBackwardBackward0(_ScatterIntoZeros):
    pass


class SliceBackwardBackward0(_ScatterIntoZeros):
    pass


class IndexPutImplBackward0(_ScatterIntoZeros):
    pass


def scatter_into_zeros(g, shape: tuple, key: tuple, node_cls: type[_ScatterIntoZeros]):
    """zeros(shape) with `g` added at `key` (repeated indices add up): an array, or a tensor with its node."""
    out = np.zeros(shape, dtype=g.dtype)
    if node_cls is IndexPutImplBackward0:
        np.add.at(out, key, g.data if isinstance(g, Tensor) else g)
    else:  # integers and slices never name an entry twice
        out[key] = g.data if isinstance(g, Tensor) else g
    return record(out, node_cls, g, key=key) if isinstance(g, Tensor) else out


class SelectBackward0(Node):
    self_shape: tuple
    key: tuple

    @staticmethod
    def jvp(out, x, t, key, **_):
        return t[0][key]

    def backward(self, g):
        return (scatter_into_zeros(g, self.self_shape, self.key, SelectBackwardBackward0),)


class SliceBackward0(SelectBackward0):
    def backward(self, g):
        return (scatter_into_zeros(g, self.self_shape, self.key, SliceBackwardBackward0),)


class IndexBackward0(SelectBackward0):
    def backward(self, g):
        self.saved_data("indices")  # freed after a backward without retain_graph, as torch's saved indices are
        return (scatter_into_zeros(g, self.self_shape, self.key, IndexPutImplBackward0),)


def save_indices(node: Node | None) -> None:
    """Advanced indexing saves its index tensors (torch's `indices_`): here a placeholder standing for them, so
    that backpropagating twice without retain_graph is the same error."""
    if node is not None:
        node.save("indices", Tensor(np.zeros(0)))


def getitem(a, index):
    """Integers and slices become chains of SelectBackward0 / SliceBackward0, as in PyTorch; the rest IndexBackward0."""
    index = normalize_index(index)
    index = index if isinstance(index, tuple) else (index,)
    if all(isinstance(i, (int, np.integer, slice)) for i in index) and len(index) <= a.ndim:
        out, dim = a, 0
        for i in index:
            if i == slice(None):
                dim += 1
                continue
            key = (slice(None),) * dim + (i,)
            node_cls = SliceBackward0 if isinstance(i, slice) else SelectBackward0
            out = record(out.data[key], node_cls, out, self_shape=out.shape, key=key)
            dim += isinstance(i, slice)
        if out is a:  # x[:]: a view of x all the same
            out = record(a.data[...], SliceBackward0, a, self_shape=a.shape, key=(slice(None),))
        out._version_counter, out._base = a._shared_version_counter(), a if a._base is None else a._base
        return out
    out = record(a.data[index], IndexBackward0, a, self_shape=a.shape, key=index)
    save_indices(out.grad_fn)
    return out


# --- writing: t[index] = value --------------------------------------------------------------------------------


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
        rebase_history(a, node)
    tangents = _tangents[0]
    if tangents is not None and (a in tangents or value in tangents):
        tangent = np.array(tangents.get(a, np.zeros_like(a.data)), copy=True)
        tangent[key] = tangents.get(value, 0)
        tangents[a] = tangent
    if not a.data.flags.writeable:  # an expand()'s broadcast view: written as a copy of its own
        a.data = np.array(a.data)
    a.data[key] = value.data
    a._bump_version()


def install() -> None:
    Tensor.__getitem__ = getitem
    Tensor.__setitem__ = setitem


install()
