"""Affine index expressions: ``X[i+k]``, ``X[2*i+p]``, ``X[b,c,s*i+p,s*j+q]``.

An index of a tensor on the right-hand side may be a sum of index names times small positive
integer literals plus a non-negative integer offset. The parser builds it here from whitelisted
``ast`` nodes (``+``, ``-``, ``*``, names and int literals, nothing else), and
:func:`decompose` reads it back as coefficients and an offset.

>>> import ast
>>> node = ast.parse("X[2*i+p+1]").body[0].value.slice
>>> affine_index(node, lambda *a: None, None)
2*i + p + 1
>>> decompose(affine_index(node, lambda *a: None, None))
({i: 2, p: 1}, 1)
"""

from __future__ import annotations

import ast

import sympy as sp

from deltagrad.derive.names import NAMES


def index(name: str) -> sp.Symbol:
    """The index symbol ``name`` (as :func:`deltagrad.derive.spec.index`, which imports this module)."""
    return sp.Symbol(name, integer=True)


def is_index(sym) -> bool:
    """True for an index symbol (as :func:`deltagrad.derive.spec.is_index`)."""
    return isinstance(sym, sp.Symbol) and sym.is_integer is True and not NAMES.is_extent(sym.name)

#: The largest coefficient (a stride, a dilation) and offset an affine index may carry.
MAX_COEFFICIENT = 16
MAX_OFFSET = 64
#: The most index names one affine index may combine (an offset and a position in a window).
MAX_NAMES = 2


def affine_index(node, note, fail) -> sp.Expr:
    """The SymPy expression of the affine index ``node`` (an ``ast.BinOp``); ``note(name, node,
    kind)`` records an index name, ``fail(message, node)`` raises a :class:`SpecError`.

    >>> import ast
    >>> affine_index(ast.parse("X[i-1]").body[0].value.slice, lambda *a: None, None)
    i - 1
    """

    def build(n, depth):
        if depth > 8:
            fail("an index expression is nested too deeply", n)
        if isinstance(n, ast.Name):
            note(n.id, n, "an index")
            return index(n.id)
        if isinstance(n, ast.Constant) and type(n.value) is int:
            if n.value > MAX_OFFSET * MAX_COEFFICIENT:
                fail(f"the integer {n.value} is too large inside an index", n)
            return sp.Integer(n.value)
        if isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Add, ast.Sub, ast.Mult)):
            left, right = build(n.left, depth + 1), build(n.right, depth + 1)
            if isinstance(n.op, ast.Add):
                return left + right
            if isinstance(n.op, ast.Sub):
                return left - right
            if not (left.is_Integer or right.is_Integer):
                fail("an index may multiply an index name by an integer literal only, as in 2*i", n)
            return left * right
        fail("an index is a name, an integer literal, or a sum such as 2*i+p (names times integer literals, "
             "plus an integer)", n)

    return build(node, 0)


def is_affine(ix) -> bool:
    """True for an index that is neither a plain name, an integer literal nor a gather (``t[i]``).

    >>> i, k = index('i'), index('k')
    >>> is_affine(i + k), is_affine(i), is_affine(sp.Integer(2))
    (True, False, False)
    """
    return not isinstance(ix, (sp.Symbol, sp.Integer, sp.Indexed)) and isinstance(ix, sp.Expr)


def decompose(ix) -> tuple:
    """``(coefficients, offset)`` of an affine index: index symbol → int, and an int.

    >>> i, p = index('i'), index('p')
    >>> decompose(2*i + p + 3)
    ({i: 2, p: 1}, 3)
    """
    coeffs, offset = {}, 0
    for term, c in ix.as_coefficients_dict().items():
        if term == 1:
            offset = int(c)
        else:
            coeffs[term] = int(c) if sp.Integer(c) == c else c
    return dict(sorted(coeffs.items(), key=lambda kv: kv[0].name)), offset


def affine_problem(ix) -> str | None:
    """Why ``ix`` is not an affine index deltagrad supports (None when it is).

    >>> i, p = index('i'), index('p')
    >>> affine_problem(2*i + p), affine_problem(i - p)
    (None, 'index i - p has a negative coefficient of p (flips are not supported)')
    >>> affine_problem(i - 1)
    'index i - 1 has a negative offset -1: it would read before the start; pad the input instead (see pad)'
    """
    if ix.atoms(sp.Indexed) or not all(is_index(s) for s in ix.free_symbols) or not ix.free_symbols:
        return f"index {ix} must combine index names and integer literals only"
    try:
        coeffs, offset = decompose(sp.expand(ix))
    except (TypeError, ValueError):
        return f"index {ix} is not a sum of index names times integers plus an integer"
    for s, c in coeffs.items():
        if not isinstance(c, int) or s.free_symbols != {s}:
            return f"index {ix} is not a sum of index names times integers plus an integer"
        if c < 0:
            return f"index {ix} has a negative coefficient of {s} (flips are not supported)"
        if c == 0 or c > MAX_COEFFICIENT:
            return f"index {ix}: the coefficient of {s} must be between 1 and {MAX_COEFFICIENT}"
    if offset < 0:
        return f"index {ix} has a negative offset {offset}: it would read before the start; pad the input instead (see pad)"
    if offset > MAX_OFFSET:
        return f"index {ix}: the offset {offset} is too large (at most {MAX_OFFSET})"
    if len(coeffs) > MAX_NAMES:
        return f"index {ix} combines {len(coeffs)} index names; at most {MAX_NAMES} (a window's start and a position in it)"
    return None
