"""Run a lowered array program directly, without generating source (used to confirm rewrites).

>>> import numpy as np
>>> from deltagrad.derive.array_program import BinOp, Call, Var
>>> evaluate(BinOp('*', Var('G'), Call('exp', (Var('X'),))), {'G': np.ones(2), 'X': np.zeros(2)}, np)
array([1., 1.])
"""

from __future__ import annotations

import operator

from deltagrad.derive.array_program import Assign, Attr, BinOp, Call, Const, Neg, Subscript, Var

_BINOPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv, "**": operator.pow, "@": operator.matmul}


def evaluate(node, env: dict, xp):
    """The value of ``node`` with variables from ``env`` and functions from namespace ``xp``."""
    if isinstance(node, Var):
        return env[node.name]
    if isinstance(node, Const):
        return node.value
    if isinstance(node, Neg):
        return -evaluate(node.operand, env, xp)
    if isinstance(node, BinOp):
        return _BINOPS[node.op](evaluate(node.left, env, xp), evaluate(node.right, env, xp))
    if isinstance(node, Call):
        fn = xp
        for part in node.fn.split("."):
            fn = getattr(fn, part)
        args = [_value(a, env, xp) for a in node.args]
        return fn(*args, **{k: _value(v, env, xp) for k, v in node.kwargs})
    if isinstance(node, Attr):
        return getattr(evaluate(node.value, env, xp), node.name)
    if isinstance(node, Subscript):
        key = tuple(slice(None) if k == ":" else k for k in node.key)
        return evaluate(node.value, env, xp)[key]
    raise TypeError(f"cannot evaluate {node!r}")


def _value(v, env, xp):
    if isinstance(v, tuple):
        return tuple(_value(x, env, xp) for x in v)
    if isinstance(v, (int, float)):
        return v
    return evaluate(v, env, xp)


def run(statements, env: dict, xp) -> dict:
    """Execute :class:`Assign` statements in order; returns the extended environment."""
    env = dict(env)
    for s in statements:
        assert isinstance(s, Assign)
        env[s.target] = evaluate(s.value, env, xp)
    return env
