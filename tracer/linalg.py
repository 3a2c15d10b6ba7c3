"""Linear algebra: `mm` and `addmm` (bias + mat1 @ mat2, what `nn.Linear` records), each beside its backward node and
JVP rule, with PyTorch's names and PyTorch's edge order.

Each operand is saved only for the other's gradient (derivatives.yaml's codegen: `self` is saved for `mat2`'s
gradient, `mat2` for `self`'s), and a gradient no input needs is not computed (`should_compute_output`).
"""

from __future__ import annotations

from tracer.graph import Node
from tracer.recording import record
from tracer.reductions import sum_to
from tracer.tensor import Tensor


def _mat2_grad(mat1, g, mat2_strides: tuple):
    """mat1ᵀ·g, laid out like mat2 was: PyTorch's mm_mat2_backward, which also reads the strides saved at forward
    time. When mat2 is a transposed weight (column-major), (gᵀ·mat1)ᵀ brings the weight's gradient out C-contiguous."""
    column_major = mat2_strides[0] < mat2_strides[1]
    return (g.T @ mat1).T if column_major else mat1.T @ g


class MmBackward0(Node):
    inputs = ("self", "mat2")
    saves = ("self", "mat2")
    save_for = {"self": (1,), "mat2": (0,)}
    mat2_strides: tuple

    @staticmethod
    def jvp(out, x, t, **_):
        return t[0] @ x[1] + x[0] @ t[1]

    def backward(self, g):
        return (
            (g @ self.saved("mat2").T if self.should_compute_output(0) else None),
            (_mat2_grad(self.saved("self"), g, self.mat2_strides) if self.should_compute_output(1) else None),
        )


def mm(a, b):
    return record(a.data @ b.data, MmBackward0, a, b, mat2_strides=b.data.strides)


class AddmmBackward0(Node):  # bias + mat1 @ mat2, next_functions in PyTorch's order: (bias, mat1, mat2)
    inputs = ("self", "mat1", "mat2")
    saves = ("mat1", "mat2")
    save_for = {"mat1": (2,), "mat2": (1,)}
    self_shape: tuple
    mat2_strides: tuple

    @staticmethod
    def jvp(out, x, t, **_):
        return t[0] + t[1] @ x[2] + x[1] @ t[2]

    def backward(self, g):
        return (
            sum_to(g, self.self_shape) if self.should_compute_output(0) else None,
            g @ self.saved("mat2").T if self.should_compute_output(1) else None,
            _mat2_grad(self.saved("mat1"), g, self.mat2_strides) if self.should_compute_output(2) else None,
        )


def addmm(bias, mat1, mat2):
    data = mat1.data @ mat2.data
    if data.dtype == bias.dtype:
        data += bias.data  # into the product, as torch's addmm kernel adds it: no temporary (fast path 8)
    else:
        data = data + bias.data
    return record(data, AddmmBackward0, bias, mat1, mat2, self_shape=bias.shape, mat2_strides=mat2.data.strides)


def install() -> None:
    for name, fn in {"__matmul__": lambda a, b: mm(a, b), "mm": mm}.items():
        setattr(Tensor, name, fn)


install()
