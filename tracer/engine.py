"""The backward engine: PyTorch's `engine.cpp`, single-threaded, in Python.

1. Start from the root: with one root tensor (the usual `loss.backward()`), its
   node's input buffer starts out holding the seed gradient; with several, a
   `GraphRoot` is put in front of them and its outputs are the seeds.
2. Count dependencies: for every node, how many edges (from nodes that will
   run) point at it. A node may run only once all of them have delivered.
3. Each node has an input buffer; gradients arriving at the same input are
   summed there (this is where a tensor used twice gets its two contributions).
4. A node whose count drops to zero is pushed on the ready queue, a heap
   ordered by `_sequence_nr`, highest first (the most recent forward op).
5. Running a node: pre-hooks may replace each incoming gradient; retained
   non-leaf grads are stored; `backward` computes the input gradients, which
   flow along `next_functions` into the next buffers. Without `retain_graph`,
   the node's saved tensors are freed right after.

Everything is iterative (explicit stacks and a heap), so a 10,000-node chain
needs no recursion.
"""

from __future__ import annotations

from heapq import heappop, heappush

import numpy as np

from tracer.graph import AccumulateGrad, GraphRoot, Node, reachable
from tracer.tensor import Tensor


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


def _nodes_leading_to(root: Node, targets: set) -> set:
    """Nodes from which some target node can be reached (targets included): the only ones `grad()` runs."""
    order = reachable(root)
    # Children are mostly discovered after their parents; sweep backwards until nothing changes.
    needed = set(targets)
    changed = True
    while changed:
        changed = False
        for node in reversed(order):
            if node not in needed and any(c in needed for c, _ in node.next_functions if c is not None):
                needed.add(node)
                changed = True
    return needed


def run_backward(edges, grads, *, retain_graph: bool, capture=None, trace=None):
    """Backpropagate `grads` from `edges`.

    capture: None to accumulate into leaves (`backward()`); or a list of edges whose
    gradient to return instead, running only the nodes that lead to them (`autograd.grad`).
    trace: optional list that receives `(node, input grads)` in execution order (for teaching).
    """
    buffers: dict[Node, list] = {}  # node -> its input buffer, one slot per input
    if len(edges) == 1:  # as PyTorch does, no dummy GraphRoot for a single root
        root, nr = edges[0]
        buffers[root] = [None] * root.num_inputs
        buffers[root][nr] = grads[0]
    else:
        root = GraphRoot(edges, grads)
    needed = None
    captured = None
    if capture is not None:
        needed = _nodes_leading_to(root, {node for node, _ in capture})
        captured = {edge: None for edge in capture}
    deps = _count_dependencies(root, needed)
    ready = [(-root._sequence_nr, id(root), root)]
    while ready:
        node = heappop(ready)[2]
        inputs = buffers.pop(node, ())
        if node._pre_hooks:
            _call_pre_hooks(node, inputs)
        if node._retain_grad:
            _retain_grads(node, inputs)
        if captured is not None:
            for nr, g in enumerate(inputs):
                if (node, nr) in captured:
                    captured[(node, nr)] = g
            if isinstance(node, AccumulateGrad) or node not in needed:
                continue  # grad() returns gradients instead of accumulating them, and runs only what leads there
        outputs = node.backward(*inputs)
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
                heappush(ready, (-child._sequence_nr, id(child), child))
        outputs = g = None  # handed over: the buffers are now their only holders (so AccumulateGrad may steal)
    if captured is not None:
        return [captured[edge] for edge in capture]
    return None


def _call_pre_hooks(node: Node, inputs: list) -> None:
    """Hooks registered on the gradient arriving at input `nr`; a hook's return value replaces it."""
    for nr, hooks in node._pre_hooks.items():
        for hook in list(hooks):
            if inputs[nr] is not None:
                new = hook(Tensor(inputs[nr]))
                if new is not None:
                    inputs[nr] = new.data if hasattr(new, "data") else np.asarray(new)


def _retain_grads(node: Node, inputs: list) -> None:
    """Store the gradient of each non-leaf output of `node` that asked for it (`retain_grad()`)."""
    for nr, ref in node._retain_grad.items():
        t = ref()
        if t is not None and inputs[nr] is not None:
            if t._grad is None:
                t._grad = Tensor(np.array(inputs[nr], copy=True))
            else:
                t._grad.data = t._grad.data + inputs[nr]
