"""Render lowered array programs as Python source, with the fewest parentheses that are exact.

>>> from deltagrad.derive.array_program import BinOp, Call, Var, Neg
>>> render(BinOp('*', Var('G'), BinOp('-', Var('Y'), Call('exp', (Var('X'),)))))
'G * (Y - xp.exp(X))'
>>> render(Neg(BinOp('/', Var('G'), BinOp('**', Var('Z'), Var('p')))))
'-(G / Z**p)'
"""

from __future__ import annotations

from deltagrad.derive.array_program import Attr, BinOp, Call, Const, Neg, Subscript, Var

_PREC = {"+": 1, "-": 1, "*": 2, "/": 2, "@": 2, "neg": 3, "**": 4, "atom": 5}


def _prec(node) -> int:
    if isinstance(node, BinOp):
        return _PREC[node.op]
    if isinstance(node, Neg) or (isinstance(node, Const) and node.value < 0):
        return _PREC["neg"]
    return _PREC["atom"]


def _wrap(node, needed: int, strict: bool) -> str:
    text = render(node)
    p = _prec(node)
    return f"({text})" if p < needed or (strict and p == needed) else text


def _value(v) -> str:
    if isinstance(v, tuple):
        inner = ", ".join(_value(x) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return repr(v)
    return render(v)


def render(node) -> str:
    """Python source for one expression node; ``xp`` is the array namespace."""
    if isinstance(node, Var):
        return node.name
    if isinstance(node, Const):
        return repr(node.value)
    if isinstance(node, Neg):
        return "-" + _wrap(node.operand, _PREC["neg"], False)
    if isinstance(node, BinOp):
        p = _PREC[node.op]
        if node.op == "**":
            return f"{_wrap(node.left, p, True)}**{_wrap(node.right, p, False)}"
        return f"{_wrap(node.left, p, False)} {node.op} {_wrap(node.right, p, True)}"
    if isinstance(node, Call):
        args = [_value(a) for a in node.args] + [f"{k}={_value(v)}" for k, v in node.kwargs]
        return f"xp.{node.fn}({', '.join(args)})"
    if isinstance(node, Attr):
        return f"{_wrap(node.value, _PREC['atom'], False)}.{node.name}"
    if isinstance(node, Subscript):
        key = ", ".join("None" if k is None else str(k) for k in node.key)
        return f"{_wrap(node.value, _PREC['atom'], False)}[{key}]"
    raise TypeError(f"cannot render {node!r}")


def render_statements(statements) -> list[str]:
    """One line of Python per :class:`~deltagrad.derive.array_program.Assign`.

    >>> from deltagrad.derive.array_program import Assign
    >>> render_statements([Assign('Y', BinOp('/', Var('X'), Var('Z')))])
    ['Y = X / Z']
    """
    return [f"{s.target} = {render(s.value)}" for s in statements]
