"""With PyTorch installed (`pip install torch==2.13.0`): same graph, same gradients, same errors."""

import numpy as np
import pytest

import tracer
import tracer.nn as nn
from tests.test_tracer_graph import structure

torch = pytest.importorskip("torch")


def torch_structure(node, depth=0, out=None):
    out = [] if out is None else out
    name = None if node is None else ("AccumulateGrad" if type(node).__name__ == "AccumulateGrad" else node.name())
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
