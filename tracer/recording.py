"""How a forward op records its node: `record`, the one function every differentiable op ends in.

A forward op computes its NumPy result and, when grad mode is on and some input requires grad, creates its node:
`next_functions` gets one edge per tensor argument (in PyTorch's argument order), and the tensors the node class
declares in `saves` are saved. The node's `backward(grad)` returns one gradient per edge. This is what PyTorch's
generated `VariableType` code does around each ATen op.

The ops themselves are grouped by family, each forward beside its backward node and JVP rule, named as PyTorch
names them: `pointwise.py`, `reductions.py`, `shape_ops.py`, `indexing.py`, `linalg.py`, `nn_ops.py` and
`inplace_ops.py`; `ops.py` lists them all.

Each backward formula is written once and reads like PyTorch's (derivatives.yaml). On the plain path
(`backward()`, `grad()`) it runs on NumPy arrays. With `create_graph=True` the engine hands it tensors and
`saved()` returns tensors, so the same arithmetic runs as tracer ops and is itself recorded: that graph is what
double backward differentiates. The few steps that differ between arrays and tensors (summing to a shape,
expanding) are helpers beside the op they use (`reductions.sum_to`, `reductions.expand_to`).
"""

from __future__ import annotations

import numpy as np

from tracer.graph import Node, forward_stack
from tracer.tensor import Tensor, _anomaly, _default_dtype, _grad_enabled, _tangents


def as_tensor(x, like=None) -> Tensor:
    """`x` as a Tensor; a Python number takes the dtype of `like` (as in PyTorch: 2.0 * float32 stays float32)."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (int, float)) and isinstance(like, Tensor):
        return Tensor(np.asarray(x, dtype=like.dtype))
    if isinstance(x, float):
        return Tensor(np.asarray(x, dtype=_default_dtype[0]))
    return Tensor(np.asarray(x))


NO_EDGE = (None, 0)  # the edge of an input that needs no gradient
_gradient_edge = Tensor.gradient_edge


def record(data, node_cls: type[Node], *inputs: Tensor, **attrs) -> Tensor:
    """Wrap `data` as the output of `node_cls` applied to the tensors `inputs`.

    No node is made under `no_grad()` or when no input requires grad (every edge is then `(None, 0)`).
    Otherwise the node gets `attrs` (the non-tensor values its class annotates) and saves what its class
    declares in `saves`: inputs by name, and the output as "result", packed without its grad_fn.
    Inside `forward_ad.dual_level()`, the output also gets its tangent, by the node class's `jvp` rule.
    (Grad mode read without a call, the edge test and the save plan: fast path 6, tracer/fast_paths.py.)
    """
    out = Tensor(data)
    if _tangents[0] is not None:
        _push_tangent(out, node_cls, inputs, attrs)
    if not _grad_enabled[0]:
        return out
    edges = tuple(map(_gradient_edge, inputs))
    if edges.count(NO_EDGE) == len(edges):
        return out
    node = node_cls(edges)
    for name, value in attrs.items():
        setattr(node, name, value)
    out.grad_fn = node
    if _anomaly[0]:
        node._forward_stack = forward_stack()
    for name, i, needed_by in node_cls._save_plan:
        if needed_by is None or edges[needed_by][0] is not None:
            node.save(name, out if i < 0 else inputs[i], is_output=i < 0)
    return out


def _push_tangent(out: Tensor, node_cls: type[Node], inputs: tuple, attrs: dict) -> None:
    """Forward mode: `jvp(out, x, t, **attrs)` maps the inputs' values x and tangents t to the output's tangent."""
    tangents = _tangents[0]
    given = [tangents.get(x) for x in inputs]
    if all(t is None for t in given):
        return
    t = [np.zeros_like(x.data) if g is None else g for g, x in zip(given, inputs)]
    tangent = node_cls.jvp(out.data, [x.data for x in inputs], t, **attrs)
    tangents[out] = np.asarray(tangent, dtype=out.dtype)
