"""Render lowered array programs as Python source, with the fewest parentheses that are exact.

>>> from deltagrad.derive.array_program import BinOp, Call, Var, Neg
>>> render(BinOp('*', Var('G'), BinOp('-', Var('Y'), Call('exp', (Var('X'),)))))
'G * (Y - xp.exp(X))'
>>> render(Neg(BinOp('/', Var('G'), BinOp('**', Var('Z'), Var('p')))))
'-(G / Z**p)'
"""

from __future__ import annotations

from deltagrad.derive.array_program import BinOp, Const, Neg, Visitor, needed
from deltagrad.derive.functions import SPECIAL_CALLS
from deltagrad.derive.names import NAMES

_PREC = {"==": 0, "<": 0, "<=": 0, ">": 0, ">=": 0, "+": 1, "-": 1, "*": 2, "/": 2, "@": 2, "neg": 3, "**": 4,
         "atom": 5}


def _prec(node) -> int:
    if isinstance(node, BinOp):
        return _PREC[node.op]
    if isinstance(node, Neg) or (isinstance(node, Const) and node.value < 0):
        return _PREC["neg"]
    return _PREC["atom"]


class PythonPrinter(Visitor):
    """Python source for each node kind; the plain data of a Call's arguments (ints, floats,
    tuples of them) prints as a Python literal.

    >>> from deltagrad.derive.array_program import Call, Subscript, Var
    >>> PythonPrinter().visit(Call('sum', (Var('X'),), (('axis', (0, 1)),)))
    'xp.sum(X, axis=(0, 1))'
    >>> PythonPrinter().visit(Subscript(Var('M'), (':', None)))
    'M[:, None]'
    """

    what = "render"

    def wrap(self, node, needed: int, strict: bool) -> str:
        """``node`` in parentheses where its precedence is below ``needed`` (or equal, if strict)."""
        text = self.visit(node)
        p = _prec(node)
        return f"({text})" if p < needed or (strict and p == needed) else text

    def visit_Var(self, node):
        return node.name

    def visit_Const(self, node):
        return repr(node.value)

    visit_int = visit_float = visit_str = repr  # plain data in a Call's arguments (never a bool)

    def visit_NoneType(self, node):
        return "None"

    def visit_tuple(self, node):
        inner = ", ".join(self.visit(x) for x in node)
        return f"({inner},)" if len(node) == 1 else f"({inner})"

    def visit_Neg(self, node):
        return "-" + self.wrap(node.operand, _PREC["neg"], False)

    def visit_BinOp(self, node):
        p = _PREC[node.op]
        if node.op == "**":
            return f"{self.wrap(node.left, p, True)}**{self.wrap(node.right, p, False)}"
        return f"{self.wrap(node.left, p, False)} {node.op} {self.wrap(node.right, p, True)}"

    def visit_Call(self, node):
        args = [self.visit(a) for a in node.args] + [f"{k}={self.visit(v)}" for k, v in node.kwargs]
        if node.fn in SPECIAL_CALLS:  # erf, erfc, sigmoid: not in the array API (deltagrad.op_base.special)
            return f"special(xp).{node.fn}({', '.join(args)})"
        return f"xp.{node.fn}({', '.join(args)})"

    def visit_Apply(self, node):
        return f"{node.fn}({', '.join(self.visit(a) for a in node.args)})"

    def visit_Helper(self, node):
        return f"{node.fn}(xp, {', '.join(self.visit(a) for a in node.args)})"

    def visit_Runtime(self, node):
        return f"{node.fn}({', '.join(self.visit(a) for a in node.args)})"

    def visit_Attr(self, node):
        return f"{self.wrap(node.value, _PREC['atom'], False)}.{node.name}"

    def visit_Subscript(self, node):
        key = ", ".join("None" if k is None else str(k) for k in node.key)
        return f"{self.wrap(node.value, _PREC['atom'], False)}[{key}]"


def render(node) -> str:
    """Python source for one expression node; ``xp`` is the array namespace."""
    return PythonPrinter().visit(node)


def render_statements(statements, printer=None) -> list[str]:
    """One line of Python per :class:`~deltagrad.derive.array_program.Assign`.

    >>> from deltagrad.derive.array_program import Assign, BinOp, Var
    >>> render_statements([Assign('Y', BinOp('/', Var('X'), Var('Z')))])
    ['Y = X / Z']
    """
    printer = printer or PythonPrinter()
    return [f"{s.target} = {printer.visit(s.value)}" for s in statements]


def backward_source(derivation, input_name: str | None = None, printer=None) -> str:
    """The backward's lines that compute one input's gradient (all when None), printed by
    ``printer`` (the NumPy/array-API printer by default; the torch and JAX targets pass theirs).

    >>> from deltagrad.derive.derivation import derive
    >>> print(backward_source(derive("Y[i,j] = Sum(X[i,k]*W[k,j], k)"), "W"))
    dW = X.T @ goutput
    """
    statements = derivation.backward.statements
    lines = render_statements(statements, printer)
    if input_name is None:
        return "\n".join(lines)
    need = needed(statements, NAMES.gradient(input_name))
    return "\n".join(line for s, line in zip(statements, lines) if s.target in need)
