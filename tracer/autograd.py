"""`backward()` and `grad()`: turn user requests into a call of the engine."""

from __future__ import annotations

import numpy as np

from tracer.engine import run_backward
from tracer.tensor import Tensor


def _roots(outputs, grad_outputs):
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    if grad_outputs is None or isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs] * len(outputs) if grad_outputs is None else [grad_outputs]
    edges, grads = [], []
    for i, (out, g) in enumerate(zip(outputs, grad_outputs)):
        if not out.requires_grad:
            raise RuntimeError(f"element {i} of tensors does not require grad and does not have a grad_fn")
        if g is None:
            if out.data.size != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            g = np.ones(out.shape, out.dtype)
        else:
            g = np.asarray(g.data if isinstance(g, Tensor) else g, dtype=out.dtype)
            if g.shape != out.shape:
                raise RuntimeError(
                    f"Mismatch in shape: grad_output[{i}] has a shape of {tuple(g.shape)} and "
                    f"output[{i}] has a shape of {tuple(out.shape)}."
                )
        edges.append(out.gradient_edge())
        grads.append(g)
    return edges, grads


def backward(tensors, grad_tensors=None, retain_graph=None, trace=None) -> None:
    """Accumulate d(tensors)/d(leaf) into every leaf's `.grad`."""
    edges, grads = _roots(tensors, grad_tensors)
    run_backward(edges, grads, retain_graph=bool(retain_graph), trace=trace)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, allow_unused=False):
    """Return d(outputs)/d(inputs) without touching any `.grad`."""
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    for t in inputs:
        if not t.requires_grad:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
    edges, grads = _roots(outputs, grad_outputs)
    captured = run_backward(edges, grads, retain_graph=bool(retain_graph), capture=[t.gradient_edge() for t in inputs])
    result = []
    for g in captured:
        if g is None and not allow_unused:
            raise RuntimeError(
                "One of the differentiated Tensors appears to not have been used in the graph. "
                "Set allow_unused=True if this is the desired behavior."
            )
        result.append(None if g is None else Tensor(g))
    return tuple(result)
