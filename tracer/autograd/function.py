"""Custom differentiable operations (torch.autograd.Function).

    class Exp(Function):
        @staticmethod
        def forward(ctx, x):
            y = x.exp()
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, grad):
            (y,) = ctx.saved_tensors
            return grad * y

    y = Exp.apply(x)          # y.grad_fn is an `ExpBackward` node, and `ctx` is that very node

As in PyTorch, `forward` runs with grad mode off, and its outputs get the node as their `grad_fn` (with one edge
per tensor argument). `backward` gets one gradient per output (zeros for an output that received none) and
returns one per argument of `forward`: None for the non-tensor ones. It runs on tensors, with grad mode on when
`create_graph=True`, so a custom Function can be differentiated twice unless its backward is marked
`@once_differentiable`.
"""

from __future__ import annotations

import functools

import numpy as np

from tracer.graph import Node, SavedTensor, forward_stack
from tracer.reductions import sum_to
from tracer.tensor import Tensor, _anomaly, _grad_enabled, is_grad_enabled, no_grad

__all__ = ["Function", "FunctionCtx", "once_differentiable"]


class FunctionCtx:
    """What `forward` may tell `backward`: tensors to save, outputs modified in place or not differentiable."""

    def save_for_backward(self, *tensors) -> None:
        self.to_save = tensors

    def mark_dirty(self, *tensors) -> None:
        self.dirty_tensors = tensors

    def mark_non_differentiable(self, *tensors) -> None:
        self.non_differentiable = tensors

    def set_materialize_grads(self, value: bool) -> None:
        self.materialize_grads = value

    @property
    def saved_tensors(self) -> tuple:
        return tuple(None if s is None else s.unpack(self) for s in self._saved_list)


class BackwardCFunction(FunctionCtx, Node):
    """The node of one call of a custom Function; it is also the `ctx` its forward and backward receive."""

    to_save: tuple = ()
    dirty_tensors: tuple = ()
    non_differentiable: tuple = ()
    materialize_grads = True
    _saved_list: tuple = ()
    _forward_cls: type[Function]

    def release_variables(self) -> None:
        for s in self._saved_list:
            if s is not None:
                s.release()

    def backward(self, *grads):
        """The engine's call: the user's `backward`, its results checked and handed back as the engine holds grads.

        An output that received no gradient gets zeros (unless `set_materialize_grads(False)`); a non-tensor
        output always gets None."""
        if self.materialize_grads:
            grads = tuple(
                Tensor(np.zeros(meta[0], meta[1])) if g is None and meta is not None else g
                for g, meta in zip(grads, self._outputs)
            )
        grads = tuple(g if g is None or isinstance(g, Tensor) else Tensor(g) for g in grads)
        results = self._forward_cls.backward(self, *grads)
        results = results if isinstance(results, tuple) else (results,)
        while len(results) > len(self.needs_input_grad) and results[-1] is None:
            results = results[:-1]  # surplus Nones are forgiven, as in PyTorch
        if len(results) != len(self.needs_input_grad):
            raise RuntimeError(
                f"function {self.name()} returned an incorrect number of gradients "
                f"(expected {len(self.needs_input_grad)}, got {len(results)})"
            )
        kept = []
        for i, (r, is_tensor) in enumerate(zip(results, self._tensor_args)):
            if not is_tensor:
                if r is not None:
                    raise RuntimeError(
                        f"function {self.name()} returned a gradient different than None at position {i + 1}, "
                        "but the corresponding forward input was not a Variable"
                    )
                continue
            kept.append(self._checked(i, r))
        return tuple(kept)

    def _checked(self, i: int, r):
        """Gradient `i` as the engine holds it, after torch's `validate_outputs` shape check."""
        if r is None:
            return None
        shape = self._input_shapes[i]
        if tuple(r.shape) != shape:
            try:
                np.broadcast_shapes(tuple(r.shape), shape)
                expandable = np.broadcast_shapes(tuple(r.shape), shape) == tuple(r.shape)
            except ValueError:
                expandable = False
            if not expandable:
                raise RuntimeError(
                    f"Function {self.name()} returned an invalid gradient at index {i} - got {list(r.shape)} but "
                    f"expected shape compatible with {list(shape)}"
                )
            r = sum_to(r if _grad_enabled[0] else getattr(r, "data", r), shape)
        return r if _grad_enabled[0] else getattr(r, "data", r)


class Function:
    """Subclass with `forward(ctx, *args)` and `backward(ctx, *grads)` staticmethods; call `apply(*args)`."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls._backward_cls = type(cls.__name__ + "Backward", (BackwardCFunction,), {"_forward_cls": cls})

    @staticmethod
    def forward(ctx, *args):
        raise NotImplementedError("You must implement the forward function for custom autograd.Function.")

    @staticmethod
    def backward(ctx, *grads):
        raise NotImplementedError(
            "You must implement either the backward or vjp method for your custom autograd.Function to use it "
            "with backward mode AD."
        )

    @classmethod
    def apply(cls, *args):
        ctx = cls._backward_cls(tuple(a.gradient_edge() for a in args if isinstance(a, Tensor)))
        ctx._tensor_args = tuple(isinstance(a, Tensor) for a in args)
        ctx._input_shapes = tuple(tuple(a.shape) if isinstance(a, Tensor) else () for a in args)
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        with no_grad():
            result = cls.forward(ctx, *args)
        outputs = result if isinstance(result, tuple) else (result,)
        if is_grad_enabled() and any(ctx.needs_input_grad):
            if _anomaly[0]:
                ctx._forward_stack = forward_stack()
            outputs = tuple(_connect(ctx, out, nr, args) for nr, out in enumerate(outputs))
            ctx._outputs = [(o.shape, o.dtype) if isinstance(o, Tensor) else None for o in outputs]
            ctx.num_inputs = len(outputs)
            ctx._saved_list = tuple(
                None if t is None else SavedTensor(t, is_output=any(t is o for o in outputs)) for t in ctx.to_save
            )
            ctx.to_save = ()
        return outputs if isinstance(result, tuple) else outputs[0]


def _connect(ctx: BackwardCFunction, out, nr: int, args) -> Tensor:
    """Output `nr` of the forward, as the tensor the caller gets: with `ctx` as its grad_fn if differentiable."""
    if not isinstance(out, Tensor) or any(out is t for t in ctx.non_differentiable):
        return out
    dirty = any(out is t for t in ctx.dirty_tensors)
    if dirty and out.grad_fn is None and out._requires_grad:
        raise RuntimeError("a leaf Variable that requires grad has been used in an in-place operation.")
    if not dirty and any(out is a for a in args):  # an input returned as it is: the output is a new tensor on it
        out = Tensor(out.data)
    out.grad_fn, out._output_nr = ctx, nr  # (a dirty input is rebased: its history now ends in this node)
    if dirty:
        out._bump_version()  # marking it dirty counts as a modification of its own, as in PyTorch
    return out


class DelayedError(Node):
    """Stands for the backward of a `@once_differentiable` backward: differentiating through it is an error."""

    def name(self) -> str:
        return "torch::autograd::DelayedError"

    def backward(self, *grads):
        raise RuntimeError("trying to differentiate twice a function that was marked with @once_differentiable")


def once_differentiable(backward):
    """Run `backward` without recording; where a graph was wanted, its results lead to a `DelayedError`."""

    @functools.wraps(backward)
    def wrapper(ctx, *grads):
        with no_grad():
            results = backward(ctx, *grads)
        if not is_grad_enabled() or not any(isinstance(g, Tensor) and g.requires_grad for g in grads):
            return results
        edges = tuple(g.gradient_edge() for g in grads if isinstance(g, Tensor))
        wrapped = tuple(
            r if r is None else _delayed(r, edges) for r in (results if isinstance(results, tuple) else (results,))
        )
        return wrapped if isinstance(results, tuple) else wrapped[0]

    return wrapper


def _delayed(result: Tensor, edges: tuple) -> Tensor:
    out = Tensor(result.data)
    out.grad_fn = DelayedError(edges)
    return out
