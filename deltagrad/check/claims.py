"""Claims such as ``dX[a,b] = G[a,b] / Z[a,b]``: parsed safely, compared with the derived rule
symbolically (SymPy) and, where SymPy cannot decide, on random numbers; a wrong claim gets the
difference, a small counterexample and, where it can, a diagnosis in plain words.

>>> from deltagrad import derive
>>> d = derive("Y[i,j] = X[i,j] / Z[i,j]")
>>> check_claim(d, "dZ[a,b] = G[a,b]*X[a,b]/Z[a,b]**2").diagnosis
'the sign is flipped'
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from deltagrad.derive.eliminate import eliminate_deltas
from deltagrad.derive.numeric import compare_gradients, index_sizes
from deltagrad.derive.parse import MAX_NODES, MAX_TEXT, _Builder
from deltagrad.derive.simplify import simplify_index_expr
from deltagrad.derive.spec import extent, index, index_aliases, input_pattern, is_index, scalar, tensor
from deltagrad.errors import SpecError


@dataclass
class Verdict:
    """The answer for one claim (or one gradient of an Op class)."""

    claim: str
    input: str
    correct: bool
    how: str = ""  # how it was decided
    derived: str = ""
    difference: str = ""
    diagnosis: str = ""
    counterexample: dict = field(default_factory=dict)
    error: str = ""  # an exception in user code, or a claim that cannot be evaluated

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v not in ("", {}, None)} | {"correct": self.correct}


@dataclass(frozen=True)
class Claim:
    text: str
    input: str
    expr: sp.Expr  # in the derivation's gradient indices and output-gradient name
    missing_sum: tuple = ()  # indices free on the right but not bound on the left


def parse_claim(d, text: str, grad_name: str = "G") -> Claim:
    """Parse ``dX[a,b] = ...`` against derivation ``d`` (no evaluation of the text)."""
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        raise SpecError("a claim is a line of text such as dX[a,b] = G[a,b] / Z[a,b]")
    try:
        module = ast.parse(text.strip(), mode="exec")
    except SyntaxError as err:
        raise SpecError(f"syntax error in claim: {err.msg}", err.offset) from None
    if len(module.body) != 1 or not isinstance(module.body[0], ast.Assign) or len(module.body[0].targets) != 1:
        raise SpecError("a claim is one assignment: dX[a,b] = EXPR")
    stmt = module.body[0]
    if sum(1 for _ in ast.walk(stmt)) > MAX_NODES:
        raise SpecError("the claim is too large")
    target = stmt.targets[0]
    builder = _Builder()
    if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
        lhs_name, lhs_idx = target.value.id, builder.subscript(target)
    elif isinstance(target, ast.Name):
        lhs_name, lhs_idx = target.id, ()
    else:
        raise SpecError("the left side of a claim is an input's gradient: dX[a,b] (or dc for a scalar input)")
    inputs = {i.name: i.rank for i in d.spec.inputs}
    name = lhs_name[1:] if lhs_name.startswith("d") else None
    if name not in inputs:
        raise SpecError(f"{lhs_name!r}: the left side must be d + an input ({', '.join('d' + n for n in inputs)})", 1)
    if len(lhs_idx) != inputs[name] or any(not isinstance(i, sp.Symbol) for i in lhs_idx):
        raise SpecError(f"{lhs_name} needs {inputs[name]} index name(s), one per axis of {name}", 1)
    if len(set(lhs_idx)) != len(lhs_idx):
        raise SpecError(f"{lhs_name}: each index on the left must be a different name", 1)
    rhs = builder.expr(stmt.value, 0)

    out_rank = len(d.spec.out_indices)
    ranks = dict(inputs)
    if grad_name in ranks:
        raise SpecError(f"the gradient letter {grad_name!r} is also an input's name: choose another with --grad-name")
    ranks[grad_name] = out_rank
    for e in _names(rhs):
        nm = e.base.label.name if isinstance(e, sp.Indexed) else e.name
        col = builder.where.get(nm)
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
    """Decide one claim against derivation ``d``."""
    from deltagrad.codegen.index_printer import index_text

    claim = parse_claim(d, text, grad_name)
    st = d.steps[claim.input]
    lhs = f"d{claim.input}[{','.join(i.name for i in st.indices)}]" if st.indices else f"d{claim.input}"
    derived_text = f"{lhs} = {index_text(st.simplified)}"
    if claim.missing_sum:
        ks = ", ".join(claim.missing_sum)
        return Verdict(claim.text, claim.input, False, "the claim has an index that nothing binds", derived_text,
                       diagnosis=f"missing sum over {ks}: index {ks} is free on the right but not on the left "
                                 f"(write Sum(..., {ks}))")
    aliases = index_aliases(d.spec)
    derived = st.simplified
    diff = simplify_index_expr(_canonical(claim.expr, aliases) - _canonical(derived, aliases))
    if diff == 0:
        return Verdict(claim.text, claim.input, True, "SymPy shows the claim equals the derived rule", derived_text)
    agree, env, got, want = numeric_compare(d, claim.input, claim.expr, derived)
    if agree:
        return Verdict(claim.text, claim.input, True,
                       "SymPy could not decide; random numerical tests (5 draws) agree", derived_text)
    if agree is None:
        return Verdict(claim.text, claim.input, False, "no finite test values found", derived_text,
                       error="the claim or the rule is not finite on any test values")
    shown = _readable_bound(diff)
    verdict = Verdict(claim.text, claim.input, False, "SymPy finds a difference and numbers confirm it", derived_text,
                      difference=f"claim - derived = {index_text(shown)}")
    verdict.counterexample = counterexample(d, env, got, want)
    verdict.diagnosis = diagnose(d, claim.input, claim.expr, derived, got, want)
    return verdict


def _fmt(a):
    return np.array2string(np.asarray(a), precision=4, separator=", ", suppress_small=True).replace("\n", "")


def counterexample(d, env, got, want) -> dict:
    out = {i.name: _fmt(env[i.name]) for i in d.spec.inputs}
    out["G"] = _fmt(env[d.grad_name])
    out["claim gives"] = _fmt(got)
    out["derived gives"] = _fmt(want)
    return out


def sign_or_factor(got, want) -> str:
    """'the sign is flipped' or 'off by a factor of c' when the numbers say so; '' otherwise.

    >>> sign_or_factor(np.array([2.0, 4.0]), np.array([1.0, 2.0]))
    'off by a factor of 2'
    """
    got, want = np.asarray(got, float), np.asarray(want, float)
    if got.shape != want.shape:
        return ""
    if np.allclose(got, -want, rtol=1e-8, atol=1e-10):
        return "the sign is flipped"
    mask = np.abs(want) > 1e-9
    if mask.any():
        ratios = got[mask] / want[mask]
        if np.allclose(ratios, ratios.flat[0], rtol=1e-8) and np.allclose(got[~mask], 0, atol=1e-10):
            return f"off by a factor of {sp.nsimplify(float(ratios.flat[0]), rational=True, tolerance=1e-9)}"
    return ""


def diagnose(d, name, claim_expr, derived, got, want) -> str:
    """Plain words for the usual mistakes: sign, factor, transpose, a dropped sum, a dropped term."""
    found = sign_or_factor(got, want)
    if found:
        return found
    st = d.steps[name]
    if len(st.indices) == 2:
        a, b = st.indices
        square = {s: 3 for s in index_sizes(d.spec, name, st.indices)}
        swapped = derived.xreplace({a: b, b: a})
        if numeric_compare(d, name, claim_expr, swapped, square)[0]:
            return f"transposed: the claim is the derived rule with {a} and {b} swapped (a transpose on the wrong side?)"
    for s in derived.atoms(sp.Sum):
        for lim in s.limits:
            for g in (*st.indices, sp.Integer(0)):
                dropped = derived.xreplace({s: s.function.xreplace({lim[0]: g}) if len(s.limits) == 1 else
                                            sp.Sum(s.function.xreplace({lim[0]: g}), *[l for l in s.limits if l != lim])})
                if numeric_compare(d, name, claim_expr, dropped)[0]:
                    return f"missing sum over {lim[0]}: the claim keeps only the {lim[0]} = {g} term"
    terms = sp.Add.make_args(sp.expand(derived, deep=False))
    if len(terms) > 1:
        for t in terms:
            if numeric_compare(d, name, claim_expr, derived - t)[0]:
                from deltagrad.codegen.index_printer import index_text

                return f"a term is missing: {index_text(t)}"
    return "the claim and the derived rule differ (see the difference and the counterexample)"
