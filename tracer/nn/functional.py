"""Functional forms of the layers (torch.nn.functional)."""

from __future__ import annotations

import numpy as np

from tracer.linalg import addmm, mm
from tracer.nn_ops import batch_norm_train, log_softmax, nll_loss
from tracer.nn_ops import layer_norm as _layer_norm
from tracer.pointwise import mul, relu
from tracer.shape_ops import t
from tracer.tensor import Tensor, rand

# relu, log_softmax and nll_loss are the ops themselves: a wrapper would cost a call per layer per step (fast path 8).
__all__ = ["relu", "log_softmax", "nll_loss", "linear", "dropout", "cross_entropy", "batch_norm", "layer_norm"]


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x @ weight.T + bias: AddmmBackward0(bias, x, TBackward0(weight)) for 2-D x, as in PyTorch."""
    if bias is None:
        return mm(x, t(weight))
    return addmm(bias, x, t(weight))


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Inverted dropout: keep with probability 1-p and scale by 1/(1-p); shows up as MulBackward0."""
    if not training or p == 0:
        return x
    mask = (rand(*x.shape).data >= p).astype(x.dtype) / (1 - p)
    return mul(x, Tensor(mask))


def cross_entropy(logits: Tensor, target, reduction: str = "mean") -> Tensor:
    return nll_loss(log_softmax(logits, 1), target, reduction)


def batch_norm(x, running_mean, running_var, weight, bias, training, momentum=0.1, eps=1e-5):
    """Training: normalize with batch stats (biased variance), update running stats (unbiased variance)."""
    if training:
        out, mean, var = batch_norm_train(x, weight, bias, eps)
        n = x.shape[0]
        running_mean.data[...] = (1 - momentum) * running_mean.data + momentum * mean
        running_var.data[...] = (1 - momentum) * running_var.data + momentum * var * n / max(n - 1, 1)
        return out
    scale = Tensor(1 / np.sqrt(running_var.data + eps))
    return (x - Tensor(running_mean.data)) * scale * weight + bias


def layer_norm(x, weight, bias, eps=1e-5):
    return _layer_norm(x, weight, bias, eps)
