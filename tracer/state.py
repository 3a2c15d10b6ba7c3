"""tracer's global state, in one place that imports nothing else of tracer's (as torch's `grad_mode.h`):
grad mode, the default dtype, forward-mode tangents, anomaly mode, saved-tensor hooks; and the context managers
that set grad mode (`no_grad`, `enable_grad`, `set_grad_enabled`).

Each is a one-element list (or a list used as a stack), so modules that import it share the one value.
"""

from __future__ import annotations

import functools
import inspect
import weakref

import numpy as np

_grad_enabled = [True]
_default_dtype = [np.dtype(np.float32)]  # torch.get_default_dtype(): what Python floats become
_tangents = [None]  # inside forward_ad.dual_level(): a TangentTable, tensor -> its tangent (an array)
_anomaly = [False, True]  # anomaly mode: (enabled, check_nan)
_saved_tensors_hooks: list = []  # (pack, unpack) pairs, innermost last: autograd.graph.saved_tensors_hooks


class TangentTable:
    """tensor -> tangent, keyed by identity and holding tensors weakly (a WeakKeyDictionary would compare keys
    with `==`, which on tensors is elementwise)."""

    def __init__(self):
        self._items: dict[int, tuple] = {}
        self.originals: dict[int, object] = {}  # id(tangent array) -> the tensor make_dual was given

    def _forget(self, key: int):
        return lambda _ref: self._items.pop(key, None)

    def __setitem__(self, t, tangent) -> None:
        self._items[id(t)] = (weakref.ref(t, self._forget(id(t))), tangent)

    def get(self, t, default=None):
        item = self._items.get(id(t))
        return default if item is None or item[0]() is not t else item[1]

    def __getitem__(self, t):
        return self._items[id(t)][1]

    def __contains__(self, t) -> bool:
        item = self._items.get(id(t))
        return item is not None and item[0]() is t

    def pop(self, t, default=None):
        item = self._items.pop(id(t), None)
        return default if item is None else item[1]


def is_grad_enabled() -> bool:
    return _grad_enabled[0]


def set_default_dtype(d) -> None:
    """The dtype of tensors made from Python floats and of `randn`/`zeros`/... without a dtype (float32 at start)."""
    d = np.dtype(d)
    if d.kind != "f":
        raise TypeError("only floating-point types are supported as the default type")
    _default_dtype[0] = d


def get_default_dtype() -> np.dtype:
    return _default_dtype[0]


class _GradMode:
    """Sets grad mode inside a `with` block, or around every call of a decorated function (torch's
    `_DecoratorContextManager`): `@no_grad()` and bare `@no_grad` both decorate, and a decorated generator runs
    each of its steps in the mode, handing the caller's mode back at every `yield`.

    A class rather than a generator (cheaper to enter); `no_grad` and `enable_grad` differ only in `enabled`.
    """

    enabled: bool

    def __new__(cls, fn=None):
        self = super().__new__(cls)
        return self if fn is None else self(fn)  # bare `@no_grad`: decorate at once

    def __enter__(self):
        self._prev = _grad_enabled[0]
        _grad_enabled[0] = self.enabled

    def __exit__(self, *exc):
        _grad_enabled[0] = self._prev

    def clone(self):
        return type(self)()

    def __call__(self, fn):
        if inspect.isgeneratorfunction(fn):
            return _wrap_generator(self, fn)

        @functools.wraps(fn)
        def in_mode(*args, **kwargs):
            with self.clone():  # a fresh one per call: a recursive call must restore its own caller's mode
                return fn(*args, **kwargs)

        return in_mode


def _wrap_generator(mode: _GradMode, fn):
    """Each step of the generator (next, send, throw, close) runs in `mode`; the caller's mode is back at yield."""

    @functools.wraps(fn)
    def generator(*args, **kwargs):
        gen = fn(*args, **kwargs)
        try:
            with mode.clone():
                response = gen.send(None)
            while True:
                try:
                    request = yield response
                except GeneratorExit:
                    with mode.clone():
                        gen.close()
                    raise
                except BaseException as error:
                    with mode.clone():
                        response = gen.throw(error)
                else:
                    with mode.clone():
                        response = gen.send(request)
        except StopIteration as stop:
            return stop.value

    return generator


class no_grad(_GradMode):
    """Ops inside build no graph; their results are leaves that do not require grad (torch.no_grad)."""

    enabled = False


class enable_grad(_GradMode):
    """Ops inside record a graph again, e.g. inside a `no_grad` block (torch.enable_grad)."""

    enabled = True


class set_grad_enabled(_GradMode):
    """Sets grad mode at once (as a function call) and back at the end of a `with` block (torch.set_grad_enabled)."""

    def __new__(cls, mode: bool):
        return object.__new__(cls)

    def __init__(self, mode: bool):
        self._prev, self.enabled = _grad_enabled[0], bool(mode)
        _grad_enabled[0] = self.enabled

    def __enter__(self):
        pass

    def clone(self):
        return type(self)(self.enabled)
