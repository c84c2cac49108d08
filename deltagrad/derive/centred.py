"""Centred steps sum to zero: in a program with ``D[i,j] = X[i,j] - mu[i]`` and
``mu[i] = Sum(X[i,k], k)/size(k)``, every ``Sum_j(D[a,j])`` in a gradient is 0.

SymPy cannot know it (``mu`` is a name to it), so the layer norm's gradient used to carry a
``Sum_j(D[a,j])/n_j`` term: a wasted pass over the data, and in float32 a small number that
rounding makes non-zero. Writing it as 0 gives the textbook form.

>>> from deltagrad.derive.parse import parse_statements
>>> from deltagrad.derive.program import build_program
>>> prog = build_program(parse_statements("mu[i] = Sum(X[i,k], k)/size(k); D[i,j] = X[i,j] - mu[i]; Y[i,j] = D[i,j]**2"))
>>> centred_axes(prog.steps)
{'D': 1}
"""

from __future__ import annotations

import sympy as sp


def centred_axes(steps, sizes=None) -> dict:
    """Each step that is a tensor minus its own mean along one axis → that axis. ``sizes`` maps
    extents that are one axis's size under two names (``n_n`` → ``n_m``) to one name."""
    sizes = sizes or {}
    by_name = {st.output: st for st in steps}
    found = {}
    for st in steps:
        axis = _centred_axis(st, by_name, sizes)
        if axis is not None:
            found[st.output] = axis
    return found


def zero_centred_sums(expr: sp.Expr, axes: dict) -> sp.Expr:
    """``expr`` with each sum of a centred step over its centred axis (``axes``, from
    :func:`centred_axes`) written as 0.

    >>> from deltagrad.derive.spec import index, tensor, summed
    >>> a, j = index('a'), index('j')
    >>> zero_centred_sums(summed(tensor('D')[a, j], j) + tensor('G')[a, j], {'D': 1})
    G[a, j]
    """
    if not axes:
        return expr

    def centred_sum(e):
        if not isinstance(e, sp.Sum) or not isinstance(e.function, sp.Indexed):
            return False
        name = e.function.base.label.name
        if name not in axes:
            return False
        at = e.function.indices[axes[name]]
        bound = {lim[0] for lim in e.limits}
        return at in bound and sum(1 for i in e.function.indices if i == at) == 1

    return expr.replace(centred_sum, lambda e: sp.S.Zero)


def _centred_axis(st, steps: dict, sizes: dict):
    """The axis along which ``st`` (``X[i,j] - mean``) sums to zero, or None."""
    rhs, out = st.rhs.xreplace(sizes), tuple(st.out_indices)
    if not isinstance(rhs, sp.Add) or len(rhs.args) != 2:
        return None
    for whole, minus in (rhs.args, rhs.args[::-1]):
        if not (isinstance(whole, sp.Indexed) and tuple(whole.indices) == out):
            continue
        mean = _expand_mean(-minus, steps).xreplace(sizes)
        axis = _mean_axis(mean, whole, out)
        if axis is not None:
            return axis
    return None


def _expand_mean(e, steps: dict):
    """``e`` with each entry of a step (``mu[i]``, ``row_sum[i]``) written as that step's
    expression in these indices."""
    def written_out(x):
        st = steps.get(x.base.label.name)
        if st is None or len(st.out_indices) != len(x.indices):
            return x
        return st.rhs.xreplace(dict(zip(st.out_indices, x.indices)))

    return e.replace(lambda x: isinstance(x, sp.Indexed) and x.base.label.name in steps, written_out)


def _mean_axis(mean, whole: sp.Indexed, out: tuple):
    """The axis p when ``mean`` is ``Sum(X[..k..], (k, 0, n-1))/n`` with ``X[..k..]`` the entry
    ``whole`` with index k at p; None otherwise."""
    total = sp.Mul(*[f for f in sp.Mul.make_args(mean) if isinstance(f, sp.Sum)])
    if not isinstance(total, sp.Sum) or len(total.limits) != 1:
        return None
    k, low, high = total.limits[0]
    if low != 0 or sp.expand(mean * (high + 1) - total) != 0:
        return None
    entry = total.function
    if not (isinstance(entry, sp.Indexed) and entry.base == whole.base and len(entry.indices) == len(out)):
        return None
    places = [p for p, (x, o) in enumerate(zip(entry.indices, out)) if x != o]
    if len(places) != 1 or entry.indices[places[0]] != k:
        return None
    return places[0]
