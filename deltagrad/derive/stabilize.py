"""Numerical stability: shift every sum of exponentials by its maximum.

A reduction ``R[i] = Sum(exp(X[i,k]), k)`` overflows for inputs of ±1000. With the row
maximum ``M[i] = max_k X[i,k]`` (named ``row_max``) and the shifted sum
``S[i] = Sum(exp(X[i,k] - M[i]), k)`` (named ``shifted_exp_sum``), ``R = exp(M)·S`` and
``exp(X[i,j]) = exp(M[i])·exp(X[i,j] - M[i])``. Substituting both, with ``exp(M)`` held as an
opaque positive factor, the factor cancels in a softmax and turns into ``M + log(S)`` under a
log. An expression in which it does not vanish keeps its
original form. The max is a constant of the rewrite, so gradients are unchanged.

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
from deltagrad.derive.spec import Spec, tensor


def _candidate(red, spec: Spec):
    """(tensor name, axis) when ``red`` is a sum over one index of exp(an input's entry)."""
    body = red.expr.function
    if len(red.expr.limits) != 1 or not isinstance(body, sp.exp) or not isinstance(body.args[0], sp.Indexed):
        return None
    entry = body.args[0]
    k = red.expr.limits[0][0]
    if entry.base.label.name not in {i.name for i in spec.inputs} or list(entry.indices).count(k) != 1:
        return None
    rest = tuple(i for i in entry.indices if i != k)
    if rest != red.indices or len(set(rest)) != len(rest):
        return None
    return entry.base.label.name, list(entry.indices).index(k)


def stabilize(spec: Spec, values, finals: dict, taken: set | None = None):
    """Stable forms of the forward values and of each final gradient (where the shift cancels)."""
    used = spec_names(spec) | {r.name for r in values.reductions} | (taken if taken is not None else set())
    reductions, maxima, subs_plans = [], [], []
    for red in values.reductions:
        found = _candidate(red, spec)
        if found is None:
            reductions.append(red)
            continue
        name, axis = found
        entry = red.expr.function.args[0]
        m_name = maximum_name(entry.indices, red.indices, used)
        s_name = unique("shifted_exp_sum", used)
        m = Maximum(m_name, red.indices, name, axis)
        shifted = Reduction(s_name, red.indices, sp.Sum(sp.exp(entry - tensor(m_name)[red.indices] if red.indices
                                                                    else entry - sp.Symbol(m_name, real=True)),
                                                           *red.expr.limits))
        maxima.append(m)
        reductions += [red, shifted]  # the original stays for any expression the shift cannot rewrite
        subs_plans.append((red, m, shifted))
    if not maxima:
        return values, finals
    if taken is not None:
        taken |= {m.name for m in maxima} | {p[2].name for p in subs_plans}

    def rewrite(expr):
        out = expr
        for red, m, shifted in subs_plans:
            out = _shift(out, red, m, shifted)
        return out

    new_rhs = rewrite(values.rhs)
    untouched = [p[0] for p in subs_plans] + [p[2] for p in subs_plans]
    reductions = [r if r in untouched else replace(r, expr=rewrite(r.expr)) for r in reductions]
    new_values = replace(values, rhs=new_rhs, reductions=tuple(reductions), maxima=tuple(maxima))
    new_finals = {k: rewrite(v) for k, v in finals.items()}
    return new_values, new_finals


def _shift(expr, red, m, shifted):
    em = sp.IndexedBase(f"exp_{m.name}", positive=True)
    m_base = sp.IndexedBase(m.name, real=True) if m.indices else None

    def m_ref(idx):
        return m_base[idx] if m.indices else sp.Symbol(m.name, real=True)

    def em_ref(idx):
        return em[idx] if m.indices else sp.Symbol(f"exp_{m.name}", positive=True)

    subs = {}
    if not red.indices:
        subs[red.ref] = em_ref(()) * shifted.ref
    for occ in expr.atoms(sp.Indexed):
        if occ.base.label.name == red.name:
            subs[occ] = em_ref(occ.indices) * shifted.ref.xreplace(dict(zip(red.indices, occ.indices)))
    for e in expr.atoms(sp.exp):
        arg = e.args[0]
        if isinstance(arg, sp.Indexed) and arg.base.label.name == m.tensor:
            idx = tuple(i for n, i in enumerate(arg.indices) if n != m.axis)
            subs[e] = em_ref(idx) * sp.exp(arg - m_ref(idx))
    if not subs:
        return expr
    out = expr.xreplace(subs)
    out = sp.expand_log(out, force=True)
    out = out.replace(lambda e: isinstance(e, sp.log) and _is_em(e.args[0], m.name),
                      lambda e: m_ref(e.args[0].indices) if isinstance(e.args[0], sp.Indexed) else sp.Symbol(m.name, real=True))
    if any(_is_em(a, m.name) for a in sp.preorder_traversal(out)):
        return expr
    return out


def _is_em(e, m_name):
    if isinstance(e, sp.Indexed):
        return e.base.label.name == f"exp_{m_name}"
    return isinstance(e, sp.Symbol) and e.name == f"exp_{m_name}"
