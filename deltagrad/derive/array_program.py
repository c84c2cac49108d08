"""The lowered program: plain data that the Python printer and the LaTeX printer both render.

A program is a list of assignments ``target = expression``; an expression is a small tree of
the node types below. ``Call('exp', (Var('X'),))`` means ``xp.exp(X)``, where ``xp`` is the
array namespace of the inputs (NumPy, CuPy or any array-API library).

>>> Assign('Y', BinOp('/', Var('X'), Var('Z')))
Assign(target='Y', value=BinOp(op='/', left=Var(name='X'), right=Var(name='Z')))
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Var:
    """A variable of the generated function."""

    name: str


@dataclass(frozen=True)
class Const:
    """A Python number."""

    value: int | float


@dataclass(frozen=True)
class BinOp:
    """``left op right`` for op in ``+ - * / ** @``."""

    op: str
    left: object
    right: object


@dataclass(frozen=True)
class Neg:
    """``-operand``."""

    operand: object


@dataclass(frozen=True)
class Call:
    """``xp.fn(*args, **dict(kwargs))``; ``fn`` may be dotted (``linalg.diagonal``)."""

    fn: str
    args: tuple
    kwargs: tuple = ()


@dataclass(frozen=True)
class Attr:
    """``value.name``, for ``.T`` and ``.mT``."""

    value: object
    name: str


@dataclass(frozen=True)
class Subscript:
    """``value[key]``; each key entry is ``':'``, ``None`` (a new axis) or an int."""

    value: object
    key: tuple


@dataclass(frozen=True)
class Assign:
    """``target = value``."""

    target: str
    value: object


@dataclass(frozen=True)
class Program:
    """A straight-line function: its statements and the variables it returns."""

    statements: tuple[Assign, ...]
    results: tuple[str, ...]
    ranks: dict = field(default_factory=dict, compare=False)  # variable -> rank, for the printers


def variables(node) -> set[str]:
    """Names of the variables an expression reads.

    >>> sorted(variables(BinOp('*', Var('G'), Call('exp', (Var('X'),)))))
    ['G', 'X']
    """
    if isinstance(node, Var):
        return {node.name}
    if isinstance(node, (BinOp,)):
        return variables(node.left) | variables(node.right)
    if isinstance(node, Neg):
        return variables(node.operand)
    if isinstance(node, Call):
        out = set()
        for a in node.args:
            out |= variables(a)
        for _, v in node.kwargs:
            out |= variables(v)
        return out
    if isinstance(node, (Attr, Subscript)):
        return variables(node.value)
    if isinstance(node, tuple):
        out = set()
        for a in node:
            out |= variables(a)
        return out
    return set()
