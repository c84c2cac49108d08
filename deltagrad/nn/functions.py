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


def sigmoid(x):
    """Logistic sigmoid."""
    return apply(G.Sigmoid, x)


def relu(x):
    """Rectified linear unit."""
    return apply(G.Relu, x)


def tanh(x):
    """Hyperbolic tangent."""
    return apply(G.Tanh, x)


def softmax(x):
    """Row-wise softmax."""
    return apply(G.Softmax, x)


def softmax_cross_entropy(logits, targets):
    """Mean cross-entropy of row-wise softmax(logits) against one-hot or probability rows."""
    return apply(G.SoftmaxCrossEntropy, logits, targets)


ACTIVATIONS = {"sigmoid": sigmoid, "relu": relu, "tanh": tanh}


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
