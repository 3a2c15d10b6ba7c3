"""Activation checkpointing, non-reentrant (torch.utils.checkpoint with use_reentrant=False).

`checkpoint(fn, *args)` runs `fn` keeping none of the tensors its nodes save: a `saved_tensors_hooks` pack hook
stores only each tensor's position. The first time backward unpacks one, `fn(*args)` runs again (with the
random generator as it was, so dropout draws the same mask), this time keeping what its nodes save, and each
position is answered from that. Memory traded for one more forward pass of `fn`.
"""

from __future__ import annotations

import copy

from tracer.autograd.graph import saved_tensors_hooks
from tracer.tensor import _rng, enable_grad

__all__ = ["checkpoint"]


class _Recomputation:
    def __init__(self, fn, args, kwargs):
        self.fn, self.args, self.kwargs, self.count, self.saved = fn, args, kwargs, 0, None
        self.rng = copy.deepcopy(_rng[0])

    def pack(self, tensor) -> int:
        self.count += 1
        return self.count - 1

    def unpack(self, position: int):
        if self.saved is None:
            self.saved = []
            current, _rng[0] = _rng[0], copy.deepcopy(self.rng)
            try:
                with saved_tensors_hooks(self._keep, self.saved.__getitem__), enable_grad():
                    self.fn(*self.args, **self.kwargs)
            finally:
                _rng[0] = current
        return self.saved[position]

    def _keep(self, tensor) -> int:
        self.saved.append(tensor)
        return len(self.saved) - 1


def checkpoint(function, *args, use_reentrant: bool = False, **kwargs):
    """`function(*args, **kwargs)`, saving nothing for backward: recomputed when backward needs it."""
    if use_reentrant:
        raise ValueError("tracer implements the non-reentrant checkpoint only: pass use_reentrant=False")
    recomputation = _Recomputation(function, args, kwargs)
    with saved_tensors_hooks(recomputation.pack, recomputation.unpack):
        return function(*args, **kwargs)
