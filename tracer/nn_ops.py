"""The nn functions: log_softmax, nll_loss, batch norm and layer norm, each beside its backward node and JVP rule,
named as PyTorch names them. `nn.functional` and the `nn` modules call these.
"""

from __future__ import annotations

import numpy as np

from tracer.graph import Node
from tracer.pointwise import exp
from tracer.recording import record
from tracer.reductions import mean, sum
from tracer.tensor import Tensor

# --- formulas on arrays or tensors -------------------------------------------------------------------------------


def sum_dim(g, dim, keepdim: bool = False):
    return sum(g, dim, keepdim) if isinstance(g, Tensor) else np.add.reduce(g, axis=dim, keepdims=keepdim)


def exp_of(y):
    return exp(y) if isinstance(y, Tensor) else np.exp(y)


# --- log_softmax and nll_loss: cross entropy -------------------------------------------------------------------


def _log_softmax(x, dim):
    # (ufunc reductions called directly: the ndarray.max / .sum wrappers cost more than the work on small batches;
    # fast path 8, tracer/fast_paths.py)
    shifted = x - np.maximum.reduce(x, axis=dim, keepdims=True)
    return shifted - np.log(np.add.reduce(np.exp(shifted), axis=dim, keepdims=True))


class LogSoftmaxBackward0(Node):
    saves = ("result",)
    dim: int

    @staticmethod
    def jvp(out, x, t, dim, **_):
        return t[0] - np.add.reduce(np.exp(out) * t[0], axis=dim, keepdims=True)

    def backward(self, g):
        y = self.saved("result")
        return (g - exp_of(y) * sum_dim(g, self.dim, keepdim=True),)


def log_softmax(a, dim=-1):
    return record(_log_softmax(a.data, dim), LogSoftmaxBackward0, a, dim=dim)


class NllLossBackward0(Node):
    self_shape: tuple
    target: np.ndarray
    reduction: str

    @staticmethod
    def jvp(out, x, t, target, reduction, **_):
        picked = -t[0][np.arange(len(target)), target]
        return picked.mean() if reduction == "mean" else picked.sum()

    def backward(self, g):
        n = len(self.target)
        picked = np.zeros(self.self_shape, dtype=g.dtype)  # -1 (or -1/n) at each row's target
        picked[np.arange(n), self.target] = -1 / n if self.reduction == "mean" else -1
        return (g * picked,)


def nll_loss(logp, target, reduction="mean"):
    target = np.asarray(target.data if isinstance(target, Tensor) else target, dtype=np.int64)
    total = -np.add.reduce(logp.data[np.arange(len(target)), target])
    value = total / len(target) if reduction == "mean" else total
    # The target is not differentiable, so it gets no edge at all (unlike a scalar operand, which gets (None, 0)).
    return record(
        np.asarray(value, dtype=logp.dtype),
        NllLossBackward0,
        logp,
        self_shape=logp.shape,
        target=target,
        reduction=reduction,
    )


# --- batch norm and layer norm --------------------------------------------------------------------------------


def _normalization_stats(x, dim, eps: float):
    """Mean and 1/sqrt(biased variance + eps) over `dim` (kept), as arrays or as tracer ops on `x`."""
    if not isinstance(x, Tensor):
        mean_ = x.mean(dim, keepdims=True)
        return mean_, 1 / np.sqrt(x.var(dim, keepdims=True) + eps)
    mean_ = mean(x, dim, keepdim=True)
    centered = x - mean_
    return mean_, (mean(centered * centered, dim, keepdim=True) + eps) ** -0.5


def _normalization_jvp(x, t, dim, mean_, invstd):
    """dy = dxhat·w + xhat·dw + db, where dxhat = invstd·(c - xhat·mean(xhat·c)) and c = dx - mean(dx)."""
    (data, weight, _), (dx, dw, db) = x, t
    xhat = (data - mean_) * invstd
    c = dx - dx.mean(dim, keepdims=True)
    return invstd * (c - xhat * (xhat * c).mean(dim, keepdims=True)) * weight + xhat * dw + db


class _NormBackward(Node):
    """Batch and layer norm: y = (x - mean) * invstd * weight + bias, statistics over `dim`.

    On the plain path the statistics saved by the forward are used; while recording a graph they are
    recomputed from the saved input as tracer ops, so the second derivative sees how they depend on x.
    """

    inputs = ("input", "weight", "bias")
    saves = ("input", "weight")
    dim: int
    eps: float
    saved_mean: np.ndarray
    saved_invstd: np.ndarray

    @staticmethod
    def jvp(out, x, t, dim, saved_mean, saved_invstd, **_):
        return _normalization_jvp(x, t, dim, saved_mean, saved_invstd)

    def backward(self, g):
        x, w = self.saved("input"), self.saved("weight")
        if isinstance(x, Tensor):
            mean_, invstd = _normalization_stats(x, self.dim, self.eps)
        else:
            mean_, invstd = self.saved_mean, self.saved_invstd
        xhat = (x - mean_) * invstd
        n = x.shape[self.dim]
        gw, gb = sum_dim(g * xhat, 0), sum_dim(g, 0)
        if self.dim == 0:  # batch norm: weight and statistics per feature
            gx = w * invstd / n * (n * g - gb - xhat * gw)
        else:  # layer norm: statistics per row, weight per feature
            gxhat = g * w
            gx = invstd / n * (n * gxhat - sum_dim(gxhat, -1, True) - xhat * sum_dim(gxhat * xhat, -1, True))
        return gx, gw, gb


class NativeBatchNormBackward0(_NormBackward):
    pass


class NativeLayerNormBackward0(_NormBackward):
    pass


def _normalize(x, weight, bias, eps: float, dim: int, node_cls):
    mean_, invstd = _normalization_stats(x.data, dim, eps)
    y = (x.data - mean_) * invstd * weight.data + bias.data
    out = record(y, node_cls, x, weight, bias, dim=dim, eps=eps, saved_mean=mean_, saved_invstd=invstd)
    return out, mean_


def batch_norm_train(x, weight, bias, eps):
    """Training-mode batch norm; also returns the batch mean and biased variance for the running statistics."""
    out, mean_ = _normalize(x, weight, bias, eps, 0, NativeBatchNormBackward0)
    return out, mean_[0], x.data.var(0)


def layer_norm(x, weight, bias, eps):
    return _normalize(x, weight, bias, eps, -1, NativeLayerNormBackward0)[0]


def install() -> None:
    Tensor.log_softmax = log_softmax


install()
