import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxmlp.core.model import MLP


def make(**kw):
    return MLP(784, (128, 64), 10, rngs=nnx.Rngs(params=0), **kw)


def test_shapes_follow_the_users_784_128_64_10():
    m = make()
    params = nnx.state(m, nnx.Param)
    shapes = sorted(tuple(p.shape) for p in jax.tree.leaves(params))
    assert shapes == sorted([(784, 128), (128,), (128, 64), (64,), (64, 10), (10,)])
    assert m(jnp.ones((5, 784))).shape == (5, 10)


def numpy_forward(m: MLP, x: np.ndarray) -> np.ndarray:
    """The eval-mode MLP without norms written out in NumPy: relu(x W + b) per hidden layer, then the head."""
    for linear in m.hidden:
        x = np.maximum(x @ np.asarray(linear.kernel[...]) + np.asarray(linear.bias[...]), 0)
    return x @ np.asarray(m.head.kernel[...]) + np.asarray(m.head.bias[...])


def test_dropout_only_in_train_mode():
    m = make(dropout=0.5)
    x = jax.random.normal(jax.random.key(0), (4, 784))
    np.testing.assert_allclose(m(x, train=False), numpy_forward(m, np.asarray(x)), rtol=1e-4, atol=1e-5)
    a = m(x, train=True, rngs=nnx.Rngs(dropout=1))
    b = m(x, train=True, rngs=nnx.Rngs(dropout=2))
    assert not np.allclose(a, m(x, train=False)) and not np.allclose(a, b)
    c = m(x, train=True, rngs=nnx.Rngs(dropout=1))
    np.testing.assert_array_equal(a, c)  # same key, same mask
    # What the layer does to a hidden activation in train mode: zero with probability 0.5, else scaled by 1 / 0.5.
    kept = np.asarray(m.dropout(jnp.ones((100, 128)), deterministic=False, rngs=nnx.Rngs(dropout=3)))
    assert set(np.unique(kept)) == {0.0, 2.0} and 0.45 < np.mean(kept == 0) < 0.55


def test_batchnorm_uses_batch_stats_in_train_and_running_stats_in_eval():
    m = make(norm="batch")
    x = jax.random.normal(jax.random.key(0), (32, 784)) * 3 + 1
    before = nnx.state(m, nnx.BatchStat)
    out_eval = m(x, train=False)
    after_eval = nnx.state(m, nnx.BatchStat)
    for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(after_eval)):
        np.testing.assert_array_equal(a, b)  # eval does not touch running stats
    m(x, train=True)
    mean = m.norms[0].mean[...]
    pre = m.hidden[0](x)
    np.testing.assert_allclose(mean, 0.1 * pre.mean(0), rtol=1e-5, atol=1e-6)  # PyTorch momentum 0.1
    # In train mode a single-sample batch would normalize to zero; eval mode must not.
    assert not np.allclose(m(x[:1], train=False), m.head.bias[...])
    assert out_eval.shape == (32, 10)


@pytest.mark.parametrize("norm", ["none", "batch", "layer"])
def test_every_norm_builds_and_runs(norm):
    assert make(norm=norm, dropout=0.1)(jnp.zeros((3, 784)), train=True, rngs=nnx.Rngs(dropout=0)).shape == (3, 10)


def test_bf16_computes_in_bfloat16_with_float32_params():
    m = make(dtype=jnp.bfloat16, norm="layer")
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(nnx.state(m, nnx.Param)))
    logits, pre = m.forward(jnp.ones((2, 784)))
    assert pre[0].dtype == jnp.bfloat16 and logits.dtype == jnp.float32
