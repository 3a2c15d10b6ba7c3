"""tracer: PyTorch's autograd retold in Python + NumPy.

>>> import tracer
>>> w = tracer.randn(3, requires_grad=True)
>>> loss = (w * w).sum()
>>> loss.grad_fn, loss.grad_fn.next_functions
>>> loss.backward(); w.grad

As `import torch` does, `import tracer` brings `tracer.autograd`, `tracer.nn` and `tracer.optim` with it.
"""

from tracer import (
    autograd,
    nn,
    ops,  # noqa: F401  (installs Tensor operators)
    optim,
)
from tracer.graph import AccumulateGrad, Node
from tracer.ops import abs, addmm, clamp, clone, exp, flatten, log, log_softmax, max, mean, mm, relu, sigmoid, sum, tanh
from tracer.tensor import (
    Tensor,
    enable_grad,
    from_numpy,
    get_default_dtype,
    is_grad_enabled,
    manual_seed,
    no_grad,
    ones,
    rand,
    randn,
    set_default_dtype,
    tensor,
    zeros,
)

__all__ = [
    "AccumulateGrad",
    "Node",
    "Tensor",
    "autograd",
    "nn",
    "optim",
    "enable_grad",
    "from_numpy",
    "get_default_dtype",
    "manual_seed",
    "no_grad",
    "ones",
    "rand",
    "randn",
    "set_default_dtype",
    "tensor",
    "zeros",
    "is_grad_enabled",
    "abs",
    "addmm",
    "clamp",
    "clone",
    "exp",
    "flatten",
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
