"""`Tensor`: a NumPy array plus the autograd bookkeeping PyTorch keeps beside it.

- `requires_grad`, `grad`, `grad_fn`, `is_leaf`: as in PyTorch.
- `_version`: a counter shared with views made by `detach()`, bumped by every
  in-place op; saved tensors compare against it.
- `_output_nr`: which output of `grad_fn` this tensor is (0 but for custom Functions with several).
- A leaf's `AccumulateGrad` is held *weakly* (`grad_accumulator_` in PyTorch's
  `variable.h`): the graph owns its accumulator, the accumulator owns the leaf,
  so no reference cycle runs through a parameter. A leaf's hooks therefore live
  on the tensor itself, where a new accumulator finds them.
"""

from __future__ import annotations

import warnings
import weakref

import numpy as np

from tracer.state import (  # noqa: F401  (re-exported: tracer.tensor is where the rest of tracer reads them)
    TangentTable,
    _anomaly,
    _default_dtype,
    _grad_enabled,
    _GradMode,
    _saved_tensors_hooks,
    _tangents,
    enable_grad,
    get_default_dtype,
    is_grad_enabled,
    no_grad,
    set_default_dtype,
    set_grad_enabled,
)


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
        "_backward_hooks",
        "_post_accumulate_grad_hooks",
        "_output_nr",
        "_base",
        "__weakref__",
    )

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        # (an ndarray kept as it is, without np.asarray's call: fast path 7, tracer/fast_paths.py)
        self.data = data if dtype is None and type(data) is np.ndarray else np.asarray(data, dtype=dtype)
        if requires_grad and self.data.dtype.kind not in "fc":
            raise RuntimeError("Only Tensors of floating point dtype can require gradients")
        self._requires_grad = requires_grad
        self._grad: Tensor | None = None
        self.grad_fn = None
        self._accumulator = None  # weakref to the leaf's AccumulateGrad, made on first use, shared while it lives
        self._version_counter = None  # made by the first in-place op or detach(); until then the version is 0 (7)
        self._retains_grad = False
        self._backward_hooks = None  # a leaf's tensor hooks (a non-leaf's live on its grad_fn)
        self._post_accumulate_grad_hooks = None
        self._output_nr = 0  # which output of grad_fn this is: always 0 but for a custom Function's outputs
        self._base = None  # the tensor whose memory this one views (basic indexing), as torch's `_base`

    # --- autograd attributes ---------------------------------------------
    @property
    def requires_grad(self) -> bool:
        return self._requires_grad or self.grad_fn is not None

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        if self.grad_fn is not None:
            if value:
                return  # a non-leaf already requires grad
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables. If you want to use a computed variable "
                "in a subgraph that doesn't require differentiation use var_no_grad = var.detach()."
            )
        if value and self.data.dtype.kind not in "fc":
            raise RuntimeError("only Tensors of floating point and complex dtype can require gradients")
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
        if value is not None:  # (torch's THPVariable_set_grad)
            if not isinstance(value, Tensor):
                raise TypeError(
                    f"assigned grad expected to be a Tensor or None but got grad of type {type(value).__name__}"
                )
            if value is self:
                raise RuntimeError("can't assign Variable as its own grad")
            if value.dtype != self.dtype:
                raise RuntimeError("assigned grad has data of a different type")
            if value.shape != self.shape:
                raise RuntimeError("assigned grad has data of a different size")
        self._grad = value

    @grad.deleter
    def grad(self) -> None:
        self._grad = None

    @property
    def output_nr(self) -> int:
        return self._output_nr

    @property
    def _version(self) -> int:
        counter = self._version_counter
        return 0 if counter is None else counter.value

    def _shared_version_counter(self) -> _VersionCounter:
        if self._version_counter is None:
            self._version_counter = _VersionCounter()
        return self._version_counter

    def _bump_version(self) -> None:
        (self._version_counter or self._shared_version_counter()).value += 1

    def gradient_edge(self):
        """The edge a consumer of this tensor points to: (grad_fn, output_nr), (AccumulateGrad, 0) or (None, 0)."""
        if self.grad_fn is not None:
            return (self.grad_fn, self._output_nr)
        if self._requires_grad:
            accumulator = None if self._accumulator is None else self._accumulator()
            if accumulator is None:
                from tracer.graph import AccumulateGrad  # (graph.py imports this module)

                accumulator = AccumulateGrad(self)
                self._accumulator = weakref.ref(accumulator)
            return (accumulator, 0)
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
        if self.grad_fn is not None:
            return RemovableHandle(self.grad_fn.add_tensor_pre_hook(self._output_nr, hook), hook)
        if self._backward_hooks is None:
            self._backward_hooks = []
        self._backward_hooks.append(hook)
        return RemovableHandle(self._backward_hooks, hook)

    def register_post_accumulate_grad_hook(self, hook) -> RemovableHandle:
        """`hook(tensor) -> None`: runs after this leaf's AccumulateGrad has updated `.grad` (an optimizer step
        can run here, one parameter at a time)."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self.grad_fn is not None:
            raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf tensors")
        if self._post_accumulate_grad_hooks is None:
            self._post_accumulate_grad_hooks = []
        self._post_accumulate_grad_hooks.append(hook)
        return RemovableHandle(self._post_accumulate_grad_hooks, hook)

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None) -> None:
        from tracer.autograd import backward

        backward(self, gradient, retain_graph=retain_graph, create_graph=create_graph, inputs=inputs)

    def detach(self) -> Tensor:
        """Same data, same version counter, no history."""
        t = Tensor(self.data)
        t.data = self.data  # the same array, not a copy
        t._version_counter = self._shared_version_counter()
        return t

    def item(self):
        return self.data.item()

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
        return bool(self.data)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __deepcopy__(self, memo) -> Tensor:
        """A leaf with copies of the data and `.grad`; hooks stay with the original (as torch's deepcopy)."""
        if self.grad_fn is not None:
            raise RuntimeError(
                "Only Tensors created explicitly by the user (graph leaves) support the deepcopy protocol at the "
                "moment.  If you were attempting to deepcopy a module, this may be because of a torch.nn.utils."
                "weight_norm usage, see https://github.com/pytorch/pytorch/pull/103001"
            )
        out = Tensor(self.data.copy(), requires_grad=self._requires_grad)
        if self._grad is not None:
            out._grad = Tensor(self._grad.data.copy())
        memo[id(self)] = out
        return out

    def new(self, *shape) -> Tensor:
        """A new tensor of this one's dtype (torch's legacy `Tensor.new`), zero-filled."""
        return Tensor(np.zeros(_shape(shape), self.dtype))

    def numpy(self) -> np.ndarray:
        if self.requires_grad and _grad_enabled[0]:
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

    def __repr__(self):
        extra = (
            f", grad_fn=<{self.grad_fn.name()}>"
            if self.grad_fn is not None
            else (", requires_grad=True" if self._requires_grad else "")
        )
        tangent = None if _tangents[0] is None else _tangents[0].get(self)
        if tangent is not None:
            extra += f", tangent={np.array2string(tangent, separator=', ')}"
        body = np.array2string(self.data, separator=", ", prefix="tensor(")
        return f"tensor({body}{extra})"


def tensor(data, requires_grad: bool = False, dtype=None) -> Tensor:
    """A copy of `data`; Python floats become the default dtype (float32), arrays keep theirs (torch.tensor)."""
    array = np.array(data, dtype=dtype)
    if dtype is None and array.dtype == np.float64 and not isinstance(data, (np.ndarray, np.generic)):
        array = array.astype(_default_dtype[0])
    return Tensor(array, requires_grad=requires_grad)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor on the same memory as `array`, with its dtype (torch.from_numpy)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(array).__name__})")
    return Tensor(array)


def zeros(*shape, requires_grad=False, dtype=None) -> Tensor:
    return Tensor(np.zeros(_shape(shape), dtype or _default_dtype[0]), requires_grad=requires_grad)


def ones(*shape, requires_grad=False, dtype=None) -> Tensor:
    return Tensor(np.ones(_shape(shape), dtype or _default_dtype[0]), requires_grad=requires_grad)


_rng = [np.random.default_rng(0)]


def manual_seed(seed: int) -> None:
    _rng[0] = np.random.default_rng(seed)


def randn(*shape, requires_grad=False, dtype=None) -> Tensor:
    """Standard normal samples from tracer's generator (`manual_seed`)."""
    data = _rng[0].standard_normal(_shape(shape)).astype(dtype or _default_dtype[0])
    return Tensor(data, requires_grad=requires_grad)


def rand(*shape, requires_grad=False, dtype=None) -> Tensor:
    """Uniform samples on [0, 1) from tracer's generator (`manual_seed`)."""
    return Tensor(_rng[0].random(_shape(shape)).astype(dtype or _default_dtype[0]), requires_grad=requires_grad)


def _shape(shape):
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)
