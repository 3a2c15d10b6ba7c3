"""`backward()` and `grad()`: turn user requests into a call of the engine (torch.autograd)."""

from __future__ import annotations

import warnings

import numpy as np

from tracer.engine import run_backward
from tracer.tensor import Tensor, enable_grad, no_grad

__all__ = ["backward", "grad", "enable_grad", "no_grad"]

CREATE_GRAPH_WARNING = (
    "Using backward() with create_graph=True will create a reference cycle between the parameter and its gradient "
    "which can cause a memory leak. We recommend using autograd.grad when creating the graph to avoid this. If you "
    "have to use this function, make sure to reset the .grad fields of your parameters to None after use to break "
    "the cycle and avoid the leak."
)


def _roots(outputs, grad_outputs, create_graph: bool):
    """The edges to start from and their seed gradients: arrays, or tensors when a graph is being recorded."""
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
            g = g if isinstance(g, Tensor) and create_graph else np.asarray(getattr(g, "data", g), dtype=out.dtype)
            if g.shape != out.shape:
                raise RuntimeError(
                    f"Mismatch in shape: grad_output[{i}] has a shape of {tuple(g.shape)} and "
                    f"output[{i}] has a shape of {tuple(out.shape)}."
                )
        edges.append(out.gradient_edge())
        grads.append(g if not create_graph or isinstance(g, Tensor) else Tensor(g))
    return edges, grads


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, trace=None) -> None:
    """Accumulate d(tensors)/d(leaf) into every leaf's `.grad`.

    create_graph: record the backward pass too, so `.grad` has a graph and can be differentiated again;
    retain_graph defaults to it, as in PyTorch.
    """
    if create_graph:
        warnings.warn(CREATE_GRAPH_WARNING, UserWarning, stacklevel=2)
    edges, grads = _roots(tensors, grad_tensors, create_graph)
    retain = create_graph if retain_graph is None else retain_graph
    run_backward(edges, grads, retain_graph=retain, create_graph=create_graph, trace=trace)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=False):
    """Return d(outputs)/d(inputs) without touching any `.grad`; with `create_graph`, results carry a graph."""
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    for t in inputs:
        if not t.requires_grad:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
    edges, grads = _roots(outputs, grad_outputs, create_graph)
    retain = create_graph if retain_graph is None else retain_graph
    captured = run_backward(
        edges, grads, retain_graph=retain, create_graph=create_graph, capture=[t.gradient_edge() for t in inputs]
    )
    result = []
    for g in captured:
        if g is None and not allow_unused:
            raise RuntimeError(
                "One of the differentiated Tensors appears to not have been used in the graph. "
                "Set allow_unused=True if this is the desired behavior."
            )
        result.append(g if g is None or isinstance(g, Tensor) else Tensor(g))
    return tuple(result)
