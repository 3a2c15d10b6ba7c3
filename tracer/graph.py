"""The backward graph: nodes, edges, saved tensors, AccumulateGrad.

This is the Python telling of `torch/csrc/autograd/function.h`:

- A `Node` is one backward function. It is created by a forward op and is what
  `tensor.grad_fn` points to. It holds `next_functions`: one *edge* per
  differentiable input of the op, an edge being `(node, input_nr)` — the node
  that receives this input's gradient and which of its inputs it arrives at.
  The graph is therefore a DAG of nodes linked by edges, pointing from the
  output back towards the leaves; no list of operations is kept anywhere.
- Each node gets a global, increasing `_sequence_nr` at creation. The engine
  runs ready nodes highest-number-first, i.e. most recent forward op first.
- A leaf tensor that requires grad is reached through its own `AccumulateGrad`
  node (one per leaf, shared by every op that uses it), whose job is to add the
  incoming gradient into `leaf.grad`.
- Tensors a backward formula needs are stored as `SavedTensor`s, which remember
  the version of the tensor when it was saved and refuse to unpack if an
  in-place op changed it since. They are freed after backward (unless
  `retain_graph=True`), which is why backpropagating twice is an error.
"""

from __future__ import annotations

import itertools
import sys
import weakref
from types import MappingProxyType

import numpy as np

from tracer.tensor import Tensor

_sequence = itertools.count()

FREED_MESSAGE = (
    "Trying to backward through the graph a second time (or directly access saved tensors after they have "
    "already been freed). Saved intermediate values of the graph are freed when you call .backward() or "
    "autograd.grad(). Specify retain_graph=True if you need to backward through the graph a second time or "
    "if you need to access saved tensors after calling backward."
)


class SavedTensor:
    """A tensor saved for backward, with the version it had when saved (torch's SavedVariable)."""

    __slots__ = ("tensor", "version", "is_output")

    def __init__(self, tensor, is_output: bool = False):
        self.tensor = tensor
        self.version = tensor._version
        self.is_output = is_output

    def unpack(self, node: Node):
        if self.tensor is None:
            raise RuntimeError(FREED_MESSAGE)
        t = self.tensor
        if t._version != self.version:
            origin = f"output 0 of {t.grad_fn.name()}" if t.grad_fn is not None else "a leaf"
            raise RuntimeError(
                "one of the variables needed for gradient computation has been modified by an inplace operation: "
                f"[{t.type_name()} {list(t.shape)}], which is {origin}, is at version {t._version}; "
                f"expected version {self.version} instead. Hint: the backtrace further above "
                "shows the operation that failed to compute its gradient. The variable in question was "
                "changed in there or anywhere later. Good luck!"
            )
        return t


_NONE = MappingProxyType({})  # read-only and shared: most nodes never get a hook or a retain_grad


class Node:
    """One backward function. Subclasses implement `backward(*grads) -> tuple of input grads`."""

    num_inputs = 1  # gradients it receives: one per output of the forward op (every op here has one output)
    _pre_hooks: dict[int, list] = _NONE  # input_nr -> hooks on the gradient arriving there
    _retain_grad: dict[int, object] = _NONE  # input_nr -> weakref to a non-leaf that wants .grad
    _saved: dict[str, SavedTensor] = _NONE  # name -> saved tensor, for the nodes whose formula needs any

    def __init__(self, next_functions: tuple = ()):
        self._sequence_nr = next(_sequence)
        self.next_functions: tuple[tuple[Node | None, int], ...] = next_functions

    def name(self) -> str:
        return type(self).__name__

    def __repr__(self):
        return f"<{self.name()} object at {id(self):#x}>"

    # Saved tensors: exposed as `_saved_<name>` like PyTorch's python bindings.
    def save(node, **tensors) -> None:  # `node`, not `self`: PyTorch calls a saved input "self"
        if node._saved is _NONE:  # this node's first saved tensor: its own mapping
            node._saved = {}
        for key, t in tensors.items():
            node._saved[key] = SavedTensor(t)

    def saved(self, key: str):
        s = self._saved[key]
        t = s.tensor
        if t is not None and t._version == s.version:  # the common case, without unpack's call
            return t
        return s.unpack(self)  # raises the error that says what went wrong

    def __getattr__(self, attr):
        if attr.startswith("_saved_"):
            if attr[7:] in self._saved:
                return self._saved[attr[7:]].unpack(self)
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{attr}'")

    def release_variables(self) -> None:
        for s in self._saved.values():
            s.tensor = None

    def backward(self, *grads):
        raise NotImplementedError

    def needs_input_grad(self, i: int) -> bool:
        """Whether input `i` leads anywhere: PyTorch's `task_should_compute_output`, which lets a
        backward formula skip work (the input gradient of a first layer, say)."""
        return self.next_functions[i][0] is not None

    def register_prehook(self, input_nr: int, hook) -> list:
        """Add `hook` for the gradient arriving at `input_nr`; returns that input's hook list (for removal)."""
        if self._pre_hooks is _NONE:
            self._pre_hooks = {}
        hooks = self._pre_hooks.setdefault(input_nr, [])
        hooks.append(hook)
        return hooks

    def retain_grad_of(self, output) -> None:
        """Have the engine store the gradient arriving for the non-leaf `output` of this node in its `.grad`."""
        if self._retain_grad is _NONE:
            self._retain_grad = {}
        self._retain_grad[output._output_nr] = weakref.ref(output)


class AccumulateGrad(Node):
    """Sink for one leaf: `leaf.grad = g` the first time, `leaf.grad += g` (same array) afterwards.

    The first time, PyTorch *steals* `g` when nothing else references it (`accumulate_grad.h`:
    `new_grad.use_count() <= num_expected_refs`, and a layout like the parameter's) and clones it
    otherwise. Here the same test reads CPython's reference counts (`_references`, against `_UNSHARED`).
    """

    def __init__(self, variable):
        super().__init__()
        # PyTorch gives AccumulateGrad the largest sequence number so leaves are filled as early as possible.
        self._sequence_nr = sys.maxsize
        self._variable = weakref.ref(variable)

    @property
    def variable(self):
        return self._variable()

    def backward(self, grad):
        leaf = self._variable()
        if leaf is None:
            return ()
        if leaf._grad is None:
            param = leaf.data
            if (
                _references(grad) in _UNSHARED
                and grad.dtype == param.dtype
                and grad.strides == param.strides
                and grad.flags.writeable
            ):
                leaf._grad = Tensor(grad)  # stolen: no other node, hook or caller can see this array
            else:  # a copy laid out like the parameter (C order): optimizers run faster on matching layouts
                leaf._grad = Tensor(np.array(grad, dtype=param.dtype, order="C", copy=True))
        else:
            leaf._grad.data += grad  # in place: the very same array object keeps accumulating
        return ()


def _references(grad) -> tuple[int, int]:
    """CPython's reference counts of `grad` and of the array whose memory it views (0 if it owns its memory).

    A view is as shared as its base: stealing `v` while another view of `v.base` lives would alias them.
    """
    base = grad.base
    return sys.getrefcount(grad), 0 if base is None else sys.getrefcount(base)


class _Probe:
    def backward(self, grad):  # the shape of AccumulateGrad.backward's call of `_references`
        return _references(grad)


def _unshared_counts() -> frozenset:
    """What `_references` reads inside `backward` for a gradient that only the engine's buffer holds, passed as
    the engine passes it (`node.backward(*buffer)`). Measured, not assumed: how many of the references are the
    interpreter's own (argument tuples, frame slots, borrowed stack entries) differs between CPython versions."""
    owner = [np.empty(1)]
    view = [np.empty(2)[1:]]  # a view whose base only the view itself references
    return frozenset({_Probe().backward(*owner), _Probe().backward(*view)})


_UNSHARED = _unshared_counts()


class GraphRoot(Node):
    """The engine's entry node: its `next_functions` are the roots, its outputs the seed gradients."""

    num_inputs = 0

    def __init__(self, edges, grads):
        super().__init__(tuple(edges))
        self._grads = grads

    def backward(self):
        return tuple(self._grads)


def reachable(root: Node) -> list[Node]:
    """Every node reachable from `root` through next_functions, each once, in discovery order (no recursion)."""
    seen, stack, nodes = {root}, [root], []
    while stack:
        node = stack.pop()
        nodes.append(node)
        for child, _ in node.next_functions:
            if child is not None and child not in seen:
                seen.add(child)
                stack.append(child)
    return nodes


def unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum `grad` down to `shape`: the backward of NumPy broadcasting."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra:  # leading dimensions broadcasting added
        grad = np.add.reduce(grad, axis=tuple(range(extra)))
    if 1 in shape:  # dimensions of size 1 that broadcasting stretched
        axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
        if axes:
            grad = np.add.reduce(grad, axis=axes, keepdims=True)
    return grad
