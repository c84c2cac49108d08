"""Optimisers that update parameter tensors in place: SGD (with momentum), Adam and RMSProp.

Each keeps its state as arrays (one per parameter, or None before the first step) and numbers;
``state_dict()`` and ``load_state_dict()`` carry them to a checkpoint and back, so that a resumed
run takes exactly the steps an uninterrupted one would.

>>> import numpy as np
>>> from deltagrad.nn.graph import Tensor
>>> p = Tensor(np.array([1.0]), requires_grad=True); p.grad = np.array([0.5])
>>> SGD([p], lr=0.1).step(); p.value
array([0.95])
"""

from __future__ import annotations

import math

from deltagrad.op_base import array_namespace


class Optimizer:
    """What the optimisers share: the parameters, ``zero_grad`` and the state's round trip."""

    #: names of the per-parameter state arrays; and of the numbers in the state
    arrays: tuple = ()
    numbers: tuple = ()

    def __init__(self, params, lr: float):
        self.params, self.lr = list(params), lr
        for name in self.arrays:
            setattr(self, name, [None] * len(self.params))

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def state_dict(self) -> dict:
        """``{"arrays": {name: [array or None per parameter]}, "numbers": {name: value}}``."""
        return {"arrays": {name: list(getattr(self, name)) for name in self.arrays},
                "numbers": {name: getattr(self, name) for name in self.numbers}}

    def load_state_dict(self, state: dict, xp=None) -> None:
        """Take over a state from :meth:`state_dict` (arrays are moved into ``xp`` when given)."""
        for name in self.arrays:
            values = state["arrays"][name]
            if len(values) != len(self.params):
                raise ValueError(f"optimiser state {name!r} has {len(values)} entries for "
                                 f"{len(self.params)} parameters")
            for v, p in zip(values, self.params):
                if v is not None and tuple(v.shape) != tuple(p.value.shape):
                    raise ValueError(f"optimiser state {name!r} has shape {tuple(v.shape)}, its parameter "
                                     f"{tuple(p.value.shape)}")
            setattr(self, name, [None if v is None else (xp.asarray(v) if xp is not None else v) for v in values])
        for name in self.numbers:
            setattr(self, name, state["numbers"][name])


class SGD(Optimizer):
    """Stochastic gradient descent; with ``momentum`` > 0, heavy-ball momentum."""

    arrays = ("velocity",)

    def __init__(self, params, lr: float = 0.01, momentum: float = 0.0):
        super().__init__(params, lr)
        self.momentum = momentum

    def step(self):
        for n, p in enumerate(self.params):
            if p.grad is None:
                continue
            if self.momentum:
                v = self.velocity[n]
                if v is None:
                    v = self.velocity[n] = p.grad * 0
                v *= self.momentum
                v += p.grad
                p.value -= self.lr * v
            else:
                p.value -= self.lr * p.grad


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction."""

    arrays = ("m", "v")
    numbers = ("t",)

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8):
        super().__init__(params, lr)
        self.betas, self.eps = betas, eps
        self.t = 0

    def step(self):
        self.t += 1
        b1, b2 = self.betas
        scale = self.lr * math.sqrt(1 - b2**self.t) / (1 - b1**self.t)
        for n, p in enumerate(self.params):
            g = p.grad
            if g is None:
                continue
            if self.m[n] is None:
                self.m[n], self.v[n] = g * 0, g * 0
            m, v = self.m[n], self.v[n]
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * (g * g)
            xp = array_namespace(g)
            p.value -= scale * m / (xp.sqrt(v) + self.eps)


class RMSProp(Optimizer):
    """RMSProp (Hinton's lecture 6e, in PyTorch's form): a running mean of squared gradients
    ``v ← αv + (1-α)g²`` divides each step, ``p ← p - lr·g/(√v + ε)``; v starts at zero."""

    arrays = ("v",)

    def __init__(self, params, lr: float = 1e-3, alpha: float = 0.99, eps: float = 1e-8):
        super().__init__(params, lr)
        self.alpha, self.eps = alpha, eps

    def step(self):
        for n, p in enumerate(self.params):
            g = p.grad
            if g is None:
                continue
            if self.v[n] is None:
                self.v[n] = g * 0
            v = self.v[n]
            v *= self.alpha
            v += (1 - self.alpha) * (g * g)
            xp = array_namespace(g)
            p.value -= self.lr * g / (xp.sqrt(v) + self.eps)


def make_optimizer(name: str, params, lr: float, momentum: float = 0.0):
    """``sgd`` (momentum 0 unless given), ``momentum`` (SGD, momentum 0.9 unless given), ``adam``
    or ``rmsprop``."""
    if name == "sgd":
        return SGD(params, lr, momentum)
    if name == "momentum":
        return SGD(params, lr, momentum or 0.9)
    if name == "adam":
        return Adam(params, lr)
    if name == "rmsprop":
        return RMSProp(params, lr)
    raise ValueError(f"unknown optimizer {name!r}: choose sgd, momentum, adam or rmsprop")
