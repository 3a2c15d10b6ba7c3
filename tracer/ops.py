"""Differentiable ops. Each forward sits beside the backward node it records, named as PyTorch names it.

A forward op computes its NumPy result and, when grad mode is on and some
input requires grad, creates its node: `next_functions` gets one edge per
tensor argument (in PyTorch's argument order), and whatever the backward
formula needs is saved. The node's `backward(grad)` returns one gradient per
edge.
"""

from __future__ import annotations

import numpy as np

from tracer.graph import Node, unbroadcast
from tracer.tensor import Tensor, _grad_enabled, is_grad_enabled


def as_tensor(x, like=None) -> Tensor:
    """`x` as a Tensor; a Python number takes the dtype of `like` (as in PyTorch: 2.0 * float32 stays float32)."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (int, float)) and isinstance(like, Tensor):
        return Tensor(np.asarray(x, dtype=like.dtype))
    return Tensor(np.asarray(x))


NO_EDGE = (None, 0)  # the edge of an input that needs no gradient


def record(data, node_cls, *inputs, **attrs):
    """Wrap `data` as the output of `node_cls` applied to the tensors `inputs`; returns (tensor, node or None).

    No node is made under `no_grad()` or when no input requires grad (every edge is then `(None, 0)`).
    """
    out = Tensor(data)
    if not _grad_enabled[0]:  # (is_grad_enabled() without the call)
        return out, None
    edges = tuple([t.gradient_edge() for t in inputs])
    if edges.count(NO_EDGE) == len(edges):
        return out, None
    node = node_cls(edges)
    if attrs:
        node.__dict__.update(attrs)
    out.grad_fn = node
    return out, node


# --- elementwise binary -----------------------------------------------------


class AddBackward0(Node):
    def backward(self, g):
        return unbroadcast(g, self.self_shape), unbroadcast(g * self.alpha, self.other_shape)


def add(a, b, alpha=1.0):
    a, b = as_tensor(a, b), as_tensor(b, a)
    out, _ = record(
        a.data + alpha * b.data if alpha != 1 else a.data + b.data,
        AddBackward0,
        a,
        b,
        self_shape=a.shape,
        other_shape=b.shape,
        alpha=alpha,
    )
    return out


class SubBackward0(Node):
    def backward(self, g):
        return unbroadcast(g, self.self_shape), unbroadcast(-g, self.other_shape)


def sub(a, b):
    a, b = as_tensor(a, b), as_tensor(b, a)
    return record(a.data - b.data, SubBackward0, a, b, self_shape=a.shape, other_shape=b.shape)[0]


class RsubBackward1(Node):  # Python scalar - tensor: the scalar is no tensor, so one edge
    def backward(self, g):
        return (-g,)


def rsub(a, scalar):
    return record(scalar - a.data, RsubBackward1, a)[0]


class MulBackward0(Node):
    def backward(self, g):
        a, b = self.saved("self"), self.saved("other")
        return (
            unbroadcast(g * b.data, a.shape) if self.needs_input_grad(0) else None,
            unbroadcast(g * a.data, b.shape) if self.needs_input_grad(1) else None,
        )


def mul(a, b):
    a, b = as_tensor(a, b), as_tensor(b, a)
    out, node = record(a.data * b.data, MulBackward0, a, b)
    if node:
        node.save(self=a, other=b)
    return out


class DivBackward0(Node):
    def backward(self, g):
        a, b = self.saved("self"), self.saved("other")
        return unbroadcast(g / b.data, a.shape), unbroadcast(-g * a.data / (b.data * b.data), b.shape)


def div(a, b):
    a, b = as_tensor(a, b), as_tensor(b, a)
    out, node = record(a.data / b.data, DivBackward0, a, b)
    if node:
        node.save(self=a, other=b)
    return out


class PowBackward0(Node):  # tensor ** scalar
    def backward(self, g):
        x = self.saved("self").data
        p = self.exponent
        return (g * p * x ** (p - 1) if p != 0 else np.zeros_like(x),)


class PowBackward1(Node):  # tensor ** tensor
    def backward(self, g):
        a, b, out = self.saved("self").data, self.saved("exponent").data, self.saved("result").data
        ga = g * b * a ** (b - 1)
        gb = g * out * np.log(np.where(a > 0, a, 1.0)) * (a > 0)
        return unbroadcast(ga, a.shape), unbroadcast(gb, b.shape)


class PowBackward2(Node):  # Python scalar ** tensor
    def backward(self, g):
        return (g * self.saved("result").data * np.log(self.base),)


def rpow(a, base):
    out, node = record(base**a.data, PowBackward2, a, base=base)
    if node:
        node.save(result=out)
    return out


class ReciprocalBackward0(Node):
    def backward(self, g):
        y = self.saved("result").data
        return (-g * y * y,)


def reciprocal(a):
    out, node = record(1 / a.data, ReciprocalBackward0, a)
    if node:
        node.save(result=out)
    return out


def pow(a, p):
    a = as_tensor(a)
    if isinstance(p, Tensor):
        out, node = record(a.data**p.data, PowBackward1, a, p)
        if node:
            node.save(self=a, exponent=p, result=out)
        return out
    out, node = record(a.data**p, PowBackward0, a, exponent=p)
    if node:
        node.save(self=a)
    return out


# --- elementwise unary --------------------------------------------------------


class NegBackward0(Node):
    def backward(self, g):
        return (-g,)


def neg(a):
    return record(-a.data, NegBackward0, a)[0]


class ExpBackward0(Node):
    def backward(self, g):
        return (g * self.saved("result").data,)


def exp(a):
    out, node = record(np.exp(a.data), ExpBackward0, a)
    if node:
        node.save(result=out)
    return out


class LogBackward0(Node):
    def backward(self, g):
        return (g / self.saved("self").data,)


def log(a):
    out, node = record(np.log(a.data), LogBackward0, a)
    if node:
        node.save(self=a)
    return out


class ReluBackward0(Node):
    def backward(self, g):
        return (g * (self.saved("result").data > 0),)


def relu(a):
    out, node = record(np.maximum(a.data, 0), ReluBackward0, a)
    if node:
        node.save(result=out)
    return out


class TanhBackward0(Node):
    def backward(self, g):
        y = self.saved("result").data
        return (g * (1 - y * y),)


def tanh(a):
    out, node = record(np.tanh(a.data), TanhBackward0, a)
    if node:
        node.save(result=out)
    return out


class SigmoidBackward0(Node):
    def backward(self, g):
        y = self.saved("result").data
        return (g * y * (1 - y),)


def sigmoid(a):
    out, node = record(1 / (1 + np.exp(-a.data)), SigmoidBackward0, a)
    if node:
        node.save(result=out)
    return out


class AbsBackward0(Node):
    def backward(self, g):
        return (g * np.sign(self.saved("self").data),)  # sign(0) = 0: PyTorch's abs'(0)


def abs(a):
    out, node = record(np.abs(a.data), AbsBackward0, a)
    if node:
        node.save(self=a)
    return out


class ClampBackward1(Node):
    def backward(self, g):
        x = self.saved("self").data
        keep = np.ones_like(x, dtype=bool)
        if self.min is not None:
            keep &= x >= self.min
        if self.max is not None:
            keep &= x <= self.max
        return (g * keep,)  # the boundary itself passes the gradient, as in PyTorch


def clamp(a, min=None, max=None):
    out, node = record(np.clip(a.data, min, max), ClampBackward1, a, min=min, max=max)
    if node:
        node.save(self=a)
    return out


# --- reductions ---------------------------------------------------------------


def _expand_reduced(g, shape, dim, keepdim):
    if dim is not None and not keepdim:
        g = np.expand_dims(g, dim)
    return np.broadcast_to(g, shape)


class SumBackward0(Node):
    def backward(self, g):
        return (np.broadcast_to(g, self.self_shape).copy(),)


class SumBackward1(Node):
    def backward(self, g):
        return (_expand_reduced(g, self.self_shape, self.dim, self.keepdim).copy(),)


def sum(a, dim=None, keepdim=False):
    if dim is None:
        return record(np.sum(a.data), SumBackward0, a, self_shape=a.shape)[0]
    return record(
        np.sum(a.data, axis=dim, keepdims=keepdim), SumBackward1, a, self_shape=a.shape, dim=dim, keepdim=keepdim
    )[0]


class MeanBackward0(Node):
    def backward(self, g):
        return (np.broadcast_to(g / np.prod(self.self_shape), self.self_shape).copy(),)


class MeanBackward1(Node):
    def backward(self, g):
        n = np.prod([self.self_shape[d] for d in np.atleast_1d(self.dim)])
        return (_expand_reduced(g / n, self.self_shape, self.dim, self.keepdim).copy(),)


def mean(a, dim=None, keepdim=False):
    if dim is None:
        return record(np.mean(a.data), MeanBackward0, a, self_shape=a.shape)[0]
    return record(
        np.mean(a.data, axis=dim, keepdims=keepdim), MeanBackward1, a, self_shape=a.shape, dim=dim, keepdim=keepdim
    )[0]


class MaxBackward1(Node):  # max over everything: ties share the gradient evenly (PyTorch's amax rule)
    def backward(self, g):
        x, y = self.saved("self").data, self.saved("result").data
        mask = x == y
        return (mask * (g / mask.sum()),)


class MaxBackward0(Node):  # max(dim): the gradient goes to the one index returned
    def backward(self, g):
        idx = self.saved_indices
        out = np.zeros(self.self_shape, dtype=g.dtype)
        g = g if self.keepdim else np.expand_dims(g, self.dim)
        i = idx if self.keepdim else np.expand_dims(idx, self.dim)
        np.put_along_axis(out, i, g, axis=self.dim)
        return (out,)


def max(a, dim=None, keepdim=False):
    if dim is None:
        out, node = record(np.max(a.data), MaxBackward1, a)
        if node:
            node.save(self=a, result=out)
        return out
    idx = np.argmax(a.data, axis=dim)  # first maximal index, as PyTorch on CPU
    values = np.take_along_axis(a.data, np.expand_dims(idx, dim), axis=dim)
    if not keepdim:
        values = np.squeeze(values, dim)
        kept_idx = idx
    else:
        kept_idx = np.expand_dims(idx, dim)
    out, _ = record(values, MaxBackward0, a, self_shape=a.shape, dim=dim, keepdim=keepdim, saved_indices=kept_idx)
    return out, Tensor(kept_idx)


# --- shapes and matrices --------------------------------------------------------


class ViewBackward0(Node):
    def backward(self, g):
        return (g.reshape(self.self_shape),)


def view(a, *shape):
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    return record(a.data.reshape(shape), ViewBackward0, a, self_shape=a.shape)[0]


class ExpandBackward0(Node):
    def backward(self, g):
        return (unbroadcast(g, self.self_shape),)


def expand(a, *shape):
    shape = tuple(s if s != -1 else a.shape[i - (len(shape) - a.ndim)] for i, s in enumerate(shape))
    return record(np.broadcast_to(a.data, shape), ExpandBackward0, a, self_shape=a.shape)[0]


class TBackward0(Node):
    def backward(self, g):
        return (g.T,)


def t(a):
    return record(a.data.T, TBackward0, a)[0]


class PermuteBackward0(Node):
    def backward(self, g):
        return (np.transpose(g, np.argsort(self.dims)),)


def permute(a, *dims):
    dims = tuple(dims[0]) if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
    return record(np.transpose(a.data, dims), PermuteBackward0, a, dims=dims)[0]


def _mat2_grad(mat1: np.ndarray, g: np.ndarray, mat2_strides: tuple) -> np.ndarray:
    """mat1ᵀ·g, laid out like mat2 was: PyTorch's mm_mat2_backward, which also reads the strides saved at forward
    time. When mat2 is a transposed weight (column-major), (gᵀ·mat1)ᵀ brings the weight's gradient out C-contiguous."""
    column_major = mat2_strides[0] < mat2_strides[1]
    return (g.T @ mat1).T if column_major else mat1.T @ g


class MmBackward0(Node):
    def backward(self, g):
        a, b = self.saved("self").data, self.saved("mat2").data
        return (
            (g @ b.T if self.needs_input_grad(0) else None),
            (_mat2_grad(a, g, self.mat2_strides) if self.needs_input_grad(1) else None),
        )


def mm(a, b):
    out, node = record(a.data @ b.data, MmBackward0, a, b, mat2_strides=b.data.strides)
    if node:
        node.save(self=a, mat2=b)
    return out


class AddmmBackward0(Node):  # bias + mat1 @ mat2, next_functions in PyTorch's order: (bias, mat1, mat2)
    def backward(self, g):
        mat1, mat2 = self.saved("mat1").data, self.saved("mat2").data
        return (
            unbroadcast(g, self.self_shape) if self.needs_input_grad(0) else None,
            g @ mat2.T if self.needs_input_grad(1) else None,
            _mat2_grad(mat1, g, self.mat2_strides) if self.needs_input_grad(2) else None,
        )


def addmm(bias, mat1, mat2):
    data = mat1.data @ mat2.data
    if data.dtype == bias.dtype:
        data += bias.data  # into the product, as torch's addmm adds the bias in the same kernel: no temporary
    else:
        data = data + bias.data
    out, node = record(data, AddmmBackward0, bias, mat1, mat2, self_shape=bias.shape, mat2_strides=mat2.data.strides)
    if node:
        node.save(mat1=mat1, mat2=mat2)
    return out


class SelectBackward0(Node):
    def backward(self, g):
        out = np.zeros(self.self_shape, dtype=g.dtype)
        out[(slice(None),) * self.dim + (self.index,)] = g
        return (out,)


class SliceBackward0(Node):
    def backward(self, g):
        out = np.zeros(self.self_shape, dtype=g.dtype)
        out[(slice(None),) * self.dim + (self.slice,)] = g
        return (out,)


class IndexBackward0(Node):
    def backward(self, g):
        out = np.zeros(self.self_shape, dtype=g.dtype)
        np.add.at(out, self.index, g)
        return (out,)


def getitem(a, index):
    """Integers and slices become chains of SelectBackward0 / SliceBackward0, as in PyTorch; the rest IndexBackward0."""
    index = index if isinstance(index, tuple) else (index,)
    if all(isinstance(i, (int, np.integer, slice)) for i in index):
        out, dim = a, 0
        for i in index:
            if isinstance(i, slice):
                if i == slice(None):
                    dim += 1
                    continue
                key = (slice(None),) * dim + (i,)
                out = record(out.data[key], SliceBackward0, out, self_shape=out.shape, dim=dim, slice=i)[0]
                dim += 1
            else:
                key = (slice(None),) * dim + (i,)
                out = record(out.data[key], SelectBackward0, out, self_shape=out.shape, dim=dim, index=i)[0]
        return out
    index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return record(a.data[index], IndexBackward0, a, self_shape=a.shape, index=index)[0]


# --- neural-network ops -------------------------------------------------------------


def _log_softmax(x, dim):
    # (ufunc reductions called directly: the ndarray.max / .sum wrappers cost more than the work on small batches)
    shifted = x - np.maximum.reduce(x, axis=dim, keepdims=True)
    return shifted - np.log(np.add.reduce(np.exp(shifted), axis=dim, keepdims=True))


class LogSoftmaxBackward0(Node):
    def backward(self, g):
        y = self.saved("result").data
        return (g - np.exp(y) * np.add.reduce(g, axis=self.dim, keepdims=True),)


def log_softmax(a, dim=-1):
    out, node = record(_log_softmax(a.data, dim), LogSoftmaxBackward0, a, dim=dim)
    if node:
        node.save(result=out)
    return out


class NllLossBackward0(Node):
    def backward(self, g):
        out = np.zeros(self.self_shape, dtype=g.dtype)
        out[self.rows, self.target] = -(g / len(self.rows)) if self.reduction == "mean" else -g
        return (out,)


def nll_loss(logp, target, reduction="mean"):
    target = np.asarray(target.data if isinstance(target, Tensor) else target, dtype=np.int64)
    rows = np.arange(len(target))
    total = -np.add.reduce(logp.data[rows, target])
    value = total / len(rows) if reduction == "mean" else total
    # The target is not differentiable, so it gets no edge at all (unlike a scalar operand, which gets (None, 0)).
    return record(
        np.asarray(value, dtype=logp.dtype),
        NllLossBackward0,
        logp,
        self_shape=logp.shape,
        rows=rows,
        target=target,
        reduction=reduction,
    )[0]


class NativeBatchNormBackward0(Node):
    """Batch norm in training mode: normalize with the batch mean and biased variance."""

    def backward(self, g):
        x, w = self.saved("input").data, self.saved("weight").data
        mean, invstd = self.saved_mean, self.saved_invstd
        xhat = (x - mean) * invstd
        n = x.shape[0]
        gw, gb = (g * xhat).sum(0), g.sum(0)
        gx = w * invstd / n * (n * g - gb - xhat * gw)
        return gx, gw, gb


def batch_norm_train(x, weight, bias, eps):
    mean = x.data.mean(0)
    var = x.data.var(0)
    invstd = 1 / np.sqrt(var + eps)
    y = (x.data - mean) * invstd * weight.data + bias.data
    out, node = record(y, NativeBatchNormBackward0, x, weight, bias, saved_mean=mean, saved_invstd=invstd)
    if node:
        node.save(input=x, weight=weight)
    return out, mean, var


class NativeLayerNormBackward0(Node):
    def backward(self, g):
        x, w = self.saved("input").data, self.saved("weight").data
        mean, invstd = self.saved_mean, self.saved_invstd
        xhat = (x - mean) * invstd
        gw, gb = (g * xhat).sum(0), g.sum(0)
        gxhat = g * w
        n = x.shape[-1]
        gx = invstd / n * (n * gxhat - gxhat.sum(-1, keepdims=True) - xhat * (gxhat * xhat).sum(-1, keepdims=True))
        return gx, gw, gb


def layer_norm(x, weight, bias, eps):
    mean = x.data.mean(-1, keepdims=True)
    invstd = 1 / np.sqrt(x.data.var(-1, keepdims=True) + eps)
    y = (x.data - mean) * invstd * weight.data + bias.data
    out, node = record(y, NativeLayerNormBackward0, x, weight, bias, saved_mean=mean, saved_invstd=invstd)
    if node:
        node.save(input=x, weight=weight)
    return out


# --- in-place ops ---------------------------------------------------------------------


def _check_inplace(a: Tensor) -> None:
    if is_grad_enabled() and a.is_leaf and a.requires_grad:
        raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")


def add_(a: Tensor, b, alpha=1.0) -> Tensor:
    """`a += alpha * b` in place. On a non-leaf the history is rebased: `a.grad_fn` becomes the new node."""
    _check_inplace(a)
    b = as_tensor(b, a)
    if is_grad_enabled() and (a.requires_grad or b.requires_grad):
        node = AddBackward0((a.gradient_edge(), b.gradient_edge()))
        node.self_shape, node.other_shape, node.alpha = a.shape, b.shape, alpha
        a.grad_fn = node
    a.data += alpha * b.data if alpha != 1 else b.data
    a._bump_version()
    return a


def mul_(a: Tensor, scalar: float) -> Tensor:
    """`a *= scalar` in place (a Python scalar, so nothing needs saving)."""
    _check_inplace(a)
    if is_grad_enabled() and a.requires_grad:
        node = MulBackward0((a.gradient_edge(), NO_EDGE))
        node.save(self=Tensor(a.data.copy()), other=Tensor(np.asarray(scalar, a.dtype)))
        a.grad_fn = node
    a.data *= scalar
    a._bump_version()
    return a


def zero_(a: Tensor) -> Tensor:
    _check_inplace(a)
    a.data[...] = 0
    a._bump_version()
    return a


# --- Tensor methods and operators: thin aliases of the ops above --------------------------


def _install_methods():
    def rtruediv(a, s):
        return mul(reciprocal(a), s)

    methods = {
        "__add__": add,
        "__radd__": lambda a, b: add(a, b),
        "__sub__": sub,
        "__rsub__": lambda a, b: rsub(a, b) if not isinstance(b, (Tensor, np.ndarray)) else sub(b, a),
        "__mul__": mul,
        "__rmul__": lambda a, b: mul(a, b),
        "__truediv__": div,
        "__rtruediv__": rtruediv,
        "__pow__": pow,
        "__rpow__": rpow,
        "__neg__": neg,
        "__matmul__": lambda a, b: mm(a, b),
        "__getitem__": getitem,
        "__iadd__": add_,
        "__imul__": mul_,
        "add": add,
        "sub": sub,
        "mul": mul,
        "div": div,
        "pow": pow,
        "neg": neg,
        "exp": exp,
        "log": log,
        "relu": relu,
        "tanh": tanh,
        "sigmoid": sigmoid,
        "abs": abs,
        "clamp": clamp,
        "sum": sum,
        "mean": mean,
        "max": max,
        "view": view,
        "reshape": view,
        "expand": expand,
        "t": t,
        "permute": permute,
        "mm": mm,
        "log_softmax": log_softmax,
        "add_": add_,
        "mul_": mul_,
        "zero_": zero_,
        "T": property(lambda a: permute(a, tuple(reversed(range(a.ndim))))),
    }
    for name, fn in methods.items():
        setattr(Tensor, name, fn)


_install_methods()
