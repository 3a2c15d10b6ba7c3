"""`backward()` and `grad()`: turn user requests into a call of the engine (torch.autograd)."""

from __future__ import annotations

import functools
import warnings

import numpy as np

from tracer.engine import run_backward
from tracer.tensor import Tensor, enable_grad, no_grad

__all__ = [
    "Function",
    "detect_anomaly",
    "set_detect_anomaly",
    "backward",
    "grad",
    "enable_grad",
    "no_grad",
    "forward_ad",
    "functional",
    "graph",
    "once_differentiable",
]

CREATE_GRAPH_WARNING = (
    "Using backward() with create_graph=True will create a reference cycle between the parameter and its gradient "
    "which can cause a memory leak. We recommend using autograd.grad when creating the graph to avoid this. If you "
    "have to use this function, make sure to reset the .grad fields of your parameters to None after use to break "
    "the cycle and avoid the leak."
)


@functools.cache
def _warn_create_graph_cycle() -> None:
    """Warn once per process, as PyTorch's engine does (a TORCH_WARN_ONCE), not on every backward."""
    warnings.warn(CREATE_GRAPH_WARNING, UserWarning, stacklevel=4)


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


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, trace=None, inputs=None) -> None:
    """Accumulate d(tensors)/d(leaf) into every leaf's `.grad`.

    create_graph: record the backward pass too, so `.grad` has a graph and can be differentiated again;
    retain_graph defaults to it, as in PyTorch.
    inputs: accumulate into these tensors' `.grad` only (leaves or not), running only what leads to them.
    """
    if create_graph:
        _warn_create_graph_cycle()
    edges, grads = _roots(tensors, grad_tensors, create_graph)
    retain = create_graph if retain_graph is None else retain_graph
    if inputs is None:
        run_backward(edges, grads, retain_graph=retain, create_graph=create_graph, trace=trace)
        return
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if not inputs:
        raise RuntimeError("'inputs' argument to backward() cannot be empty.")
    capture = [t.gradient_edge() for t in inputs]
    captured = run_backward(edges, grads, retain_graph=retain, create_graph=create_graph, capture=capture)
    for t, g in zip(inputs, captured):
        if g is not None:
            _accumulate(t, g)


def _accumulate(t: Tensor, g) -> None:
    """`t.grad += g` as AccumulateGrad does it, for a tensor named in `backward(inputs=...)`."""
    g = g if isinstance(g, Tensor) else Tensor(np.array(g, copy=True))
    if t._grad is None:
        t._grad = g if g.requires_grad else Tensor(np.array(g.data, dtype=t.dtype, copy=True))
    elif g.requires_grad:
        t._grad = t._grad + g
    else:
        t._grad.data += g.data


def grad(
    outputs,
    inputs,
    grad_outputs=None,
    retain_graph=None,
    create_graph=False,
    allow_unused=None,
    materialize_grads=False,
):
    """Return d(outputs)/d(inputs) without touching any `.grad`; with `create_graph`, results carry a graph.

    materialize_grads: zeros, instead of None, for an input the outputs do not depend on (implies allow_unused).
    """
    if materialize_grads and allow_unused is False:
        raise ValueError(
            "Expected allow_unused to be True or not passed when materialize_grads=True, but got: allow_unused=False."
        )
    allow_unused = bool(allow_unused or materialize_grads)
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
    for g, t in zip(captured, inputs):
        if g is None and not allow_unused:
            raise RuntimeError(
                "One of the differentiated Tensors appears to not have been used in the graph. "
                "Set allow_unused=True if this is the desired behavior."
            )
        if g is None and materialize_grads:  # zeros that require grad: torch's `zeros_like(input, requires_grad=True)`
            g = Tensor(np.zeros(t.shape, t.dtype), requires_grad=True)
        result.append(g if g is None or isinstance(g, Tensor) else Tensor(g))
    return tuple(result)


from tracer.autograd import forward_ad, functional, graph  # noqa: E402  (as torch.autograd does; they use `grad` above)
from tracer.autograd.anomaly_mode import detect_anomaly, set_detect_anomaly  # noqa: E402
from tracer.autograd.function import Function, once_differentiable  # noqa: E402
