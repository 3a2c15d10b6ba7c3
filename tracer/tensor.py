"""`Tensor`: a NumPy array plus the autograd bookkeeping PyTorch keeps beside it.

- `requires_grad`, `grad`, `grad_fn`, `is_leaf`: as in PyTorch.
- `_version`: a counter shared with views made by `detach()`, bumped by every
  in-place op; saved tensors compare against it.
- `_output_nr`: which output of `grad_fn` this tensor is (always 0 here).
"""

from __future__ import annotations

import functools
import warnings

import numpy as np

_grad_enabled = [True]


def is_grad_enabled() -> bool:
    return _grad_enabled[0]


class no_grad:
    """Ops inside build no graph; their results are leaves that do not require grad.

    A context manager or a decorator, as `torch.no_grad`; a class, which is cheaper to enter than a generator.
    """

    def __enter__(self):
        self._prev = _grad_enabled[0]
        _grad_enabled[0] = False

    def __exit__(self, *exc):
        _grad_enabled[0] = self._prev

    def __call__(self, fn):
        @functools.wraps(fn)
        def without_grad(*args, **kwargs):
            with no_grad():  # a fresh one per call: a recursive call must restore its own caller's mode
                return fn(*args, **kwargs)

        return without_grad


class _VersionCounter:
    __slots__ = ("value",)

    def __init__(self):
        self.value = 0


class RemovableHandle:
    def __init__(self, hooks: list, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


NON_LEAF_GRAD_WARNING = (
    "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its .grad attribute won't be "
    "populated during autograd.backward(). If you indeed want the .grad field to be populated for a non-leaf "
    "Tensor, use .retain_grad() on the non-leaf Tensor. If you access the non-leaf Tensor by mistake, make sure "
    "you access the leaf Tensor instead."
)


class Tensor:
    __array_priority__ = 1000  # make `ndarray + Tensor` call Tensor.__radd__
    __slots__ = (
        "data",
        "_requires_grad",
        "_grad",
        "grad_fn",
        "_accumulator",
        "_version_counter",
        "_retains_grad",
        "__weakref__",
    )
    _output_nr = 0  # which output of grad_fn this tensor is: every op here has one

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        self.data = data if dtype is None and type(data) is np.ndarray else np.asarray(data, dtype=dtype)
        if requires_grad and self.data.dtype.kind != "f":
            raise RuntimeError("Only Tensors of floating point dtype can require gradients")
        self._requires_grad = requires_grad
        self._grad: Tensor | None = None
        self.grad_fn = None
        self._accumulator = None  # the leaf's AccumulateGrad, created on first use and shared
        self._version_counter = None  # made by the first in-place op or detach(); until then the version is 0
        self._retains_grad = False

    # --- autograd attributes ---------------------------------------------
    @property
    def requires_grad(self) -> bool:
        return self._requires_grad or self.grad_fn is not None

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        if self.grad_fn is not None:
            raise RuntimeError("you can only change requires_grad flags of leaf variables.")
        self._requires_grad = value

    def requires_grad_(self, value: bool = True) -> Tensor:
        self.requires_grad = value
        return self

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def grad(self):
        if not self.is_leaf and not self._retains_grad:
            warnings.warn(NON_LEAF_GRAD_WARNING, UserWarning, stacklevel=2)
        return self._grad

    @grad.setter
    def grad(self, value) -> None:
        self._grad = value

    @property
    def _version(self) -> int:
        counter = self._version_counter
        return 0 if counter is None else counter.value

    def _shared_version_counter(self) -> _VersionCounter:
        if self._version_counter is None:
            self._version_counter = _VersionCounter()
        return self._version_counter

    def _bump_version(self) -> None:
        self._shared_version_counter().value += 1

    def gradient_edge(self):
        """The edge a consumer of this tensor points to: (grad_fn, output_nr), (AccumulateGrad, 0) or (None, 0)."""
        if self.grad_fn is not None:
            return (self.grad_fn, self._output_nr)
        if self._requires_grad:
            if self._accumulator is None:
                from tracer.graph import AccumulateGrad  # (graph.py imports this module; this runs once per leaf)

                self._accumulator = AccumulateGrad(self)
            return (self._accumulator, 0)
        return (None, 0)

    def retain_grad(self) -> None:
        if self.is_leaf or self._retains_grad:
            return
        self._retains_grad = True
        self.grad_fn.retain_grad_of(self)

    def register_hook(self, hook) -> RemovableHandle:
        """`hook(grad) -> grad or None`: runs when this tensor's gradient is computed, before it is used."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        node, nr = self.gradient_edge()
        return RemovableHandle(node.register_prehook(nr, hook), hook)

    def backward(self, gradient=None, retain_graph=None) -> None:
        from tracer.autograd import backward

        backward(self, gradient, retain_graph=retain_graph)

    def detach(self) -> Tensor:
        """Same data, same version counter, no history."""
        t = Tensor(self.data)
        t.data = self.data  # the same array, not a copy
        t._version_counter = self._shared_version_counter()
        return t

    def item(self):
        return self.data.item()

    def numpy(self) -> np.ndarray:
        if self.requires_grad:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")
        return self.data

    # --- array-like -------------------------------------------------------
    @property
    def shape(self):
        return self.data.shape

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    def size(self, dim=None):
        return self.data.shape if dim is None else self.data.shape[dim]

    def dim(self):
        return self.data.ndim

    def numel(self):
        return self.data.size

    def __len__(self):
        return len(self.data)

    def type_name(self) -> str:
        return {np.dtype(np.float32): "torch.FloatTensor", np.dtype(np.float64): "torch.DoubleTensor"}.get(
            self.data.dtype, f"tensor({self.data.dtype})"
        )

    def __repr__(self):
        extra = (
            f", grad_fn=<{self.grad_fn.name()}>"
            if self.grad_fn
            else (", requires_grad=True" if self._requires_grad else "")
        )
        body = np.array2string(self.data, separator=", ", prefix="tensor(")
        return f"tensor({body}{extra})"


def tensor(data, requires_grad: bool = False, dtype=None) -> Tensor:
    return Tensor(np.array(data, dtype=dtype), requires_grad=requires_grad)


def zeros(*shape, requires_grad=False, dtype=np.float32) -> Tensor:
    return Tensor(np.zeros(_shape(shape), dtype), requires_grad=requires_grad)


def ones(*shape, requires_grad=False, dtype=np.float32) -> Tensor:
    return Tensor(np.ones(_shape(shape), dtype), requires_grad=requires_grad)


_rng = [np.random.default_rng(0)]


def manual_seed(seed: int) -> None:
    _rng[0] = np.random.default_rng(seed)


def randn(*shape, requires_grad=False, dtype=np.float32) -> Tensor:
    return Tensor(_rng[0].standard_normal(_shape(shape)).astype(dtype), requires_grad=requires_grad)


def rand(*shape, dtype=np.float32) -> np.ndarray:
    return _rng[0].random(_shape(shape)).astype(dtype)


def _shape(shape):
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)
