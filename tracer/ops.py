"""tracer's differentiable ops, gathered from their families: `tracer.ops.mul`, `tracer.ops.MulBackward0`, ...

Each family is a module of its own, with each forward beside its backward node and JVP rule, named as PyTorch
names them (derivatives.yaml):

- `recording.py`: `record`, what every op ends in: the node, its edges, what it saves, the output's tangent;
- `reductions.py`: sum, mean, max, and `sum_to`, the backward of broadcasting;
- `pointwise.py`: `+ - * / **`, neg, exp, log, relu, tanh, sigmoid, abs, clamp, clone;
- `shape_ops.py`: view, reshape, flatten, expand, t, permute, unsqueeze, squeeze, repeat, cat, stack, unbind;
- `linalg.py`: mm and addmm;
- `nn_ops.py`: log_softmax, nll_loss, batch norm, layer norm;
- `inplace_ops.py`: add_, mul_, copy_, fill_, ... (the version counter and rebased history), casts, comparisons;
- `indexing.py`: `t[index]` and `t[index] = value`.

Importing a family installs its Tensor methods and operators (`x * y` is `pointwise.mul`). Read them in this order;
each imports only the ones above it (reductions reaches `shape_ops.expand` at call time, on the double-backward path).
"""

from __future__ import annotations

from tracer.indexing import (  # noqa: F401  (t[index] and t[index] = value)
    IndexBackward0,
    IndexPutBackward0,
    IndexPutImplBackward0,
    SelectBackward0,
    SelectBackwardBackward0,
    SliceBackward0,
    SliceBackwardBackward0,
    _ScatterIntoZeros,
    getitem,
    normalize_index,
    save_indices,
    scatter_into_zeros,
    setitem,
)
from tracer.inplace_ops import (  # noqa: F401  (in-place ops, casts, comparisons)
    CopyBackwards,
    FillBackward0,
    ToCopyBackward0,
    add_,
    check_inplace,
    copy_,
    detach_,
    exp_,
    fill_,
    mul_,
    rebase_history,
    sub_,
    to,
    zero_,
)
from tracer.linalg import (  # noqa: F401  (mm, addmm)
    AddmmBackward0,
    MmBackward0,
    addmm,
    mm,
)
from tracer.nn_ops import (  # noqa: F401  (log_softmax, nll_loss, batch and layer norm)
    LogSoftmaxBackward0,
    NativeBatchNormBackward0,
    NativeLayerNormBackward0,
    NllLossBackward0,
    batch_norm_train,
    exp_of,
    layer_norm,
    log_softmax,
    nll_loss,
    sum_dim,
)
from tracer.pointwise import (  # noqa: F401  (arithmetic and elementwise functions)
    AbsBackward0,
    AddBackward0,
    ClampBackward1,
    CloneBackward0,
    DivBackward0,
    ExpBackward0,
    LogBackward0,
    MulBackward0,
    NegBackward0,
    PowBackward0,
    PowBackward1,
    PowBackward2,
    ReciprocalBackward0,
    ReluBackward0,
    RsubBackward1,
    SigmoidBackward0,
    SubBackward0,
    TanhBackward0,
    abs,
    add,
    clamp,
    clone,
    div,
    exp,
    log,
    mul,
    neg,
    pow,
    reciprocal,
    relu,
    rpow,
    rsub,
    sigmoid,
    sub,
    tanh,
)
from tracer.recording import (  # noqa: F401  (how an op records its node)
    NO_EDGE,
    as_tensor,
    record,
)
from tracer.reductions import (  # noqa: F401  (sum, mean, max; sum_to, the backward of broadcasting)
    MaxBackward0,
    MaxBackward1,
    MeanBackward0,
    MeanBackward1,
    SumBackward0,
    SumBackward1,
    expand_to,
    max,
    mean,
    sum,
    sum_to,
    unsqueeze_reduced,
)
from tracer.shape_ops import (  # noqa: F401  (views and shapes: view, expand, t, permute, unsqueeze, cat, stack, ...)
    CatBackward0,
    ExpandBackward0,
    MaskedFillBackward0,
    PermuteBackward0,
    RepeatBackward0,
    SqueezeBackward0,
    StackBackward0,
    TBackward0,
    UnbindBackward0,
    UnsqueezeBackward0,
    ViewBackward0,
    cat,
    expand,
    flatten,
    masked_fill,
    permute,
    repeat,
    squeeze,
    stack,
    t,
    unbind,
    unsqueeze,
    view,
    view_as,
)
