"""Claims such as ``dX[a,b] = G[a,b] / Z[a,b]``: parsed safely, compared with the derived rule
symbolically (SymPy) and, where SymPy cannot decide, on random numbers; a wrong claim gets the
difference, a small counterexample and, where it can, a diagnosis. The answer is a
:class:`~deltagrad.check.verdict.Verdict` (data); :mod:`deltagrad.codegen.verdict_text` words it.

>>> from deltagrad import derive
>>> d = derive("Y[i,j] = X[i,j] / Z[i,j]")
>>> check_claim(d, "dZ[a,b] = G[a,b]*X[a,b]/Z[a,b]**2").diagnosis
Diagnosis(kind='sign', params={})
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp

from deltagrad.check.verdict import Counterexample, Diagnosis, Verdict
from deltagrad.derive.eliminate import eliminate_deltas
from deltagrad.derive.numeric import compare_gradients, index_sizes
from deltagrad.derive.parse import parse_equation
from deltagrad.derive.simplify import simplify_index_expr
from deltagrad.derive.spec import extent, index, index_aliases, input_pattern, is_index, scalar, tensor
from deltagrad.errors import SpecError


@dataclass(frozen=True)
class Claim:
    """A parsed claim: the input whose gradient it gives, and its right side as SymPy."""

    text: str
    input: str
    expr: sp.Expr  # in the derivation's gradient indices and output-gradient name
    missing_sum: tuple = ()  # indices free on the right but not bound on the left


def parse_claim(d, text: str, grad_name: str = "G") -> Claim:
    """Parse ``dX[a,b] = ...`` against derivation ``d`` (no evaluation of the text).

    >>> from deltagrad import derive
    >>> parse_claim(derive("Y[i,j] = X[i,j] / Z[i,j]"), "dX[p,q] = G[p,q] / Z[p,q]").expr
    G[a, b]/Z[a, b]
    """
    inputs = {i.name: i.rank for i in d.spec.inputs}

    def check_target(lhs_name, lhs_idx):
        name = lhs_name[1:] if lhs_name.startswith("d") else None
        if name not in inputs:
            grads = ", ".join("d" + n for n in inputs)
            raise SpecError(f"{lhs_name!r}: the left side must be d + an input ({grads})", 1)
        if len(lhs_idx) != inputs[name] or any(not isinstance(i, sp.Symbol) for i in lhs_idx):
            raise SpecError(f"{lhs_name} needs {inputs[name]} index name(s), one per axis of {name}", 1)
        if len(set(lhs_idx)) != len(lhs_idx):
            raise SpecError(f"{lhs_name}: each index on the left must be a different name", 1)

    eq = parse_equation(text, form="claim", check_target=check_target)
    name, lhs_idx, rhs = eq.name[1:], eq.indices, eq.rhs

    out_rank = len(d.spec.out_indices)
    ranks = dict(inputs)
    if grad_name in ranks:
        raise SpecError(f"the gradient letter {grad_name!r} is also an input's name: choose another with --grad-name")
    ranks[grad_name] = out_rank
    for e in _names(rhs):
        nm = e.base.label.name if isinstance(e, sp.Indexed) else e.name
        col = eq.where.get(nm)
        if nm == d.spec.output:
            raise SpecError(f"write the claim with the inputs and {grad_name}, not the output {nm}", col)
        if nm not in ranks:
            raise SpecError(f"unknown name {nm!r}: a claim may use {', '.join(sorted(ranks))}", col)
        rank = len(e.indices) if isinstance(e, sp.Indexed) else 0
        if rank != ranks[nm]:
            raise SpecError(f"{nm} has {ranks[nm]} index(es), not {rank}", col)

    # bound indices take the spec's extent of the axis they run over, under fresh names
    aliases = index_aliases(d.spec)
    st = d.steps[name]
    fresh, extents = {}, {}
    for s in rhs.atoms(sp.Sum):
        for lim in s.limits:
            k = lim[0]
            fresh.setdefault(k, index(f"_c{len(fresh)}"))
            extents[k] = _axis_extent(rhs, k, d, grad_name, aliases)
    free = sorted({s for s in rhs.free_symbols if is_index(s)} - set(lhs_idx), key=str)

    def rebuild(e):
        if isinstance(e, sp.Sum):
            body = rebuild(e.function)
            limits = [(fresh[lim[0]], 0, (extents[lim[0]] or extent(lim[0])) - 1) for lim in e.limits]
            return sp.Sum(body.xreplace({lim[0]: fresh[lim[0]] for lim in e.limits}), *limits)
        if not e.args or isinstance(e, sp.Indexed):
            return e
        return e.func(*[rebuild(a) for a in e.args])

    expr = rebuild(rhs).xreplace(dict(zip(lhs_idx, st.indices)))
    g = d.grad_name
    expr = expr.xreplace({tensor(grad_name): tensor(g), scalar(grad_name): scalar(g)})
    return Claim(text.strip(), name, expr, tuple(str(s) for s in free))


def _names(e):
    """The Indexed and scalar Symbol nodes of ``e`` (not the labels inside Indexed)."""
    if isinstance(e, sp.Indexed):
        yield e
        return
    if isinstance(e, sp.Symbol):
        if not e.is_integer:
            yield e
        return
    for a in e.args:
        yield from _names(a)


def _axis_extent(rhs, k, d, grad_name, aliases):
    """The spec's extent for claim index ``k``, from the first tensor axis it indexes."""
    for e in sp.preorder_traversal(rhs):
        if isinstance(e, sp.Indexed) and k in e.indices:
            axis = list(e.indices).index(k)
            nm = e.base.label.name
            pattern = d.spec.out_indices if nm == grad_name else input_pattern(d.spec, nm)
            if axis < len(pattern) and isinstance(pattern[axis], sp.Symbol):
                return extent(index(aliases.get(pattern[axis].name, pattern[axis].name)))
    return None


def _canonical(expr, aliases):
    """Extents by class representative and bound indices renamed by position, for comparison."""
    reps = {extent(index(n)): extent(index(r)) for n, r in aliases.items()}
    expr = eliminate_deltas(expr.xreplace(reps))

    def walk(e, depth):
        # sibling sums are separate scopes, so the same dummy names can serve them all
        if isinstance(e, sp.Sum):
            mapping = {lim[0]: index(f"_d{depth}_{n}") for n, lim in enumerate(e.limits)}
            body = walk(e.function, depth + 1).xreplace(mapping)
            return sp.Sum(body, *[(mapping[lim[0]], lim[1], lim[2]) for lim in e.limits])
        if not e.args or isinstance(e, sp.Indexed):
            return e
        return e.func(*[walk(a, depth) for a in e.args])

    return walk(expr, 0)


def _readable_bound(expr):
    """Canonical bound indices (_d0_0, ...) renamed to letters the expression does not use."""
    bound = sorted({lim[0] for s in expr.atoms(sp.Sum) for lim in s.limits}, key=str)
    used = {s.name for s in expr.free_symbols}
    letters = [c for c in "jklmpqrstuvwxyz" if c not in used]
    return expr.xreplace({b: index(letters[n]) if n < len(letters) else b for n, b in enumerate(bound)})


#: Draws for a counterexample: small integers first (readable), then floats of both signs.
CHECK_DRAWS = ((1, 3, True), (-3, 3, True), (0.5, 2.0, False), (-2.0, 2.0, False), (0.5, 2.0, False))


def numeric_compare(d, name, first, second, sizes=None):
    """(agree, env, first_value, second_value): agree is None if no draw was finite."""
    st = d.steps[name]
    sizes = sizes or index_sizes(d.spec, name, st.indices)
    return compare_gradients(first, second, d.spec, d.values, st.indices, d.grad_name, sizes, CHECK_DRAWS, rtol=1e-8)


def check_claim(d, text: str, grad_name: str = "G") -> Verdict:
    """Decide one claim against derivation ``d``.

    >>> from deltagrad import derive
    >>> v = check_claim(derive("Y[i,j] = X[i,j] / Z[i,j]"), "dX[a,b] = G[a,b]/Z[a,b]")
    >>> v.correct, v.method, v.derived
    (True, 'symbolic', G[a, b]/Z[a, b])
    """
    claim = parse_claim(d, text, grad_name)
    st = d.steps[claim.input]
    derived = st.simplified
    found = dict(claim=claim.text, input=claim.input, derived=derived, indices=tuple(st.indices))
    if claim.missing_sum:
        return Verdict(**found, correct=False, method="unbound_index",
                       diagnosis=Diagnosis("unbound_index", {"indices": claim.missing_sum}))
    aliases = index_aliases(d.spec)
    diff = simplify_index_expr(_canonical(claim.expr, aliases) - _canonical(derived, aliases))
    if diff == 0:
        return Verdict(**found, correct=True, method="symbolic")
    agree, env, got, want = numeric_compare(d, claim.input, claim.expr, derived)
    if agree:
        return Verdict(**found, correct=True, method="numeric", draws=len(CHECK_DRAWS))
    if agree is None:
        return Verdict(**found, correct=False, method="no_finite_values", error=Diagnosis("not_finite"))
    return Verdict(**found, correct=False, method="symbolic_and_numeric", difference=_readable_bound(diff),
                   counterexample=counterexample(d, env, got, want),
                   diagnosis=diagnose(d, claim.input, claim.expr, derived, got, want))


def counterexample(d, env, got, want) -> Counterexample:
    """The drawn inputs and output gradient in ``env``, with the two gradients they give."""
    return Counterexample({i.name: env[i.name] for i in d.spec.inputs}, env[d.grad_name], got, want)


def sign_or_factor(got, want) -> Diagnosis | None:
    """A 'sign' or 'factor' diagnosis when the numbers say so; None otherwise.

    >>> sign_or_factor(np.array([2.0, 4.0]), np.array([1.0, 2.0]))
    Diagnosis(kind='factor', params={'factor': 2})
    """
    got, want = np.asarray(got, float), np.asarray(want, float)
    if got.shape != want.shape:
        return None
    if np.allclose(got, -want, rtol=1e-8, atol=1e-10):
        return Diagnosis("sign")
    mask = np.abs(want) > 1e-9
    if mask.any():
        ratios = got[mask] / want[mask]
        if np.allclose(ratios, ratios.flat[0], rtol=1e-8) and np.allclose(got[~mask], 0, atol=1e-10):
            return Diagnosis("factor", {"factor": sp.nsimplify(float(ratios.flat[0]), rational=True, tolerance=1e-9)})
    return None


def diagnose(d, name, claim_expr, derived, got, want) -> Diagnosis:
    """The usual mistakes: sign, factor, swapped indices, a dropped sum, a dropped term."""
    found = sign_or_factor(got, want)
    if found:
        return found
    st = d.steps[name]
    if len(st.indices) == 2:
        a, b = st.indices
        square = {s: 3 for s in index_sizes(d.spec, name, st.indices)}
        swapped = derived.xreplace({a: b, b: a})
        if numeric_compare(d, name, claim_expr, swapped, square)[0]:
            return Diagnosis("swapped_indices", {"a": a.name, "b": b.name})
    for s in derived.atoms(sp.Sum):
        for lim in s.limits:
            for g in (*st.indices, sp.Integer(0)):
                dropped = derived.xreplace({s: s.function.xreplace({lim[0]: g}) if len(s.limits) == 1 else
                                            sp.Sum(s.function.xreplace({lim[0]: g}), *[l for l in s.limits if l != lim])})
                if numeric_compare(d, name, claim_expr, dropped)[0]:
                    return Diagnosis("dropped_sum", {"index": str(lim[0]), "kept": str(g)})
    terms = sp.Add.make_args(sp.expand(derived, deep=False))
    if len(terms) > 1:
        for t in terms:
            if numeric_compare(d, name, claim_expr, derived - t)[0]:
                return Diagnosis("missing_term", {"term": t})
    return Diagnosis("differs")
