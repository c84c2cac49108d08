"""A small autodiff graph in the vugrad spirit: tensor nodes, op nodes, backward in reverse
topological order, gradients summed where a tensor is used twice.

The graph never differentiates anything itself: every op it runs is a generated ``Op`` class
(``forward(context, ...)``/``backward(context, goutput)``). It imports no other runtime module:
the functions over tensors, Tensor's operators among them, live in ``deltagrad.nn.functions``.

>>> import numpy as np
>>> from deltagrad.generated import Multiply
>>> x = Tensor(np.array([[2.0]]), requires_grad=True)
>>> y = apply(Multiply, x, x)          # x used twice
>>> backward(y)
>>> x.grad
array([[4.]])
"""

from __future__ import annotations

from deltagrad.op_base import array_namespace


class Tensor:
    """A value in the graph; ``source`` is the op node that made it (None for a leaf).

    The operators ``+ - * / @`` and unary ``-`` run generated ops; :mod:`deltagrad.nn.functions`,
    which sits above this module, attaches them (it is imported with the package ``deltagrad.nn``).
    """

    __slots__ = ("value", "grad", "source", "requires_grad")
    __array_priority__ = 1000  # so that numpy_array * tensor defers to Tensor

    def __init__(self, value, source=None, requires_grad: bool = False):
        self.value = value
        self.grad = None
        self.source = source
        self.requires_grad = requires_grad

    @property
    def shape(self):
        return tuple(self.value.shape)

    def __repr__(self):
        return f"Tensor(shape={self.shape}, requires_grad={self.requires_grad})"

    def backward(self):
        """Backpropagate from this tensor (a scalar loss, or with ``grad`` already set)."""
        backward(self)


class OpNode:
    """One application of an op: the op class, its context, its inputs."""

    __slots__ = ("op", "context", "inputs")

    def __init__(self, op, context, inputs):
        self.op, self.context, self.inputs = op, context, inputs


def apply(op, *inputs, **sizes) -> Tensor:
    """Run ``op.forward`` on the inputs' values and record the node when a gradient is needed.

    Inputs may be tensors or plain values (numbers, arrays) that need no gradient.
    """
    values = [t.value if isinstance(t, Tensor) else t for t in inputs]
    context: dict = {}
    out = op.forward(context, *values, **sizes)
    needs = tuple(isinstance(t, Tensor) and t.requires_grad for t in inputs)
    if not any(needs):
        return Tensor(out)
    if not all(needs):
        context["needs_input_grad"] = needs  # the generated backward skips the others
    return Tensor(out, OpNode(op, context, inputs), True)


def topological_order(root: Tensor) -> list:
    """Tensors that lead to ``root`` (``root`` last), each after all its inputs; no recursion."""
    order, seen = [], set()
    stack = [(root, False)]
    while stack:
        t, expanded = stack.pop()
        if expanded:
            order.append(t)
            continue
        if id(t) in seen:
            continue
        seen.add(id(t))
        stack.append((t, True))
        if t.source is not None:
            for inp in t.source.inputs:
                if isinstance(inp, Tensor) and inp.requires_grad and id(inp) not in seen:
                    stack.append((inp, False))
    return order


def backward(root: Tensor) -> None:
    """Fill ``.grad`` of every tensor that ``root`` depends on (summing over uses)."""
    if root.grad is None:
        root.grad = 1.0 if not root.shape else array_namespace(root.value).ones_like(root.value)
    for t in reversed(topological_order(root)):
        node = t.source
        if node is None or t.grad is None:
            continue
        grads = node.op.backward(node.context, t.grad)
        for inp, g in zip(node.inputs, grads):
            if isinstance(inp, Tensor) and inp.requires_grad:
                inp.grad = g if inp.grad is None else inp.grad + g
        node.context.clear()  # free the saved arrays early
