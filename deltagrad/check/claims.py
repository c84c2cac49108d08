"""Claims such as ``dX[a,b] = G[a,b] / Z[a,b]``: parsed safely, compared with the derived rule
symbolically (SymPy) and, where SymPy cannot decide, on random numbers; a wrong claim gets the
difference, a small counterexample and, where it can, a diagnosis. The answer is a
:class:`~deltagrad.check.verdict.Verdict` (data); :mod:`deltagrad.codegen.verdict_text` words it.

A claim may be written as the derived rules are printed: ``Sum_j(...)`` and ``Sum_i,j(...)``,
``delta(a,b)``, ``sign``, ``V**(3/2)``, the output (``Y[a,b]``), the forward's saved values
(``row_sum[a]``) and sizes (``n_k`` or ``size(k)``). A claim whose indices do not fit the
input's shape (a missing transpose) is judged by its indices, never evaluated.

>>> from deltagrad import derive
>>> d = derive("Y[i,j] = X[i,j] / Z[i,j]")
>>> check_claim(d, "dZ[a,b] = G[a,b]*X[a,b]/Z[a,b]**2").diagnosis
Diagnosis(kind='sign', params={})
>>> check_claim(d, "dX[a,b] = G[a,b]/Z[b,a]").diagnosis.params["fixes"]
(('Z[b,a]', 'Z[a,b]'),)
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, replace as with_changes

import numpy as np
import sympy as sp

from deltagrad.check.shapes import IndexFit, class_extent
from deltagrad.check.size_one import size_one_derivation
from deltagrad.check.verdict import Counterexample, Diagnosis, Verdict
from deltagrad.codegen.index_printer import index_text
from deltagrad.derive.budget import BudgetExceeded, time_budget
from deltagrad.derive.eliminate import eliminate_deltas
from deltagrad.derive.functions import generic_functions
from deltagrad.derive.names import NAMES
from deltagrad.derive.numeric import compare_gradients, evaluate_gradient, index_sizes, random_environments, telling
from deltagrad.derive.parse import parse_equation
from deltagrad.derive.simplify import simplify_index_expr
from deltagrad.derive.size_one import shown_indices
from deltagrad.derive.spec import UNIT, extent, index, index_aliases, input_pattern, is_index, scalar, tensor
from deltagrad.errors import SpecError

#: Seconds the symbolic comparison of a claim through the forward's saved values may take
#: before the numbers decide.
SYMBOLIC_SECONDS = 5.0


@dataclass(frozen=True)
class Claim:
    """A parsed claim: the input whose gradient it gives, and its right side as SymPy.

    ``expr`` is in the derivation's names (its gradient indices, output-gradient letter and
    extents); ``rhs`` and ``lhs`` are the right side and the left indices as written.
    ``saved`` names the forward values the claim reads (the output, ``row_sum``, ...).
    """

    text: str
    input: str
    expr: sp.Expr
    missing_sum: tuple = ()  # indices free on the right but not bound on the left
    rhs: sp.Expr = None
    lhs: tuple = ()
    grad_name: str = "G"
    saved: tuple = ()


_SUM_HEAD = re.compile(r"(?:Sum|Max|Min)_(\{)?\s*((?:[A-Za-z_]\w*|\.\.\.)(?:\s*,\s*[A-Za-z_]\w*)*)\s*(?(1)\})\s*\(")


def normalize_claim(text: str):
    """The printed ``Sum_j(body)`` and ``Sum_i,j(body)`` (also ``Sum_{i,j}``) rewritten as
    ``Sum(body,i,j)``, with the column in ``text`` of each character of the result.

    >>> normalize_claim("dc = 2*Sum_i,j(G[i,j]*Sum_k(X[i,k]))")[0]
    'dc = 2*Sum(G[i,j]*Sum(X[i,k],k),i,j)'
    """
    where = list(range(len(text)))
    for _ in range(sum(text.count(f"{head}_") for head in ("Sum", "Max", "Min"))):
        m = _SUM_HEAD.search(text)
        if not m:
            break
        open_at = m.end() - 1
        close = _matching_paren(text, open_at)
        if close is None:
            break
        names = re.sub(r"\s+", "", m.group(2))
        new = f"{text[m.start():m.start() + 3]}({text[m.end():close]},{names})"
        new_where = (where[m.start():m.start() + 4] + where[m.end():close] + [where[m.start() + 4]] * (len(names) + 1)
                     + [where[close]])
        text = text[:m.start()] + new + text[close + 1:]
        where = where[:m.start()] + new_where + where[close + 1:]
    return text, where


def _matching_paren(text: str, at: int):
    depth = 0
    for n in range(at, len(text)):
        if text[n] == "(":
            depth += 1
        elif text[n] == ")":
            depth -= 1
            if depth == 0:
                return n
    return None


def claim_names(d, grad_name: str) -> dict:
    """Name → (number of indices, what it is) for every array or scalar a claim may read."""
    names = {i.name: (i.rank, "input") for i in d.spec.inputs}
    if grad_name in names:
        raise SpecError(f"the gradient letter {grad_name!r} is also an input's name: choose another with --grad-name")
    out_rank = len(d.spec.out_indices)
    names[grad_name] = (out_rank, "gradient")
    saved = [(d.spec.output, out_rank)]
    saved += [(r.name, len(r.indices)) for r in (*d.values.reductions, *d.values.maxima)]
    for nm, rank in saved:
        if nm == grad_name:
            raise SpecError(f"the gradient letter {grad_name!r} is also the name of a forward value: "
                            "choose another with --grad-name")
        names.setdefault(nm, (rank, "saved"))
    for ix in index_aliases(d.spec):
        names.setdefault(NAMES.extent(ix), (0, "size"))
    return names


def parse_claim(d, text: str, grad_name: str = "G") -> Claim:
    """Parse ``dX[a,b] = ...`` against derivation ``d`` (no evaluation of the text).

    >>> from deltagrad import derive
    >>> parse_claim(derive("Y[i,j] = X[i,j] / Z[i,j]"), "dX[p,q] = G[p,q] / Z[p,q]").expr
    G[a, b]/Z[a, b]
    """
    inputs = {i.name: i.rank for i in d.spec.inputs}
    integers = {i.name for i in d.spec.inputs if i.integer}

    def check_target(lhs_name, lhs_idx):
        name = lhs_name[1:] if lhs_name.startswith("d") else None
        if name not in inputs:
            grads = ", ".join("d" + n for n in inputs if n not in integers)
            raise SpecError(f"{lhs_name!r}: the left side must be d + an input ({grads})", 1)
        if name in integers:
            raise SpecError(f"{name} is an integer input: it selects positions and gets no gradient "
                            "(the backward returns None for it)", 1)
        if len(lhs_idx) != inputs[name] or any(not isinstance(i, sp.Symbol) for i in lhs_idx):
            raise SpecError(f"{lhs_name} needs {inputs[name]} index name(s), one per axis of {name}", 1)
        named = [i for i in lhs_idx if i != UNIT]
        if len(set(named)) != len(named):
            raise SpecError(f"{lhs_name}: each index on the left must be a different name", 1)

    where, parsed = None, text
    if isinstance(text, str):
        text = text.strip()
        parsed, where = normalize_claim(text)
    try:
        eq = parse_equation(parsed, form="claim", check_target=check_target, functions=declared(d))
    except SpecError as err:
        raise _remapped(err, where) from None
    name, rhs = eq.name[1:], eq.rhs
    # dX[a,_,c]: the gradient along an axis of size one, the same for its one entry as for any
    lhs_idx = tuple(index(f"_unit{n}") if ix == UNIT else ix for n, ix in enumerate(eq.indices))
    columns = {nm: _column(col, where) for nm, col in eq.where.items()}

    names = claim_names(d, grad_name)
    saved = []
    for e in _names(rhs):
        nm = e.base.label.name if isinstance(e, sp.Indexed) else e.name
        col = columns.get(nm)
        if nm not in names:
            raise SpecError(f"unknown name {nm!r}: a claim may use {_allowed(names)}", col)
        rank = len(e.indices) if isinstance(e, sp.Indexed) else 0
        if rank != names[nm][0]:
            raise SpecError(f"{nm} has {names[nm][0]} index(es), not {rank}", col)
        if names[nm][1] == "saved" and nm not in saved:
            saved.append(nm)

    for sm in rhs.atoms(sp.Sum):
        for lim in sm.limits:
            if lim[0] not in sm.function.free_symbols:
                raise SpecError(f"Sum over {lim[0]}: {lim[0]} appears nowhere in what is summed",
                                columns.get(lim[0].name))
    fit = IndexFit(d, name, lhs_idx, grad_name)
    expr = claim_expr(d, fit, rhs, grad_name)
    free = sorted({s for s in rhs.free_symbols if is_index(s)} - set(lhs_idx), key=str)
    return Claim(text.strip(), name, expr, tuple(str(s) for s in free), rhs, tuple(lhs_idx), grad_name, tuple(saved))


def declared(d) -> tuple:
    """The generic functions the spec of ``d`` calls (``f``): a claim may call them and their
    derivatives (``f_prime``, ``f_prime2``, …)."""
    found = generic_functions(d.spec.rhs)
    for st in d.statements:
        found |= generic_functions(st.rhs)
    return tuple(sorted(found))


def _remapped(err: SpecError, where):
    if where is None or err.column is None or not 0 < err.column <= len(where):
        return err
    return SpecError(err.message, where[err.column - 1] + 1)


def _column(col, where):
    return where[col - 1] + 1 if where is not None and col is not None and 0 < col <= len(where) else col


def _allowed(names: dict) -> str:
    groups = {kind: sorted(n for n, (_, k) in names.items() if k == kind)
              for kind in ("input", "gradient", "saved", "size")}
    text = ", ".join(sorted(groups["input"] + groups["gradient"]))
    extra = [f"the forward's values {', '.join(groups['saved'])}" if groups["saved"] else "",
             f"sizes {', '.join(groups['size'])}" if groups["size"] else ""]
    extra = [e for e in extra if e]
    return text + (f" ({'; '.join(extra)})" if extra else "")


def claim_expr(d, fit: IndexFit, rhs, grad_name: str):
    """A claim's right side in the derivation's names: the left indices as the gradient's,
    bound indices fresh with the extent of the axis they run over, sizes by class."""
    st = d.steps[fit.input]
    aliases = index_aliases(d.spec)
    kinds = fit.kinds_of(fit.uses(rhs))
    lhs_extents = {v: class_extent(d, kind) or extent(ix)
                   for v, ix, kind in zip(fit.lhs, st.indices, fit.kinds[fit.input])}
    fresh, extents = {}, {}
    for s in rhs.atoms(sp.Sum):
        for lim in s.limits:
            k = lim[0]
            fresh.setdefault(k, index(f"_c{len(fresh)}"))
            if k not in extents:
                extents[k] = _var_extent(d, k, kinds, aliases)

    def sized(e):
        """The extent a size stands for: ``n_k`` as printed names the spec's index k (else the
        claim's); ``size(k)`` names the claim's own index k (else the spec's)."""
        ix = NAMES.index_of_extent(e.name)
        sym = index(ix)
        spec_first = not e.is_integer  # n_k was typed as a name
        if spec_first and ix in aliases:
            return extent(index(aliases[ix]))
        if sym in lhs_extents:
            return lhs_extents[sym]
        if sym in extents:
            return extents[sym]
        if ix in aliases:
            return extent(index(aliases[ix]))
        return None

    def rebuild(e):
        if isinstance(e, sp.Sum):
            body = rebuild(e.function)
            limits = [(fresh[lim[0]], 0, extents[lim[0]] - 1) for lim in e.limits]
            return sp.Sum(body.xreplace({lim[0]: fresh[lim[0]] for lim in e.limits}), *limits)
        if isinstance(e, sp.Symbol) and NAMES.is_extent(e.name) and not is_index(e):
            return sized(e) or e
        if not e.args or isinstance(e, sp.Indexed):
            return e
        return e.func(*[rebuild(a) for a in e.args])

    expr = rebuild(rhs).xreplace(dict(zip(fit.lhs, st.indices)))
    g = d.grad_name
    return expr.xreplace({tensor(grad_name): tensor(g), scalar(grad_name): scalar(g)})


def _var_extent(d, k, kinds, aliases):
    """The extent a bound index runs to: that of the first axis it indexes (its own otherwise)."""
    for (name, _scope), found in kinds.items():
        if name == k and found:
            ext = class_extent(d, found[0])
            if ext is not None:
                return ext
    return extent(index(aliases.get(k.name, k.name)))


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


def symbolic_difference(d, first, second):
    """``first - second`` simplified, bound indices canonical (0 when SymPy shows them equal)."""
    aliases = index_aliases(d.spec)
    return simplify_index_expr(_canonical(first, aliases) - _canonical(second, aliases))


def expand_saved(d, expr, rounds: int = 8):
    """``expr`` with the output and the forward's named values replaced by their definitions
    (maxima stay), so that a claim through ``Y`` or ``row_sum`` can meet a rule in the inputs."""
    defs = {d.spec.output: (tuple(d.spec.out_indices), d.spec.rhs)}
    for r in d.values.reductions:
        defs.setdefault(r.name, (tuple(r.indices), r.expr))
    counter = iter(range(10**6))

    def fresh_bound(e):
        mapping = {lim[0]: index(f"_e{next(counter)}") for s in e.atoms(sp.Sum) for lim in s.limits}
        return e.xreplace(mapping)

    def replace(e):
        if isinstance(e, sp.Indexed) and e.base.label.name in defs:
            idx, body = defs[e.base.label.name]
            if len(idx) == len(e.indices) and all(isinstance(i, sp.Symbol) for i in idx):
                return fresh_bound(body).xreplace(dict(zip(idx, e.indices)))
            return e
        if isinstance(e, sp.Symbol) and not e.is_integer and e.name in defs and not defs[e.name][0]:
            return fresh_bound(defs[e.name][1])
        if not e.args or isinstance(e, sp.Indexed):
            return e
        return e.func(*[replace(a) for a in e.args])

    for _ in range(rounds):
        new = replace(expr)
        if new == expr:
            break
        expr = new
    return expr


#: Draws for a counterexample: small integers first (readable), then floats of both signs.
#: The last, integers 1 and 2 only, makes ties likely, where a max's or min's gradient is split.
CHECK_DRAWS = ((1, 3, True), (-3, 3, True), (0.5, 2.0, False), (-2.0, 2.0, False), (0.5, 2.0, False), (1, 2, True))


def numeric_compare(d, name, first, second, sizes=None):
    """(agree, env, first_value, second_value): agree is None if no draw was finite."""
    st = d.steps[name]
    sizes = sizes or index_sizes(d.spec, name, st.indices)
    return compare_gradients(first, second, d.spec, d.values, st.indices, d.grad_name, sizes, CHECK_DRAWS, rtol=1e-8)


def _safe_compare(d, name, first, second, sizes=None):
    """numeric_compare, or None where the expressions cannot be evaluated on these sizes."""
    try:
        with np.errstate(all="ignore"):
            return numeric_compare(d, name, first, second, sizes)
    except Exception:  # noqa: BLE001 - an expression the lowering or numpy cannot run is no answer
        return None


def _agrees(d, name, first, second, sizes=None) -> bool:
    found = _safe_compare(d, name, first, second, sizes)
    return bool(found and found[0])


def square_sizes(d, name) -> dict:
    """Every index class of size 3 (a literal-index axis keeps its size): the sizes on which a
    claim whose indices mix axes can still be evaluated."""
    st = d.steps[name]
    sizes = index_sizes(d.spec, name, st.indices)
    square = {s: 3 for s in sizes}
    for idx, ix in zip(st.indices, input_pattern(d.spec, name)):
        if isinstance(ix, sp.Integer):
            square[extent(idx)] = sizes[extent(idx)]
    return square


def _natural_compare(d, name, claim_expr, derived, fit: IndexFit, rhs):
    """(env, claim value, derived value): the claim evaluated at its own shape (each left index
    over the axis it indexes) beside the derived rule at the input's shape; None if it cannot be."""
    st = d.steps[name]
    sizes = index_sizes(d.spec, name, st.indices)
    own = dict(sizes)
    for idx, kind in zip(st.indices, fit.claim_shape(rhs)):
        ext = class_extent(d, kind)
        if ext is None or ext not in sizes:
            return None
        own[extent(idx)] = sizes[ext]
    try:
        with np.errstate(all="ignore"):
            for env in random_environments(d.spec, d.values, sizes, d.grad_name, CHECK_DRAWS):
                want = evaluate_gradient(derived, env, sizes, st.indices, d.grad_name)
                env_own = {**env, **{s.name: v for s, v in own.items()}}
                got = evaluate_gradient(claim_expr, env_own, own, st.indices, d.grad_name)
                if np.all(np.isfinite(got)) and np.all(np.isfinite(want)):
                    return env, got, want
    except Exception:  # noqa: BLE001
        return None
    return None


def check_claim(d, text: str, grad_name: str = "G") -> Verdict:
    """Decide one claim against derivation ``d``.

    A claim that cannot be read raises :class:`SpecError`; any claim that can is judged.

    >>> from deltagrad import derive
    >>> v = check_claim(derive("Y[i,j] = X[i,j] / Z[i,j]"), "dX[a,b] = G[a,b]/Z[a,b]")
    >>> v.correct, v.method, v.derived
    (True, 'symbolic', G[a, b]/Z[a, b])
    """
    with warnings.catch_warnings():  # numpy's and the parser's warnings say nothing about the claim
        warnings.simplefilter("ignore")
        return _check_claim(d, text, grad_name)


def _check_claim(d, text, grad_name, hint: bool = True) -> Verdict:
    verdict = in_claim_letters(_judge_claim(d, text, grad_name), d, grad_name)
    if verdict.correct or not hint:
        return verdict
    d1, diagnosis = size_one_derivation(d)
    if d1 is not None:
        try:
            right = _check_claim(d1, text, grad_name, hint=False).correct
        except SpecError:
            right = False
        if right:
            return with_changes(verdict, diagnosis=diagnosis)
    return verdict


def in_claim_letters(verdict: Verdict, d, grad_name: str) -> Verdict:
    """``verdict`` with the derivation's own gradient letter (``G_Y`` when an input is named
    ``G``) written as the claims' ``grad_name``, in the derived rule, the difference and the
    counterexample: what the user reads is in the user's letters. ``grad_name`` names no
    input or forward value (:func:`claim_names` refuses that), so the renaming is safe."""
    example = verdict.counterexample and with_changes(verdict.counterexample, grad_name=grad_name)
    if grad_name == d.grad_name:
        return with_changes(verdict, counterexample=example)
    own = {tensor(d.grad_name): tensor(grad_name), scalar(d.grad_name): scalar(grad_name)}
    rename = lambda e: None if e is None else e.xreplace(own)  # noqa: E731
    return with_changes(verdict, derived=rename(verdict.derived), difference=rename(verdict.difference),
                        counterexample=example)


def steps_read(d, expr) -> tuple:
    """The (lhs, rhs) of each of ``d``'s forward steps and saved reductions that ``expr`` reads,
    directly or through another of them, in the forward's order (a saved maximum's rhs is the
    ``Max`` over its axis).

    >>> from deltagrad.derive.derivation import derive
    >>> d = derive("Y[i,j] = X[i,j]/(1 + exp(-X[i,j]))")
    >>> [str(rhs) for _, rhs in steps_read(d, d.grads["X"])]
    ['1/(1 + exp(-X[i, j]))']
    >>> d = derive("Y[i,j] = X[i,j] / Sum(X[i,k], k)")
    >>> [(str(lhs), str(rhs)) for lhs, rhs in steps_read(d, d.grads["X"])]
    [('row_sum[i]', 'Sum(X[i, k], (k, 0, n_j - 1))')]
    """
    def names(e):
        return {x.base.label.name for x in e.atoms(sp.Indexed)} | {x.name for x in e.atoms(sp.Symbol)}

    reductions = {r.name: r for r in d.values.reductions}

    def shown(rhs):  # a step that only names a saved reduction (row_sum = row_sum_2) shows the sum
        r = reductions.get(rhs.base.label.name) if isinstance(rhs, sp.Indexed) else None
        if r is None or len(r.indices) != len(rhs.indices):
            return rhs
        return r.expr.xreplace(dict(zip(r.indices, rhs.indices)))

    defined = [(st.output, st.lhs, shown(st.rhs)) for st in d.statements[:-1]]
    steps = {name for name, _, _ in defined}  # a step is also among the reductions: its own form is shown
    defined += [(r.name, r.ref, shown(r.expr)) for r in d.values.reductions if r.name not in steps]
    for m in d.values.maxima:
        inp = d.spec.input(m.tensor)
        idx = list(m.indices)
        bound = sp.Symbol("k_max", integer=True)
        idx.insert(m.axis, bound)
        ref = tensor(m.name)[m.indices] if m.indices else scalar(m.name)
        defined.append((m.name, ref, sp.Function("Max")(tensor(inp.name)[tuple(idx)], bound)))
    read, out = names(expr), []
    for name, lhs, rhs in reversed(defined):
        if name in read and all(name != o[0] for o in out):
            out.append((name, lhs, rhs))
            read |= names(rhs)
    order = [name for name, _, _ in defined]
    return tuple((lhs, rhs) for _, lhs, rhs in sorted(out, key=lambda o: order.index(o[0])))


def _judge_claim(d, text, grad_name) -> Verdict:
    claim = parse_claim(d, text, grad_name)
    st = d.steps[claim.input]
    derived = st.final if claim.saved else st.simplified
    found = dict(claim=claim.text, input=claim.input, derived=derived,
                 indices=shown_indices(d.spec, claim.input, tuple(st.indices)), steps=steps_read(d, derived))
    if claim.missing_sum:
        return Verdict(**found, correct=False, method="unbound_index",
                       diagnosis=Diagnosis("unbound_index", {"indices": claim.missing_sum}))
    diff = _difference(d, claim.expr, derived)
    if diff == 0 or _equal_through_saved(d, claim, st):
        return Verdict(**found, correct=True, method="symbolic")
    difference = None if diff is None else _readable_bound(diff)
    fit = IndexFit(d, claim.input, claim.lhs, claim.grad_name)
    if not fit.fits(claim.rhs):
        return _shape_verdict(d, claim, derived, fit, found, difference)
    compared = _safe_compare(d, claim.input, claim.expr, derived)
    if compared is None:
        return Verdict(**found, correct=False, method="not_evaluable", difference=difference,
                       error=Diagnosis("not_evaluable"))
    agree, env, got, want = compared
    if agree and not telling(got, want):
        # 0 on every draw, and SymPy did not show them equal: the numbers cannot vouch for the claim
        return Verdict(**found, correct=False, method="never_apart", difference=difference,
                       error=Diagnosis("never_apart"))
    if agree:
        return Verdict(**found, correct=True, method="numeric", draws=len(CHECK_DRAWS))
    if agree is None:
        return Verdict(**found, correct=False, method="no_finite_values", error=Diagnosis("not_finite"))
    diagnosis = diagnose(d, claim.input, claim.expr, derived, got, want)
    if diagnosis.kind == "differs":
        diagnosis = _transposed_entry(d, claim, fit, derived) or diagnosis
    return Verdict(**found, correct=False, method="symbolic_and_numeric", difference=difference,
                   counterexample=counterexample(d, env, got, want), diagnosis=diagnosis)


def _transposed_entry(d, claim: Claim, fit: IndexFit, derived) -> Diagnosis | None:
    """A 'transposed_entries' diagnosis when one entry of the claim, transposed, makes it right
    (indices of one size class, as in ``X @ X``, where the shapes cannot tell)."""
    nodes = sorted({e for e in claim.rhs.atoms(sp.Indexed) if len(e.indices) == 2 and len(set(e.indices)) == 2
                    and all(is_index(i) for i in e.indices)}, key=sp.default_sort_key)
    for node in nodes[:8]:
        swapped = node.base[node.indices[::-1]]
        fixed = claim.rhs.xreplace({node: swapped})
        if fit.fits(fixed) and _agrees(d, claim.input, claim_expr(d, fit, fixed, claim.grad_name), derived):
            return Diagnosis("transposed_entries", {"fixes": ((index_text(node), index_text(swapped)),),
                                                    "right_when_fixed": True})
    return None


def _difference(d, first, second):
    """The simplified difference, or None when SymPy fails on it."""
    try:
        return symbolic_difference(d, first, second)
    except BudgetExceeded:
        raise
    except Exception:  # noqa: BLE001 - SymPy's own failures leave the decision to the numbers
        return None


def _equal_through_saved(d, claim: Claim, st) -> bool:
    """True when SymPy shows the claim equal to the rule once saved values are written out."""
    if not claim.saved and not _saved_atoms(d, st.simplified):
        return False
    try:
        with time_budget(SYMBOLIC_SECONDS) as mine:
            if claim.saved and _difference(d, claim.expr, st.final) == 0:
                return True
            return _difference(d, expand_saved(d, claim.expr), expand_saved(d, st.simplified)) == 0
    except BudgetExceeded as err:
        if err.budget is not mine:
            raise
        return False


def _saved_atoms(d, expr) -> set:
    saved = {d.spec.output} | {r.name for r in d.values.reductions}
    return {e for e in expr.atoms(sp.Indexed) if e.base.label.name in saved}


def _shape_verdict(d, claim: Claim, derived, fit: IndexFit, found: dict, difference) -> Verdict:
    """The verdict on a claim whose indices do not fit the input's shape: which entry is
    transposed (and whether the claim is right with it fixed), or the shapes that differ."""
    name, rhs = claim.input, claim.rhs
    diagnosis = None
    swapped = fit.whole_transpose(rhs)
    if swapped is not None and fit.fits(swapped):
        fixed = claim_expr(d, fit, swapped, claim.grad_name)
        if _same(d, name, fixed, derived):
            a, b = (s.name for s in d.steps[name].indices)
            diagnosis = Diagnosis("swapped_indices", {"a": a, "b": b})
    if diagnosis is None:
        fixes = fit.transposed_entries(rhs)
        if fixes:
            fixed_rhs = rhs.xreplace(dict(fixes))
            right = _same(d, name, claim_expr(d, fit, fixed_rhs, claim.grad_name), derived)
            diagnosis = Diagnosis("transposed_entries", {
                "fixes": tuple((index_text(a), index_text(b)) for a, b in fixes), "right_when_fixed": right})
    if diagnosis is None and fit.unequal_delta(rhs) is not None:
        delta, first, second = fit.unequal_delta(rhs)
        diagnosis = Diagnosis("unequal_delta", {"delta": index_text(delta), "first": first, "second": second})
    if diagnosis is None and fit.self_consistent(rhs) and fit.problems(rhs)[1]:
        diagnosis = Diagnosis("claim_shape", {
            "shape": tuple(k.label for k in fit.claim_shape(rhs)), "gradient": NAMES.gradient(name), "input": name,
            "input_shape": tuple(k.label for k in fit.kinds[name])})
    if diagnosis is None and fit.mixed_index(rhs) is not None:
        var, where = fit.mixed_index(rhs)
        diagnosis = Diagnosis("mixed_index", {"index": var, "axes": tuple(where)})
    if diagnosis is None:
        diagnosis = Diagnosis("differs")
    example = None
    if fit.self_consistent(rhs):
        natural = _natural_compare(d, name, claim.expr, derived, fit, rhs)
        if natural is not None:
            example = counterexample(d, *natural)
    if example is None:
        compared = _safe_compare(d, name, claim.expr, derived, square_sizes(d, name))
        if compared is not None and compared[0] is False:
            example = counterexample(d, *compared[1:])
    return Verdict(**found, correct=False, method="claim_shapes", difference=difference, diagnosis=diagnosis,
                   counterexample=example)


def _same(d, name, first, second) -> bool:
    """SymPy or the numbers show ``first`` equal to ``second`` (both fit the input's shape)."""
    diff = _difference(d, first, second)
    if diff == 0:
        return True
    return _agrees(d, name, first, second)


def counterexample(d, env, got, want) -> Counterexample:
    """The drawn inputs and output gradient in ``env``, with the two gradients they give."""
    return Counterexample({i.name: env[i.name] for i in d.spec.inputs}, env[d.grad_name], got, want)


def sign_or_factor(got, want) -> Diagnosis | None:
    """A 'sign' or 'factor' diagnosis when the numbers say so; None otherwise.

    >>> sign_or_factor(np.array([2.0, 4.0]), np.array([1.0, 2.0]))
    Diagnosis(kind='factor', params={'factor': 2})
    """
    try:
        got, want = np.asarray(got, float), np.asarray(want, float)
    except (TypeError, ValueError):
        return None
    if got.shape != want.shape or not np.all(np.isfinite(got)) or not np.all(np.isfinite(want)):
        return None
    if np.allclose(got, -want, rtol=1e-8, atol=1e-10) and not np.allclose(want, 0, atol=1e-10):
        return Diagnosis("sign")
    mask = np.abs(want) > 1e-9
    if mask.any():
        ratios = got[mask] / want[mask]
        if (np.allclose(ratios, ratios.flat[0], rtol=1e-8) and np.allclose(got[~mask], 0, atol=1e-10)
                and abs(ratios.flat[0]) > 1e-12):
            return Diagnosis("factor", {"factor": sp.nsimplify(float(ratios.flat[0]), rational=True, tolerance=1e-9)})
    return None


def diagnose(d, name, claim_expr, derived, got, want) -> Diagnosis:
    """The usual mistakes: sign, factor, swapped indices, a dropped sum, a dropped term.
    Only candidates whose indices fit the input's shape are evaluated."""
    found = sign_or_factor(got, want)
    if found:
        return found
    if np.allclose(np.asarray(got, float), 0, atol=1e-12):
        return Diagnosis("zero")
    st = d.steps[name]
    fit = IndexFit(d, name, st.indices, d.grad_name)
    if len(st.indices) == 2:
        a, b = st.indices
        swapped = derived.xreplace({a: b, b: a})
        if _agrees(d, name, claim_expr, swapped, square_sizes(d, name)):
            return Diagnosis("swapped_indices", {"a": a.name, "b": b.name})
    for s in derived.atoms(sp.Sum):
        for lim in s.limits:
            for g in (*st.indices, sp.Integer(0)):
                rest = [lim2 for lim2 in s.limits if lim2 != lim]
                try:
                    body = s.function.xreplace({lim[0]: g})
                    dropped = derived.xreplace({s: sp.Sum(body, *rest) if rest else body})
                except ValueError:  # an inner sum binds the same name (Sum(V[k], k) inside the k sum)
                    continue
                if isinstance(g, sp.Symbol) and not fit.fits(dropped):
                    continue
                if _agrees(d, name, claim_expr, dropped):
                    return Diagnosis("dropped_sum", {"index": str(lim[0]), "kept": str(g)})
    terms = sp.Add.make_args(sp.expand(derived, deep=False))
    if len(terms) > 1:
        for t in terms:
            if _agrees(d, name, claim_expr, derived - t):
                return Diagnosis("missing_term", {"term": t})
    extra = sp.Add.make_args(sp.expand(claim_expr, deep=False))
    if len(extra) > 1:
        for t in extra:
            if fit.fits(claim_expr - t) and _agrees(d, name, claim_expr - t, derived):
                return Diagnosis("extra_term", {"term": t})
    return Diagnosis("differs")


__all__ = ["Claim", "check_claim", "claim_names", "counterexample", "diagnose", "normalize_claim", "parse_claim",
           "sign_or_factor", "square_sizes"]
