"""Rewrite a backward through values the forward already computed, and prove it numerically.

Each reduction of the forward gets a name (``R0[i] = Sum(exp(X[i,k]), k)``) so the backward
reads it instead of summing again. Then the derivative is written through the output ``Y``
where that is cheaper: first by spotting the forward expression itself (``tanh(X[a,b])`` →
``Y[a,b]``), then by solving ``y = f(x, …)`` for ``x`` when the inverse is unique. ``solve``
gives unsound inverses for ReLU and two branches for tanh, so every rewrite is confirmed on
random inputs (:func:`agree`) before it is kept.

>>> from deltagrad.derive.parse import parse_spec
>>> spec = parse_spec("Y[i,j] = exp(X[i,j]) / Sum(exp(X[i,k]), k)")
>>> forward_values(spec).reductions[0]
Reduction(name='R0', indices=(i,), expr=Sum(exp(X[i, k]), (k, 0, n_k - 1)))
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import sympy as sp

from deltagrad.derive.eliminate import eliminate_deltas
from deltagrad.derive.spec import Spec, extent, is_index, scalar, tensor
from deltagrad.derive.simplify import cost, simplify_index_expr


@dataclass(frozen=True)
class Reduction:
    """A named reduction of the forward: ``name[indices] = expr``."""

    name: str
    indices: tuple
    expr: sp.Expr

    @property
    def ref(self):
        return tensor(self.name)[self.indices] if self.indices else scalar(self.name)


@dataclass(frozen=True)
class ForwardValues:
    """The forward written through its named reductions, and the output it computes."""

    rhs: sp.Expr
    reductions: tuple
    output: sp.Expr
    maxima: tuple = ()


def ordered_free_indices(e) -> list:
    """The free index symbols of ``e`` in order of first appearance.

    >>> from deltagrad.derive.spec import index, summed
    >>> i, j, k = map(index, 'ijk')
    >>> ordered_free_indices(summed(tensor('X')[j, i, k], k))
    [j, i]
    """
    free = e.free_symbols
    out = []
    for node in sp.preorder_traversal(e):
        if isinstance(node, sp.Symbol) and node in free and is_index(node) and node not in out:
            out.append(node)
    return out


def forward_values(spec: Spec) -> ForwardValues:
    """Name each reduction of the forward ``R0``, ``R1``, …, inner ones first.

    An outer reduction's body refers to the inner ones by name.
    """
    used = {inp.name for inp in spec.inputs} | {spec.output, "G"}
    mapping: dict = {}

    def walk(e):
        if not e.args or isinstance(e, sp.Indexed):
            return e
        e = e.func(*[walk(a) for a in e.args])
        if isinstance(e, sp.Sum):
            if e not in mapping:
                n = len(mapping)
                name = next(f"{p}{n}" for p in ("R", "R_", "Red") if f"{p}{n}" not in used)
                mapping[e] = Reduction(name, tuple(ordered_free_indices(e)), e)
            return mapping[e].ref
        return e

    rhs = walk(spec.rhs)
    output = tensor(spec.output)[spec.out_indices] if spec.out_indices else scalar(spec.output)
    return ForwardValues(rhs, tuple(mapping.values()), output)


def inline_reductions(expr, reductions):
    """``expr`` with the named ``reductions`` written out again (nested ones too)."""
    subs = {r.ref: r.expr for r in reductions}
    while True:
        new = expr.xreplace(subs)
        if new == expr:
            return expr
        expr = new


def _bound_canonical(e):
    if not isinstance(e, sp.Sum):
        return e
    return e.xreplace({lim[0]: sp.Symbol(f"_b{n}", integer=True) for n, lim in enumerate(e.limits)}).xreplace(
        {extent(lim[0]): sp.Symbol(f"_n{n}") for n, lim in enumerate(e.limits)}
    )


def _matches(pattern, indices, node):
    """The index tuple ``t`` with ``pattern.xreplace(indices → t) == node``, or None."""
    if not indices:
        return () if _bound_canonical(pattern) == _bound_canonical(node) else None
    candidates = ordered_free_indices(node)
    target = _bound_canonical(node)
    for combo in itertools.permutations(candidates, len(indices)):
        if _bound_canonical(pattern.xreplace(dict(zip(indices, combo)))) == target:
            return combo
    return None


def replace_pattern(expr, pattern, indices, make):
    """Replace each subexpression of ``expr`` equal to ``pattern`` (up to index names) by ``make(t)``.

    Integer powers of the pattern become powers of the replacement.
    """
    head = pattern.func

    def walk(e):
        if e.func == head:
            t = _matches(pattern, indices, e)
            if t is not None:
                return make(t)
        if isinstance(e, sp.Pow) and isinstance(pattern, sp.Pow) and e.exp.is_Number and pattern.exp.is_Number:
            ratio = e.exp / pattern.exp
            if ratio.is_Integer and ratio > 1:
                t = _matches(pattern, indices, sp.Pow(e.base, pattern.exp))
                if t is not None:
                    return make(t) ** ratio
        if not e.args or isinstance(e, sp.Indexed):
            return e
        return e.func(*[walk(a) for a in e.args])

    return walk(expr)


def use_reductions(expr, values: ForwardValues):
    """``expr`` with each forward reduction replaced by its saved name."""
    for red in values.reductions:
        expr = replace_pattern(expr, red.expr, red.indices, lambda t, r=red: tensor(r.name)[t] if t else scalar(r.name))
    return expr


def use_output(expr, spec: Spec, values: ForwardValues):
    """``expr`` with each copy of the forward expression replaced by the output."""
    free = spec.free_indices

    def make(t):
        if not spec.out_indices:
            return scalar(spec.output)
        m = dict(zip(free, t))
        return tensor(spec.output)[tuple(m.get(i, i) for i in spec.out_indices)]

    if values.rhs.is_Atom or isinstance(values.rhs, sp.Indexed):
        return expr
    return replace_pattern(expr, values.rhs, free, make)


def solve_through_output(expr, spec: Spec, values: ForwardValues) -> list:
    """Forms of ``expr`` with one input eliminated by inverting ``y = f(x)`` (unique inverses only)."""
    free = spec.free_indices
    if cost(values.rhs) > 40:
        return []
    out = []
    for inp in spec.inputs:
        if not inp.rank or not expr.has(tensor(inp.name)):
            continue
        pats = [e for e in values.rhs.atoms(sp.Indexed) if e.base.label.name == inp.name]
        if len(pats) != 1 or sorted(pats[0].indices, key=str) != sorted(free, key=str):
            continue
        pat = pats[0]
        x, y = sp.Dummy("x", real=True), sp.Dummy("y", real=True)
        try:
            sols = sp.solve(sp.Eq(values.rhs.xreplace({pat: x}), y), x)
        except (NotImplementedError, ValueError, TypeError, RecursionError):
            continue
        if len(sols) != 1 or sols[0].has(x):
            continue
        inverse = sols[0].xreplace({y: values.output})
        subs = {}
        for occ in expr.atoms(sp.Indexed):
            if occ.base.label.name == inp.name:
                subs[occ] = inverse.xreplace(dict(zip(pat.indices, occ.indices)))
        candidate = simplify_index_expr(eliminate_deltas(expr.xreplace(subs)))
        if not candidate.has(tensor(inp.name)):
            out.append(candidate)
    return out


def agree(first, second, spec: Spec, values: ForwardValues, input_name: str, grad_indices, grad_name: str,
          trials: int = 2) -> bool:
    """True when ``first`` and ``second`` give the same numbers on random inputs.

    Sizes differ per index (so a transpose cannot hide) and inputs are drawn from a positive
    range and from a range of both signs; a draw where either side is not finite is skipped,
    and at least one draw must be finite.
    """
    from deltagrad.derive.numeric import FLOAT_DRAWS, compare_gradients, index_sizes

    sizes = index_sizes(spec, input_name, grad_indices)
    result = compare_gradients(first, second, spec, values, grad_indices, grad_name, sizes, FLOAT_DRAWS * trials,
                               seed=12345)
    return result[0] is True


def rewrite_through_forward(expr, spec: Spec, values: ForwardValues, input_name: str, grad_indices, grad_name: str):
    """The cheapest form of one gradient that reads saved forward values and is confirmed numerically."""
    base = use_output(use_reductions(expr, values), spec, values)
    candidates = [base] + [use_output(c, spec, values) for c in solve_through_output(base, spec, values)]
    best = expr
    for cand in candidates:
        if cost(cand) < cost(best) or (cost(cand) == cost(best) and cand != best and _reads_fewer_inputs(cand, best, spec)):
            if agree(expr, cand, spec, values, input_name, grad_indices, grad_name):
                best = cand
    return best


def _reads_fewer_inputs(new, old, spec) -> bool:
    def inputs(e):
        return {i.name for i in spec.inputs if e.has(tensor(i.name)) or e.has(scalar(i.name))}

    return len(inputs(new)) < len(inputs(old))
