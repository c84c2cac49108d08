"""Rewrite a backward through values the forward already computed, and prove it numerically.

The forward's reductions are replaced by their saved names (:mod:`.forward_values`). Then the
derivative is written through the output ``Y``
where that is cheaper: first by spotting the forward expression itself (``tanh(X[a,b])`` →
``Y[a,b]``), then through the inverse of ``y = f(x)`` where peeling invertible steps finds one
(:func:`invert`; nothing is solved, so the cost is bounded). Every rewrite is confirmed on
random inputs (:func:`agree`) before it is kept.

>>> from deltagrad.derive.parse import parse_spec
>>> from deltagrad.derive.forward_values import forward_values
>>> spec = parse_spec("Y[i,j] = X[i,j] / Sum(X[i,k], k)")
>>> use_reductions(spec.rhs, forward_values(spec))
X[i, j]/row_sum[i]
"""

from __future__ import annotations

import itertools

import sympy as sp

from deltagrad.derive.extrema import Extremum, Iverson
from deltagrad.derive.defined import as_defined
from deltagrad.derive.eliminate import eliminate_deltas
from deltagrad.derive.forward_values import ForwardValues, ordered_free_indices
from deltagrad.derive.functions import expm1
from deltagrad.derive.numeric import FLOAT_DRAWS, compare_gradients, index_sizes
from deltagrad.derive.spec import Spec, scalar, tensor
from deltagrad.derive.simplify import cost, simplify_index_expr


def _bound_canonical(e):
    if isinstance(e, Extremum):  # bound indices and their ranges by position (a primed k1 runs to n_k)
        mapping = {lim[0]: sp.Symbol(f"_b{n}", integer=True) for n, lim in enumerate(e.limits)}
        body = sp.Basic.xreplace(e.function, mapping)
        return type(e)(body, *[(mapping[lim[0]], 0, sp.Symbol(f"_n{n}")) for n, lim in enumerate(e.limits)])
    if not isinstance(e, sp.Sum):
        return e
    # the size a bound index runs to is read off its range, not off its name: after aliasing,
    # Sum_c(...) may run to n_d - 1 (c and d index one axis), as Sum_d(...) does
    sizes = {size: sp.Symbol(f"_n{n}") for n, lim in enumerate(e.limits) for size in (lim[2] + 1).free_symbols}
    return e.xreplace({lim[0]: sp.Symbol(f"_b{n}", integer=True) for n, lim in enumerate(e.limits)}).xreplace(sizes)


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


def _labels(e) -> frozenset:
    return frozenset(x.base.label for x in e.atoms(sp.Indexed))


def replace_pattern(expr, pattern, indices, make):
    """Replace each subexpression of ``expr`` equal to ``pattern`` (up to index names) by ``make(t)``.

    Integer powers of the pattern, negative ones too, become powers of the replacement.
    """
    head, arity, labels = pattern.func, len(pattern.args), _labels(pattern)

    def walk(e):
        # renaming indices one-to-one keeps a node's arity and the tensors it reads
        if e.func == head and len(e.args) == arity and _labels(e) == labels:
            t = _matches(pattern, indices, e)
            if t is not None:
                return make(t)
        if isinstance(e, sp.Pow) and isinstance(pattern, sp.Pow) and e.exp.is_Number and pattern.exp.is_Number:
            ratio = e.exp / pattern.exp
            if ratio.is_Integer and ratio not in (0, 1):  # Y**2, and 1/Y for 1/sqrt(...) (hypot)
                t = _matches(pattern, indices, sp.Pow(e.base, pattern.exp))
                if t is not None:
                    return make(t) ** ratio
        if not e.args or isinstance(e, sp.Indexed):
            return e
        args = [walk(a) for a in e.args]
        return e if all(new is old for new, old in zip(args, e.args)) else e.func(*args)

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
        return _output_for_reduction(expr, spec, values)
    return replace_pattern(expr, values.rhs, free, make)


def _output_for_reduction(expr, spec: Spec, values: ForwardValues):
    """``expr`` reading the output where the output is one named reduction (``y[i] = Max(X[i,k], k)``:
    ``row_max[a]`` becomes ``y[a]``), so that the forward computes it once, as the output."""
    red = next((r for r in values.reductions if r.ref == values.rhs), None)
    if red is None or tuple(red.indices) != tuple(spec.out_indices):
        return expr
    if not red.indices:
        return expr.xreplace({scalar(red.name): scalar(spec.output)})
    return expr.replace(lambda e: isinstance(e, sp.Indexed) and e.base.label.name == red.name,
                        lambda e: tensor(spec.output)[e.indices])


def invert(expr, x, y):
    """``x`` written through ``y`` where ``y = expr``, peeling invertible steps one at a time
    (adding or multiplying by what does not hold ``x``, ``1/u``, ``c**u``, ``exp``, ``log``:
    steps whose inverse the lowering can compute); None when ``x`` occurs more than once or a step has no unique inverse.
    No equation is solved, so the cost is one pass over the expression.

    >>> x, y = sp.symbols('x y', real=True)
    >>> invert(1 / (1 + sp.exp(-x)), x, y)
    -log(-1 + 1/y)
    >>> invert(x**2, x, y) is None
    True
    """
    while expr != x:
        if expr.count(x) != 1:
            return None
        if isinstance(expr, (sp.Add, sp.Mul)):
            inner = next(a for a in expr.args if a.has(x))
            rest = expr.func(*[a for a in expr.args if a is not inner])
            y = y - rest if isinstance(expr, sp.Add) else y / rest
            expr = inner
        elif isinstance(expr, sp.Pow) and not expr.exp.has(x) and expr.exp == -1:
            y, expr = 1 / y, expr.base
        elif isinstance(expr, sp.Pow) and not expr.base.has(x) and expr.base.is_positive and expr.base != 1:
            y, expr = sp.log(y) / sp.log(expr.base), expr.exp
        elif isinstance(expr, sp.exp):
            y, expr = sp.log(y), expr.args[0]
        elif isinstance(expr, sp.log):
            y, expr = sp.exp(y), expr.args[0]
        else:
            return None
    return y


def through_inverse(expr, spec: Spec, values: ForwardValues) -> list:
    """Forms of ``expr`` with one input (or named reduction) eliminated through the inverse of
    ``y = f(x)`` (sigmoid's ``exp(-x) = 1/y - 1``), where :func:`invert` finds one."""
    free = spec.free_indices
    out = []
    if expr.has(Iverson):  # [X == max] stays exact only as it is: Y + row_max == row_max rounds
        return out
    # an input, or a named reduction (a sigmoid layer's exp(-W_X_sum) = 1/Y - 1)
    names = [i.name for i in spec.inputs if i.rank] + [r.name for r in values.reductions if r.indices]
    for name in names:
        if not expr.has(tensor(name)):
            continue
        pats = [e for e in values.rhs.atoms(sp.Indexed) if e.base.label.name == name]
        if len(pats) != 1 or sorted(pats[0].indices, key=str) != sorted(free, key=str):
            continue
        pat = pats[0]
        x, y = sp.Dummy("x", real=True), sp.Dummy("y", real=True)
        inverse = invert(values.rhs.xreplace({pat: x}), x, y)
        if inverse is None or inverse.has(x) or inverse.has(sp.Sum):
            continue
        inverse = inverse.xreplace({y: values.output})
        if _new_input_poles(inverse, expr, spec):
            continue  # X = (Y - B)/g: every form through it would divide by an input, and be refused below
        subs = {}
        for occ in expr.atoms(sp.Indexed):
            if occ.base.label.name == name:
                subs[occ] = inverse.xreplace(dict(zip(pat.indices, occ.indices)))
        substituted = expr.xreplace(subs)
        forms = [eliminate_deltas(substituted)]  # which splits sums over their terms: Y - Y**2
        if forms[0] != substituted and not substituted.has(sp.KroneckerDelta):
            forms.append(substituted)  # left whole, Y**2*(1/Y - 1) simplifies to Y*(1 - Y)
        for form in forms:
            candidate = simplify_index_expr(form)
            if not candidate.has(tensor(name)):
                out.append(candidate)
    return out


#: f → (f's derivative at x, the same written through f(x)): the local identities by which a
#: derivative reads the output (exp(x) = expm1(x) + 1, so expm1's derivative is Y + 1); each
#: adds no pole. sigmoid's and tanh's need none: SymPy writes theirs through the function.
IDENTITIES = {expm1: lambda x: (sp.exp(x), expm1(x) + 1)}


def through_identities(expr, spec: Spec, values: ForwardValues):
    """``expr`` with each derivative in :data:`IDENTITIES` written through the forward's function.

    >>> from deltagrad.derive.parse import parse_spec
    >>> from deltagrad.derive.forward_values import forward_values
    >>> from deltagrad.derive.spec import index
    >>> spec = parse_spec("Y[i] = expm1(X[i])")
    >>> through_identities(sp.exp(tensor('X')[index('a')]), spec, forward_values(spec))
    expm1(X[a]) + 1
    """
    free = spec.free_indices
    for node in values.rhs.atoms(sp.Function):
        if type(node) in IDENTITIES and set(node.free_symbols) >= set(free):
            pattern, through = IDENTITIES[type(node)](node.args[0])
            expr = replace_pattern(expr, pattern, free, lambda t, b=through: b.xreplace(dict(zip(free, t))))
    return expr


def agree(first, second, spec: Spec, values: ForwardValues, input_name: str, grad_indices, grad_name: str,
          trials: int = 2) -> bool:
    """True when ``first`` and ``second`` give the same numbers on random inputs.

    Sizes differ per index (so a transpose cannot hide) and inputs are drawn from a positive
    range and from a range of both signs; a draw where either side is not finite is skipped,
    and at least one draw must be finite. ``second`` must also be finite wherever ``first`` is
    (:func:`deltagrad.derive.defined.as_defined`).
    """
    sizes = index_sizes(spec, input_name, grad_indices)
    result = compare_gradients(first, second, spec, values, grad_indices, grad_name, sizes, FLOAT_DRAWS * trials,
                               seed=12345)
    # and the rewrite is finite wherever the form it replaces is (Abs(X)**Z, 4**P at P = 5)
    return result[0] is True and as_defined(first, second, spec, values, input_name, grad_indices, grad_name)


def denominators(expr) -> set:
    """The bases that ``expr`` divides by (``Z`` in ``G/Z**2``); numbers are left out.

    >>> from deltagrad.derive.spec import index, tensor
    >>> Z, G = tensor('Z')[index('a')], tensor('G')[index('a')]
    >>> sorted(denominators(G / Z**2 + 1 / (1 + sp.exp(Z))), key=str)
    [Z[a], exp(Z[a]) + 1]
    """
    # a count of tied entries, Σ_k [X[a,k] == max], is at least 1: never a pole
    return {p.base for p in expr.atoms(sp.Pow) if p.exp.is_negative and not p.base.is_number and not p.base.has(Iverson)}


def adds_poles(candidate, original) -> bool:
    """True when ``candidate`` divides by something ``original`` does not (``Y/X``): such a
    rewrite can be undefined where the forward is defined (at ``X = 0``), so it is not kept."""
    return bool(denominators(candidate) - denominators(original))


def rewrite_through_forward(expr, spec: Spec, values: ForwardValues, input_name: str, grad_indices, grad_name: str):
    """The cheapest form of one gradient that reads saved forward values and is confirmed numerically."""
    base = use_output(use_reductions(expr, values), spec, values)
    candidates = [base] + [use_output(c, spec, values) for c in through_inverse(base, spec, values)]
    identities = through_identities(base, spec, values)
    if identities != base:
        candidates.append(use_output(identities, spec, values))
    best = expr
    for cand in candidates:
        if cost(cand) < cost(best) or (cost(cand) == cost(best) and cand != best and _reads_fewer_inputs(cand, best, spec)):
            if not _new_input_poles(cand, expr, spec) and agree(expr, cand, spec, values, input_name, grad_indices, grad_name):
                best = cand
    return best


def _new_input_poles(candidate, original, spec) -> bool:
    """True when ``candidate`` newly divides by an expression of an input (``Y/X`` for ``X*t``)."""
    names = {i.name for i in spec.inputs}
    return any(any(isinstance(e, sp.Indexed) and e.base.label.name in names or isinstance(e, sp.Symbol) and e.name in names
                   for e in sp.preorder_traversal(d)) for d in denominators(candidate) - denominators(original))


def _reads_fewer_inputs(new, old, spec) -> bool:
    def inputs(e):
        return {i.name for i in spec.inputs if e.has(tensor(i.name)) or e.has(scalar(i.name))}

    return len(inputs(new)) < len(inputs(old))
