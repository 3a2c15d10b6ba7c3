"""tracer.nn: the layers of the user's MLP, in the shape of torch.nn."""

from tracer.nn import functional
from tracer.nn.modules import (
    BatchNorm1d,
    CrossEntropyLoss,
    Dropout,
    Flatten,
    LayerNorm,
    Linear,
    Module,
    Parameter,
    ReLU,
    Sequential,
)

__all__ = [
    "functional",
    "BatchNorm1d",
    "CrossEntropyLoss",
    "Dropout",
    "Flatten",
    "LayerNorm",
    "Linear",
    "Module",
    "Parameter",
    "ReLU",
    "Sequential",
]
