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

Where a step runs a faster spelling than this telling (the shared empty
mapping, the saved array read without `unpack`, the reference-count test
of AccumulateGrad's steal), it is called from `tracer/fast_paths.py`, which
says what each buys and what the plain version is.
"""

from __future__ import annotations

import itertools
import os
import re
import sys
import traceback
import weakref

import numpy as np

from tracer.fast_paths import EMPTY, nothing_else_holds, saved_array
from tracer.tensor import RemovableHandle, Tensor, _anomaly, _grad_enabled, _saved_tensors_hooks

_sequence = itertools.count()
_TRACER_DIR = os.path.dirname(os.path.abspath(__file__))

FREED_MESSAGE = (
    "Trying to backward through the graph a second time (or directly access saved tensors after they have "
    "already been freed). Saved intermediate values of the graph are freed when you call .backward() or "
    "autograd.grad(). Specify retain_graph=True if you need to backward through the graph a second time or "
    "if you need to access saved tensors after calling backward."
)


class SavedTensor:
    """A tensor saved for backward, with the version it had when saved (torch's `SavedVariable`).

    An input is kept as it is. An *output* of the node that saves it (`is_output`, e.g. exp's result) is kept as
    its array and version counter only, without its `grad_fn`: the tensor points at its node, so keeping the
    tensor would close a cycle (output -> grad_fn -> saved output) that only the cycle collector frees. `unpack`
    rebuilds it with the saving node as its `grad_fn` (`saved_variable.cpp`: `grad_fn = saved_for`).

    Inside `tracer.autograd.graph.saved_tensors_hooks(pack, unpack)`, only `pack(tensor)`'s result is kept and
    `unpack` turns it back into a tensor when backward needs it; versions cannot be followed through the hooks,
    so none is checked (as in PyTorch).
    """

    __slots__ = ("tensor", "data", "version_counter", "version", "is_output", "packed", "unpack_hook")

    def __init__(self, tensor: Tensor, is_output: bool = False):
        self.is_output = is_output and tensor.grad_fn is not None
        self.unpack_hook = None
        if _saved_tensors_hooks:
            pack, self.unpack_hook = _saved_tensors_hooks[-1]
            self.packed, self.tensor, self.data = pack(tensor), None, None
            return
        self.tensor = None if self.is_output else tensor
        self.data = tensor.data
        self.version_counter = tensor._version_counter or tensor._shared_version_counter()  # in-place ops bump it
        self.version = self.version_counter.value

    def unpack(self, node: Node) -> Tensor:
        """The saved tensor, after checking that it was neither freed nor modified in place since."""
        if self.unpack_hook is not None:
            return self._unpack_hooked(node)
        if self.data is None:
            raise RuntimeError(FREED_MESSAGE)
        if self.version_counter.value != self.version:
            grad_fn = node if self.is_output else self.tensor.grad_fn
            raise RuntimeError(modified_message(self.data, grad_fn, self.version_counter.value, self.version))
        if not self.is_output:
            return self.tensor
        t = Tensor(self.data)
        t.grad_fn, t._version_counter = node, self.version_counter
        return t

    def _unpack_hooked(self, node: Node) -> Tensor:
        if self.packed is _RELEASED:
            raise RuntimeError(FREED_MESSAGE)
        t = self.unpack_hook(self.packed)
        if self.is_output:  # as unpack does: the saving node becomes its grad_fn
            t = Tensor(t.data)
            t.grad_fn = node
        return t

    def describe(self) -> str:
        """Its shape, or what became of it, for printing a graph."""
        if self.unpack_hook is not None:
            return "freed" if self.packed is _RELEASED else "packed by a hook"
        return "freed" if self.data is None else str(tuple(self.data.shape))

    def release(self) -> None:
        self.tensor = self.data = None
        if self.unpack_hook is not None:
            self.packed = _RELEASED


_RELEASED = object()  # what a hook-packed saved tensor holds after backward freed it


def modified_message(data: np.ndarray, grad_fn: Node | None, version: int, expected: int) -> str:
    """PyTorch's text for a saved tensor changed in place (`SavedVariable::unpack`)."""
    which = f", which is output 0 of {grad_fn.forward_op_name()}," if grad_fn is not None else ""
    hint = (
        "Hint: the backtrace further above shows the operation that failed to compute its gradient. The "
        "variable in question was changed in there or anywhere later. Good luck!"
        if _anomaly[0]
        else "Hint: enable anomaly detection to find the operation that failed to compute its gradient, with "
        "torch.autograd.set_detect_anomaly(True, check_nan=False)."
    )
    return (
        "one of the variables needed for gradient computation has been modified by an inplace operation: "
        f"[{type_name(data)} {list(data.shape)}]{which} is at version {version}; expected version {expected} "
        f"instead. {hint}"
    )


def type_name(data: np.ndarray) -> str:
    """PyTorch's legacy type name of a CPU tensor of this dtype, as its messages print it."""
    names = {np.dtype(np.float32): "torch.FloatTensor", np.dtype(np.float64): "torch.DoubleTensor"}
    return names.get(data.dtype, f"tensor({data.dtype})")


def forward_stack() -> str:
    """The user's frames of the current call stack (tracer's own left out): where a forward op was called, kept
    on its node in anomaly mode (torch's `AnomalyMetadata::store_stack`)."""
    frames = [f for f in traceback.extract_stack()[:-1] if not f.filename.startswith(_TRACER_DIR)]
    return "".join(traceback.format_list(frames))


class Node:
    """One backward function. Subclasses implement `backward(*grads) -> tuple of input grads`.

    A subclass declares what it holds: `saves`, the names of the tensors its formula needs (PyTorch's names:
    "self", "other", "mat1", ..., and "result" for the op's output), picked by name from `inputs`, the names
    of the forward's tensor arguments in order; other attributes are class annotations that `record` fills.
    `backward` reads saved tensors with `saved(name)`: the array on the plain path, or, while a graph of the
    backward pass is being recorded (`create_graph=True`, grad mode on), the tensor, so the formula's
    arithmetic is recorded too.
    """

    num_inputs = 1  # gradients it receives: one per output of the forward op (every op here has one output)
    inputs: tuple[str, ...] = ("self",)
    saves: tuple[str, ...] = ()
    save_for: dict[str, tuple[int, ...]] = {}  # name -> indexes of the inputs whose gradient formula reads it
    _pre_hooks: list = ()  # fn(grad_outputs) -> new grad_outputs or None (register_prehook)
    _post_hooks: list = ()  # fn(grad_inputs, grad_outputs) -> new grad_inputs or None (register_hook)
    _tensor_pre_hooks: dict[int, list] = EMPTY  # output_nr -> hooks of the non-leaf tensor it made
    _retain_grad: dict[int, object] = EMPTY  # output_nr -> weakref to a non-leaf that wants .grad
    _saved: dict[str, SavedTensor] = EMPTY  # name -> saved tensor, for the nodes whose formula needs any
    # (EMPTY and the empty tuples: shared defaults, each replaced by the node's own on first write: fast path 1)
    _forward_stack: str | None = None  # in anomaly mode: where the forward op was called

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # Where `record` finds each saved tensor: the index of the input, or -1 for the output ("result"), and
        # the one input whose gradient needs it (None: every input's). derivatives.yaml's codegen saves `other`
        # for mul only when `self` needs a gradient. Worked out once per class: fast path 6.
        cls._save_plan = tuple(
            (name, -1 if name == "result" else cls.inputs.index(name), cls._needed_by(name)) for name in cls.saves
        )

    @classmethod
    def _needed_by(cls, name: str) -> int | None:
        readers = cls.save_for.get(name, range(len(cls.inputs)))
        if len(readers) == len(cls.inputs):
            return None
        if len(readers) != 1:
            raise TypeError(f"{cls.__name__}.save_for[{name!r}]: name one input, or all of them")
        return readers[0]

    def __init__(self, next_functions: tuple = ()):
        self._sequence_nr = next(_sequence)
        self.next_functions: tuple[tuple[Node | None, int], ...] = next_functions

    def name(self) -> str:
        return type(self).__name__

    def forward_op_name(self) -> str:
        """The forward op's name, as PyTorch's messages print it: `SigmoidBackward0` -> `Sigmoid`."""
        return re.sub(r"Backward\d*$", "", self.name())

    def __repr__(self):
        return f"<{type(self).__name__} object at {id(self):#x}>"

    # Saved tensors: exposed as `_saved_<name>` like PyTorch's python bindings.
    def save(self, name: str, tensor: Tensor, is_output: bool = False) -> None:
        if self._saved is EMPTY:  # this node's first saved tensor: its own mapping
            self._saved = {}
        self._saved[name] = SavedTensor(tensor, is_output)

    def saved(self, name: str):
        """The saved array (plain path) or tensor (while recording a graph of the backward pass)."""
        s = self._saved[name]
        return s.unpack(self) if _grad_enabled[0] else saved_array(s, self)

    def saved_data(self, name: str) -> np.ndarray:
        """The saved array, in either mode: for masks and other quantities a formula treats as constants."""
        return saved_array(self._saved[name], self)

    def __getattr__(self, attr):
        if attr.startswith("_saved_"):
            if attr[7:] in self._saved:
                return self._saved[attr[7:]].unpack(self)
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{attr}'")

    def release_variables(self) -> None:
        for s in self._saved.values():
            s.release()

    def backward(self, *grads):
        raise NotImplementedError

    def should_compute_output(self, i: int) -> bool:
        """Whether input `i` leads anywhere: PyTorch's `task_should_compute_output`, which lets a
        backward formula skip work (the input gradient of a first layer, say)."""
        return self.next_functions[i][0] is not None

    # Hooks, with PyTorch's signatures (`torch/csrc/autograd/python_cpp_function.cpp`, `function.h`).
    def register_prehook(self, fn) -> RemovableHandle:
        """`fn(grad_outputs) -> tuple or None`: runs before this node; a tuple replaces the incoming grads."""
        if "_pre_hooks" not in self.__dict__:  # this node's first: its own list
            self._pre_hooks = []
        self._pre_hooks.append(fn)
        return RemovableHandle(self._pre_hooks, fn)

    def register_hook(self, fn) -> RemovableHandle:
        """`fn(grad_inputs, grad_outputs) -> tuple or None`: runs after this node; a tuple replaces its results."""
        if "_post_hooks" not in self.__dict__:
            self._post_hooks = []
        self._post_hooks.append(fn)
        return RemovableHandle(self._post_hooks, fn)

    def add_tensor_pre_hook(self, output_nr: int, hook) -> list:
        """Add a hook of the non-leaf tensor this node made (`Tensor.register_hook`); returns the list holding it."""
        if self._tensor_pre_hooks is EMPTY:
            self._tensor_pre_hooks = {}
        hooks = self._tensor_pre_hooks.setdefault(output_nr, [])
        hooks.append(hook)
        return hooks

    def retain_grad_of(self, output) -> None:
        """Have the engine store the gradient arriving for the non-leaf `output` of this node in its `.grad`."""
        if self._retain_grad is EMPTY:
            self._retain_grad = {}
        self._retain_grad[output._output_nr] = weakref.ref(output)


class AccumulateGrad(Node):
    """Sink for one leaf: `leaf.grad = g` the first time, `leaf.grad += g` (same array) afterwards.

    It owns its leaf (`variable`, a strong reference) while the leaf holds it weakly (`accumulate_grad.h`); the
    leaf's own hooks are read from the leaf at each run, since this node may be gone and made anew meanwhile.
    The first time, PyTorch *steals* `g` when nothing else references it (`new_grad.use_count() <=
    num_expected_refs`, and a layout like the parameter's) and clones it otherwise. Here the same test reads
    CPython's reference counts (`nothing_else_holds`, in fast_paths.py). While a graph of the backward pass is
    recorded (`create_graph=True`), the gradient is copied with its history (`CopyBackwards`) and later ones
    are added out of place, so `.grad` can itself be differentiated.
    """

    def __init__(self, variable):
        super().__init__()
        # PyTorch gives AccumulateGrad the largest sequence number so leaves are filled as early as possible.
        self._sequence_nr = sys.maxsize
        self.variable = variable

    def name(self) -> str:
        return "torch::autograd::AccumulateGrad"

    @property
    def _tensor_pre_hooks(self):
        hooks = self.variable._backward_hooks
        return {0: hooks} if hooks else EMPTY

    def backward(self, grad):
        leaf = self.variable
        if _grad_enabled[0]:
            leaf._grad = copy_with_history(grad) if leaf._grad is None else leaf._grad + grad
        elif leaf._grad is None:
            param = leaf.data
            if (
                nothing_else_holds(grad)
                and grad.dtype == param.dtype
                and grad.strides == param.strides
                and grad.flags.writeable
            ):
                leaf._grad = Tensor(grad)  # stolen: no other node, hook or caller can see this array
            else:  # a copy laid out like the parameter (C order): optimizers run faster on matching layouts
                leaf._grad = Tensor(np.array(grad, dtype=param.dtype, order="C", copy=True))
        else:
            leaf._grad.data += grad  # in place: the very same array object keeps accumulating
        if leaf._post_accumulate_grad_hooks:
            for hook in list(leaf._post_accumulate_grad_hooks):
                if hook(leaf) is not None:
                    raise RuntimeError("post accumulate grad hooks should return None.")
        return ()


class CopyBackwards(Node):
    """The copy AccumulateGrad makes of a gradient that carries a graph: the gradient passes unchanged."""

    def name(self) -> str:
        return "torch::autograd::CopyBackwards"

    def backward(self, g):
        return (None, g)  # (its edges: the destination, a fresh zero tensor without history, then the source)


def copy_with_history(t: Tensor) -> Tensor:
    out = Tensor(np.array(t.data, copy=True))
    if t.requires_grad:  # torch: zeros_like(grad).copy_(grad), a copy_ whose destination has no history
        out.grad_fn = CopyBackwards(((None, 0), t.gradient_edge()))
    return out


class GraphRoot(Node):
    """The engine's entry node: its `next_functions` are the roots, its outputs the seed gradients."""

    num_inputs = 0

    def __init__(self, edges, grads):
        super().__init__(tuple(edges))
        self._grads = grads

    def name(self) -> str:
        return "torch::autograd::GraphRoot"

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
