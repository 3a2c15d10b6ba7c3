"""With PyTorch installed (`pip install torch==2.13.0`): same graph, same gradients, same errors."""

import numpy as np
import pytest

import tracer
import tracer.nn as nn
from tests.test_tracer_graph import structure

torch = pytest.importorskip("torch")


def torch_structure(node, depth=0, out=None):
    out = [] if out is None else out
    name = None if node is None else node.name()
    out.append((depth, name))
    if node is not None:
        for child, _ in node.next_functions:
            torch_structure(child, depth + 1, out)
    return out


@pytest.mark.parametrize("norm", [None, "batch", "layer"])
def test_mlp_graph_and_gradients_equal_torch(norm):
    tracer.manual_seed(0)
    sizes = [(20, 16), (16, 8), (8, 5)]

    def layers(lib):
        mods = []
        for i, (a, b) in enumerate(sizes):
            mods.append(lib.Linear(a, b))
            if i < len(sizes) - 1:
                if norm == "batch":
                    mods.append(lib.BatchNorm1d(b))
                elif norm == "layer":
                    mods.append(lib.LayerNorm(b))
                mods.append(lib.ReLU())
        return lib.Sequential(*mods)

    ours, theirs = layers(nn), layers(torch.nn).double()
    theirs.load_state_dict({k: torch.from_numpy(v.astype(np.float64)) for k, v in ours.state_dict().items()})
    for p in ours.parameters():
        p.data = p.data.astype(np.float64)
    x = np.random.default_rng(0).standard_normal((6, 20))
    y = np.array([0, 1, 2, 3, 4, 0])
    loss = nn.CrossEntropyLoss()(ours(tracer.tensor(x)), y)
    ref = torch.nn.CrossEntropyLoss()(theirs(torch.from_numpy(x)), torch.from_numpy(y))
    assert structure(loss.grad_fn) == torch_structure(ref.grad_fn)
    loss.backward()
    ref.backward()
    for (name, p), (tname, tp) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert name == tname
        np.testing.assert_allclose(p.grad.data, tp.grad.numpy(), rtol=1e-9, atol=1e-12)


def _message(fn):
    with pytest.raises(RuntimeError) as e:
        fn()
    return str(e.value)


def test_error_messages_equal_torch():
    assert _message(lambda: tracer.ones(2, requires_grad=True).__mul__(2).backward()) == _message(
        lambda: (torch.ones(2, requires_grad=True) * 2).backward()
    )
    assert _message(lambda: tracer.ones(2).sum().backward()) == _message(lambda: torch.ones(2).sum().backward())
    assert _message(lambda: tracer.ones(2, requires_grad=True).add_(1.0)) == _message(
        lambda: torch.ones(2, requires_grad=True).add_(1.0)
    )

    def twice(lib):
        w = lib.ones(2, requires_grad=True)
        y = (w * w).sum()
        y.backward()
        y.backward()

    assert _message(lambda: twice(tracer)) == _message(lambda: twice(torch))


def _inplace_variants(lib):
    """PyTorch's in-place cases: a saved output modified (sigmoid, relu), a saved input modified after the op
    (mul), a saved output modified after an op that saves nothing (add), and a leaf changed under no_grad."""

    def sigmoid():
        b = lib.ones(3, requires_grad=True).sigmoid()
        b.add_(1.0)
        b.sum().backward()

    def relu():
        b = (lib.ones(3, requires_grad=True) * 2).relu()
        b.mul_(2.0)
        b.sum().backward()

    def mul():
        c = lib.ones(3, requires_grad=True) * 1.0
        d = c * c
        c.add_(1.0)
        d.sum().backward()

    def add():
        d = (lib.ones(3, requires_grad=True) + 1.0).exp()
        e = d + d
        d.add_(1.0)
        e.sum().backward()

    def leaf():
        w = lib.ones(3, requires_grad=True)
        z = w * w
        with lib.no_grad():
            w.add_(1.0)
        z.sum().backward()

    return [sigmoid, relu, mul, add, leaf]


@pytest.mark.parametrize("case", range(5))
def test_inplace_modification_messages_equal_torch(case):
    ours, theirs = _inplace_variants(tracer)[case], _inplace_variants(torch)[case]
    assert _message(ours) == _message(theirs)


def test_saved_output_is_packed_without_its_grad_fn_like_torch():
    for lib in (tracer, torch):
        y = lib.ones(3, requires_grad=True).sigmoid()
        saved = y.grad_fn._saved_result
        assert saved is not y and saved.grad_fn is y.grad_fn  # unpacked with the saving node as its grad_fn
        x = lib.ones(3, requires_grad=True) * 2
        assert x.tanh().grad_fn.next_functions[0][0] is x.grad_fn  # an input is kept as it is


def test_node_names_equal_torch():
    for lib in (tracer, torch):
        w = lib.ones(2, requires_grad=True)
        acc = (w * 2).grad_fn.next_functions[0][0]
        assert acc.name() == "torch::autograd::AccumulateGrad" and type(acc).__name__ == "AccumulateGrad"
        assert repr(acc).startswith("<AccumulateGrad object at 0x")


def _hooked_gradients(lib):
    """Node pre-hooks and post-hooks, and a post-accumulate-grad hook, each replacing or reading what it sees."""
    w = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
    v = lib.tensor([0.5, -1.0, 2.0], requires_grad=True)
    y = w * v
    seen = []
    y.grad_fn.register_prehook(lambda grad_outputs: (grad_outputs[0] * 2,))
    y.grad_fn.register_hook(lambda grad_inputs, grad_outputs: (grad_inputs[0] + 1, None))
    y.grad_fn.register_hook(lambda grad_inputs, grad_outputs: seen.append(len(grad_inputs)))
    w.register_post_accumulate_grad_hook(lambda p: seen.append(p.grad.numpy().tolist()))
    y.sum().backward()
    return w.grad.numpy().tolist(), v.grad, seen


def test_node_hooks_and_post_accumulate_grad_hook_equal_torch():
    ours, theirs = _hooked_gradients(tracer), _hooked_gradients(torch)
    assert ours[0] == theirs[0] == [2.0, -1.0, 5.0]  # 2 * v + 1
    assert ours[1] is None and theirs[1] is None  # a post-hook that returns None for an input cuts its gradient
    assert ours[2] == theirs[2] == [2, [2.0, -1.0, 5.0]]


@pytest.mark.parametrize("make", [lambda lib: lib.ones(2), lambda lib: lib.ones(2, requires_grad=True) * 2])
def test_hook_registration_errors_equal_torch(make):
    assert _message(lambda: make(tracer).register_post_accumulate_grad_hook(print)) == _message(
        lambda: make(torch).register_post_accumulate_grad_hook(print)
    )


def test_default_dtype_equals_torch():
    assert str(tracer.tensor([1.0, 2.0]).dtype) == str(torch.tensor([1.0, 2.0]).dtype).removeprefix("torch.")
    assert tracer.tensor(np.array([1.0])).dtype == np.float64  # an array keeps its dtype, as in torch
    assert tracer.get_default_dtype() == np.float32
    try:
        tracer.set_default_dtype(np.float64)
        assert tracer.tensor([1.0]).dtype == tracer.randn(2).dtype == tracer.zeros(2).dtype == np.float64
        assert tracer.nn.Linear(2, 3).weight.dtype == np.float64
    finally:
        tracer.set_default_dtype(np.float32)
    with pytest.raises(TypeError) as ours:
        tracer.set_default_dtype(np.int64)
    with pytest.raises(TypeError) as theirs:
        torch.set_default_dtype(torch.int64)
    assert str(ours.value) == str(theirs.value)


def test_module_reprs_equal_torch():
    def model(lib):
        inner = lib.Sequential(lib.Linear(3, 2, bias=False), lib.ReLU())
        return lib.Sequential(
            lib.Flatten(), lib.Linear(2, 3), lib.BatchNorm1d(3), lib.LayerNorm(3), lib.Dropout(0.2), inner
        )

    assert repr(model(nn)) == repr(model(torch.nn))
    assert repr(nn.CrossEntropyLoss()) == repr(torch.nn.CrossEntropyLoss())


def test_flatten_from_numpy_and_enable_grad_equal_torch():
    x = np.arange(24.0).reshape(2, 3, 4)
    ours, theirs = tracer.from_numpy(x), torch.from_numpy(x)
    x[0, 0, 0] = 7.0  # both share the array's memory
    assert ours.data[0, 0, 0] == theirs[0, 0, 0].item() == 7.0 and ours.dtype == np.float64
    for lib, t in ((nn, ours), (torch.nn, theirs)):
        t.requires_grad_()
        y = lib.Flatten()(t)
        assert tuple(y.shape) == (2, 12) and y.grad_fn.name() == "ViewBackward0"
    for lib in (tracer, torch):
        w = lib.ones(2, requires_grad=True)
        with lib.no_grad():
            with lib.enable_grad():
                assert (w * 2).requires_grad
            assert not (w * 2).requires_grad
        assert lib.enable_grad()(lambda t: (t * 2).requires_grad)(w)
