"""Run a lowered array program directly, without generating source (used to confirm rewrites).

>>> import numpy as np
>>> from deltagrad.derive.array_program import BinOp, Call, Var
>>> evaluate(BinOp('*', Var('G'), Call('exp', (Var('X'),))), {'G': np.ones(2), 'X': np.zeros(2)}, np)
array([1., 1.])
"""

from __future__ import annotations

import operator

from deltagrad.derive.array_program import Assign, Visitor
from deltagrad.derive.functions import SPECIAL_CALLS, stand_in
from deltagrad.op_base import special

_BINOPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv, "**": operator.pow, "@": operator.matmul,
           "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq}


class Evaluator(Visitor):
    """The value of each node, with variables from ``env`` and functions from namespace ``xp``.

    The plain data of a Call's arguments (ints, floats, tuples of them) is its own value.

    >>> import numpy as np
    >>> from deltagrad.derive.array_program import Subscript, Var
    >>> Evaluator({'X': np.arange(6).reshape(2, 3)}, np).visit(Subscript(Var('X'), (1, ':')))
    array([3, 4, 5])
    """

    what = "evaluate"

    def __init__(self, env: dict, xp):
        self.env = env
        self.xp = xp

    def visit_Var(self, node):
        return self.env[node.name]

    def visit_Const(self, node):
        return node.value

    def visit_int(self, node):
        return node

    visit_float = visit_bool = visit_int

    def visit_Neg(self, node):
        return -self.visit(node.operand)

    def visit_BinOp(self, node):
        return _BINOPS[node.op](self.visit(node.left), self.visit(node.right))

    def visit_Call(self, node):
        fn = special(self.xp) if node.fn in SPECIAL_CALLS else self.xp
        for part in node.fn.split("."):
            fn = getattr(fn, part)
        return fn(*self.visit(node.args), **{k: self.visit(v) for k, v in node.kwargs})

    def visit_Apply(self, node):
        """A generic function: its implementation from ``env`` when given, else a fixed stand-in."""
        fn = self.env.get(node.fn)
        if not callable(fn):
            fn = stand_in(node.fn)
        return fn(*self.visit(node.args))

    def visit_Helper(self, node):
        from deltagrad import op_base

        return getattr(op_base, node.fn)(self.xp, *self.visit(node.args))

    def visit_Attr(self, node):
        return getattr(self.visit(node.value), node.name)

    def visit_Subscript(self, node):
        key = tuple(slice(None) if k == ":" else k for k in node.key)
        return self.visit(node.value)[key]


def evaluate(node, env: dict, xp):
    """The value of ``node`` with variables from ``env`` and functions from namespace ``xp``."""
    return Evaluator(env, xp).visit(node)


def run(statements, env: dict, xp) -> dict:
    """Execute :class:`Assign` statements in order; returns the extended environment."""
    env = dict(env)
    evaluator = Evaluator(env, xp)
    for s in statements:
        assert isinstance(s, Assign)
        env[s.target] = evaluator.visit(s.value)
    return env
