"""tracer's dropout drops what it says it drops: a fraction p of the units, each kept one scaled by 1/(1-p)."""

import numpy as np
import pytest

import tracer
import tracer.nn as nn


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_dropout_drops_a_binomial_fraction_and_scales_the_rest(p):
    tracer.manual_seed(0)
    n = 20_000
    layer = nn.Dropout(p)
    out = layer(tracer.ones(n)).data
    dropped = np.mean(out == 0)
    sigma = np.sqrt(p * (1 - p) / n)  # the binomial standard deviation of the dropped fraction
    assert abs(dropped - p) < 5 * sigma, (dropped, p)
    np.testing.assert_allclose(out[out != 0], 1 / (1 - p), rtol=1e-6)
    layer.eval()
    np.testing.assert_array_equal(layer(tracer.ones(n)).data, np.ones(n))  # eval mode: the identity
