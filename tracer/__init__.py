"""tracer: PyTorch's autograd retold in Python + NumPy.

>>> import tracer
>>> w = tracer.randn(3, requires_grad=True)
>>> loss = (w * w).sum()
>>> loss.grad_fn, loss.grad_fn.next_functions
>>> loss.backward(); w.grad
"""

from tracer import (
    autograd,
    ops,  # noqa: F401  (installs Tensor operators)
)
from tracer.graph import AccumulateGrad, Node
from tracer.ops import abs, addmm, clamp, exp, log, log_softmax, max, mean, mm, relu, sigmoid, sum, tanh
from tracer.tensor import Tensor, is_grad_enabled, manual_seed, no_grad, ones, rand, randn, tensor, zeros

__all__ = [
    "AccumulateGrad",
    "Node",
    "Tensor",
    "autograd",
    "manual_seed",
    "no_grad",
    "ones",
    "rand",
    "randn",
    "tensor",
    "zeros",
    "is_grad_enabled",
    "abs",
    "addmm",
    "clamp",
    "exp",
    "log",
    "log_softmax",
    "max",
    "mean",
    "mm",
    "relu",
    "sigmoid",
    "sum",
    "tanh",
]
