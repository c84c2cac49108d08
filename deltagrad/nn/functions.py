"""Functions on graph tensors, each one generated op (from ``deltagrad.generated``).

This module sits above :mod:`deltagrad.nn.graph` (the graph never imports it) and gives
``Tensor`` its operators: ``x + y`` is ``add(x, y)``, ``-`` ``subtract``, ``*`` ``multiply``
(either side), ``/`` ``divide``, ``@`` ``matmul`` and ``-x`` ``multiply(x, -1.0)``.

>>> import numpy as np
>>> from deltagrad.nn.graph import Tensor
>>> x = Tensor(np.zeros((1, 2)), requires_grad=True)
>>> sigmoid(x).value
array([[0.5, 0.5]])
>>> y = Tensor(np.full((1, 2), 1.5))
>>> (2.0 * (x + y) @ Tensor(np.ones((2, 1)))).value
array([[6.]])
>>> (-(x - y) / 3.0).value
array([[0.5, 0.5]])
"""

from __future__ import annotations

from deltagrad import generated as G
from deltagrad.nn.graph import Tensor, apply


def _is_scalar(v) -> bool:
    return isinstance(v, (int, float)) or (not isinstance(v, Tensor) and getattr(v, "shape", None) == ())


def add(x, y):
    """Element-wise ``x + y`` of two matrices."""
    return apply(G.Add, x, y)


def subtract(x, y):
    """Element-wise ``x - y`` of two matrices."""
    return apply(G.Subtract, x, y)


def multiply(x, y):
    """Element-wise product; a number on either side scales the matrix."""
    if _is_scalar(y):
        return apply(G.Scale, y, x)
    if _is_scalar(x):
        return apply(G.Scale, x, y)
    return apply(G.Multiply, x, y)


def divide(x, y):
    """Element-wise ``x / y``; a number below scales by its inverse."""
    if _is_scalar(y):
        return apply(G.Scale, 1.0 / y, x)
    return apply(G.Divide, x, y)


def matmul(x, w):
    """Matrix product ``x @ w``."""
    return apply(G.Matmul, x, w)


def linear(x, w, b):
    """``x @ w + b`` with the bias broadcast over rows."""
    return apply(G.Linear, x, w, b)


def _elementwise(op, x):
    """An element-wise op of matrices applied to ``x`` of any rank (through a reshape to rows)."""
    if len(x.shape) == 2:
        return apply(op, x)
    return reshape(apply(op, reshape(x, (x.shape[0], -1))), x.shape)


def sigmoid(x):
    """Logistic sigmoid (of any rank)."""
    return _elementwise(G.Sigmoid, x)


def relu(x):
    """Rectified linear unit (of any rank)."""
    return _elementwise(G.Relu, x)


def conv2d(x, w, b):
    """Valid 2-D convolution (cross-correlation, stride 1) of images ``x[b,c,h,w]`` with
    kernels ``w[o,c,p,q]``, plus the bias ``b[o]``: the generated ``Conv2d`` op."""
    return apply(G.Conv2d, x, w, b)


def avg_pool2d(x, size: int = 2):
    """Average over ``size``×``size`` windows with stride 2 (the generated ``AvgPool2d``)."""
    return apply(G.AvgPool2d, x, p=size, q=size)


def max_pool2d(x, size: int = 2):
    """Maximum over ``size``×``size`` windows with stride 2 (the generated ``MaxPool2d``)."""
    return apply(G.MaxPool2d, x, p=size, q=size)


#: The CNN's pooling functions by name.
POOLS = {"max": max_pool2d, "avg": avg_pool2d}


class Reshape:
    """A hand-written runtime op (not derived: a general reshape is no index expression):
    forward reshapes to ``shape``, backward reshapes the gradient back."""

    @staticmethod
    def forward(context, X, *, shape):
        context["shape"] = tuple(X.shape)
        return X.reshape(shape)

    @staticmethod
    def backward(context, goutput):
        return (goutput.reshape(context["shape"]),)


class Pad2d:
    """A hand-written runtime op: zero padding of the last two axes by ``pad`` on each side
    (a spec reads only in range, ``X[i-1]`` is refused, so a "same" convolution pads first).
    Backward is the slice of the gradient that the input occupied."""

    @staticmethod
    def forward(context, X, *, pad):
        from deltagrad.op_base import array_namespace

        xp = array_namespace(X)
        h, w = X.shape[-2:]
        out = xp.zeros((*X.shape[:-2], h + 2 * pad, w + 2 * pad), dtype=X.dtype)
        out[..., pad:pad + h, pad:pad + w] = X
        context["pad"], context["size"] = pad, (h, w)
        return out

    @staticmethod
    def backward(context, goutput):
        pad, (h, w) = context["pad"], context["size"]
        return (goutput[..., pad:pad + h, pad:pad + w],)


def flatten(x):
    """``x[b, ...]`` as rows ``x[b, k]``: images ``x[b,c,i,j]`` through the generated Flatten
    (``Y[b,(c,i,j)] = X[b,c,i,j]``), other ranks through a :class:`Reshape`."""
    if len(x.shape) == 4:
        return apply(G.Flatten, x)
    return apply(Reshape, x, shape=(x.shape[0], -1))


def reshape(x, shape):
    """``x`` with a new shape (a :class:`Reshape`)."""
    return apply(Reshape, x, shape=tuple(shape))


def pad2d(x, pad: int):
    """``x`` with ``pad`` zeros on each side of its last two axes (a :class:`Pad2d`)."""
    return apply(Pad2d, x, pad=pad) if pad else x


def tanh(x):
    """Hyperbolic tangent (of any rank)."""
    return _elementwise(G.Tanh, x)


def softmax(x):
    """Row-wise softmax."""
    return apply(G.Softmax, x)


def softmax_cross_entropy(logits, targets):
    """Mean cross-entropy of row-wise softmax(logits) against one-hot or probability rows."""
    return apply(G.SoftmaxCrossEntropy, logits, targets)


ACTIVATIONS = {"sigmoid": sigmoid, "relu": relu, "tanh": tanh}
#: The activations that never decrease: max-pooling commutes with them, gradients included.
NON_DECREASING = frozenset({"sigmoid", "relu", "tanh"})


# ---- Tensor's operators ------------------------------------------------------------------------

def _attach_operators(cls=Tensor) -> None:
    """Give ``cls`` (the graph's ``Tensor``) the operators ``+ - * / @`` and unary ``-``."""

    def __add__(self, other):
        return add(self, other)

    def __sub__(self, other):
        return subtract(self, other)

    def __mul__(self, other):
        return multiply(self, other)

    def __truediv__(self, other):
        return divide(self, other)

    def __matmul__(self, other):
        return matmul(self, other)

    def __neg__(self):
        return multiply(self, -1.0)

    for method in (__add__, __sub__, __mul__, __truediv__, __matmul__, __neg__):
        method.__qualname__ = f"{cls.__qualname__}.{method.__name__}"
        setattr(cls, method.__name__, method)
    cls.__rmul__ = __mul__


_attach_operators()
