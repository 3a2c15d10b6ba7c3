import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxmlp.model import MLP


def make(**kw):
    return MLP(784, (128, 64), 10, rngs=nnx.Rngs(params=0), **kw)


def test_shapes_follow_the_users_784_128_64_10():
    m = make()
    params = nnx.state(m, nnx.Param)
    shapes = sorted(tuple(p.shape) for p in jax.tree.leaves(params))
    assert shapes == sorted([(784, 128), (128,), (128, 64), (64,), (64, 10), (10,)])
    assert m(jnp.ones((5, 784))).shape == (5, 10)


def test_dropout_only_in_train_mode():
    m = make(dropout=0.5)
    x = jnp.ones((4, 784))
    np.testing.assert_array_equal(m(x, train=False), m(x, train=False))
    a = m(x, train=True, rngs=nnx.Rngs(dropout=1))
    b = m(x, train=True, rngs=nnx.Rngs(dropout=2))
    assert not np.allclose(a, b)
    c = m(x, train=True, rngs=nnx.Rngs(dropout=1))
    np.testing.assert_array_equal(a, c)  # same key, same mask


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
