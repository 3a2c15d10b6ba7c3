"""SGD, Adam and AdamW with PyTorch's exact update rules and defaults (torch.optim)."""

from __future__ import annotations

import math

import numpy as np


class Optimizer:
    """The parameters, their per-parameter state, and `step()`: one update of every parameter that has a grad.

    As in torch.optim, `step` reads the hyperparameters once and hands the whole list to one loop
    (`_step`, the counterpart of torch's `_single_tensor_sgd` / `_single_tensor_adam`).
    """

    def __init__(self, params, defaults: dict):
        self.params = list(params)
        self.defaults = defaults
        self.state: dict = {p: {} for p in self.params}  # keyed by the parameter itself, as torch.optim keys it

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p._grad = None
            elif p._grad is not None:
                p._grad.data[...] = 0

    def step(self) -> None:
        # (The updates are NumPy arithmetic on `.data`, so they build no graph: torch needs no_grad here, we don't.)
        self._step([p for p in self.params if p._grad is not None], **self.defaults)

    def _step(self, params: list, **hyperparameters) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """buf = momentum*buf + (1-dampening)*g (buf = g on the first step).

    p -= lr * (g + momentum*buf if nesterov else buf).
    """

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(
            params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov)
        )

    def _step(self, params, lr, momentum, dampening, weight_decay, nesterov):
        for p in params:
            g = p._grad.data
            if weight_decay:
                g = g + weight_decay * p.data
            if momentum:
                state = self.state[p]
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = g.copy()
                else:
                    buf *= momentum
                    buf += (1 - dampening) * g
                g = g + momentum * buf if nesterov else buf
            p.data -= lr * g
            p._bump_version()  # an in-place update, like torch's p.add_(...)


class Adam(Optimizer):
    """m, v moments with bias correction; p -= lr * m_hat / (sqrt(v_hat) + eps). weight_decay is L2 on the gradient."""

    decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    def _step(self, params, lr, betas, eps, weight_decay):
        b1, b2 = betas
        for p in params:
            g, state = p._grad.data, self.state[p]
            if weight_decay and self.decoupled:
                p.data *= 1 - lr * weight_decay
            elif weight_decay:
                g = g + weight_decay * p.data
            if not state:
                state.update(step=0, exp_avg=np.zeros_like(p.data), exp_avg_sq=np.zeros_like(p.data))
            state["step"] += 1
            m, v, t = state["exp_avg"], state["exp_avg_sq"], state["step"]
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            bias1, bias2 = 1 - b1**t, 1 - b2**t
            denom = np.sqrt(v) / math.sqrt(bias2) + eps  # math.sqrt: a Python float keeps float32 arrays float32
            p.data -= (lr / bias1) * m / denom
            p._bump_version()


class AdamW(Adam):
    """Adam with decoupled weight decay (p *= 1 - lr*wd before the step); PyTorch's default wd is 1e-2."""

    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr, betas, eps, weight_decay)
