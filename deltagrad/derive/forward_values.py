"""The forward's saved values as plain data: named reductions, row maxima, and the forward
written through them.

Each reduction of the forward gets a name (``row_exp_sum[i] = Sum(exp(X[i,k]), k)``) so that the
backward reads it instead of summing again; a maximum (``row_max[i] = max_k X[i,k]``) is what a
stable sum of exponentials is shifted by.

>>> from deltagrad.derive.parse import parse_spec
>>> spec = parse_spec("Y[i,j] = exp(X[i,j]) / Sum(exp(X[i,k]), k)")
>>> forward_values(spec).reductions[0]
Reduction(name='row_exp_sum', indices=(i,), expr=Sum(exp(X[i, k]), (k, 0, n_k - 1)))
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import sympy as sp

from deltagrad.derive.array_program import Call, Var
from deltagrad.derive.extrema import Extremum, extremum_name
from deltagrad.derive.names import NAMES, reduction_name
from deltagrad.derive.simplify import alpha_key
from deltagrad.derive.spec import Spec, index, is_index, scalar, tensor


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
    #: A program's named steps (always computed by the forward, never inlined), and the order in
    #: which maxima, reductions and steps must be computed; empty for a single statement.
    statements: tuple = ()
    sequence: tuple = ()
    #: How the sums of exponentials were shifted by their maxima: (reduction, maximum, shifted
    #: reduction, the maximum's indices as the reduction names them), for the gradients.
    shifts: tuple = ()


@dataclass(frozen=True)
class Maximum:
    """``name[indices] = max over axis `axis` of input `tensor```, computed in the forward."""

    name: str
    indices: tuple
    tensor: str
    axis: int


def max_node(m: Maximum):
    """``xp.max(X, axis=k)``: the array-program node that computes ``m``."""
    return Call("max", (Var(m.tensor),), (("axis", m.axis),))


def computation_order(values: ForwardValues, maxima, reductions) -> list:
    """The maxima and reductions to compute, in an order where each comes after what it reads:
    ``values.sequence`` for a program; else every maximum, then the reductions as listed (inner
    ones first)."""
    if not values.sequence:
        return [*maxima, *reductions]
    by_name = {m.name: m for m in maxima} | {r.name: r for r in reductions}
    return [by_name[n] for n in values.sequence if n in by_name]


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


def forward_values(spec: Spec, taken: set | None = None) -> ForwardValues:
    """Name each reduction of the forward readably (``row_sum``, ``row_exp_sum``…), inner ones first.

    An outer reduction's body refers to the inner ones by name. Names in ``taken`` are avoided
    too, and the names chosen are added to it.
    """
    used = spec_names(spec) | (taken if taken is not None else set())
    mapping: dict = {}

    def walk(e):
        if not e.args or isinstance(e, sp.Indexed):
            return e
        e = e.func(*[walk(a) for a in e.args])
        if isinstance(e, (sp.Sum, Extremum)):
            key = alpha_key(e)  # Sum(X[i,k], k) and Sum(X[i,n], n) are one reduction
            if key not in mapping:
                kept = tuple(ordered_free_indices(e))
                same = _renamed(key, kept, mapping)
                if same is not None:  # Sum(Q[i,d]*K[j,d], d) read again as Sum(Q[i,c]*K[l,c], c)
                    return same
                named = extremum_name if isinstance(e, Extremum) else reduction_name
                mapping[key] = Reduction(named(e, kept, used), kept, e)
            return mapping[key].ref
        return e

    rhs = walk(spec.rhs)
    output = tensor(spec.output)[spec.out_indices] if spec.out_indices else scalar(spec.output)
    if taken is not None:
        taken |= {r.name for r in mapping.values()}
    return ForwardValues(rhs, tuple(mapping.values()), output)


def _renamed(key, kept: tuple, mapping: dict):
    """A reference to the reduction in ``mapping`` that ``key`` is up to the names of its free
    indices (attention's scores summed once over j and once over l), or None. Their extents
    agree: the renamed indices sit at the same axes of the same tensors."""
    for other, red in mapping.items():
        if len(red.indices) != len(kept) or type(other) is not type(key) or other.limits != key.limits:
            continue
        # in the order of first appearance, then (up to 4 free indices: 24 orders) in any order
        candidates = [dict(zip(ordered_free_indices(other), kept))]
        if len(kept) <= 4:
            candidates += [dict(zip(red.indices, combo)) for combo in itertools.permutations(kept)]
        for names in candidates:
            if other.xreplace(names) == key:
                found = tuple(names[i] for i in red.indices)
                return tensor(red.name)[found] if found else scalar(red.name)
    return None


def instance(red: Reduction, indices: tuple):
    """``red``'s expression with its free indices renamed to ``indices`` (its bound ones renamed
    apart first where they clash).

    >>> from deltagrad.derive.spec import index, summed
    >>> i, j, k = map(index, 'ijk')
    >>> instance(Reduction('r', (i,), summed(tensor('X')[i, k], k)), (k,))
    Sum(X[k, k1], (k1, 0, n_k - 1))
    """
    names = {i.name for i in indices if isinstance(i, sp.Symbol)}
    taken = {s.name for s in red.expr.atoms(sp.Symbol)} | names
    expr = freshen_bound(red.expr, names, taken, [])
    return expr.xreplace(dict(zip(red.indices, indices)))


def fresh_name(base: str, taken: set) -> str:
    """``base1``, ``base2``…: the first not in ``taken``, added to it (a renamed bound index)."""
    n = 1
    while f"{base}{n}" in taken:
        n += 1
    taken.add(f"{base}{n}")
    return f"{base}{n}"


def freshen_bound(expr, avoid: set, taken: set, aliases: list):
    """``expr`` with every summation index whose name is in ``avoid`` renamed to a new name
    (recorded in ``aliases`` as running over the same axis as the old one).

    >>> from deltagrad.derive.spec import summed
    >>> k = index('k')
    >>> aliases = []
    >>> freshen_bound(summed(tensor('X')[index('i'), k], k), {'k'}, {'k'}, aliases), aliases
    (Sum(X[i, k1], (k1, 0, n_k - 1)), [('k1', 'k')])
    """
    if isinstance(expr, (sp.Sum, Extremum)):
        body = freshen_bound(expr.function, avoid, taken, aliases)
        mapping, limits = {}, []
        for v, lo, hi in expr.limits:
            if v.name in avoid:
                new = index(fresh_name(v.name, taken))
                aliases.append((new.name, v.name))
                mapping[v] = new
            limits.append((mapping.get(v, v), lo, hi))
        # a Max/Min reduction's xreplace leaves its bound indices alone: rename through Basic's
        return type(expr)(sp.Basic.xreplace(body, mapping), *limits)
    if not expr.args or isinstance(expr, sp.Indexed):
        return expr
    return expr.func(*[freshen_bound(a, avoid, taken, aliases) for a in expr.args])


def spec_names(spec: Spec) -> set:
    """Every name a spec uses or generated code reserves: a made-up name must avoid them all."""
    used = {inp.name for inp in spec.inputs} | {spec.output, NAMES.grad_symbol} | NAMES.reserved_in_code()
    used |= {s.name for s in spec.rhs.free_symbols} | {i.name for i in spec.out_indices if isinstance(i, sp.Symbol)}
    return used


def inline_reductions(expr, reductions):
    """``expr`` with the named ``reductions`` written out again (nested ones too)."""
    by_name = {r.name: r for r in reductions}
    while True:
        subs = {occ: instance(by_name[occ.base.label.name], occ.indices) for occ in expr.atoms(sp.Indexed)
                if occ.base.label.name in by_name}
        subs.update({scalar(r.name): r.expr for r in reductions if not r.indices})
        new = expr.xreplace(subs)
        if new == expr:
            return expr
        expr = new
