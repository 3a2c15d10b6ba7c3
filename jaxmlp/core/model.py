"""The MLP: Linear -> [norm] -> activation -> [dropout], repeated, then a Linear head.

Train and eval behave as in PyTorch: `train=True` samples dropout masks and
normalizes with batch statistics (updating the running averages);
`train=False` turns dropout off and uses the running statistics. The mode is
an argument, not hidden module state, so the pure functions in `jaxmlp.core.train`
say which one they use.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxmlp.names import ACTIVATIONS

ACTIVATION_FUNCTIONS = dict(zip(ACTIVATIONS, (nnx.relu, nnx.gelu, nnx.tanh, nnx.silu)))


class MLP(nnx.Module):
    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int],
        num_classes: int,
        *,
        activation: str = "relu",
        dropout: float = 0.0,
        norm: str = "none",
        dtype=None,
        rngs: nnx.Rngs,
    ):
        """`dtype` is the compute dtype (e.g. bfloat16 on accelerators); parameters always stay float32."""
        self.activation = activation
        self.norm = norm
        sizes = [in_features, *hidden]
        self.hidden = nnx.List([nnx.Linear(a, b, dtype=dtype, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:])])
        if norm == "batch":
            # momentum=0.9 in Flax's convention equals PyTorch's BatchNorm1d momentum=0.1.
            self.norms = nnx.List(
                [
                    nnx.BatchNorm(h, momentum=0.9, epsilon=1e-5, use_fast_variance=False, dtype=dtype, rngs=rngs)
                    for h in hidden
                ]
            )
        elif norm == "layer":
            self.norms = nnx.List(
                [nnx.LayerNorm(h, epsilon=1e-5, use_fast_variance=False, dtype=dtype, rngs=rngs) for h in hidden]
            )
        else:
            self.norms = None
        self.dropout = nnx.Dropout(dropout) if dropout > 0 else None
        self.head = nnx.Linear(sizes[-1], num_classes, dtype=dtype, rngs=rngs)

    def __call__(self, x: jax.Array, *, train: bool = False, rngs: nnx.Rngs | None = None) -> jax.Array:
        return self.forward(x, train=train, rngs=rngs)[0]

    def forward(self, x: jax.Array, *, train: bool = False, rngs: nnx.Rngs | None = None):
        """Logits, and the pre-activations of every hidden layer (what each activation function sees)."""
        act = ACTIVATION_FUNCTIONS[self.activation]
        pre = []
        for i, linear in enumerate(self.hidden):
            x = linear(x)
            if self.norm == "batch":
                x = self.norms[i](x, use_running_average=not train)
            elif self.norm == "layer":
                x = self.norms[i](x)
            pre.append(x)
            x = act(x)
            if self.dropout is not None:
                x = self.dropout(x, deterministic=not train, rngs=rngs)
        return self.head(x).astype(jnp.float32), pre  # the loss is always computed in float32
