"""tracer's speed paths: every place where it runs a faster spelling of a step than the plain telling, in one list.

`graph.py` and `engine.py` read as PyTorch's `function.h` and `engine.cpp` told in Python. Where one of their steps
has a faster spelling, they call it from this module by a name that says what it computes; the plain version is
written beside it. The tricks, what each buys, and the plain version it stands for:

1. `EMPTY`, one shared read-only empty mapping. A node's hooks, retained grads and saved tensors start out as this
   class-level default, and a node gets a dict of its own only when it first needs one (`Node.save`,
   `Node.register_prehook`, ...). Buys: no dict made per node for the hooks most nodes never get, and the engine's
   `if node._tensor_pre_hooks or node._retain_grad` is one test on a class attribute.
   Plain: `self._saved, self._tensor_pre_hooks, self._retain_grad = {}, {}, {}` in `Node.__init__`.
2. `saved_array(saved, node)`, the saved array with `SavedTensor.unpack`'s checks (freed? changed in place?) done
   inline for the common case. Buys: for a saved output (exp's or relu's result) the tensor that `unpack` would
   build around the array only for `.data` to be read off it, and a call, per saved tensor per backward.
   Plain: `saved.unpack(node).data`.
3. `nothing_else_holds(grad)`, the reference-count probe that decides AccumulateGrad's steal. The first gradient
   of a parameter becomes its `.grad` without a copy when only the engine's input buffer holds it, as PyTorch's
   `accumulateGrad` steals `new_grad` when `new_grad.use_count() <= num_expected_refs`. Buys: one copy of each
   parameter's gradient per step (784 x 128 floats for the first layer of the MNIST MLP).
   Plain: always copy, `leaf._grad = Tensor(np.array(grad, dtype=param.dtype, order="C", copy=True))`.

These stay where they act, each marked with a comment that names it ("fast path N"), because moving them here
would cost the call they save:

4. The engine's call of a node: when a gradient arrived at its first input and neither anomaly mode nor a hook of
   the node's own is in play, `engine._run` calls `node.backward(*inputs)` itself. Buys: the call of `_apply` and
   its no-gradient test, for every node of every backward pass. Plain: `_apply(node, inputs)` for every node.
5. The engine's hand-over, `outputs = g = None` at the end of each step of `engine._run`: the loop lets go of
   the gradients it passed on, so that the buffers are their only holders and trick 3 can steal them.
   Plain: nothing; every first gradient is then copied.
6. `recording.record`: grad mode read as `_grad_enabled[0]` rather than by calling `is_grad_enabled()`; the edges
   made by `map(Tensor.gradient_edge, inputs)`; "no input requires grad" tested as
   `edges.count(NO_EDGE) == len(edges)`; and which tensors to save, read from the `_save_plan` that
   `Node.__init_subclass__` works out once per class from `saves` and `save_for` (the one input whose gradient
   reads each, or None for all). Plain: `is_grad_enabled()`, `[t.gradient_edge() for t in inputs]`,
   `all(node is None for node, _ in edges)`, and the plan worked out at every record.
7. `Tensor.__init__` keeps an ndarray as it is instead of calling `np.asarray`, and a tensor gets its version
   counter only when first saved, changed in place or detached (until then its version reads 0); where one
   usually exists already, it is read as `t._version_counter or t._shared_version_counter()`.
   Plain: `self.data = np.asarray(data, dtype=dtype)`; `self._version_counter = _VersionCounter()`.
8. `linalg.addmm` adds the bias into the product's own array (as torch's kernel does); `nn_ops._log_softmax`
   calls the ufunc reductions `np.maximum.reduce`/`np.add.reduce` rather than the `ndarray.max`/`.sum` wrappers;
   `nn.functional.relu`/`log_softmax`/`nll_loss` are the ops themselves, not functions that call them.
   Plain: `mat1 @ mat2 + bias`; `x.max(dim, keepdims=True)`; `def relu(x): return ops.relu(x)`.

This module imports nothing of tracer's: it works on the objects graph.py and engine.py hand it.
"""

from __future__ import annotations

import sys
from types import MappingProxyType

import numpy as np

# --- 1. the shared empty mapping ---------------------------------------------------------------------------------

EMPTY = MappingProxyType({})  # read-only and shared: a node replaces it with a dict of its own before writing


# --- 2. the saved array, checks inline -----------------------------------------------------------------------


def saved_array(saved, node) -> np.ndarray:
    """`saved.unpack(node).data`: the array itself when it is neither freed nor changed in place since saving;
    otherwise `unpack` handles it (saved through hooks) or raises the error that says what went wrong."""
    data = saved.data
    if data is not None and saved.version_counter.value == saved.version:
        return data
    return saved.unpack(node).data


# --- 3. the reference-count probe behind AccumulateGrad's steal ----------------------------------------------


def nothing_else_holds(grad: np.ndarray) -> bool:
    """Whether only the engine's input buffer holds `grad`, and the array it views if it is a view (a view is as
    shared as its base: stealing it while another view of the base lives would alias the two).

    CPython's reference counts stand for PyTorch's `use_count()`. It must be called as AccumulateGrad.backward
    calls it, `nothing_else_holds(grad)` on its own argument: `_UNSHARED` holds what the counts read there.
    """
    base = grad.base
    return (sys.getrefcount(grad), 0 if base is None else sys.getrefcount(base)) in _UNSHARED


class _Recorder(set):
    """Stands in for `_UNSHARED` while it is measured: keeps the counts `nothing_else_holds` reads."""

    def __contains__(self, counts) -> bool:
        self.add(counts)
        return False


class _Probe:
    def backward(self, grad):  # the shape of AccumulateGrad.backward's call
        return nothing_else_holds(grad)


def _measure_unshared() -> frozenset:
    """What `nothing_else_holds` reads for a gradient that only the engine's buffer holds, passed as the engine
    passes it (`node.backward(*buffer)`). Measured, not assumed: how many of the references are the
    interpreter's own (argument tuples, frame slots, borrowed stack entries) differs between CPython versions."""
    global _UNSHARED
    _UNSHARED = recorder = _Recorder()
    owner = [np.empty(1)]
    view = [np.empty(2)[1:]]  # a view whose base only the view itself references
    _Probe().backward(*owner)
    _Probe().backward(*view)
    return frozenset(recorder)


_UNSHARED = _measure_unshared()
