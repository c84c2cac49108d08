"""Numerical stability: shift every sum of exponentials by its maximum.

A reduction ``R[i] = Sum(exp(X[i,k]), k)`` overflows for inputs of ±1000. With the row
maximum ``M[i] = max_k X[i,k]`` (named ``row_max``) and the shifted sum
``S[i] = Sum(exp(X[i,k] - M[i]), k)`` (named ``shifted_exp_sum``), ``R = exp(M)·S`` and
``exp(X[i,j]) = exp(M[i])·exp(X[i,j] - M[i])``. Substituting both, with ``exp(M)`` held as an
opaque positive factor, the factor cancels in a softmax and turns into ``M + log(S)`` under a
log. A weighted sum ``Sum(exp(X[i,k])*V[k,e], k)`` (attention) is shifted by the same maximum
as the normaliser of the same tensor and axis, so the factor cancels between them too. An
expression in which it does not vanish keeps its original form. The max is a constant of the rewrite, so gradients are unchanged.

>>> from deltagrad.derive.parse import parse_spec
>>> from deltagrad.derive.forward_values import forward_values
>>> spec = parse_spec("y[i] = log(Sum(exp(X[i,k]), k))")
>>> values, _ = stabilize(spec, forward_values(spec), {})
>>> values.rhs, values.maxima
(log(shifted_exp_sum[i]) + row_max[i], (Maximum(name='row_max', indices=(i,), tensor='X', axis=1),))
"""

from __future__ import annotations

from dataclasses import replace

import sympy as sp

from deltagrad.derive.forward_values import Maximum, Reduction, spec_names
from deltagrad.derive.names import maximum_name, unique
from deltagrad.derive.spec import Spec


def _candidate(red, spec: Spec):
    """(the exp factor, tensor name, axis) when ``red`` sums, over one index, exp(an input's
    entry) times anything (a softmax's denominator, attention's ``exp(S[i,j])*V[j,e]``), the
    entry's other indices all kept by the reduction."""
    if len(red.expr.limits) != 1:
        return None
    k = red.expr.limits[0][0]
    exps = [f for f in sp.Mul.make_args(red.expr.function) if isinstance(f, sp.exp)]
    if len(exps) != 1 or not isinstance(exps[0].args[0], sp.Indexed):
        return None
    entry = exps[0].args[0]
    if entry.base.label.name not in {i.name for i in spec.inputs} or list(entry.indices).count(k) != 1:
        return None
    rest = tuple(i for i in entry.indices if i != k)
    if not set(rest) <= set(red.indices) or len(set(rest)) != len(rest) or not all(isinstance(i, sp.Symbol) for i in rest):
        return None
    return exps[0], entry.base.label.name, list(entry.indices).index(k)


def stabilize(spec: Spec, values, finals: dict, taken: set | None = None):
    """Stable forms of the forward values and of each final gradient (where the shift cancels).

    Sums of exponentials of one tensor along one axis share one maximum, so that the shift
    cancels between them (attention's numerator and denominator)."""
    used = spec_names(spec) | {r.name for r in values.reductions} | (taken if taken is not None else set())
    reductions, maxima, plans = [], {}, []
    for red in values.reductions:
        found = _candidate(red, spec)
        if found is None:
            reductions.append(red)
            continue
        factor, name, axis = found
        entry = factor.args[0]
        rest = tuple(i for n, i in enumerate(entry.indices) if n != axis)
        if (name, axis) not in maxima:
            maxima[name, axis] = Maximum(maximum_name(entry.indices, rest, used), rest, name, axis)
        m = maxima[name, axis]
        s_name = unique("shifted_exp_sum" if red.expr.function == factor else f"{red.name}_shifted", used)
        weight = [f for f in sp.Mul.make_args(red.expr.function) if f != factor]  # exp(X) in it stays
        copy = Reduction(s_name, red.indices, sp.Sum(sp.Mul(*weight) * sp.exp(entry - _m_ref(m, rest)),
                                                     *red.expr.limits))
        reductions += [red, copy]  # the original stays for any expression the shift cannot rewrite
        plans.append((red, m, copy, rest))
    if not maxima:
        return values, finals
    if taken is not None:
        taken |= {m.name for m in maxima.values()} | {p[2].name for p in plans}

    def rewrite(expr):
        return _rewrite(expr, plans, tuple(maxima.values()))

    new_rhs = rewrite(values.rhs)
    # an original sum is rewritten by the other sums' shifts only (a weighted sum that reads the
    # normaliser's log is stable through the normaliser's shift); the shifted copies stay as made
    copies = [p[2] for p in plans]
    reductions = [r if r in copies else replace(r, expr=_rewrite(r.expr, [p for p in plans if p[0] is not r],
                                                                 tuple(maxima.values()))) for r in reductions]
    new_values = replace(values, rhs=new_rhs, reductions=tuple(reductions), maxima=tuple(maxima.values()),
                         shifts=tuple(plans))
    new_finals = {k: rewrite(v) for k, v in finals.items()}
    return new_values, new_finals


def shifted(expr, values):
    """``expr`` (a gradient) through the shifted sums and maxima of ``values``, where the shift
    cancels; else ``expr`` unchanged."""
    return _rewrite(expr, values.shifts, values.maxima) if values.shifts else expr


def _rewrite(expr, plans, maxima):
    """``expr`` shifted by one maximum at a time (a row and a column maximum of one tensor each
    rewrite their own sums): by all the sums that share it, or failing that by its plain sums of
    exponentials only (a weighted sum that reads another sum's log cannot cancel its factor).
    The terms of a sum are shifted each on its own (a row softmax plus a column one)."""
    if isinstance(expr, sp.Add) and len(maxima) > 1:
        return sp.Add(*[_rewrite(t, plans, maxima) for t in expr.args])
    for m in maxima:
        group = [p for p in plans if p[1] is m]
        new = _shift(expr, group, [m])
        plain = [p for p in group if isinstance(p[0].expr.function, sp.exp)]
        if new is expr and plain and len(plain) < len(group):
            new = _shift(expr, plain, [m])
        expr = new
    return expr


def _m_ref(m, idx):
    return sp.IndexedBase(m.name, real=True)[idx] if m.indices else sp.Symbol(m.name, real=True)


def _em_ref(m, idx):
    return sp.IndexedBase(f"exp_{m.name}", positive=True)[idx] if m.indices else sp.Symbol(f"exp_{m.name}", positive=True)


def _shift(expr, plans, maxima):
    """``expr`` with each planned reduction written as exp(its maximum) times its shifted sum and
    each exp of a shifted tensor's entry as exp(the maximum) times the shifted exponential, when
    every exp(maximum) factor then cancels; else ``expr`` unchanged."""
    subs = {}
    for red, m, copy, rest in plans:
        for occ in expr.atoms(sp.Indexed) if red.indices else [red.ref]:
            if occ.is_Symbol or occ.base.label.name == red.name:
                names = dict(zip(red.indices, occ.indices)) if red.indices else {}
                subs[occ] = _em_ref(m, tuple(names[i] for i in rest)) * copy.ref.xreplace(names)
    by_tensor = {m.tensor: m for m in maxima}
    for e in expr.atoms(sp.exp):
        arg = e.args[0]
        m = by_tensor.get(arg.base.label.name) if isinstance(arg, sp.Indexed) else None
        if m is not None:
            idx = tuple(i for n, i in enumerate(arg.indices) if n != m.axis)
            subs[e] = _em_ref(m, idx) * sp.exp(arg - _m_ref(m, idx))
    if not subs:
        return expr
    out = _pull_out_of_sums(expr.xreplace(subs))
    out = sp.expand_log(out, force=True)
    by_name = {f"exp_{m.name}": m for m in maxima}

    def has_em(e):
        return any(_em_name(a) in by_name for a in sp.preorder_traversal(e))

    if has_em(out):
        out = sp.factor_terms(out)  # em·A − em·B over em²: the common factor out of the sum
    out = out.replace(lambda e: isinstance(e, sp.log) and _em_name(e.args[0]) in by_name,
                      lambda e: _m_ref(by_name[_em_name(e.args[0])], e.args[0].indices if e.args[0].is_Indexed else ()))
    return expr if has_em(out) else out


def _pull_out_of_sums(expr):
    """``expr`` with the factors of each sum's terms that do not depend on its bound indices
    taken out of it, innermost sums first, so that an exp(maximum) inside a sum can cancel."""
    if not expr.args or isinstance(expr, sp.Indexed):
        return expr
    expr = expr.func(*[_pull_out_of_sums(a) for a in expr.args])
    if not isinstance(expr, sp.Sum):
        return expr
    bound = {lim[0] for lim in expr.limits}
    body = sp.factor_terms(expr.function)
    outside = [f for f in sp.Mul.make_args(body) if not (f.free_symbols & bound)]
    if not outside:
        return expr
    inside = [f for f in sp.Mul.make_args(body) if f.free_symbols & bound]
    return sp.Mul(*outside) * sp.Sum(sp.Mul(*inside), *expr.limits)


def _em_name(e):
    if isinstance(e, sp.Indexed):
        return e.base.label.name
    return e.name if isinstance(e, sp.Symbol) else None
