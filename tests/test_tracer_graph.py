"""tracer builds PyTorch's graph: node names, next_functions, AccumulateGrad, saved tensors, hooks, errors."""

import gc
import os
import subprocess
import sys
import warnings
import weakref

import numpy as np
import pytest

import tracer
import tracer.nn as nn
from tests.helpers import structure
from tracer import viz
from tracer.utils import checkpoint


def mlp():
    tracer.manual_seed(0)
    return nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))


ACC = "torch::autograd::AccumulateGrad"  # AccumulateGrad.name(), as PyTorch names it (its C++ class)

# What torch 2.x prints for CrossEntropyLoss(Sequential(Linear, ReLU, Linear, ReLU, Linear)(x), y).
MLP_GRAPH = [
    (0, "NllLossBackward0"),
    (1, "LogSoftmaxBackward0"),
    (2, "AddmmBackward0"),
    (3, ACC),
    (3, "ReluBackward0"),
    (4, "AddmmBackward0"),
    (5, ACC),
    (5, "ReluBackward0"),
    (6, "AddmmBackward0"),
    (7, ACC),
    (7, None),
    (7, "TBackward0"),
    (8, ACC),
    (5, "TBackward0"),
    (6, ACC),
    (3, "TBackward0"),
    (4, ACC),
]


def test_mlp_loss_graph_matches_pytorch():
    m = mlp()
    loss = nn.CrossEntropyLoss()(m(tracer.randn(4, 784)), np.array([1, 2, 3, 4]))
    assert structure(loss.grad_fn) == MLP_GRAPH
    addmm = loss.grad_fn.next_functions[0][0].next_functions[0][0]
    bias_acc, _ = addmm.next_functions[0]
    assert bias_acc.variable is m._modules["4"].bias  # (bias, input, weight.t())
    assert addmm._saved_mat1.shape == (4, 64) and addmm._saved_mat2.shape == (64, 10)


def test_one_accumulate_grad_per_leaf_and_none_edges():
    w = tracer.randn(3, requires_grad=True)
    c = tracer.randn(3)
    y = w * c + w * 2
    (left, _), (right, _) = y.grad_fn.next_functions
    assert left.next_functions[0][0] is right.next_functions[0][0]  # shared AccumulateGrad
    assert left.next_functions[1] == (None, 0)  # c needs no grad
    assert left.next_functions[0][0].variable is w


def test_leaf_rules_no_grad_and_detach():
    a = tracer.randn(2, requires_grad=True)
    b = a * 2
    assert not b.is_leaf and b.grad_fn.name() == "MulBackward0"
    with tracer.no_grad():
        c = a * 2
    assert c.is_leaf and c.grad_fn is None and not c.requires_grad
    d = tracer.randn(2) * 3
    assert d.is_leaf and not d.requires_grad
    e = b.detach()
    assert e.is_leaf and e.data is b.data
    e.add_(1.0)
    assert b._version == 1  # detach shares the version counter


def test_no_grad_is_a_context_manager_and_a_decorator_and_restores_the_mode():
    a = tracer.randn(2, requires_grad=True)

    @tracer.no_grad()
    def doubled(t, depth=1):
        return doubled(t, depth - 1) if depth else t * 2

    assert not doubled(a).requires_grad and (a * 2).requires_grad  # (a recursive call restores "off", then "on")
    with tracer.no_grad():
        with tracer.no_grad():
            pass
        assert not tracer.is_grad_enabled()  # the inner block restored "off", not "on"
    assert tracer.is_grad_enabled()
    with pytest.raises(ValueError), tracer.no_grad():
        raise ValueError
    assert tracer.is_grad_enabled()  # restored on an exception too


def test_accumulation_in_place_same_array():
    w = tracer.ones(3, requires_grad=True)
    (w * 2).sum().backward()
    first = w.grad.data
    (w * 3).sum().backward()
    assert w.grad.data is first
    np.testing.assert_array_equal(w.grad.data, [5, 5, 5])


def test_first_gradient_is_stolen_when_nothing_else_holds_it():
    """As PyTorch's AccumulateGrad: no copy when the engine's buffer is the gradient's only holder."""
    w = tracer.randn(3, 2, requires_grad=True)
    b = tracer.randn(3, requires_grad=True)
    arrived = {}
    w.register_hook(lambda g: arrived.__setitem__("w", id(g.data)))  # keeps no reference, returns None
    b.register_hook(lambda g: arrived.__setitem__("b", id(g.data)))
    nn.functional.linear(tracer.randn(4, 2), w, b).sum().backward()
    assert id(w.grad.data) == arrived["w"] and id(b.grad.data) == arrived["b"]
    assert w.grad.data.flags.c_contiguous  # laid out like the weight, though it left AddmmBackward0 transposed


def test_a_gradient_someone_else_holds_is_copied_not_shared():
    a, b = tracer.randn(3, requires_grad=True), tracer.randn(3, requires_grad=True)
    seed = tracer.ones(3)
    (a + b).backward(seed)  # AddBackward0 hands `seed`'s own array to a; b gets a fresh product
    kept = []
    c = tracer.randn(3, requires_grad=True)
    c.register_hook(kept.append)  # the hook keeps the gradient it saw (and returns None: no replacement)
    (c * 2).sum().backward()
    assert not np.shares_memory(a.grad.data, seed.data) and not np.shares_memory(a.grad.data, b.grad.data)
    assert not np.shares_memory(c.grad.data, kept[0].data)
    seed.data[...] = 7
    a.grad.data += 1
    np.testing.assert_array_equal(seed.data, 7)
    np.testing.assert_array_equal(b.grad.data, 1)
    np.testing.assert_array_equal(kept[0].data, 2)


def test_a_view_whose_base_is_shared_is_copied():
    x = tracer.randn(2, 3, requires_grad=True)
    y = tracer.randn(6, requires_grad=True)
    s = x.view(6) + y  # AddBackward0 hands g to the view's node and g * 1 to y
    g = tracer.randn(6)
    s.backward(g)  # x's gradient is g.reshape(2, 3): a view of the caller's array, so it must be copied
    assert not np.shares_memory(x.grad.data, g.data)


def test_backward_twice_and_saved_tensors_freed():
    w = tracer.randn(3, requires_grad=True)
    y = (w.exp() * w).sum()
    mul = y.grad_fn.next_functions[0][0]
    assert mul._saved_self.shape == (3,)
    y.backward(retain_graph=True)
    y.backward()  # retained once: allowed
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        y.backward()
    with pytest.raises(RuntimeError, match="after they have already been freed"):
        _ = mul._saved_self


def test_inplace_modification_of_saved_tensor():
    w = tracer.randn(3, requires_grad=True)
    y = w.exp()  # ExpBackward0 saves its result, y
    y.add_(1.0)  # bumps y's version to 1
    with pytest.raises(
        RuntimeError,
        match=r"modified by an inplace operation: \[torch.FloatTensor \[3\]\], "
        r"which is output 0 of .* is at version 1; expected version 0 instead",
    ):
        y.sum().backward()


def test_inplace_on_leaf_requiring_grad():
    w = tracer.randn(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place operation"):
        w.add_(1.0)
    with tracer.no_grad():
        w.add_(1.0)  # allowed, as an optimizer step does
    assert w._version == 1


def test_implicit_grad_and_no_grad_errors():
    w = tracer.randn(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar outputs"):
        (w * 2).backward()
    with pytest.raises(RuntimeError, match="element 0 of tensors does not require grad and does not have a grad_fn"):
        tracer.randn(3).sum().backward()


def test_non_leaf_grad_warning_and_retain_grad():
    w = tracer.randn(3, requires_grad=True)
    h = w * 2
    h.retain_grad()
    k = h * 3
    k.sum().backward()
    np.testing.assert_array_equal(h.grad.data, [3, 3, 3])
    with pytest.warns(UserWarning, match="is not a leaf Tensor is being accessed"):
        assert k.grad is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert w.grad is not None


def test_hooks_replace_gradient_and_leaf_hook_runs_before_accumulation():
    w = tracer.ones(3, requires_grad=True)
    h = w * 2
    seen = []
    handle = h.register_hook(lambda g: g * 10)
    w.register_hook(lambda g: seen.append((g.data.copy(), w.grad)))
    h.sum().backward()
    np.testing.assert_array_equal(w.grad.data, [20, 20, 20])
    assert seen[0][1] is None and seen[0][0].tolist() == [20, 20, 20]
    handle.remove()
    (w * 2).sum().backward()
    np.testing.assert_array_equal(w.grad.data, [22, 22, 22])


def test_engine_runs_highest_sequence_number_first():
    w = tracer.ones(2, requires_grad=True)
    a = w * 2
    b = w * 3
    c = a + b
    trace = []
    tracer.autograd.backward(c.sum(), trace=trace)
    names = [n.name() for n, _ in trace]
    assert names[:2] == ["SumBackward0", "AddBackward0"]  # one root: its node starts with the seed, no GraphRoot
    assert names[2:4] == ["MulBackward0", "MulBackward0"]
    assert trace[2][0]._sequence_nr > trace[3][0]._sequence_nr  # b's node (newer) first
    assert names[-1] == ACC and names.count(ACC) == 1  # buffer summed both


def test_several_roots_start_from_a_graph_root():
    w = tracer.ones(2, requires_grad=True)
    trace = []
    tracer.autograd.backward([(w * 2).sum(), (w * 3).sum()], trace=trace)
    assert trace[0][0].name() == "torch::autograd::GraphRoot" and len(trace[0][0].next_functions) == 2
    np.testing.assert_array_equal(w.grad.data, [5, 5])


def test_grad_runs_nothing_that_does_not_lead_to_its_inputs():
    w, z = tracer.ones(2, requires_grad=True), tracer.ones(2, requires_grad=True)
    y = (w * 2).sum()
    assert tracer.autograd.grad(y, z, allow_unused=True) == (None,)
    y.backward()  # y's own node did not run, so nothing of its graph was freed (as in PyTorch)
    np.testing.assert_array_equal(w.grad.data, [2, 2])


def test_long_chain_no_recursion():
    w = tracer.ones(1, requires_grad=True, dtype=np.float64)
    y = w
    for _ in range(10_000):
        y = y * 1.0001
    y.sum().backward()
    assert w.grad.data[0] == pytest.approx(1.0001**10_000)
    assert len(viz.dump(y).splitlines()) == 10_001  # 10,000 MulBackward0 + 1 AccumulateGrad
    assert viz.make_dot(y).count("->") == 10_001  # one edge per node, plus the output


def test_viz_names_parameters():
    m = mlp()
    loss = nn.CrossEntropyLoss()(m(tracer.randn(2, 784)), np.array([0, 1]))
    text = viz.dump(loss, dict(m.named_parameters()))
    assert "AccumulateGrad -> 0.weight (128, 784)" in text and "_saved_mat1: (2, 64)" in text
    dot = viz.make_dot(loss, dict(m.named_parameters()), show_saved=True)
    assert "4.bias" in dot and "AddmmBackward0" in dot and "mat2" in dot


def test_modules_state_dict_modes_and_batchnorm():
    bn = nn.BatchNorm1d(3)
    x = tracer.tensor(np.random.default_rng(0).standard_normal((8, 3)) * 2 + 1, dtype=np.float32)
    y = bn(x)
    np.testing.assert_allclose(y.data.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(bn.running_mean.data, 0.1 * x.data.mean(0), rtol=1e-5)
    np.testing.assert_allclose(bn.running_var.data, 0.9 + 0.1 * x.data.var(0, ddof=1), rtol=1e-5)
    bn.eval()
    assert not bn.training and y.grad_fn.name() == "NativeBatchNormBackward0"
    sd = bn.state_dict()
    assert list(sd) == ["weight", "bias", "running_mean", "running_var"]
    other = nn.BatchNorm1d(3)
    other.load_state_dict(sd)
    np.testing.assert_array_equal(other.running_var.data, bn.running_var.data)
    drop = nn.Dropout(0.5)
    out = drop(tracer.ones(1000))
    assert set(np.unique(out.data)) <= {0.0, 2.0} and out.grad_fn is None
    drop.eval()
    np.testing.assert_array_equal(drop(tracer.ones(4)).data, 1)


def test_python_numbers_keep_the_tensor_dtype():
    x = tracer.ones(3, requires_grad=True)  # float32, as torch.ones
    for y in (x * 2.0, 2.0 * x, x + 1, x - 1, 1 - x, x / 2, 2 / x, x**2):
        assert y.dtype == np.float32
    (x * 2.0).sum().backward()
    assert x.grad.dtype == np.float32
    assert tracer.tensor([1, 2]).dtype == np.int64 and tracer.tensor([1.0]).dtype == np.float32  # torch.tensor


def test_import_tracer_brings_nn_optim_and_autograd():
    code = "import tracer; tracer.nn.Linear; tracer.optim.Adam; tracer.autograd.grad; tracer.nn.functional.relu"
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": os.getcwd()})


def _graph_weakrefs(loss):
    return [weakref.ref(n) for n in viz.walk(loss.grad_fn)]


def test_graph_is_freed_by_reference_counting_alone():
    """As in PyTorch: no cycle runs through a graph, so with the cycle collector off it dies with its loss."""
    gc.disable()
    try:
        m = mlp()
        x = tracer.randn(4, 784)
        loss = nn.CrossEntropyLoss()(m(x).tanh().exp().sigmoid() * m(x).relu(), np.array([1, 2, 3, 4]))
        refs = _graph_weakrefs(loss)
        accumulator = m._modules["0"].weight.gradient_edge()[0]
        assert any(r() is accumulator for r in refs) and accumulator.variable is m._modules["0"].weight
        del accumulator, loss  # never backpropagated: its saved outputs are all still there
        assert len(refs) > 10 and all(r() is None for r in refs)  # every node, AccumulateGrads included
        loss = nn.CrossEntropyLoss()(m(x), np.array([1, 2, 3, 4]))
        refs = _graph_weakrefs(loss)
        loss.backward(retain_graph=True)
        del loss
        assert all(r() is None for r in refs)
        assert m._modules["0"].weight.grad is not None  # the parameters outlive their graph's accumulators
        nn.CrossEntropyLoss()(m(x), np.array([1, 2, 3, 4])).backward()  # a fresh AccumulateGrad adds into .grad
    finally:
        gc.enable()


def test_leaf_hooks_live_on_the_tensor_across_accumulators():
    gc.disable()
    try:
        w = tracer.ones(2, requires_grad=True)
        seen = []
        w.register_hook(lambda g: seen.append(g.data.tolist()))
        (w * 2).sum().backward()  # this graph and its AccumulateGrad die here
        (w * 3).sum().backward()  # a new AccumulateGrad finds the hook on w
        assert seen == [[2.0, 2.0], [3.0, 3.0]]
    finally:
        gc.enable()


def test_ready_accumulators_run_in_the_order_they_became_ready():
    """Equal sequence numbers (every AccumulateGrad has the largest) leave the heap in arrival order, so the
    engine's order, and `explain`'s printout of it, never depends on where objects sit in memory."""
    for _ in range(10):
        leaves = [tracer.randn(*s, requires_grad=True) for s in ((3,), (2, 4), (4, 3))]
        trace = []
        tracer.autograd.backward(tracer.addmm(*leaves).sum(), trace=trace)
        assert [n.variable for n, _ in trace[2:]] == leaves  # (bias, mat1, mat2): next_functions' order


def test_rand_returns_a_tensor_like_randn():
    tracer.manual_seed(3)
    r = tracer.rand(2, 3, requires_grad=True)
    assert isinstance(r, tracer.Tensor) and r.requires_grad and r.dtype == np.float32
    assert (r.data >= 0).all() and (r.data < 1).all()


def _mlp_loss_and_grads(checkpointed: bool, p_drop: float = 0.2):
    tracer.manual_seed(0)
    m = nn.Sequential(
        nn.Linear(784, 128), nn.ReLU(), nn.Dropout(p_drop), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10)
    )
    x = tracer.randn(32, 784)
    hidden = nn.Sequential(*list(m._modules.values())[:5])
    h = checkpoint.checkpoint(hidden, x) if checkpointed else hidden(x)
    loss = nn.CrossEntropyLoss()(m._modules["5"](h), np.arange(32) % 10)
    kept = viz.saved_bytes(loss)
    loss.backward()
    return kept, [p.grad.data for p in m.parameters()]


def test_checkpoint_recomputes_instead_of_saving():
    plain_bytes, plain = _mlp_loss_and_grads(checkpointed=False)
    kept_bytes, grads = _mlp_loss_and_grads(checkpointed=True)
    for a, b in zip(plain, grads):
        np.testing.assert_array_equal(a, b)  # the same ops again, the same dropout mask: the same gradients
    # Saved by the hidden layers without checkpointing: their input (32x784, as mm's mat1), the two ReLU outputs,
    # the dropout mask's product and the weights the matrix products hold; with it, only the last layer's.
    assert plain_bytes - kept_bytes >= 32 * 784 * 4 and kept_bytes < plain_bytes / 4


def test_saved_tensors_hooks_see_every_saved_tensor_and_feed_backward():
    packed = []
    w = tracer.tensor([0.5, 1.0, 2.0], requires_grad=True)
    with tracer.autograd.graph.saved_tensors_hooks(lambda t: packed.append(t) or len(packed) - 1, packed.__getitem__):
        y = (w * w).exp().sum()  # MulBackward0 saves self and other, ExpBackward0 its result
    assert len(packed) == 3 and viz.saved_bytes(y) == 0  # the graph holds positions, the hook holds the tensors
    y.backward()
    np.testing.assert_allclose(w.grad.data, 2 * w.data * np.exp(w.data * w.data), rtol=1e-6)
