"""Hooks on the tensors the graph saves (torch.autograd.graph)."""

from __future__ import annotations

from tracer.tensor import _saved_tensors_hooks

__all__ = ["saved_tensors_hooks"]


class saved_tensors_hooks:
    """Inside, every tensor a node saves is replaced by `pack_hook(tensor)`, and `unpack_hook(packed)` gives it
    back to backward: to store it elsewhere (compressed, on disk), or not at all and recompute it (checkpoint)."""

    def __init__(self, pack_hook, unpack_hook):
        self.pack_hook, self.unpack_hook = pack_hook, unpack_hook

    def __enter__(self):
        _saved_tensors_hooks.append((self.pack_hook, self.unpack_hook))
        return self

    def __exit__(self, *exc):
        _saved_tensors_hooks.pop()
