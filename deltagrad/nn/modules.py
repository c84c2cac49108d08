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

INITS = ("glorot", "glorot_normal", "he", "torch", "normal", "zeros")


def init_weight(fan_in: int, fan_out: int, init: str, rng, dtype=np.float32) -> np.ndarray:
    """A (fan_in, fan_out) weight: Glorot-uniform (U(±sqrt(6/(fan_in+fan_out)))), Glorot-normal
    (N(0, 2/(fan_in+fan_out)), vugrad's), He-uniform (U(±sqrt(6/fan_in)), for ReLU layers),
    PyTorch's default for Linear and Conv2d (U(±1/sqrt(fan_in)), its biases too), standard
    normal, or zeros."""
    if init == "torch":
        a = 1.0 / math.sqrt(fan_in)
        return rng.uniform(-a, a, size=(fan_in, fan_out)).astype(dtype)
    if init == "glorot":
        a = math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-a, a, size=(fan_in, fan_out)).astype(dtype)
    if init == "he":
        a = math.sqrt(6.0 / fan_in)
        return rng.uniform(-a, a, size=(fan_in, fan_out)).astype(dtype)
    if init == "glorot_normal":
        return (rng.standard_normal(size=(fan_in, fan_out)) * math.sqrt(2.0 / (fan_in + fan_out))).astype(dtype)
    if init == "normal":
        return rng.standard_normal(size=(fan_in, fan_out)).astype(dtype)
    if init == "zeros":
        return np.zeros((fan_in, fan_out), dtype=dtype)
    raise ValueError(f"unknown init {init!r}: choose one of {', '.join(INITS)}")


def init_bias(fan_in: int, fan_out: int, init: str, rng, xp=np, dtype: str = "float32"):
    """A layer's bias: zeros, or with ``init="torch"`` PyTorch's U(±1/sqrt(fan_in))."""
    if init != "torch":
        return xp.zeros((fan_out,), dtype=getattr(xp, dtype))
    a = 1.0 / math.sqrt(fan_in)
    return xp.asarray(rng.uniform(-a, a, size=(fan_out,)).astype(dtype))


class Linear:
    """``x @ W + b``; W is Glorot-initialised by default, b starts at zero."""

    def __init__(self, fan_in: int, fan_out: int, init: str = "glorot", rng=None, xp=np, dtype: str = "float32"):
        rng = rng if rng is not None else np.random.default_rng()
        self.W = Tensor(xp.asarray(init_weight(fan_in, fan_out, init, rng, np.dtype(dtype))), requires_grad=True)
        self.b = Tensor(init_bias(fan_in, fan_out, init, rng, xp, dtype), requires_grad=True)

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


class Conv2d:
    """A convolution layer: ``conv2d(x, W, b)`` with W[o,c,p,q] Glorot-initialised over its fans
    (c·p·q in, o·p·q out), b at zero.

    >>> conv = Conv2d(1, 6, 5, rng=np.random.default_rng(0))
    >>> conv(Tensor(np.ones((2, 1, 28, 28), dtype=np.float32))).shape
    (2, 6, 24, 24)
    """

    def __init__(self, channels_in: int, channels_out: int, kernel: int, init: str = "glorot", rng=None, xp=np,
                 dtype: str = "float32", padding: int = 0):
        rng = rng if rng is not None else np.random.default_rng()
        area = kernel * kernel
        flat = init_weight(channels_in * area, channels_out * area, init, rng, np.dtype(dtype))
        w = flat.reshape(-1)[: channels_out * channels_in * area].reshape(channels_out, channels_in, kernel, kernel)
        self.W = Tensor(xp.asarray(np.ascontiguousarray(w)), requires_grad=True)
        self.b = Tensor(init_bias(channels_in * area, channels_out, init, rng, xp, dtype), requires_grad=True)
        self.padding = padding

    def __call__(self, x: Tensor) -> Tensor:
        return F.conv2d(F.pad2d(x, self.padding), self.W, self.b)

    def parameters(self) -> list:
        return [self.W, self.b]


POOLS = tuple(F.POOLS)  # max (the seeds'), avg


class CNN:
    """The seeds' LeNet-style network: [conv k×k, activation, 2×2 pool] per entry of ``channels``,
    then flatten and fully connected layers ``hidden`` and the logits. Rows of 784 pixels are
    read as 1×28×28 images.

    >>> net = CNN(rng=np.random.default_rng(0))
    >>> net(Tensor(np.ones((3, 784), dtype=np.float32))).shape
    (3, 10)
    >>> [p.shape for p in net.parameters()][:4]
    [(6, 1, 5, 5), (6,), (16, 6, 5, 5), (16,)]
    """

    def __init__(self, channels=(6, 16), kernel: int = 5, hidden=(120, 84), pool: str = "max",
                 activation: str = "relu", init: str = "glorot", rng=None, xp=np, dtype: str = "float32",
                 image=(1, 28, 28), classes: int = 10):
        if pool not in POOLS:
            raise ValueError(f"unknown pool {pool!r}: choose one of {', '.join(POOLS)}")
        if activation not in F.ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}: choose one of {', '.join(F.ACTIVATIONS)}")
        rng = rng if rng is not None else np.random.default_rng()
        self.image, self.pool, self.activation = tuple(image), pool, activation
        side = cnn_side(image[1], kernel, len(channels))
        chans = [image[0], *channels]
        self.convs = [Conv2d(a, b, kernel, init, rng, xp, dtype) for a, b in zip(chans[:-1], chans[1:])]
        sizes = [chans[-1] * side * side, *hidden, classes]
        self.fcs = [Linear(a, b, init, rng, xp, dtype) for a, b in zip(sizes[:-1], sizes[1:])]
        self.layers = [*self.convs, *self.fcs]

    def __call__(self, x: Tensor) -> Tensor:
        act = F.ACTIVATIONS[self.activation]
        if len(x.shape) == 2:  # rows of pixels: the images, which need no gradient
            x = Tensor(x.value.reshape((x.shape[0], *self.image)))
        pool = F.POOLS[self.pool]
        # Max-pooling commutes with a non-decreasing activation (max(act(x)) = act(max(x)), and so
        # do their gradients): pooling first applies the activation to a quarter of the values.
        first = self.pool == "max" and self.activation in F.NON_DECREASING
        for conv in self.convs:
            x = act(pool(conv(x), 2)) if first else pool(act(conv(x)), 2)
        x = F.flatten(x)
        for fc in self.fcs[:-1]:
            x = act(fc(x))
        return self.fcs[-1](x)

    def parameters(self) -> list:
        return [p for layer in self.layers for p in layer.parameters()]


def cnn_side(side: int, kernel: int, blocks: int) -> int:
    """The image side after ``blocks`` of [valid k×k conv, 2×2 pool]; ValueError when nothing is left.

    >>> cnn_side(28, 5, 2)
    4
    """
    for _ in range(blocks):
        side = (side - kernel + 1) // 2
        if side < 1:
            raise ValueError(f"a {kernel}x{kernel} kernel leaves nothing of the image after {blocks} conv+pool blocks")
    return side
