"""With PyTorch installed (`pip install torch==2.13.0`): same graph, same gradients, same errors."""

import subprocess
import sys

import numpy as np
import pytest

import tracer
import tracer.nn as nn
from tests.helpers import structure

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


def test_create_graph_gradients_carry_graphs_like_torch():
    for lib in (tracer, torch):
        x = lib.tensor([1.5, 2.0], requires_grad=True)
        (g,) = lib.autograd.grad(x.exp().sum(), x, create_graph=True)
        assert g.grad_fn.name() == "MulBackward0"  # grad * result: the seed (no edge) times exp's saved output
        assert [n if n is None else n.name() for n, _ in g.grad_fn.next_functions] == [None, "ExpBackward0"]
        (x**3).sum().backward(create_graph=True)
        assert x.grad.grad_fn.name() == "torch::autograd::CopyBackwards" and x.grad.requires_grad


CREATE_GRAPH_TWICE = """
import warnings, {lib}
x = {lib}.tensor([1.5, 2.0], requires_grad=True)
for _ in range(2):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (x**3).sum().backward(create_graph=True)
    print(sum("create a reference cycle" in str(w.message) for w in caught))
"""


@pytest.mark.parametrize("lib", ["tracer", "torch"])
def test_backward_with_create_graph_warns_once_per_process_like_torch(lib):
    # A fresh interpreter: the warning is once per process, so any earlier test may have used it up.
    done = subprocess.run([sys.executable, "-c", CREATE_GRAPH_TWICE.format(lib=lib)], capture_output=True, text=True)
    assert done.stdout.split() == ["1", "0"], done.stderr


@pytest.mark.parametrize("name", ["jacobian", "hessian", "vjp", "jvp", "vhp", "hvp"])
def test_functional_equals_torch(name):
    a, b = np.array([[0.3, -1.2, 2.0], [0.1, 0.4, -0.7]]), np.array([[0.5, -1.0], [2.0, 0.3], [-0.4, 1.1]])

    def f(lib):
        if name in ("jacobian", "vjp", "jvp"):  # two outputs
            return lambda x, y: ((x.exp() @ y).tanh(), (x * x).sum())
        return lambda x, y: ((x.exp() @ y).tanh() * 2.0).sum()

    def call(lib, module, wrap):
        xs = (wrap(a), wrap(b))
        if name in ("jacobian", "hessian"):
            return getattr(module, name)(f(lib), xs)
        v = (wrap(np.ones((2, 2))), wrap(np.array(1.0))) if name == "vjp" else (wrap(a * 0.5), wrap(b - 1.0))
        return getattr(module, name)(f(lib), xs, v)

    ours = call(tracer, tracer.autograd.functional, tracer.tensor)
    theirs = call(torch, torch.autograd.functional, torch.tensor)
    flat = lambda r: [t for item in r for t in (item if isinstance(item, tuple) else (item,))]
    flat_ours, flat_theirs = flat(flat(ours)), flat(flat(theirs))
    assert len(flat_ours) == len(flat_theirs)
    for o, t in zip(flat_ours, flat_theirs):
        assert tuple(o.shape) == tuple(t.shape)
        np.testing.assert_allclose(o.data, t.detach().numpy(), rtol=1e-9, atol=1e-12)


def test_forward_ad_equals_torch():
    def run(lib, fw):
        with fw.dual_level():
            x = fw.make_dual(lib.tensor([0.3, -1.2, 2.0]), lib.tensor([1.0, 0.5, -2.0]))
            w = lib.tensor([[0.2, -0.4, 0.1], [1.0, 0.3, -0.7]])
            out = fw.unpack_dual(((w @ x.view(3, 1)).tanh().exp() * x.sum()).log_softmax(0))
            nested = _message(lambda: fw.dual_level().__enter__())
            size = _message(lambda: fw.make_dual(lib.ones(2), lib.ones(3)))
        outside = _message(lambda: fw.make_dual(lib.ones(2), lib.ones(2)))
        return type(out).__name__, out._fields, out.tangent.numpy().tolist(), nested, size, outside

    ours, theirs = run(tracer, tracer.autograd.forward_ad), run(torch, torch.autograd.forward_ad)
    assert ours[:2] == theirs[:2] and ours[3:] == theirs[3:]
    np.testing.assert_allclose(ours[2], theirs[2], rtol=1e-6)


def _functions(lib):
    """The same custom Functions, written once against either library."""
    base = lib.autograd.Function

    class Scale(base):  # a non-tensor argument, two outputs (the second non-differentiable), a saved output
        @staticmethod
        def forward(ctx, x, k, w):
            y = (x * w).exp() * k
            ctx.save_for_backward(x, w, y)
            ctx.mark_non_differentiable(flag := x.abs())
            ctx.seen = ctx.needs_input_grad
            return y, flag

        @staticmethod
        def backward(ctx, grad, grad_flag):
            x, w, y = ctx.saved_tensors
            ctx.got_zeros = grad_flag.sum().item() == 0  # a gradient that never came is materialized as zeros
            return grad * y * w, None, grad * y * x

    class Twice(base):  # modifies its input in place
        @staticmethod
        def forward(ctx, x):
            x.mul_(2.0)
            ctx.mark_dirty(x)
            return x

        @staticmethod
        def backward(ctx, grad):
            return grad * 2.0

    class Square(base):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        @lib.autograd.function.once_differentiable
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return 2.0 * x * grad

    return Scale, Twice, Square


def _custom(lib):
    Scale, Twice, Square = _functions(lib)
    x = lib.tensor([0.5, -1.0, 2.0], requires_grad=True)
    w = lib.tensor([1.5, 0.5, -0.25], requires_grad=True)
    y, flag = Scale.apply(x, 3.0, w)
    node = y.grad_fn
    facts = [node.name(), [n.name() for n, _ in node.next_functions], flag.requires_grad, node.seen]
    facts.append(node.saved_tensors[2] is not y and node.saved_tensors[0] is x)  # an output is packed, an input not
    (gx, gw) = lib.autograd.grad(y.sum(), [x, w], create_graph=True)
    facts.append(node.got_zeros)
    (hx,) = lib.autograd.grad((gx * gw).sum(), x)  # double backward through a custom Function
    b = x * 1.0
    c = Twice.apply(b)
    facts += [c is b, c.grad_fn.name(), b._version]
    c.sum().backward()
    z = lib.tensor([1.0, 2.0], requires_grad=True)
    (g,) = lib.autograd.grad(Square.apply(z).sum(), z, create_graph=True, grad_outputs=lib.ones((), requires_grad=True))
    facts += [g.requires_grad, _message(lambda: g.sum().backward())]
    return facts, [t.detach().numpy() for t in (y, gx, gw, hx, x.grad)]


def test_custom_functions_equal_torch():
    ours, theirs = _custom(tracer), _custom(torch)
    assert ours[0] == theirs[0]
    for o, t in zip(ours[1], theirs[1]):
        np.testing.assert_allclose(o, t, rtol=1e-6)


def test_custom_function_errors_equal_torch():
    def bad(lib, returns):
        class Bad(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x, k):
                return x * k

            @staticmethod
            def backward(ctx, g):
                return returns(g)

        x = lib.ones(1, requires_grad=True)
        return lambda: Bad.apply(x, 2.0).sum().backward() or x.grad.item()

    for returns in (lambda g: (g, g), lambda g: (g,), lambda g: g):
        assert _message(bad(tracer, returns)) == _message(bad(torch, returns))
    surplus = lambda g: (g * 3.0, None, None)  # trailing Nones beyond the arguments are dropped
    assert bad(tracer, surplus)() == bad(torch, surplus)() == 3.0


def test_saved_tensors_hooks_equal_torch():
    def run(lib):
        calls = []

        def pack(t):
            calls.append(tuple(t.shape))
            return lib.tensor(t.detach().numpy() * 2.0)  # what backward gets back: a doubled copy

        w = lib.tensor([0.5, 1.0, 2.0], requires_grad=True)
        with lib.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            y = ((w * w).exp() + w.tanh()).sum()
        y.backward()
        return calls, w.grad.numpy()

    (ours, g_ours), (theirs, g_theirs) = run(tracer), run(torch)
    assert ours == theirs
    np.testing.assert_allclose(g_ours, g_theirs, rtol=1e-6)


def test_checkpoint_equals_torch():
    def run(lib, checkpoint):
        lib.manual_seed(0)
        w1 = lib.tensor(np.linspace(-1, 1, 12).reshape(4, 3), requires_grad=True)
        w2 = lib.tensor(np.linspace(0.5, -0.5, 8).reshape(2, 4), requires_grad=True)
        x = lib.tensor(np.linspace(-2, 2, 15).reshape(5, 3))
        h = checkpoint(lambda x: (x @ w1.T).tanh().relu(), x, use_reentrant=False)
        (h @ w2.T).exp().sum().backward()
        return w1.grad.numpy(), w2.grad.numpy()

    for ours, theirs in zip(
        run(tracer, tracer.utils.checkpoint.checkpoint), run(torch, torch.utils.checkpoint.checkpoint)
    ):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_anomaly_mode_equals_torch():
    def nan(lib):
        x = lib.tensor([-1.0, 2.0], requires_grad=True)
        with pytest.warns(UserWarning, match="Anomaly Detection has been enabled"):
            mode = lib.autograd.detect_anomaly()
        with mode, np.errstate(invalid="ignore"):
            y = x**0.5  # the forward call the warning points at
            with pytest.warns(UserWarning, match="Error detected in PowBackward0") as record:
                message = _message(lambda: y.sum().backward())
        return message, str(record[0].message)

    (ours, our_warning), (theirs, their_warning) = nan(tracer), nan(torch)
    assert ours == theirs == "Function 'PowBackward0' returned nan values in its 0th output."
    assert our_warning.splitlines()[0] == their_warning.splitlines()[0]  # "Error detected in PowBackward0. ..."
    assert "test_tracer_vs_torch.py" in our_warning and "y = x**0.5" in our_warning
    assert not tracer.is_anomaly_enabled()
    for lib in (tracer, torch):
        with lib.autograd.set_detect_anomaly(True, check_nan=False):
            assert lib.is_anomaly_enabled() and not lib.is_anomaly_check_nan_enabled()
            messages = [_message(case) for case in _inplace_variants(lib)]
        assert not lib.is_anomaly_enabled()
        if lib is tracer:
            ours = messages
    assert ours == messages and "Good luck!" in ours[0]


def test_isub_is_in_place_as_in_torch():
    """`p -= x` changes the object everyone holds (same identity, version bumped); on a non-leaf it rebases the
    history onto a SubBackward0 whose gradients equal torch's; on a leaf that requires grad, outside no_grad,
    it is torch's error."""

    def run(lib, data):
        w = lib.tensor(data, requires_grad=True)
        with lib.no_grad():
            before, version = w, w._version
            w -= lib.tensor([0.5, 0.5, 0.5])
            same = (w is before, w._version - version)
        h = w * 3.0
        h -= w * w
        out = (h * h).sum()
        out.backward()
        return same, h.grad_fn.name(), w.data.copy() if lib is tracer else w.detach().numpy(), w.grad

    data = np.array([1.0, -2.0, 0.25])
    t_same, t_name, t_w, t_grad = run(tracer, data)
    p_same, p_name, p_w, p_grad = run(torch, data)
    assert t_same == p_same == (True, 1)
    assert t_name == p_name == "SubBackward0"
    np.testing.assert_allclose(t_w, p_w)
    np.testing.assert_allclose(t_grad.data, p_grad.numpy(), rtol=1e-12)
    assert _message(lambda: tracer.ones(2, requires_grad=True).sub_(1.0)) == _message(
        lambda: torch.ones(2, requires_grad=True).sub_(1.0)
    )
