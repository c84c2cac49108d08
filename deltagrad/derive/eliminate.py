"""Kronecker-delta elimination: collapse each sum against a delta on its index.

SymPy's ``Sum.doit()`` and ``deltasummation`` wrap every answer in ``Piecewise(..., a <= n-1)``,
leave a second delta in place and unroll concrete ranges. This pass is exact for our use
because every gradient index lies in range by construction: for each term of a sum and each
summed index ``s`` with a factor ``δ(s, t)``, substitute ``s → t`` and drop the sum; a sum over
an index the term does not use becomes a factor of the index's extent. Inner sums are
collapsed first, and what does not depend on a sum's index moves out of it.

>>> from deltagrad.derive.spec import index, tensor, summed
>>> i, k, a, b = map(index, 'ikab')
>>> X, W = tensor('X'), tensor('W')
>>> eliminate_deltas(summed(sp.KroneckerDelta(a, i) * sp.KroneckerDelta(b, k) * W[k, i], i, k))
W[b, a]
>>> eliminate_deltas(summed(X[i] * sp.KroneckerDelta(a, i), i, k))
n_k*X[a]
"""

from __future__ import annotations

import sympy as sp

from deltagrad.derive.differentiate import _delta
from deltagrad.derive.simplify import cost
from deltagrad.derive.spec import extent


def eliminate_deltas(expr: sp.Expr) -> sp.Expr:
    """``expr`` with every sum that a Kronecker delta can collapse collapsed."""
    if isinstance(expr, sp.Sum):
        body = eliminate_deltas(expr.function)
        indices = [lim[0] for lim in expr.limits]
        uppers = {lim[0]: lim[2] for lim in expr.limits}
        return sp.Add(*[_collapse(term, indices, uppers) for term in sp.Add.make_args(expand_products(body))])
    if not expr.args or isinstance(expr, sp.Indexed) or not expr.has(sp.Sum):
        return expr
    args = [eliminate_deltas(a) for a in expr.args]
    return expr if all(new is old for new, old in zip(args, expr.args)) else expr.func(*args)


def expand_products(expr: sp.Expr, limit: int = 256) -> sp.Expr:
    """Distribute products over sums through nested products and sums, but not into powers,
    logs, exponentials or other functions (at most ``limit`` terms).

    >>> from deltagrad.derive.spec import scalar
    >>> a, b, c = map(scalar, 'abc')
    >>> expand_products(a * ((b + c) * sp.exp(a + b) + 1))
    a*b*exp(a + b) + a*c*exp(a + b) + a
    """
    if isinstance(expr, sp.Add):
        return sp.Add(*[expand_products(t, limit) for t in expr.args])
    if not isinstance(expr, sp.Mul):
        return expr
    terms = [sp.S.One]
    for factor in expr.args:
        addends = sp.Add.make_args(expand_products(factor, limit))
        if len(terms) * len(addends) > limit:
            terms = [t * factor for t in terms]
            continue
        terms = [t * a for t in terms for a in addends]
    return sp.Add(*terms)


def _collapse(term: sp.Expr, indices: list, uppers: dict) -> sp.Expr:
    remaining = list(indices)
    progress = True
    while progress:
        progress = False
        for s in remaining:
            delta = next((f for f in sp.Mul.make_args(term) if isinstance(f, sp.KroneckerDelta) and s in f.args), None)
            if delta is not None:
                target = delta.args[1] if delta.args[0] == s else delta.args[0]
                term = rename(term, s, target)
                remaining.remove(s)
                progress = True
                break
    return pull_out(term, remaining, uppers)


def rename(expr: sp.Expr, old, new) -> sp.Expr:
    """``expr.xreplace({old: new})``, with each Kronecker delta rebuilt by
    :func:`~deltagrad.derive.differentiate._delta` (no assumption queries for two index symbols).

    >>> from deltagrad.derive.spec import index, tensor
    >>> i, a, b = index('i'), index('a'), index('b')
    >>> rename(tensor('X')[i] * sp.KroneckerDelta(i, b) * sp.KroneckerDelta(a, i), i, a)
    KroneckerDelta(a, b)*X[a]
    """
    if expr == old:
        return new
    if not expr.args or old not in expr.free_symbols:
        return expr
    args = [rename(a, old, new) for a in expr.args]
    if isinstance(expr, sp.KroneckerDelta):
        return _delta(*args)
    return expr.func(*args)


def pull_out(term: sp.Expr, indices: list, uppers: dict | None = None) -> sp.Expr:
    """Σ over ``indices`` of one product ``term``, with the factors that do not use them outside.

    >>> from deltagrad.derive.spec import index, tensor
    >>> i, k = index('i'), index('k')
    >>> pull_out(tensor('X')[i] * tensor('W')[i, k], [k])
    X[i]*Sum(W[i, k], (k, 0, n_k - 1))
    """
    if term == 0:
        return sp.S.Zero
    inside, outside = [], []
    for f in sp.Mul.make_args(term):
        (inside if f.free_symbols & set(indices) else outside).append(f)
    used = [k for k in indices if any(k in f.free_symbols for f in inside)]
    unused = [k for k in indices if k not in used]
    uppers = uppers or {}

    def upper(k):
        return uppers.get(k, extent(k) - 1)

    factor = sp.Mul(*outside, *[upper(k) + 1 for k in unused])
    if not used:
        return factor * sp.Mul(*inside)
    return factor * sp.Sum(sp.Mul(*inside), *[(k, 0, upper(k)) for k in used])


def substitute_gather_deltas(expr: sp.Expr) -> sp.Expr:
    """``expr`` with ``b → t[a]`` inside each term that has a factor ``δ(b, t[a])`` for a free
    index ``b``, where that makes the term cheaper: the term is 0 unless ``b = t[a]``. This
    cancels the removable 0/0 that a softmax followed by the log of a gathered entry leaves,
    ``P[a,b]·δ(b,t[a])/P[a,t[a]] = δ(b,t[a])`` (which is NaN where ``P[a,t[a]]`` underflows).

    >>> from deltagrad.derive.spec import index, tensor
    >>> a, b = index('a'), index('b')
    >>> P, t = tensor('P'), tensor('t')
    >>> substitute_gather_deltas(P[a, b] * sp.KroneckerDelta(b, t[a]) / P[a, t[a]] + P[a, b])
    KroneckerDelta(b, t[a]) + P[a, b]
    """
    if not any(_gather_delta(d) for d in expr.atoms(sp.KroneckerDelta)):
        return expr
    expanded = expand_products(expr)
    terms = []
    for term in sp.Add.make_args(expanded):
        for delta in [f for f in sp.Mul.make_args(term) if _gather_delta(f)]:
            s, target = _gather_delta(delta)
            rest = sp.Mul(*[f for f in sp.Mul.make_args(term) if f is not delta])
            if s in rest.free_symbols:
                candidate = rest.xreplace({s: target}) * delta
                if cost(candidate) < cost(term):
                    term = candidate
        terms.append(term)
    result = sp.Add(*terms)
    return result if cost(result) < cost(expr) else expr


def _gather_delta(delta):
    """(index, gathered entry) of ``δ(b, t[a])`` in either order; None for other deltas."""
    if not isinstance(delta, sp.KroneckerDelta):
        return None
    for s, target in (delta.args, delta.args[::-1]):
        if isinstance(s, sp.Symbol) and isinstance(target, sp.Indexed) and s not in target.free_symbols:
            return s, target
    return None
