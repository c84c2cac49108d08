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
class Apply:
    """``fn(*args)``: a call of a function the user declared and implements (``f``, ``f_prime``),
    by its bare name, not through the array namespace."""

    fn: str
    args: tuple


@dataclass(frozen=True)
class Helper:
    """``fn(xp, *args)``: a function of ``op_base`` that the array API has no one call for
    (``scatter_add``: a zero array with rows added at integer positions)."""

    fn: str
    args: tuple


@dataclass(frozen=True)
class Runtime:
    """``fn(*args)``: a run-time helper of ``op_base`` called without the namespace (``windows``,
    ``unwindow``, ``window_count``: they dispatch on the array's type themselves); ``args`` hold
    nodes and plain data (ints, strings, tuples)."""

    fn: str
    args: tuple


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


class Visitor:
    """Walk the IR with one method per node kind, in the style of SymPy's printers.

    ``visit(node)`` calls ``self.visit_<ClassName>(node)``: ``visit_Var``, ``visit_BinOp``, …
    The plain Python values found inside nodes (a Call's int and tuple arguments) dispatch the
    same way, to ``visit_int``, ``visit_float``, ``visit_tuple``; ``visit_tuple`` visits each
    entry and returns a tuple of the answers. A node with no method goes to ``unknown``, which
    raises ``TypeError("cannot <what> <node>")``; ``what`` names the job of the subclass.

    >>> class Size(Visitor):
    ...     what = "measure"
    ...     def visit_Var(self, node):
    ...         return 1
    ...     def visit_BinOp(self, node):
    ...         return 1 + self.visit(node.left) + self.visit(node.right)
    >>> Size().visit(BinOp('*', Var('G'), Var('Y')))
    3
    >>> Size().visit((Var('G'), Var('Y')))
    (1, 1)
    >>> Size().visit(Neg(Var('G')))
    Traceback (most recent call last):
    ...
    TypeError: cannot measure Neg(operand=Var(name='G'))
    """

    what = "visit"

    def visit(self, node):
        method = getattr(self, f"visit_{type(node).__name__}", None)
        if method is None:
            return self.unknown(node)
        return method(node)

    def visit_tuple(self, node):
        return tuple(self.visit(x) for x in node)

    def unknown(self, node):
        raise TypeError(f"cannot {self.what} {node!r}")


class _Variables(Visitor):
    what = "list the variables of"

    def visit_Var(self, node):
        return {node.name}

    def visit_Const(self, node):
        return set()

    visit_int = visit_float = visit_bool = visit_str = visit_NoneType = visit_Const  # plain data in nodes

    def visit_BinOp(self, node):
        return self.visit(node.left) | self.visit(node.right)

    def visit_Neg(self, node):
        return self.visit(node.operand)

    def visit_Call(self, node):
        return self.visit(node.args) | self.visit(tuple(v for _, v in node.kwargs))

    def visit_Apply(self, node):
        return self.visit(node.args)

    def visit_Helper(self, node):
        return self.visit(node.args)

    visit_Runtime = visit_Helper

    def visit_Attr(self, node):
        return self.visit(node.value)

    visit_Subscript = visit_Attr  # the key holds no variables

    def visit_Helper(self, node):
        return self.visit(node.args)

    def visit_tuple(self, node):
        return set().union(*(self.visit(x) for x in node))


def variables(node) -> set[str]:
    """Names of the variables an expression reads.

    >>> sorted(variables(BinOp('*', Var('G'), Call('exp', (Var('X'),)))))
    ['G', 'X']
    """
    return _Variables().visit(node)


class _Nodes(Visitor):
    """Every node of some code, parents before children, in reading order."""

    what = "walk"

    def visit_Var(self, node):
        return [node]

    visit_Const = visit_Var

    def visit_int(self, node):
        return []

    visit_float = visit_bool = visit_str = visit_NoneType = visit_int  # plain data, not nodes

    def visit_BinOp(self, node):
        return [node, *self.visit(node.left), *self.visit(node.right)]

    def visit_Neg(self, node):
        return [node, *self.visit(node.operand)]

    def visit_Call(self, node):
        return [node, *self.visit(node.args), *self.visit(tuple(v for _, v in node.kwargs))]

    def visit_Apply(self, node):
        return [node, *self.visit(node.args)]

    def visit_Helper(self, node):
        return [node, *self.visit(node.args)]

    visit_Runtime = visit_Helper

    def visit_Attr(self, node):
        return [node, *self.visit(node.value)]

    def visit_Helper(self, node):
        return [node, *self.visit(node.args)]

    visit_Subscript = visit_Attr

    def visit_Assign(self, node):
        return [node, *self.visit(node.value)]

    def visit_Program(self, node):
        return [node, *self.visit(node.statements)]

    def visit_tuple(self, node):
        return [n for x in node for n in self.visit(x)]

    visit_list = visit_tuple


def nodes(code) -> list:
    """Every node of ``code`` (an expression, an :class:`Assign`, a :class:`Program`, or a
    list or tuple of them), parents first.

    >>> nodes(Assign('Y', Neg(Var('X'))))
    [Assign(target='Y', value=Neg(operand=Var(name='X'))), Neg(operand=Var(name='X')), Var(name='X')]
    """
    return _Nodes().visit(code)


def uses_namespace(code) -> bool:
    """Whether ``code`` calls into the array namespace ``xp``: any :class:`Call` or :class:`Helper` does.

    >>> uses_namespace([Assign('Y', BinOp('/', Var('X'), Var('Z')))])
    False
    >>> uses_namespace([Assign('Y', Attr(Call('exp', (Var('X'),)), 'T'))])
    True
    """
    return any(isinstance(n, (Call, Helper)) for n in nodes(code))


def helpers(code) -> set:
    """The ``op_base`` helpers that ``code`` calls (:class:`Helper` and :class:`Runtime` nodes).

    >>> sorted(helpers([Assign('dE', Helper('scatter_add', (Var('t'), Var('goutput'), Var('n_a'))))]))
    ['scatter_add']
    """
    return {n.fn for n in nodes(code) if isinstance(n, (Helper, Runtime))}


def applied(code) -> list:
    """The names of the user's functions that ``code`` calls (:class:`Apply`), sorted.

    >>> applied([Assign('Y', Apply('f', (Var('X'),))), Assign('dX', Apply('f_prime', (Var('X'),)))])
    ['f', 'f_prime']
    """
    return sorted({n.fn for n in nodes(code) if isinstance(n, Apply)})


def reads_attribute(code, var: str, attr: str) -> bool:
    """Whether ``code`` reads ``var.attr`` (``goutput.dtype``, ``X.shape``).

    >>> code = [Assign('dX', Call('eye', (Var('n_i'),), (('dtype', Attr(Var('goutput'), 'dtype')),)))]
    >>> reads_attribute(code, 'goutput', 'dtype'), reads_attribute(code, 'X', 'dtype')
    (True, False)
    """
    return Attr(Var(var), attr) in nodes(code)


def needed(statements, target: str) -> set[str]:
    """``target`` and every name its value is computed from, through ``statements`` in order.

    >>> code = [Assign('t0', Call('exp', (Var('X'),))), Assign('dX', BinOp('*', Var('G'), Var('t0'))),
    ...         Assign('dZ', Var('G'))]
    >>> sorted(needed(code, 'dX'))
    ['G', 'X', 'dX', 't0']
    """
    need = {target}
    for s in reversed(statements):
        if s.target in need:
            need |= variables(s.value)
    return need
