"""The backward engine: PyTorch's `engine.cpp`, single-threaded, in Python.

1. Start from the root: with one root tensor (the usual `loss.backward()`), its
   node's input buffer starts out holding the seed gradient; with several, a
   `GraphRoot` is put in front of them and its outputs are the seeds.
2. Count dependencies: for every node, how many edges (from nodes that will
   run) point at it. A node may run only once all of them have delivered.
3. Each node has an input buffer; gradients arriving at the same input are
   summed there (this is where a tensor used twice gets its two contributions).
4. A node whose count drops to zero is pushed on the ready queue, a heap
   ordered by `_sequence_nr`, highest first (the most recent forward op); equal
   numbers (the AccumulateGrads) leave in the order they became ready.
5. Running a node (`call_function`): tensor hooks, then the node's pre-hooks,
   may replace incoming gradients; retained non-leaf grads are stored;
   `backward` computes the input gradients; post-hooks may replace those; they
   flow along `next_functions` into the next buffers. Without `retain_graph`,
   the node's saved tensors are freed right after.

Grad mode is on during the pass exactly when `create_graph=True` (as PyTorch's
engine sets it): buffers then hold tensors, and every formula's arithmetic is
recorded, so the gradients have a graph of their own. Otherwise buffers hold
plain NumPy arrays and nothing is recorded.

Everything is iterative (explicit stacks and a heap), so a 10,000-node chain
needs no recursion. The two places where the loop is written for speed (calling
a node without `_apply` in the common case, and letting go of the gradients it
has passed on so that AccumulateGrad may steal them) are explained in
`tracer/fast_paths.py`.
"""

from __future__ import annotations

import itertools
import warnings
from heapq import heappop, heappush

import numpy as np

from tracer.graph import AccumulateGrad, GraphRoot, Node
from tracer.tensor import Tensor, _anomaly, _grad_enabled


def _count_dependencies(root: Node, needed: set | None) -> dict[Node, int]:
    deps: dict[Node, int] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        for child, _ in node.next_functions:
            if child is None or (needed is not None and child not in needed):
                continue
            if child in deps:
                deps[child] += 1
            else:  # first edge into `child`: walk on from it (once)
                deps[child] = 1
                stack.append(child)
    return deps


def _nodes_leading_to(root: Node, targets: set) -> tuple[set, set]:
    """(nodes from which some target can be reached, targets included; those of them that must run).

    One depth-first pass (PyTorch's `init_to_execute`): a node is needed if it is a target or one of its
    children is; it runs only if a child is (a target is captured at its input, not run for itself). In a DAG
    every child has been decided by the time its parent is left.
    """
    needed: set = set()
    run: set = set()
    seen = {root}
    stack = [(root, iter(root.next_functions))]
    while stack:
        node, children = stack[-1]
        for child, _ in children:
            if child is not None and child not in seen:
                seen.add(child)
                stack.append((child, iter(child.next_functions)))
                break
        else:  # every child decided
            stack.pop()
            if any(child in needed for child, _ in node.next_functions):
                needed.add(node)
                run.add(node)
            elif node in targets:
                needed.add(node)
    return needed, run


def run_backward(edges, grads, *, retain_graph: bool, create_graph: bool = False, capture=None, trace=None):
    """Backpropagate `grads` from `edges`, with grad mode set to `create_graph` for the pass.

    capture: None to accumulate into leaves (`backward()`); or a list of edges whose
    gradient to return instead, running only the nodes that lead to them (`autograd.grad`).
    trace: optional list that receives `(node, input grads)` in execution order (for teaching).
    """
    previous, _grad_enabled[0] = _grad_enabled[0], create_graph
    try:
        return _run(edges, grads, retain_graph, capture, trace)
    finally:
        _grad_enabled[0] = previous


def _run(edges, grads, retain_graph, capture, trace):
    buffers: dict[Node, list] = {}  # node -> its input buffer, one slot per input
    if len(edges) == 1:  # as PyTorch does, no dummy GraphRoot for a single root
        root, nr = edges[0]
        buffers[root] = [None] * root.num_inputs
        buffers[root][nr] = grads[0]
    else:
        root = GraphRoot(edges, grads)
    needed = captured = run = None
    if capture is not None:
        needed, run = _nodes_leading_to(root, {node for node, _ in capture})
        captured = {edge: None for edge in capture}
    deps = _count_dependencies(root, needed)
    order = itertools.count()  # the heap's tie-break: equal sequence numbers leave in the order they arrived
    ready = [(-root._sequence_nr, next(order), root)]
    while ready:
        node = heappop(ready)[2]
        inputs = buffers.pop(node, ())
        if node._tensor_pre_hooks or node._retain_grad:
            _call_tensor_pre_hooks(node, inputs)
        if captured is not None:
            for nr, g in enumerate(inputs):
                if (node, nr) in captured:
                    captured[(node, nr)] = g
            if isinstance(node, AccumulateGrad) or node not in run:
                continue  # grad() returns gradients instead of accumulating them, and runs only what leads there
        if inputs and inputs[0] is not None and not (_anomaly[0] or node._pre_hooks or node._post_hooks):
            outputs = node.backward(*inputs)  # the common case, called without `_apply` (fast path 4)
        else:
            outputs = _apply_detecting_anomalies(node, inputs) if _anomaly[0] else _apply(node, inputs)
        if trace is not None:
            trace.append((node, inputs))
        if not retain_graph and node._saved:
            node.release_variables()
        for (child, nr), g in zip(node.next_functions, outputs):
            if child is None or (needed is not None and child not in needed):
                continue
            buf = buffers.get(child)
            if buf is None:
                buf = buffers[child] = [None] * child.num_inputs
            if g is not None:
                buf[nr] = g if buf[nr] is None else buf[nr] + g  # the input buffer sums contributions
            waiting = deps[child] - 1
            deps[child] = waiting
            if not waiting:
                heappush(ready, (-child._sequence_nr, next(order), child))
        outputs = g = None  # handed over: the buffers are now their only holders (fast path 5, tracer/fast_paths.py)
    if captured is not None:
        return [captured[edge] for edge in capture]
    return None


def _apply(node: Node, inputs: list):
    if inputs and all(g is None for g in inputs):
        # no gradient arrived at any input (a hook cut it, or only unused outputs): none leaves, as in PyTorch.
        # With at least one, the node runs; one that cannot take None (a custom Function) fills in zeros itself.
        return (None,) * len(node.next_functions)
    if node._pre_hooks or node._post_hooks:
        return _call_function(node, inputs)
    return node.backward(*inputs)


def _apply_detecting_anomalies(node: Node, inputs: list):
    """Anomaly mode: a node that fails, or returns NaN, is reported with the forward call that created it."""
    try:
        outputs = _apply(node, inputs)
        for i, g in enumerate(outputs):
            if _anomaly[1] and g is not None and np.isnan(getattr(g, "data", g)).any():
                raise RuntimeError(f"Function '{node.name()}' returned nan values in its {i}th output.")
    except Exception:
        if node._forward_stack is not None:
            warnings.warn(
                f"Error detected in {node.name()}. Traceback of forward call that caused the error:\n"
                + node._forward_stack,
                UserWarning,
                stacklevel=2,
            )
        raise
    return outputs


def _as_tensors(grads) -> tuple:
    return tuple(g if g is None or isinstance(g, Tensor) else Tensor(g) for g in grads)


def _as_grads(tensors) -> list:
    """What a hook returned, as the buffers hold gradients: tensors with a graph, or plain arrays."""
    keep = _grad_enabled[0]
    return [t if t is None or keep or not isinstance(t, Tensor) else t.data for t in tensors]


def _call_tensor_pre_hooks(node: Node, inputs: list) -> None:
    """Hooks registered on the tensor whose gradient arrives at input `nr` (a hook's return value replaces it),
    then the gradients of non-leaf tensors that asked for them (`retain_grad()`) are stored."""
    for nr, hooks in node._tensor_pre_hooks.items():
        for hook in list(hooks):  # (called with None too, for an output of a node that runs without its gradient)
            new = hook(_as_tensors(inputs[nr : nr + 1])[0])
            if new is not None:
                inputs[nr] = _as_grads([new])[0]
    for nr, ref in node._retain_grad.items():
        t = ref()
        if t is not None and inputs[nr] is not None:
            g = inputs[nr]
            if isinstance(g, Tensor):  # recording a graph: the stored gradient keeps its history
                t._grad = g.clone() if t._grad is None else t._grad + g
            elif t._grad is None:
                t._grad = Tensor(g.copy())
            else:
                t._grad.data = t._grad.data + g


def _call_function(node: Node, inputs: list):
    """A node with hooks of its own: `fn(grad_outputs)` before it, `fn(grad_inputs, grad_outputs)` after it."""
    for hook in list(node._pre_hooks):
        new = hook(_as_tensors(inputs))
        if new is not None:
            inputs[:] = _as_grads(new)
    outputs = node.backward(*inputs)
    for hook in list(node._post_hooks):
        new = hook(_as_tensors(outputs), _as_tensors(inputs))
        if new is not None:
            outputs = _as_grads(new)
    return outputs
