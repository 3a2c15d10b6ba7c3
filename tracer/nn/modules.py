"""Modules: parameters in a tree of attributes, train/eval mode, state dicts (torch.nn)."""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np

from tracer.nn import functional as F
from tracer.tensor import Tensor, _default_dtype, _rng


class Parameter(Tensor):
    """A leaf tensor that requires grad and that a Module registers as one of its parameters."""

    def __init__(self, data, requires_grad: bool = True):
        super().__init__(np.asarray(data), requires_grad=requires_grad)


class Module:
    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def register_buffer(self, name: str, value: Tensor) -> None:
        self._buffers[name] = value
        object.__setattr__(self, name, value)

    def named_parameters(self, prefix: str = ""):
        for name, p in self._parameters.items():
            yield prefix + name, p
        for mname, m in self._modules.items():
            yield from m.named_parameters(prefix + mname + ".")

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def _named_tensors(self, prefix=""):
        for name, t in list(self._parameters.items()) + list(self._buffers.items()):
            yield prefix + name, t
        for mname, m in self._modules.items():
            yield from m._named_tensors(prefix + mname + ".")

    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        return OrderedDict((k, t.data.copy()) for k, t in self._named_tensors())

    def load_state_dict(self, state: dict) -> None:
        own = dict(self._named_tensors())
        missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
        if missing or unexpected:
            raise RuntimeError(f"Error(s) in loading state_dict: missing keys {missing}, unexpected keys {unexpected}")
        for k, t in own.items():
            value = np.asarray(state[k])
            if value.shape != t.shape:
                raise RuntimeError(
                    f"size mismatch for {k}: copying a param with shape {value.shape}, "
                    f"the shape in current model is {t.shape}"
                )
            t.data[...] = value
            t._bump_version()

    def train(self, mode: bool = True) -> Module:
        object.__setattr__(self, "training", mode)
        for m in self._modules.values():
            m.train(mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.data[...] = 0

    def __call__(self, *args):
        return self.forward(*args)

    def extra_repr(self) -> str:
        """This module's own settings, shown inside its repr (torch.nn.Module.extra_repr)."""
        return ""

    def __repr__(self):
        """PyTorch's layout: `Name(extra)` alone, or one indented `(name): child` line per submodule."""
        extra = self.extra_repr().split("\n") if self.extra_repr() else []
        children = [f"({name}): " + repr(m).replace("\n", "\n  ") for name, m in self._modules.items()]
        if len(extra) == 1 and not children:
            return f"{type(self).__name__}({extra[0]})"
        body = "".join(f"\n  {line}" for line in extra + children)
        return f"{type(self).__name__}({body}\n)" if body else f"{type(self).__name__}()"


def _uniform(shape, bound):
    return (_rng[0].random(shape) * 2 - 1).astype(_default_dtype[0]) * bound


class Linear(Module):
    """y = x W^T + b, initialized as PyTorch does: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for both."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        bound = 1 / math.sqrt(in_features)
        self.weight = Parameter(_uniform((out_features, in_features), bound))
        self.bias = Parameter(_uniform((out_features,), bound)) if bias else None

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class ReLU(Module):
    def forward(self, x):
        return F.relu(x)


class Dropout(Module):
    def __init__(self, p: float = 0.5):
        super().__init__()
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace=False"


class Flatten(Module):
    """Dimensions start_dim..end_dim of the input merged into one (by default all but the batch dimension)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class BatchNorm1d(Module):
    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = Parameter(np.ones(num_features, _default_dtype[0]))
        self.bias = Parameter(np.zeros(num_features, _default_dtype[0]))
        self.register_buffer("running_mean", Tensor(np.zeros(num_features, _default_dtype[0])))
        self.register_buffer("running_var", Tensor(np.ones(num_features, _default_dtype[0])))

    def forward(self, x):
        return F.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias, self.training, self.momentum, self.eps
        )

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine=True, bias=True, "
            "track_running_stats=True"
        )


class LayerNorm(Module):
    def __init__(self, normalized_shape: int, eps: float = 1e-5):
        super().__init__()
        self.normalized_shape, self.eps = (normalized_shape,), eps
        self.weight = Parameter(np.ones(normalized_shape, _default_dtype[0]))
        self.bias = Parameter(np.zeros(normalized_shape, _default_dtype[0]))

    def forward(self, x):
        return F.layer_norm(x, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine=True, bias=True"


class Sequential(Module):
    def __init__(self, *modules: Module):
        super().__init__()
        for i, m in enumerate(modules):
            setattr(self, str(i), m)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x


class CrossEntropyLoss(Module):
    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, logits, target):
        return F.cross_entropy(logits, target, self.reduction)
