"""Optimisers that update parameter tensors in place: SGD (with momentum) and Adam.

>>> import numpy as np
>>> from deltagrad.nn.graph import Tensor
>>> p = Tensor(np.array([1.0]), requires_grad=True); p.grad = np.array([0.5])
>>> SGD([p], lr=0.1).step(); p.value
array([0.95])
"""

from __future__ import annotations

import math

from deltagrad.op_base import array_namespace


class SGD:
    """Stochastic gradient descent; with ``momentum`` > 0, heavy-ball momentum."""

    def __init__(self, params, lr: float = 0.01, momentum: float = 0.0):
        self.params, self.lr, self.momentum = list(params), lr, momentum
        self.velocity = [None] * len(self.params)

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

    def zero_grad(self):
        for p in self.params:
            p.grad = None


class Adam:
    """Adam (Kingma & Ba) with bias correction."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params, self.lr, self.betas, self.eps = list(params), lr, betas, eps
        self.m = [None] * len(self.params)
        self.v = [None] * len(self.params)
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

    def zero_grad(self):
        for p in self.params:
            p.grad = None


def make_optimizer(name: str, params, lr: float, momentum: float = 0.0):
    """``sgd`` (momentum 0 unless given), ``momentum`` (SGD, momentum 0.9 unless given) or ``adam``."""
    if name == "sgd":
        return SGD(params, lr, momentum)
    if name == "momentum":
        return SGD(params, lr, momentum or 0.9)
    if name == "adam":
        return Adam(params, lr)
    raise ValueError(f"unknown optimizer {name!r}: choose sgd, momentum or adam")
