"""tracer: PyTorch's autograd retold in Python + NumPy.

>>> import tracer
>>> w = tracer.randn(3, requires_grad=True)
>>> loss = (w * w).sum()
>>> loss.grad_fn, loss.grad_fn.next_functions
>>> loss.backward(); w.grad

As `import torch` does, `import tracer` brings `tracer.autograd`, `tracer.nn` and `tracer.optim` with it.
"""

from tracer import (  # noqa: F401  (install the tensor methods they define)
    autograd,
    inplace_ops,
    nn,
    ops,  # noqa: F401  (installs Tensor operators)
    optim,
    shape_ops,
    utils,
)
from tracer.autograd.anomaly_mode import is_anomaly_check_nan_enabled, is_anomaly_enabled
from tracer.factories import (
    arange,
    bool_,
    double,
    empty,
    eye,
    float16,
    float32,
    float64,
    full,
    full_like,
    half,
    int32,
    int64,
    long,
    ones_like,
    rand_like,
    randint,
    randn_like,
    zeros_like,
)
from tracer.graph import AccumulateGrad, Node
from tracer.ops import (
    abs,
    addmm,
    clamp,
    clone,
    exp,
    flatten,
    log,
    log_softmax,
    max,
    mean,
    mm,
    pow,
    relu,
    sigmoid,
    sum,
    tanh,
)
from tracer.ops import mm as matmul
from tracer.shape_ops import cat, squeeze, stack, unbind, unsqueeze
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
    set_grad_enabled,
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
    "utils",
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
    "is_anomaly_enabled",
    "is_anomaly_check_nan_enabled",
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
    "pow",
    "matmul",
    "cat",
    "stack",
    "unbind",
    "unsqueeze",
    "squeeze",
    "set_grad_enabled",
    "arange",
    "empty",
    "eye",
    "full",
    "full_like",
    "ones_like",
    "zeros_like",
    "rand_like",
    "randn_like",
    "randint",
    "float16",
    "float32",
    "float64",
    "half",
    "double",
    "int32",
    "int64",
    "long",
    "bool_",
]
float = float32  # noqa: A001  (torch.float; Python's float is untouched outside this namespace)
int = int32  # noqa: A001
bool = bool_  # noqa: A001
