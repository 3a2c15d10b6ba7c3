"""Pointwise ops: arithmetic between tensors and numbers, and the elementwise functions (exp, log, relu, ...).

Each forward sits beside its backward node and JVP rule, named as PyTorch names them (derivatives.yaml). A binary
op broadcasts its operands, so its backward sums each gradient back to its operand's shape (`sum_to`). A Python
number taking part is no tensor: it gets no edge of its own (`RsubBackward1`, `PowBackward0`, `PowBackward2`).
"""

from __future__ import annotations

import numpy as np

from tracer.graph import Node
from tracer.recording import as_tensor, record
from tracer.reductions import sum_to
from tracer.tensor import Tensor

# --- binary -----------------------------------------------------------------------------------------------------


class AddBackward0(Node):
    inputs = ("self", "other")
    self_shape: tuple
    other_shape: tuple
    alpha: float

    @staticmethod
    def jvp(out, x, t, alpha, **_):
        return t[0] + alpha * t[1]

    def backward(self, g):
        return sum_to(g, self.self_shape), sum_to(g * self.alpha if self.alpha != 1 else g, self.other_shape)


def add(a, b, alpha=1.0):
    a, b = as_tensor(a, b), as_tensor(b, a)
    data = a.data + alpha * b.data if alpha != 1 else a.data + b.data
    return record(data, AddBackward0, a, b, self_shape=a.shape, other_shape=b.shape, alpha=alpha)


class SubBackward0(Node):
    inputs = ("self", "other")
    self_shape: tuple
    other_shape: tuple

    @staticmethod
    def jvp(out, x, t, **_):
        return t[0] - t[1]

    def backward(self, g):
        return sum_to(g, self.self_shape), sum_to(-g, self.other_shape)


def sub(a, b):
    a, b = as_tensor(a, b), as_tensor(b, a)
    return record(a.data - b.data, SubBackward0, a, b, self_shape=a.shape, other_shape=b.shape)


class RsubBackward1(Node):  # Python scalar - tensor: the scalar is no tensor, so one edge
    @staticmethod
    def jvp(out, x, t, **_):
        return -t[0]

    def backward(self, g):
        return (-g,)


def rsub(a, scalar):
    return record(scalar - a.data, RsubBackward1, a)


class MulBackward0(Node):
    inputs = ("self", "other")
    saves = ("self", "other")
    save_for = {"self": (1,), "other": (0,)}  # each operand is needed only for the other one's gradient
    self_shape: tuple
    other_shape: tuple

    @staticmethod
    def jvp(out, x, t, **_):
        return t[0] * x[1] + x[0] * t[1]

    def backward(self, g):
        return (
            sum_to(g * self.saved("other"), self.self_shape) if self.should_compute_output(0) else None,
            sum_to(g * self.saved("self"), self.other_shape) if self.should_compute_output(1) else None,
        )


def mul(a, b):
    a, b = as_tensor(a, b), as_tensor(b, a)
    return record(a.data * b.data, MulBackward0, a, b, self_shape=a.shape, other_shape=b.shape)


class DivBackward0(Node):
    inputs = ("self", "other")
    saves = ("self", "other")
    save_for = {"self": (1,), "other": (0, 1)}
    self_shape: tuple
    other_shape: tuple

    @staticmethod
    def jvp(out, x, t, **_):
        return t[0] / x[1] - x[0] * t[1] / (x[1] * x[1])

    def backward(self, g):
        grad_self = grad_other = None
        if self.should_compute_output(0):
            grad_self = sum_to(g / self.saved("other"), self.self_shape)
        if self.should_compute_output(1):
            a, b = self.saved("self"), self.saved("other")
            grad_other = sum_to(-g * a / (b * b), self.other_shape)
        return grad_self, grad_other


def div(a, b):
    a, b = as_tensor(a, b), as_tensor(b, a)
    return record(a.data / b.data, DivBackward0, a, b, self_shape=a.shape, other_shape=b.shape)


class PowBackward0(Node):  # tensor ** scalar
    saves = ("self",)
    exponent: float

    @staticmethod
    def jvp(out, x, t, exponent, **_):
        return t[0] * exponent * x[0] ** (exponent - 1) if exponent != 0 else 0 * t[0]

    def backward(self, g):
        x, p = self.saved("self"), self.exponent
        return (g * p * x ** (p - 1) if p != 0 else g * 0.0,)


class PowBackward1(Node):  # tensor ** tensor
    inputs = ("self", "exponent")
    saves = ("self", "exponent", "result")

    @staticmethod
    def jvp(out, x, t, **_):
        return t[0] * x[1] * x[0] ** (x[1] - 1) + t[1] * out * np.log(np.where(x[0] > 0, x[0], 1.0)) * (x[0] > 0)

    def backward(self, g):
        a, b, out = self.saved("self"), self.saved("exponent"), self.saved("result")
        positive = self.saved_data("self") > 0  # d/db a**b = a**b log a, taken as 0 where log a is undefined
        log_a = log(a * positive + (1.0 - positive)) if isinstance(a, Tensor) else np.log(np.where(positive, a, 1.0))
        return sum_to(g * b * a ** (b - 1), a.shape), sum_to(g * out * log_a * positive, b.shape)


class PowBackward2(Node):  # Python scalar ** tensor
    saves = ("result",)
    base: float

    @staticmethod
    def jvp(out, x, t, base, **_):
        return t[0] * out * np.log(base)

    def backward(self, g):
        return (g * self.saved("result") * float(np.log(self.base)),)


def rpow(a, base):
    return record(base**a.data, PowBackward2, a, base=base)


class ReciprocalBackward0(Node):
    saves = ("result",)

    @staticmethod
    def jvp(out, x, t, **_):
        return -t[0] * out * out

    def backward(self, g):
        y = self.saved("result")
        return (-g * y * y,)


def reciprocal(a):
    return record(1 / a.data, ReciprocalBackward0, a)


def pow(a, p):
    a = as_tensor(a)
    if isinstance(p, Tensor):
        return record(a.data**p.data, PowBackward1, a, p)
    return record(a.data**p, PowBackward0, a, exponent=p)


# --- unary ------------------------------------------------------------------------------------------------------


class NegBackward0(Node):
    @staticmethod
    def jvp(out, x, t, **_):
        return -t[0]

    def backward(self, g):
        return (-g,)


def neg(a):
    return record(-a.data, NegBackward0, a)


class CloneBackward0(Node):
    @staticmethod
    def jvp(out, x, t, **_):
        return t[0]

    def backward(self, g):
        return (g,)


def clone(a):
    return record(a.data.copy(), CloneBackward0, a)


class ExpBackward0(Node):
    saves = ("result",)

    @staticmethod
    def jvp(out, x, t, **_):
        return t[0] * out

    def backward(self, g):
        return (g * self.saved("result"),)


def exp(a):
    return record(np.exp(a.data), ExpBackward0, a)


class LogBackward0(Node):
    saves = ("self",)

    @staticmethod
    def jvp(out, x, t, **_):
        return t[0] / x[0]

    def backward(self, g):
        return (g / self.saved("self"),)


def log(a):
    return record(np.log(a.data), LogBackward0, a)


class ReluBackward0(Node):
    saves = ("result",)

    @staticmethod
    def jvp(out, x, t, **_):
        return t[0] * (out > 0)

    def backward(self, g):
        return (g * (self.saved_data("result") > 0),)  # relu'' = 0: the mask is a constant


def relu(a):
    return record(np.maximum(a.data, 0), ReluBackward0, a)


class TanhBackward0(Node):
    saves = ("result",)

    @staticmethod
    def jvp(out, x, t, **_):
        return t[0] * (1 - out * out)

    def backward(self, g):
        y = self.saved("result")
        return (g * (1 - y * y),)


def tanh(a):
    return record(np.tanh(a.data), TanhBackward0, a)


class SigmoidBackward0(Node):
    saves = ("result",)

    @staticmethod
    def jvp(out, x, t, **_):
        return t[0] * out * (1 - out)

    def backward(self, g):
        y = self.saved("result")
        return (g * y * (1 - y),)


def sigmoid(a):
    return record(1 / (1 + np.exp(-a.data)), SigmoidBackward0, a)


class AbsBackward0(Node):
    saves = ("self",)

    @staticmethod
    def jvp(out, x, t, **_):
        return t[0] * np.sign(x[0])

    def backward(self, g):
        return (g * np.sign(self.saved_data("self")),)  # sign(0) = 0: PyTorch's abs'(0)


def abs(a):
    return record(np.abs(a.data), AbsBackward0, a)


class ClampBackward1(Node):
    saves = ("self",)
    min: float | None
    max: float | None

    @staticmethod
    def jvp(out, x, t, min, max, **_):
        return t[0] * ((x[0] >= (-np.inf if min is None else min)) & (x[0] <= (np.inf if max is None else max)))

    def backward(self, g):
        x = self.saved_data("self")
        keep = np.ones_like(x, dtype=bool)
        if self.min is not None:
            keep &= x >= self.min
        if self.max is not None:
            keep &= x <= self.max
        return (g * keep,)  # the boundary itself passes the gradient, as in PyTorch


def clamp(a, min=None, max=None):
    return record(np.clip(a.data, min, max), ClampBackward1, a, min=min, max=max)


# --- Tensor methods and operators: thin aliases of the ops above ----------------------------------------------


def _rsub(a, b):
    return rsub(a, b) if not isinstance(b, (Tensor, np.ndarray)) else sub(b, a)


def _rtruediv(a, s):
    return mul(reciprocal(a), s)


def install() -> None:
    methods = {
        "__add__": add,
        "__radd__": lambda a, b: add(a, b),
        "__sub__": sub,
        "__rsub__": _rsub,
        "__mul__": mul,
        "__rmul__": lambda a, b: mul(a, b),
        "__truediv__": div,
        "__rtruediv__": _rtruediv,
        "__pow__": pow,
        "__rpow__": rpow,
        "__neg__": neg,
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
        "clone": clone,
    }
    for name, fn in methods.items():
        setattr(Tensor, name, fn)


install()
