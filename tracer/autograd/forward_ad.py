"""Forward-mode AD with dual numbers (torch.autograd.forward_ad).

Inside `dual_level()`, a tensor made by `make_dual(primal, tangent)` carries a tangent, and every op computes its
output's tangent alongside its value with the op's JVP rule (`jvp` on its node class in ops.py): one forward
pass gives J·v, where reverse mode needs one backward pass per output element. `unpack_dual(t)` returns the
named tuple `(primal, tangent)`. Leaving the level drops every tangent. As in PyTorch, one level at a time.

Tangents are plain arrays here: forward mode composes with itself and with the values, not with
`create_graph` (no forward-over-reverse).
"""

from __future__ import annotations

import weakref
from typing import NamedTuple

import numpy as np

from tracer.tensor import Tensor, _tangents

__all__ = ["dual_level", "make_dual", "unpack_dual", "UnpackedDualTensor"]


class UnpackedDualTensor(NamedTuple):
    primal: Tensor
    tangent: Tensor | None


class dual_level:
    """The context inside which tensors may carry tangents; on exit they all lose them."""

    def __enter__(self):
        if _tangents[0] is not None:
            raise RuntimeError("Nested forward mode AD is not supported at the moment")
        _tangents[0] = weakref.WeakKeyDictionary()
        return 0

    def __exit__(self, *exc):
        _tangents[0] = None


def make_dual(tensor: Tensor, tangent: Tensor) -> Tensor:
    """A view of `tensor` (same data and history) that carries `tangent`."""
    if _tangents[0] is None:
        raise RuntimeError(
            "Trying to create a dual Tensor for forward AD but no level exists, make sure to enter_dual_level() first."
        )
    tangent_data = np.asarray(getattr(tangent, "data", tangent))
    if tangent_data.shape != tensor.shape:
        raise RuntimeError(
            f"Trying to set a forward gradient that has a different size than that of the original Tensor, this "
            f"is not supported. Tensor is of size {list(tensor.shape)} while the given forward gradient is of "
            f"size {list(tangent_data.shape)}."
        )
    from tracer import ops

    dual = ops.view(tensor, tensor.shape)
    _tangents[0][dual] = tangent_data.astype(tensor.dtype, copy=False)
    return dual


def unpack_dual(tensor: Tensor) -> UnpackedDualTensor:
    """(a view of the value without tangent, the tangent or None)."""
    tangents = _tangents[0]
    tangent = None if tangents is None else tangents.get(tensor)
    if tangent is None:
        return UnpackedDualTensor(tensor, None)
    from tracer import ops

    primal = ops.view(tensor, tensor.shape)
    tangents.pop(primal, None)
    return UnpackedDualTensor(primal, Tensor(tangent))
