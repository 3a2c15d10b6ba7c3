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

from tracer.graph import Node
from tracer.tensor import Tensor, _grad_enabled, is_grad_enabled, no_grad

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
        return tuple(self._saved[str(i)].unpack(self) for i in range(len(self._saved)))


class BackwardCFunction(FunctionCtx, Node):
    """The node of one call of a custom Function; it is also the `ctx` its forward and backward receive."""

    to_save: tuple = ()
    dirty_tensors: tuple = ()
    non_differentiable: tuple = ()
    materialize_grads = True
    _forward_cls: type[Function]

    def backward(self, *grads):
        """The engine's call: the user's `backward`, its results checked and handed back as the engine holds grads."""
        if self.materialize_grads:
            grads = tuple(
                Tensor(np.zeros(shape, dtype)) if g is None else g for g, (shape, dtype) in zip(grads, self._outputs)
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
            kept.append(r if r is None or _grad_enabled[0] else getattr(r, "data", r))
        return tuple(kept)


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
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        with no_grad():
            result = cls.forward(ctx, *args)
        outputs = result if isinstance(result, tuple) else (result,)
        if is_grad_enabled() and any(ctx.needs_input_grad):
            outputs = tuple(_connect(ctx, out, nr, args) for nr, out in enumerate(outputs))
            ctx._outputs = [(o.shape, o.dtype) for o in outputs]
            ctx.num_inputs = len(outputs)
            for i, t in enumerate(ctx.to_save):
                ctx.save(str(i), t, is_output=any(t is o for o in outputs))
            ctx.to_save = ()
        return outputs if isinstance(result, tuple) else outputs[0]


def _connect(ctx: BackwardCFunction, out, nr: int, args) -> Tensor:
    """Output `nr` of the forward, as the tensor the caller gets: with `ctx` as its grad_fn if differentiable."""
    if not isinstance(out, Tensor) or any(out is t for t in ctx.non_differentiable):
        return out
    dirty = any(out is t for t in ctx.dirty_tensors)
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
