"""Forward-mode AD with dual numbers (torch.autograd.forward_ad).

Inside `dual_level()`, a tensor made by `make_dual(primal, tangent)` carries a tangent, and every op computes its
output's tangent alongside its value with the op's JVP rule (`jvp` on its node class, beside its backward): one forward
pass gives J·v, where reverse mode needs one backward pass per output element. `unpack_dual(t)` returns the
named tuple `(primal, tangent)`. Leaving the level drops every tangent. As in PyTorch, one level at a time.

Tangents are plain arrays here: forward mode composes with itself and with the values, not with
`create_graph` (no forward-over-reverse).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from tracer.shape_ops import view
from tracer.tensor import TangentTable, Tensor, _tangents

__all__ = ["dual_level", "enter_dual_level", "exit_dual_level", "make_dual", "unpack_dual", "UnpackedDualTensor"]


class UnpackedDualTensor(NamedTuple):
    primal: Tensor
    tangent: Tensor | None


def enter_dual_level() -> int:
    """Open the (one) level inside which tensors may carry tangents; returns its number, 0."""
    if _tangents[0] is not None:
        raise RuntimeError("Nested forward mode AD is not supported at the moment")
    _tangents[0] = TangentTable()
    return 0


def exit_dual_level(*, level: int | None = None) -> None:
    """Close the level: every tangent is dropped."""
    if _tangents[0] is None or level not in (None, 0):
        raise RuntimeError("Trying to exit a forward AD level that was not the last one that was created.")
    _tangents[0] = None


class dual_level:
    """The context inside which tensors may carry tangents; on exit they all lose them."""

    def __enter__(self):
        return enter_dual_level()

    def __exit__(self, *exc):
        exit_dual_level()


def make_dual(tensor: Tensor, tangent: Tensor) -> Tensor:
    """A view of `tensor` (same data and history) that carries `tangent`."""
    if _tangents[0] is None:
        raise RuntimeError(
            "Trying to create a dual Tensor for forward AD but no level exists, make sure to enter_dual_level() first."
        )
    tangent_data = np.asarray(getattr(tangent, "data", tangent))
    if tangent_data.dtype.kind not in "fc":
        raise ValueError(f"Expected tangent to be floating point or complex, but got: {tangent_data.dtype}")
    if tangent_data.shape != tensor.shape:
        raise RuntimeError(
            f"Trying to set a forward gradient that has a different size than that of the original Tensor, this "
            f"is not supported. Tensor is of size {list(tensor.shape)} while the given forward gradient is of "
            f"size {list(tangent_data.shape)}."
        )
    dual = view(tensor, tensor.shape)
    _tangents[0][dual] = tangent_data.astype(tensor.dtype, copy=False)
    if isinstance(tangent, Tensor):  # unpack_dual gives this very tensor back, as torch does
        _tangents[0].originals[id(tangent_data)] = tangent
    return dual


def unpack_dual(tensor: Tensor) -> UnpackedDualTensor:
    """(a view of the value without tangent, the tangent or None)."""
    tangents = _tangents[0]
    tangent = None if tangents is None else tangents.get(tensor)
    if tangent is None:
        return UnpackedDualTensor(tensor, None)
    primal = view(tensor, tensor.shape)
    tangents.pop(primal, None)
    original = tangents.originals.get(id(tangent))
    same = original is not None and original.data is tangent
    return UnpackedDualTensor(primal, original if same else Tensor(tangent))
