"""Parse a spec such as ``Y[i,j] = X[i,j] / Sum(X[i,k], k)`` without evaluating anything.

SymPy's ``sympify``/``parse_expr`` run Python's ``eval`` on their input, so user text never
reaches them. The text is parsed with :mod:`ast`, every node is checked against a whitelist,
and the SymPy objects are built here by hand.

>>> parse_spec("Y[i,j] = X[i,j] / Sum(X[i,k], k)").rhs
X[i, j]/Sum(X[i, k], (k, 0, n_k - 1))
>>> parse_spec("Y[i] = foo(X[i])")
Traceback (most recent call last):
...
deltagrad.errors.SpecError: column 8: unknown function 'foo' (allowed: Abs, Heaviside, Max, Min, Sum, acos, acosh, asin, asinh, atan, atanh, cos, cosh, erf, erfc, exp, expm1, log, log1p, sigmoid, sign, sin, sinh, size, softplus, sqrt, tanh, where)
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, replace
from fractions import Fraction
from functools import partial

import sympy as sp

from deltagrad.derive.ellipsis import ELLIPSIS
from deltagrad.derive.extrema import REDUCTIONS, Iverson, elementwise, reduce_extremum
from deltagrad.derive.functions import COMPARISONS, SPEC_FUNCTIONS, generic, generic_parts
from deltagrad.derive.spec import (CONSTANTS, MAX_DEPTH, MAX_NODES, UNIT, Spec, check_spec, extent, index, itensor,
                                   scalar, summed, tensor)
from deltagrad.derive.affine import affine_index
from deltagrad.derive.names import check_spellings
from deltagrad.errors import SpecError

#: Functions a spec may call, with how many arguments each takes (None: two or more).
FUNCTIONS = {
    "exp": (sp.exp, 1),
    "log": (sp.log, 1),
    "sqrt": (sp.sqrt, 1),
    "tanh": (sp.tanh, 1),
    "sin": (sp.sin, 1),
    "cos": (sp.cos, 1),
    "Abs": (sp.Abs, 1),
    "Heaviside": (sp.Heaviside, 1),
    "Max": (partial(elementwise, "Max"), None),
    "Min": (partial(elementwise, "Min"), None),
    **SPEC_FUNCTIONS,  # erf, asinh, sigmoid, where, … (deltagrad/derive/functions.py)
}
#: What a claim may call besides a spec's functions, because the derived rules print it:
#: ``delta(a,b)`` (the Kronecker delta of two indices, built in ``_Builder.call``).
CLAIM_FUNCTIONS: dict = {}
#: ``where``'s comparisons: ast operator → SymPy relation
_COMPARE = {ast.Lt: sp.StrictLessThan, ast.LtE: sp.LessThan, ast.Gt: sp.StrictGreaterThan, ast.GtE: sp.GreaterThan}
assert set(_COMPARE.values()) == set(COMPARISONS)
MAX_TEXT = 10_000
MAX_LITERAL = 10**15
MAX_EXPONENT = 64
#: A decimal literal that is a fraction with a denominator up to this and a numerator of at most
#: two digits is kept exact (0.5 → 1/2, 0.001 → 1/1000); others stay floats, as written (1.702,
#: not 851/500).
MAX_EXACT_DENOMINATOR = 1000
MAX_EXACT_NUMERATOR = 99
_UNIT_OUTSIDE = "_ (an axis of size one) stands only inside a tensor's brackets, as in X[i,_,j]"
#: The most statements a program (a spec of named steps) may have.
MAX_STATEMENTS = 32


def parse_spec(text: str, *, name: str | None = None, inputs=None, functions=()) -> Spec:
    """Parse and check one spec ``OUT[idx] = EXPR`` (or ``OUT = EXPR`` for a scalar output).

    >>> s = parse_spec("L = -Sum(T[i,j]*log(P[i,j]), i, j)")
    >>> s.output, s.out_indices, [x.name for x in s.inputs]
    ('L', (), ['T', 'P'])
    """
    return spec_of_equation(parse_equation(text, functions=functions), text, name=name, inputs=inputs)


def spec_of_equation(eq: Equation, text: str, *, name: str | None = None, inputs=None) -> Spec:
    """The checked spec of one parsed statement ``eq`` of ``text`` (:func:`parse_spec` after parsing).

    >>> spec_of_equation(parse_statements("Y[i] = 2*X[i]")[0], "Y[i] = 2*X[i]").rhs
    2*X[i]
    """
    if inputs is None:
        check_nothing_cancelled(eq)
    order = eq.names if inputs is None else inputs
    spec = check_spec(name or eq.name, eq.name, eq.indices, eq.rhs, order, eq.where, text)
    return with_merged_axes(spec, eq.groups, eq.where) if eq.groups else spec


def _wrapped(text: str) -> bool:
    """True when one pair of parentheses wraps the whole of ``text``.

    >>> _wrapped("(i,j)"), _wrapped("(a,b),(c,d)"), _wrapped("(i),(j)")
    (True, False, False)
    """
    depth = 0
    for n, c in enumerate(text):
        depth += {"(": 1, ")": -1}.get(c, 0)
        if depth == 0:
            return n == len(text) - 1 and n > 0
    return False


def with_merged_axes(spec: Spec, groups: tuple, where=None) -> Spec:
    """``spec`` returning the output axes of each group merged into one, row-major (a flatten):
    each merged index must be a name, and ``...`` cannot be merged.

    >>> s = parse_spec("Y[b,(c,i)] = X[b,c,i]")
    >>> s.out_indices, s.out_groups
    ((b, c, i), ((1, 2),))
    """
    column = (where or {}).get(spec.output)
    for group in groups:
        for pos in group:
            ix = spec.out_indices[pos]
            if not isinstance(ix, sp.Symbol) or ix == ELLIPSIS:
                raise SpecError(f"only index names can be merged into one axis, not {ix}", column)
    if ELLIPSIS in spec.out_indices:
        raise SpecError("merged output axes and '...' cannot go together in one spec", column)
    return replace(spec, out_groups=tuple(groups))


def check_nothing_cancelled(eq) -> None:
    """Refuse a spec where a name written on the right cancels out (``(X-T)+(T+X)`` is ``2*X``):
    the op would take an argument it never reads.

    >>> check_nothing_cancelled(parse_equation("Y[i] = (X[i]-T[i]) + (T[i]+X[i])"))
    Traceback (most recent call last):
    ...
    deltagrad.errors.SpecError: column 14: 'T' cancels out of the right-hand side (it simplifies to 2*X[i]); leave it out of the spec
    """
    kept = {e.base.label.name for e in eq.rhs.atoms(sp.Indexed)} | {s.name for s in eq.rhs.atoms(sp.Symbol)}
    for nm in eq.names:
        if nm not in kept:
            raise SpecError(f"{nm!r} cancels out of the right-hand side (it simplifies to {eq.rhs}); "
                            "leave it out of the spec", eq.where.get(nm))


@dataclass(frozen=True)
class Equation:
    """One parsed, not yet checked, assignment ``name[indices] = rhs`` as SymPy objects.

    ``indices`` holds index symbols and ``Integer`` literals; ``where`` maps each name to the
    column where the text first uses it; ``names`` are the tensors and scalars of ``rhs`` in
    order of first appearance.
    """

    name: str
    indices: tuple
    rhs: sp.Expr
    where: dict
    names: tuple
    groups: tuple = ()  # positions of indices merged into one output axis: Y[b,(c,i,j)] (a flatten)


@dataclass(frozen=True)
class _Form:
    """The words of the errors for one kind of text (a spec or a claim)."""

    noun: str
    not_text: str
    too_long: str
    syntax: str
    one_assignment: str
    too_large: str
    bad_target: str
    target_kind: str | None  # what the left side's name is, for "used both as ... and as ..."
    target_column: bool  # whether a bad left side's error carries a column


_FORMS = {
    "spec": _Form(
        noun="spec",
        not_text="a spec must be a string, not {type}",
        too_long="the spec is {length} characters long; at most {max} are accepted",
        syntax="syntax error",
        one_assignment="a spec is one assignment: OUT[i,j] = EXPR, or OUT = EXPR for a scalar output",
        too_large=f"the spec is too large (more than {MAX_NODES} nodes)",
        bad_target="the left side must be the output, such as Y[i,j], or a bare name for a scalar output",
        target_kind="the output",
        target_column=True,
    ),
    "claim": _Form(
        noun="claim",
        not_text="a claim is a line of text such as dX[a,b] = G[a,b] / Z[a,b]",
        too_long="a claim is a line of text such as dX[a,b] = G[a,b] / Z[a,b]",
        syntax="syntax error in claim",
        one_assignment="a claim is one assignment: dX[a,b] = EXPR",
        too_large="the claim is too large",
        bad_target="the left side of a claim is an input's gradient: dX[a,b] (or dc for a scalar input)",
        target_kind=None,
        target_column=False,
    ),
}


def parse_equation(text: str, *, form: str = "spec", check_target=None, functions=()) -> Equation:
    """Parse ``NAME[i,j] = EXPR`` (or ``NAME = EXPR``) safely, without the checks of a spec.

    The text gets the same guard as :func:`parse_spec` (its type, its length, the number of
    brackets, of nodes and of nesting levels, the whitelist of nodes); ``form`` ('spec' or
    'claim') picks the words of the errors. ``check_target(name, indices)``, if given, is
    called on the left side before the right side is built, so that its errors come first.
    ``functions`` are the names of generic functions the user declared (``f``: ``f(X[i])``,
    and its derivatives ``f_prime``, ``f_prime2``, … may be called).

    >>> eq = parse_equation("dX[a,b] = G[a,b] / Z[a,b]", form="claim")
    >>> eq.name, eq.indices, eq.rhs, eq.names
    ('dX', (a, b), G[a, b]/Z[a, b], ('G', 'Z'))
    >>> parse_equation("dX[a,b] = ", form="claim")
    Traceback (most recent call last):
    ...
    deltagrad.errors.SpecError: column 10: syntax error in claim: invalid syntax
    """
    words = _FORMS[form]
    stmt = _guarded_assignment(text, words)
    builder = _Builder(claim=form == "claim", functions=functions, text=text.strip())
    name, indices = builder.target(stmt.targets[0], words)
    if check_target is not None:
        check_target(name, indices)
    rhs = builder.expr(stmt.value, 0)
    return Equation(name, indices, rhs, dict(builder.where), tuple(builder.input_order), builder.groups)


def parse_statements(text: str, functions=()) -> list:
    """Parse a program: one or more assignments ``NAME[indices] = EXPR``, separated by ``;`` or
    newlines, each as an unchecked :class:`Equation` (checking a program needs all of them).

    >>> [(e.name, e.indices) for e in parse_statements("m[i] = Sum(X[i,k], k); Y[i,j] = X[i,j] - m[i]")]
    [('m', (i,)), ('Y', (i, j))]
    """
    words = _FORMS["spec"]
    module = _guarded_module(text, words)
    body = module.body
    if not body or not all(isinstance(s, ast.Assign) and len(s.targets) == 1 for s in body):
        raise SpecError("a spec is one or more assignments OUT[i,j] = EXPR, separated by ';' or new lines")
    if len(body) > MAX_STATEMENTS:
        raise SpecError(f"a program has at most {MAX_STATEMENTS} statements")
    equations = []
    for n, stmt in enumerate(body, 1):
        builder = _Builder(functions=functions, text=text.strip())
        try:
            name, indices = builder.target(stmt.targets[0], words)
            rhs = builder.expr(stmt.value, 0)
        except SpecError as err:
            if len(body) == 1:
                raise
            raise SpecError(f"statement {n}: {err.message}", err.column) from None
        equations.append(Equation(name, indices, rhs, dict(builder.where), tuple(builder.input_order), builder.groups))
    return equations


def _guarded_assignment(text, words: _Form) -> ast.Assign:
    """The one assignment in ``text``, after the checks that keep hostile input cheap."""
    module = _guarded_module(text, words)
    if len(module.body) != 1 or not isinstance(module.body[0], ast.Assign) or len(module.body[0].targets) != 1:
        raise SpecError(words.one_assignment)
    return module.body[0]


def bracket_depth(text: str) -> int:
    """The deepest nesting of ``(`` and ``[`` in ``text``, in one pass: a cheap guard before
    Python's parser, whose recursion such nesting would drive.

    >>> bracket_depth("dX[a] = ((G[a]))*(1 + X[a])")
    3
    """
    depth = deepest = 0
    for ch in text:
        if ch in "([":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]":
            depth -= 1
    return deepest


def _guarded_module(text, words: _Form) -> ast.Module:
    """``text`` parsed by :mod:`ast`, after the checks that keep hostile input cheap."""
    if not isinstance(text, str):
        raise SpecError(words.not_text.format(type=type(text).__name__))
    if len(text) > MAX_TEXT:
        raise SpecError(words.too_long.format(length=len(text), max=MAX_TEXT))
    if bracket_depth(text) > MAX_DEPTH:
        raise SpecError(f"the {words.noun} nests brackets too deeply (more than {MAX_DEPTH} levels)")
    try:
        module = ast.parse(text.strip(), mode="exec")
    except SyntaxError as err:
        raise SpecError(f"{words.syntax}: {err.msg}", err.offset) from None
    except (ValueError, RecursionError, MemoryError):
        raise SpecError(f"the {words.noun} cannot be parsed (too deeply nested or not text)") from None
    if sum(1 for _ in ast.walk(module)) > MAX_NODES + 1:
        raise SpecError(words.too_large)
    check_spellings((), text=text)  # Python reads 'Ｘ' as 'X': two spellings of one name are refused
    return module


class _Builder:
    """Turns whitelisted ``ast`` nodes into canonical SymPy objects, remembering columns."""

    def __init__(self, claim: bool = False, functions=(), text: str = ""):
        self.text = text  # the source, for the literal as written (1e-400)
        self.claim = claim  # a claim also reads delta and rational exponents such as **(3/2)
        self.generics = declared_functions(functions)
        self.where: dict[str, int] = {}
        self.kinds: dict[str, str] = {}
        self.input_order: list[str] = []
        self.groups: tuple = ()  # the output's merged axes (merged_axes)

    def fail(self, message, node):
        raise SpecError(message, node.col_offset + 1)

    def note(self, name, node, kind=None):
        self.where.setdefault(name, node.col_offset + 1)
        if kind:
            seen = self.kinds.setdefault(name, kind)
            if seen != kind:
                self.fail(f"{name!r} is used both as {seen} and as {kind}", node)

    def uses(self, name):
        if name not in self.input_order:
            self.input_order.append(name)

    def target(self, node, words):
        if isinstance(node, ast.Name):
            if words.target_kind:
                self.note(node.id, node, words.target_kind)
            return node.id, ()
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
            if words.target_kind:
                self.note(node.value.id, node.value, words.target_kind)
                node = self.merged_axes(node)
            return node.value.id, self.subscript(node, unit=sp.Integer(0) if words.target_kind else UNIT, affine=False)
        if words.target_column:
            self.fail(words.bad_target, node)
        raise SpecError(words.bad_target)

    def merged_axes(self, node):
        """The output's brackets with each parenthesised group of names, ``(c,i,j)`` in
        ``Y[b,(c,i,j)]``, spelled out; the groups' positions go to ``self.groups``."""
        segment = ast.get_source_segment(self.text, node.slice) or ""
        if isinstance(node.slice, ast.Tuple) and _wrapped(segment):
            items = [node.slice]  # Y[(i,j)]: one merged axis (not Y[(a,b),(c,d)], two)
        else:
            items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if not any(isinstance(it, ast.Tuple) for it in items):
            return node
        flat, groups = [], []
        for it in items:
            if not isinstance(it, ast.Tuple):
                flat.append(it)
                continue
            if len(it.elts) < 2 or not all(isinstance(e, ast.Name) and e.id != "_" for e in it.elts):
                self.fail("merged axes are two or more index names in parentheses, as (c,i,j) in Y[b,(c,i,j)]", it)
            groups.append(tuple(range(len(flat), len(flat) + len(it.elts))))
            flat.extend(it.elts)
        self.groups = tuple(groups)
        return ast.Subscript(value=node.value, slice=ast.Tuple(elts=flat, ctx=ast.Load()), ctx=ast.Load())

    def subscript(self, node, gather=False, unit=UNIT, affine=True):
        """The indices in brackets; ``_`` (an axis of size one) becomes ``unit``: UNIT on the
        right, 0 on the left (a new axis of size one), None where it has no meaning; ``gather``:
        inside an integer input's brackets (``t[i]`` in ``X[i, t[i]]``); ``affine``: index
        arithmetic (``X[2*i+p]``) allowed."""
        items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        out = []
        for it in items:
            if isinstance(it, ast.Name) and it.id == "_":
                if unit is None:
                    self.fail(_UNIT_OUTSIDE, it)
                out.append(unit)
            elif isinstance(it, ast.Name):
                self.note(it.id, it, "an index")
                out.append(index(it.id))
            elif isinstance(it, ast.Constant) and it.value is Ellipsis:  # X[...,i]: any leading axes
                out.append(ELLIPSIS)
            elif isinstance(it, ast.Constant) and type(it.value) is int:
                if it.value > 64:
                    self.fail(f"the integer index {it.value} is out of range", it)
                out.append(sp.Integer(it.value))
            elif isinstance(it, ast.UnaryOp) and isinstance(it.op, ast.USub):
                self.fail("negative integer indices are not supported", it)
            elif isinstance(it, ast.Subscript) and isinstance(it.value, ast.Name) and not gather:
                # a gather: X[i, t[i]] reads X at the position the integer input t holds
                self.note(it.value.id, it.value, "an integer tensor")
                self.uses(it.value.id)
                out.append(itensor(it.value.id)[self.subscript(it, gather=True, unit=None, affine=False)])
            elif affine and not self.claim and isinstance(it, ast.BinOp):  # X[2*i+p]: derive/affine.py
                out.append(affine_index(it, self.note, self.fail))
            else:
                self.fail("an index must be a name such as i, a non-negative integer literal, _ (an axis of "
                          "size one), ... or an integer input's entry such as t[i]", it)
        if not out:
            self.fail("empty brackets", node)
        if out.count(ELLIPSIS) > 1:
            self.fail("'...' appears twice in one index list", node)
        return tuple(out)

    def number(self, node):
        value = node.value
        if type(value) is bool or not isinstance(value, (int, float)):
            self.fail(f"only numbers are allowed as constants, not {value!r}", node)
        if abs(value) > MAX_LITERAL or value != value:
            self.fail(f"the number {value!r} is too large", node)
        if type(value) is int:
            return sp.Integer(value)
        written = ast.get_source_segment(self.text, node) or ""
        if value == 0 and any(c in "123456789" for c in written.lower().split("e")[0]):
            self.fail(f"the number {written} is too small: it is 0 in floating point", node)
        frac = Fraction(repr(value))
        if frac.denominator <= MAX_EXACT_DENOMINATOR and abs(frac.numerator) <= MAX_EXACT_NUMERATOR:  # 0.5, 0.1
            return sp.Rational(frac.numerator, frac.denominator)
        return sp.Float(repr(value), 17)  # 0.044715 stays a float (no huge exact rationals)

    def exponent(self, node):
        """A literal exponent must be small; a computed one must involve an input."""
        sign = 1
        inner = node
        while isinstance(inner, ast.UnaryOp) and isinstance(inner.op, (ast.USub, ast.UAdd)):
            sign *= -1 if isinstance(inner.op, ast.USub) else 1
            inner = inner.operand
        if isinstance(inner, ast.Constant):
            value = self.number(inner) * sign
            if abs(value) > MAX_EXPONENT:
                self.fail(f"the exponent {value} is too large (at most {MAX_EXPONENT} in magnitude)", node)
            return value
        fraction = self.fraction(node) if self.claim else None
        if fraction is not None:  # a claim may copy a printed rule's V**(3/2)
            if abs(fraction) > MAX_EXPONENT:
                self.fail(f"the exponent {fraction} is too large (at most {MAX_EXPONENT} in magnitude)", node)
            return fraction
        if not any(isinstance(n, ast.Name) for n in ast.walk(node)):
            self.fail("write a constant exponent as a plain number", node)
        return self.expr(node, 1)

    def fraction(self, node):
        """``p/q`` of integer literals (signs allowed) as a Rational; None for anything else."""
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            inner = self.fraction(node.operand)
            return None if inner is None else (-inner if isinstance(node.op, ast.USub) else inner)
        if isinstance(node, ast.Constant) and type(node.value) is int and abs(node.value) <= MAX_LITERAL:
            return sp.Integer(node.value)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            p, q = self.fraction(node.left), self.fraction(node.right)
            if p is not None and q is not None and q != 0 and p.is_Integer and q.is_Integer:
                return sp.Rational(p, q)
        return None

    def expr(self, node, depth):
        if depth > MAX_DEPTH:
            self.fail(f"the expression is nested too deeply (more than {MAX_DEPTH} levels)", node)
        d = depth + 1
        if isinstance(node, ast.Constant):
            return self.number(node)
        if isinstance(node, ast.Name):
            if node.id == "_":
                self.fail(_UNIT_OUTSIDE, node)
            if node.id in CONSTANTS:  # derived rules print sqrt(pi) (erf's derivative)
                return CONSTANTS[node.id]
            self.note(node.id, node, "a scalar")
            if node.id in FUNCTIONS or node.id in ("Sum", "size"):
                self.fail(f"{node.id!r} is a function: call it, as in {node.id}(...)", node)
            self.uses(node.id)
            return scalar(node.id)
        if isinstance(node, ast.Subscript):
            if not isinstance(node.value, ast.Name):
                self.fail("only a named tensor can be indexed, as in X[i,j]", node)
            if node.value.id in CONSTANTS:
                self.fail(f"{node.value.id!r} is the constant {CONSTANTS[node.value.id]}: name the tensor otherwise", node.value)
            self.note(node.value.id, node.value, "a tensor")
            self.uses(node.value.id)
            return tensor(node.value.id)[self.subscript(node)]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            operand = self.expr(node.operand, d)
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
            return sp.Add(*[t if sign > 0 else -t for sign, t in self.chain(node, (ast.Add, ast.Sub), d)])
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.Div)):
            return sp.Mul(*[t if sign > 0 else 1 / t for sign, t in self.chain(node, (ast.Mult, ast.Div), d)])
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.Pow):
                return sp.Pow(self.expr(node.left, d), self.exponent(node.right))
            ops = {ast.Add: sp.Add, ast.Sub: lambda a, b: a - b, ast.Mult: sp.Mul, ast.Div: lambda a, b: a / b}
            for kind, make in ops.items():
                if isinstance(node.op, kind):
                    return make(self.expr(node.left, d), self.expr(node.right, d))
            self.fail(f"the operator {type(node.op).__name__} is not allowed (use + - * / **)", node)
        if isinstance(node, ast.Call):
            return self.call(node, d)
        if self.claim and isinstance(node, ast.List):
            return self.indicator(node, d)
        if isinstance(node, ast.Compare):
            self.fail("a comparison is allowed only as the condition of where(COND, A, B)", node)
        what = {ast.Attribute: "attribute access", ast.Lambda: "a lambda"}
        self.fail(f"{what.get(type(node), type(node).__name__)} is not allowed in a spec", node)

    def indicator(self, node, depth):
        """``[u == v]`` in a claim: 1 where ``u`` equals ``v``, else 0, as the derived rules print it."""
        inner = node.elts[0] if len(node.elts) == 1 else None
        if not (isinstance(inner, ast.Compare) and len(inner.ops) == 1 and isinstance(inner.ops[0], ast.Eq)):
            self.fail("brackets in a claim hold one comparison: [X[a,b] == y[a]] is 1 where equal, else 0", node)
        return Iverson(self.expr(inner.left, depth), self.expr(inner.comparators[0], depth))

    @staticmethod
    def reduction_form(node) -> bool:
        """``Max(X[i,k], k)`` (a reduction), not ``Max(X[i], c)`` (element-wise): every argument
        after the first is a bare name that the first argument uses in an index (``X[2*i+p]`` too)."""
        if len(node.args) < 2 or not all(isinstance(a, ast.Name) for a in node.args[1:]):
            return False
        used = {n.id for s in ast.walk(node.args[0]) if isinstance(s, ast.Subscript)
                for item in (s.slice.elts if isinstance(s.slice, ast.Tuple) else [s.slice])
                for n in ast.walk(item) if isinstance(n, ast.Name)}  # X[2*i+p] uses i and p
        return all(a.id in used for a in node.args[1:])

    def chain(self, node, kinds, depth):
        """The operands of a flat chain ``a + b - c`` (or ``a * b / c``), each with its sign: a
        long sum is one level deep, not one level per term."""
        rights = []
        while isinstance(node, ast.BinOp) and isinstance(node.op, kinds):
            rights.append((-1 if isinstance(node.op, (ast.Sub, ast.Div)) else 1, node.right))
            node = node.left
        terms = [(1, self.expr(node, depth))]
        return terms + [(sign, self.expr(r, depth)) for sign, r in reversed(rights)]

    def call(self, node, depth):
        if not isinstance(node.func, ast.Name):
            self.fail("only the allowed functions can be called, by name", node)
        fname = node.func.id
        if node.keywords:
            self.fail(f"{fname}() takes no keyword arguments", node.keywords[0].value)
        if any(isinstance(a, ast.Starred) for a in node.args):
            self.fail(f"{fname}() takes no *arguments", node)
        if fname == "Sum":
            if len(node.args) < 2:
                self.fail("Sum takes an expression and one or more index names: Sum(X[i,k], k)", node)
            ks = []
            for a in node.args[1:]:
                if isinstance(a, ast.Constant) and a.value is Ellipsis and self.claim:
                    ks.append(ELLIPSIS)  # a claim copies a printed rule's Sum_...,i(...)
                    continue
                if isinstance(a, ast.Constant) and a.value is Ellipsis:
                    self.fail("'...' is never summed: sum over named indices only", a)
                if isinstance(a, ast.Name) and a.id == "_":
                    self.fail(_UNIT_OUTSIDE, a)
                if not isinstance(a, ast.Name):
                    self.fail("Sum sums over whole index ranges: name the indices, as in Sum(X[i,k], k)", a)
                self.note(a.id, a, "an index")
                ks.append(index(a.id))
            if len(set(ks)) != len(ks):
                self.fail("Sum names the same index twice", node)
            return summed(self.expr(node.args[0], depth), *ks)
        if fname == "size":
            if len(node.args) != 1 or not isinstance(node.args[0], ast.Name):
                self.fail("size takes one index name: size(k) is the number of values k runs over", node)
            self.note(node.args[0].id, node.args[0], "an index")
            return extent(index(node.args[0].id))
        if self.claim and fname == "delta":
            if len(node.args) != 2:
                self.fail("delta takes two indices: delta(a,b) is 1 where a = b, else 0", node)
            return sp.KroneckerDelta(*self.subscript(ast.Subscript(value=node.func, slice=ast.Tuple(elts=node.args)),
                                                     unit=None))
        if fname in REDUCTIONS and self.reduction_form(node):
            ks = []
            for a in node.args[1:]:
                self.note(a.id, a, "an index")
                ks.append(index(a.id))
            if len(set(ks)) != len(ks):
                self.fail(f"{fname} names the same index twice", node)
            return reduce_extremum(fname, self.expr(node.args[0], depth), *ks)
        generic_call = self.generic(fname)
        if generic_call is not None:
            if len(node.args) != 1:
                self.fail(f"{fname} takes 1 argument, not {len(node.args)}", node)
            return generic_call(self.expr(node.args[0], depth))
        if fname == "where":
            return self.where_call(node, depth)
        table = {**FUNCTIONS, **CLAIM_FUNCTIONS} if self.claim else FUNCTIONS
        if fname not in table:
            allowed = ", ".join(sorted([*table, "Sum", "size", *(["delta"] if self.claim else [])]))
            self.fail(f"unknown function {fname!r} (allowed: {allowed})", node.func)
        make, arity = table[fname]
        args = [self.expr(a, depth) for a in node.args]
        if arity is None and len(args) < 2:
            self.fail(f"{fname} takes two or more arguments", node)
        if arity is not None and len(args) != arity:
            self.fail(f"{fname} takes {arity} argument{'s' if arity > 1 else ''}, not {len(args)}", node)
        try:
            return make(*args)
        except (ValueError, TypeError):  # Min(x, log(-1)): SymPy cannot compare a complex number
            self.fail(f"{fname}() of a value that is not real", node)

    def generic(self, fname):
        """The SymPy class of a declared generic function or of one of its derivatives, or None."""
        if fname in self.generics:
            return generic(fname)
        parts = generic_parts(fname)
        if parts is not None and parts[0] in self.generics:
            return generic(*parts)
        return None

    def where_call(self, node, depth):
        """``where(A < B, P, Q)``: the condition is one comparison of two expressions."""
        if len(node.args) != 3:
            self.fail(f"where takes 3 arguments (a comparison, then two values), not {len(node.args)}", node)
        cond = node.args[0]
        if not isinstance(cond, ast.Compare):
            self.fail("where's first argument is a comparison such as X[i] > 0", cond)
        if len(cond.ops) != 1:
            self.fail("a condition compares two values once: write a < b, not a < b < c", cond)
        relation = _COMPARE.get(type(cond.ops[0]))
        if relation is None:
            self.fail("a condition compares with <, <=, > or >= (== and != are not allowed)", cond)
        test = relation(self.expr(cond.left, depth), self.expr(cond.comparators[0], depth))
        return FUNCTIONS["where"][0](test, self.expr(node.args[1], depth), self.expr(node.args[2], depth))


#: names a user may not declare as generic functions
_RESERVED = {"Sum", "size", "delta"}


def declared_functions(functions) -> tuple:
    """The names of the user's generic functions, checked: identifiers that are not the
    language's own functions.

    >>> declared_functions(["f", "g"])
    ('f', 'g')
    >>> declared_functions(["exp"])
    Traceback (most recent call last):
    ...
    deltagrad.errors.SpecError: exp is a built-in function of the spec language; declare a new name
    """
    if isinstance(functions, str):
        functions = [functions]
    out = []
    for name in functions or ():
        if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
            raise SpecError(f"a declared function's name must be a Python identifier, not {name!r}")
        if name in FUNCTIONS or name in _RESERVED:
            raise SpecError(f"{name} is a built-in function of the spec language; declare a new name")
        if generic_parts(name) is not None:
            raise SpecError(f"{name} names a derivative (NAME_prime); declare the function itself")
        if name not in out:
            out.append(name)
    return tuple(out)
