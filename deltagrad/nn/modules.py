"""Modules: Linear layers and an MLP, built from graph tensors and generated ops.

>>> import numpy as np
>>> net = MLP([4, 3, 2], activation="relu", rng=np.random.default_rng(0))
>>> net(Tensor(np.ones((5, 4)))).shape
(5, 2)
>>> [p.shape for p in net.parameters()]
[(4, 3), (3,), (3, 2), (2,)]
"""

from __future__ import annotations

import math

import numpy as np

from deltagrad.nn import functions as F
from deltagrad.nn.graph import Tensor

INITS = ("glorot", "glorot_normal", "normal", "zeros")


def init_weight(fan_in: int, fan_out: int, init: str, rng, dtype=np.float32) -> np.ndarray:
    """A (fan_in, fan_out) weight: Glorot-uniform (U(±sqrt(6/(fan_in+fan_out)))), Glorot-normal
    (N(0, 2/(fan_in+fan_out)), vugrad's), standard normal, or zeros."""
    if init == "glorot":
        a = math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-a, a, size=(fan_in, fan_out)).astype(dtype)
    if init == "glorot_normal":
        return (rng.standard_normal(size=(fan_in, fan_out)) * math.sqrt(2.0 / (fan_in + fan_out))).astype(dtype)
    if init == "normal":
        return rng.standard_normal(size=(fan_in, fan_out)).astype(dtype)
    if init == "zeros":
        return np.zeros((fan_in, fan_out), dtype=dtype)
    raise ValueError(f"unknown init {init!r}: choose one of {', '.join(INITS)}")


class Linear:
    """``x @ W + b``; W is Glorot-initialised by default, b starts at zero."""

    def __init__(self, fan_in: int, fan_out: int, init: str = "glorot", rng=None, xp=np, dtype: str = "float32"):
        rng = rng if rng is not None else np.random.default_rng()
        self.W = Tensor(xp.asarray(init_weight(fan_in, fan_out, init, rng, np.dtype(dtype))), requires_grad=True)
        self.b = Tensor(xp.zeros((fan_out,), dtype=getattr(xp, dtype)), requires_grad=True)

    def __call__(self, x: Tensor) -> Tensor:
        return F.linear(x, self.W, self.b)

    def parameters(self) -> list:
        return [self.W, self.b]


class MLP:
    """Linear layers with an activation between them; the last layer gives logits.

    ``sizes`` = [inputs, hidden..., outputs]. With ``residual=True`` a hidden layer whose input
    and output widths agree adds its input to its output.
    """

    def __init__(self, sizes, activation: str = "relu", init: str = "glorot", residual: bool = False,
                 rng=None, xp=np, dtype: str = "float32"):
        if activation not in F.ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}: choose one of {', '.join(F.ACTIVATIONS)}")
        rng = rng if rng is not None else np.random.default_rng()
        self.sizes = list(sizes)
        self.activation = activation
        self.residual = residual
        self.layers = [Linear(a, b, init, rng, xp, dtype) for a, b in zip(sizes[:-1], sizes[1:])]

    def __call__(self, x: Tensor) -> Tensor:
        act = F.ACTIVATIONS[self.activation]
        for layer in self.layers[:-1]:
            h = act(layer(x))
            x = h + x if self.residual and h.shape == x.shape else h
        return self.layers[-1](x)

    def parameters(self) -> list:
        return [p for layer in self.layers for p in layer.parameters()]
