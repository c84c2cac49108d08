"""Simplify index expressions without letting SymPy unroll or fuse sums.

``simplify`` unrolls sums with numeric limits, and ``powsimp`` fuses ``exp(X[a,c])*exp(X[a,j])``
into one exponential, which turns a cheap sum into an n·m·m contraction. So each sum is
simplified on its own, then hidden behind a placeholder symbol while the expression around it
is simplified, and put back afterwards. A result is kept only if it is no more expensive.
Which expressions ``simplify`` sees is decided by their size alone, never by a clock, so the
same spec gives the same bytes on a quiet machine and a loaded one: up to
:data:`MAX_SIMPLIFY_COST` operations (where it takes well under a second), the rest only
``factor_terms``; a product with no sum and only numeric exponents is left as it is. A time
budget remains as a safety net; a ``simplify`` that spends it is refused with a SpecError rather
than quietly kept in another form.

>>> from deltagrad.derive.spec import index, tensor, summed
>>> a, j = index('a'), index('j')
>>> G, Y = tensor('G'), tensor('Y')
>>> s = summed(G[a, j] * Y[a, j], j)
>>> simplify_index_expr(G[a, j] * Y[a, j] - Y[a, j] * s)
(G[a, j] - Sum(G[a, j]*Y[a, j], (j, 0, n_j - 1)))*Y[a, j]
"""

from __future__ import annotations

import math

import sympy as sp
from sympy.core.function import _coeff_isneg
from sympy.core.operations import LatticeOp
from sympy.simplify.radsimp import fraction

from deltagrad.derive.extrema import Extremum
from deltagrad.derive.budget import BudgetExceeded, time_budget
from deltagrad.derive.sympy_simplify import simplify as sympy_simplify
from deltagrad.errors import SpecError

#: Larger expressions are not given to ``simplify`` at all: its time grows much faster than size
#: (GELU's tanh form has 37 operations and runs past a second; 30 and under stay below half a
#: second on every spec of the tests and the fuzzer).
MAX_SIMPLIFY_COST = 30
#: The safety net: a ``simplify`` call that takes longer is refused (SpecError), not cut short,
#: since cutting it short at a time would make the output depend on the machine's load.
SIMPLIFY_SECONDS = 5.0


def cost(expr: sp.Expr) -> int:
    """The number of operations in ``expr``, a sum counting as one per summed index.

    >>> from deltagrad.derive.spec import index, tensor, summed
    >>> cost(tensor('X')[index('i')] * 2 + 1)
    2
    """
    return _count_ops(expr)


def _count_ops(expr) -> int:
    """``sympy.count_ops(expr, visual=False)``, counted as integers: SymPy's builds a symbol per
    operation and adds them up as an expression, which was a sixth of a derivation's time. The
    walk and every rule are SymPy's own (checked against it on every expression of the tests).

    >>> x = sp.Symbol('x')
    >>> _count_ops(-x / (1 + sp.exp(2*x))), sp.count_ops(-x / (1 + sp.exp(2*x)))
    (5, 5)
    """
    if not isinstance(expr, sp.Expr) or expr.is_Relational:
        return int(sp.count_ops(expr, visual=False))
    total = 0
    args = [expr]
    S = sp.S
    while args:
        a = args.pop()
        if a.is_Rational:
            if a is not S.One:
                if a.p < 0:
                    total += 1
                if a.q != 1:
                    total += 1
                continue
        elif a.is_Mul:
            if _coeff_isneg(a):
                total += 1
                if a.args[0] is S.NegativeOne:
                    a = a.as_two_terms()[1]
                else:
                    a = -a
            n, d = fraction(a)
            if n.is_Integer:
                total += 1
                if n < 0:
                    total += 1
                args.append(d)
                continue
            elif d is not S.One:
                if not d.is_Integer:
                    args.append(d)
                total += 1
                args.append(n)
                continue
        elif a.is_Add:
            aargs = list(a.args)
            negs = 0
            for i, ai in enumerate(aargs):
                if _coeff_isneg(ai):
                    negs += 1
                    args.append(-ai)
                else:
                    args.append(ai)
                if i > 0:
                    total += 1
            if negs == len(aargs):
                total += 1
            continue
        if a.is_Pow and a.exp is S.NegativeOne:
            total += 1
            args.append(a.base)
            continue
        if a is S.Exp1:
            total += 1
            continue
        if a.is_Pow and a.base is S.Exp1:
            total += 1
            args.append(a.exp)
            continue
        if a.is_Mul or isinstance(a, LatticeOp):
            total += len(a.args) - 1
        elif a.args and (a.is_Pow or a.is_Function or isinstance(a, (sp.Derivative, sp.Integral, sp.Sum))):
            total += 1
        if not a.is_Symbol:
            args.extend(a.args)
    return total


def simplify_index_expr(expr: sp.Expr) -> sp.Expr:
    """A simpler form of ``expr``, or ``expr`` itself when nothing cheaper is found."""
    hidden, placeholders = hide_sums(expr)
    simpler = hidden
    if cost(hidden) <= MAX_SIMPLIFY_COST and not _already_simple(hidden) and not _expands_badly(hidden):
        try:
            with time_budget(SIMPLIFY_SECONDS) as budget:
                simpler = sympy_simplify(hidden, _count_ops)
                if simpler is None:  # a Piecewise on the way: SymPy's own handles it
                    simpler = sp.simplify(hidden, ratio=1, measure=_count_ops, rational=None, inverse=False)
        except BudgetExceeded as err:
            if err.budget is not budget:
                raise
            raise SpecError(f"simplifying a gradient took longer than {SIMPLIFY_SECONDS:g} s; "
                            "write the spec as named steps (A[i] = ...; Y[i] = ...)") from None
        except (RecursionError, TypeError, ValueError, NotImplementedError):  # pragma: no cover - SymPy's own limits
            pass
    if (cost(simpler) > cost(hidden) or _functions(simpler) - _functions(hidden) or _new_extremes(simpler, hidden)
            or _new_hazards(simpler, hidden)):
        simpler = hidden
    factored = sp.factor_terms(simpler)
    if cost(factored) <= cost(simpler):
        simpler = factored
    if simpler.atoms(sp.Float) and _new_numbers(simpler, hidden):  # SymPy's rational round trip
        simpler = sp.factor_terms(_distributed_floats(simpler, hidden))
    restored = _half_steps(_integral_floats(simpler.xreplace(placeholders)))
    return restored if cost(restored) <= cost(expr) else expr


def _new_numbers(simpler, original) -> bool:
    """True when ``simpler`` holds a number beyond ±1, ±2, ±1/2 that ``original`` does not
    (``0.002`` and ``851`` from ``1.702``).

    >>> from deltagrad.derive.spec import scalar
    >>> x = scalar('x')
    >>> _new_numbers(sp.Float(0.002) * (500 - 851 * x), sp.Float(1.702) * x), _new_numbers(2 * x, x)
    (True, False)
    """
    plain = {sp.S.One, sp.S.NegativeOne, sp.Integer(2), sp.Integer(-2), sp.S.Half, -sp.S.Half}
    return bool(simpler.atoms(sp.Number) - original.atoms(sp.Number) - plain)


def _distributed_floats(expr, original):
    """``expr`` with a float that scales a sum folded back, where SymPy's rational round trip
    split it from the numbers of ``original``: into the sum's whole-number content
    (``0.002*(1702*x + 3404*w)`` reads ``3.404*(x + 2*w)``: the sum keeps its form, so it cancels
    in float32 as before), else into its terms when that gives back numbers ``original`` has
    (``0.002*(500 - 851*x)`` reads ``1 - 1.702*x``).

    >>> from deltagrad.derive.spec import scalar
    >>> x, w, g = scalar('x'), scalar('w'), scalar('g')
    >>> _distributed_floats(g * sp.Float(0.002) * (1702*x + 3404*w), 1.702*(x + 2*w)**2)
    3.404*g*(2*w + x)
    >>> _distributed_floats(g * sp.Float(0.002) * (500 - 851*x), x / (1 + sp.exp(-1.702*x)))
    g*(1.0 - 1.702*x)
    """
    known = {abs(n) for n in original.atoms(sp.Number)} | {sp.S.One, sp.Float(1.0)}

    def fold(m):
        coeff, rest = m.as_coeff_Mul()
        sums = [f for f in sp.Mul.make_args(rest) if isinstance(f, sp.Add)]
        if not isinstance(coeff, sp.Float) or abs(coeff) in known or len(sums) != 1:
            return m  # a float the spec has (3.404 from 2*1.702) stays where simplify put it
        others = [f for f in sp.Mul.make_args(rest) if f is not sums[0]]
        content, primitive = sums[0].primitive()
        if content != 1:
            return sp.Mul(coeff * content, primitive, *others)
        terms = [coeff * t for t in sums[0].args]
        if all(abs(t.as_coeff_Mul()[0]) in known for t in terms):
            return sp.Mul(sp.Add(*terms), *others)
        return m

    out = expr
    for _ in range(4):  # a sum it reaches may hold the next such product
        again = out.replace(lambda e: isinstance(e, sp.Mul) and isinstance(e.as_coeff_Mul()[0], sp.Float), fold)
        if again == out:
            break
        out = again
    return out if cost(out) <= cost(expr) else expr


def _integral_floats(expr):
    """``expr`` with each float that holds a small whole number as that integer, so that
    ``0.5*2*x`` reads ``x``, not ``1.0*x``.

    >>> from deltagrad.derive.spec import scalar
    >>> x = scalar('x')
    >>> _integral_floats(sp.Float(1.0) * x + sp.Float(0.5) * x**sp.Float(2.0))
    0.5*x**2 + x
    """
    whole = {f: sp.Integer(int(f)) for f in expr.atoms(sp.Float) if float(f).is_integer() and abs(f) <= 2**24}
    return expr.xreplace(whole) if whole else expr


def _half_steps(expr):
    """``expr`` with each ``Heaviside(x, 0.5)`` (SymPy's float round trip of its ``1/2``) as
    ``Heaviside(x)``, whose value at 0 is the exact 1/2.

    >>> from deltagrad.derive.spec import scalar
    >>> _half_steps(sp.Heaviside(scalar('x') - 1.5, sp.Float(0.5)))
    Heaviside(x - 1.5)
    """
    return expr.replace(lambda e: isinstance(e, sp.Heaviside) and len(e.args) > 1 and e.args[1].is_Float
                        and float(e.args[1]) == 0.5, lambda e: sp.Heaviside(e.args[0]))


def _already_simple(expr) -> bool:
    """True for a product with no sum and only numeric exponents in it: ``simplify`` has nothing
    to combine there that SymPy's products do not combine already (``X**Z*Z/X`` it would write
    ``Z*X**(Z - 1)``, and ``pi*X**pi/X`` as ``pi*X**(pi - 1)``, defined at X = 0).

    >>> from deltagrad.derive.spec import scalar
    >>> x, z = scalar('x'), scalar('z')
    >>> _already_simple(-x / z**2), _already_simple(x / (1 + z)), _already_simple(z * x**z / x)
    (True, False, False)
    """
    return not expr.has(sp.Add) and all(p.exp.is_Number for p in expr.atoms(sp.Pow))


def _expands_badly(expr) -> bool:
    """True when ``expr`` holds a high power of a sum, which ``simplify`` would multiply out
    (``(X + Z + W + V)**64`` has 47905 terms).

    >>> from deltagrad.derive.spec import scalar
    >>> _expands_badly((scalar('x') + scalar('z'))**64), _expands_badly((scalar('x') + 1)**2)
    (True, False)
    """
    return any(isinstance(p.base, sp.Add) and p.exp.is_Number and abs(p.exp) > 4 for p in expr.atoms(sp.Pow))


def _new_extremes(simpler, original) -> bool:
    """True when ``simpler`` has a number further from 1 than any of ``original``'s: SymPy's
    rational round trip of decimal constants can write 2e-15·(250000000000000·… ), exact but
    unreadable and a float32 overflow.

    >>> from deltagrad.derive.spec import scalar
    >>> x = scalar('x')
    >>> _new_extremes(2e-15 * x * (250000000000000 * x + 1), 0.5 * x**2 + 0.25 * x), _new_extremes(x / 2, 0.5 * x)
    (True, False)
    """
    def extreme(e):  # numbers a float64 cannot hold (1e-400 is 0.0, 1e400 inf)
        return {n for n in e.atoms(sp.Number) if n != 0 and not 1e-300 < abs(float(n)) < 1e300}

    def spread(e):
        return max((abs(math.log10(abs(float(n)))) for n in e.atoms(sp.Number) - extreme(e) if n != 0), default=0.0)

    if simpler is original:
        return False
    return bool(extreme(simpler) - extreme(original)) or spread(simpler) > max(spread(original), 3) + 1e-9


def _new_hazards(simpler, original) -> bool:
    """True when ``simpler`` takes a log or a fractional power that ``original`` does not: SymPy
    combines ``log(4)*G*L`` into ``log(4**(G*L))`` (inf once ``4**(G*L)`` overflows) and writes
    ``Abs(w)**z`` as ``Abs(w**z)`` (NaN for a negative ``w`` in real arithmetic).

    >>> from deltagrad.derive.spec import scalar
    >>> g, w, z = scalar('g'), scalar('w'), scalar('z')
    >>> _new_hazards(sp.log(4**(g*z)), sp.log(4)*g*z), _new_hazards(sp.Abs(w**z), sp.Abs(w)**z)
    (True, True)
    >>> _new_hazards(sp.log(w)*2, sp.log(w) + sp.log(w))
    False
    """
    logs = {f for f in simpler.atoms(sp.log) if not f.is_number} - set(original.atoms(sp.log))

    def inside_abs(e):  # fractional powers of a base that may be negative, under an Abs
        return {p for a in e.atoms(sp.Abs) for p in a.atoms(sp.Pow)
                if not p.exp.is_Integer and not p.base.is_number and not p.base.is_nonnegative}

    return bool(logs or inside_abs(simpler) - set(original.atoms(sp.Pow)))


def _functions(expr):
    """The kinds of function in ``expr``: simplify must not bring in new ones (cosh for sigmoid),
    nor a Kronecker delta of values (``sign(x)/Abs(x)`` as ``(1 - KroneckerDelta(0, x))/x``)."""
    kinds = {type(f) for f in expr.atoms(sp.Function)}
    if any(not all(a.is_Integer or (a.is_Symbol and a.is_integer) for a in d.args) for d in expr.atoms(sp.KroneckerDelta)):
        kinds.add("a delta of values")
    return kinds


def alpha_key(s: sp.Sum):
    """The sum with its summation indices renamed by position (equal for sums that differ only
    in the names of their dummies)."""
    if isinstance(s, Extremum):
        return s.rename_bound({lim[0]: sp.Symbol(f"_bound{n}", integer=True) for n, lim in enumerate(s.limits)})
    return s.xreplace({lim[0]: sp.Symbol(f"_bound{n}", integer=True) for n, lim in enumerate(s.limits)})


def hide_sums(expr: sp.Expr):
    """Replace each (simplified) ``Sum``, and each trigonometric or hyperbolic function, in
    ``expr`` by a real placeholder symbol.

    Returns the new expression and the mapping placeholder → sum that restores it.
    """
    placeholders: dict[sp.Symbol, sp.Expr] = {}
    by_sum: dict[sp.Expr, sp.Symbol] = {}

    def walk(e):
        if isinstance(e, sp.Sum):
            inner = sp.Sum(simplify_index_expr(e.function), *e.limits)
            key = alpha_key(inner)  # Sum_j(G[a,j]) and Sum_j1(G[a,j1]) are one sum
            if key not in by_sum:
                sym = sp.Dummy(f"S{len(by_sum)}", real=True)
                by_sum[key] = sym
                placeholders[sym] = inner
            return by_sum[key]
        if isinstance(e, _TRIG):  # opaque to simplify: trigsimp is most of its time, and no
            if e not in by_sum:   # derivative rule needs a trigonometric identity
                sym = sp.Dummy(f"T{len(by_sum)}", real=True)
                by_sum[e] = sym
                placeholders[sym] = e
            return by_sum[e]
        if not e.args or isinstance(e, sp.Indexed):
            return e
        args = [walk(a) for a in e.args]
        return e if all(new is old for new, old in zip(args, e.args)) else e.func(*args)

    return walk(expr), placeholders


_TRIG = (sp.functions.elementary.trigonometric.TrigonometricFunction,
         sp.functions.elementary.hyperbolic.HyperbolicFunction)


def collect_linear(expr: sp.Expr, grad_name: str) -> sp.Expr:
    """``expr``, which is linear in the output gradient, as Σ coefficient · (a term of the
    gradient: ``G[a,b]``, ``Sum_j(G[a,j])``, ``Sum_j(G[a,j]*Y[a,j])``…), each coefficient simplified
    on its own. Reverse mode over a program's steps gives long sums of such terms; collected,
    each gradient term is computed once and each coefficient reads only saved values.

    >>> from deltagrad.derive.spec import index, tensor, summed
    >>> a, b, j = index('a'), index('b'), index('j')
    >>> G, Y, s = tensor('G'), tensor('Y'), tensor('s')
    >>> collect_linear(G[a, b] / s[a] - Y[a, b] * summed(G[a, j], j) / s[a] + G[a, b] * Y[a, b] / s[a], 'G')
    (Y[a, b] + 1)*G[a, b]/s[a] - Y[a, b]*Sum(G[a, j], (j, 0, n_j - 1))/s[a]
    """
    hidden, placeholders = hide_sums(expr)
    g = sp.IndexedBase(grad_name, real=True)
    terms = {p for p, s in placeholders.items() if s.has(g) or s.has(sp.Symbol(grad_name, real=True))}
    terms |= {e for e in hidden.atoms(sp.Indexed) if e.base == g}
    terms |= {s for s in hidden.atoms(sp.Symbol) if s.name == grad_name}
    if not terms:
        return expr
    expanded = sp.expand(hidden, power_base=False, power_exp=False, log=False, multinomial=False)
    parts = sp.collect(expanded, sorted(terms, key=sp.default_sort_key), evaluate=False, exact=False)
    if any(k == 1 or not any(k.has(t) for t in terms) for k in parts):
        return expr  # a term free of the gradient: not linear, leave it
    out = sp.Add(*[simplify_index_expr(coeff.xreplace(placeholders)) * term.xreplace(placeholders)
                   for term, coeff in parts.items()])
    return out


def merge_sums(expr: sp.Expr) -> sp.Expr:
    """Terms that are sums over the same indices with factors in common, merged into one sum:
    ``Σ_j K[j,b]·P[a,j]·T[a,j] − s[a]·Σ_j K[j,b]·P[a,j]`` is ``Σ_j K[j,b]·(P[a,j]·(T[a,j] − s[a]))``:
    one contraction instead of two (attention's dQ and dK: four matrix products, not six).

    >>> from deltagrad.derive.spec import index, tensor, summed
    >>> a, b, j = index('a'), index('b'), index('j')
    >>> K, P, T, s = tensor('K'), tensor('P'), tensor('T'), tensor('s')
    >>> merge_sums(summed(K[j, b]*P[a, j]*T[a, j], j) - s[a]*summed(K[j, b]*P[a, j], j))
    Sum((T[a, j] - s[a])*K[j, b]*P[a, j], (j, 0, n_j - 1))
    """
    terms = list(sp.Add.make_args(expr))
    merged = True
    while merged:
        merged = False
        for p in range(len(terms)):
            for q in range(p + 1, len(terms)):
                both = _merge_two(terms[p], terms[q])
                if both is not None:
                    terms = [t for n, t in enumerate(terms) if n not in (p, q)] + [both]
                    merged = True
                    break
            if merged:
                break
    return sp.Add(*terms)


def _sum_splits(term):
    """Each way of writing ``term`` as (one of its Sum factors, the other factors), the other
    factors free of that sum's indices."""
    factors = sp.Mul.make_args(term)
    for total in [f for f in factors if isinstance(f, sp.Sum)]:
        rest = sp.Mul(*[f for f in factors if f is not total])
        if not rest.free_symbols & {lim[0] for lim in total.limits}:
            yield total, rest


def _merge_two(first, second):
    for s1, r1 in _sum_splits(first):
        for s2, r2 in _sum_splits(second):
            both = _merge_sums(s1, r1, s2, r2)
            if both is not None:
                return both
    return None


def _merge_sums(s1, r1, s2, r2):
    if len(s1.limits) != len(s2.limits) or [lim[1:] for lim in s1.limits] != [lim[1:] for lim in s2.limits]:
        return None
    rename = {b: a for (b, *_), (a, *_) in zip(s2.limits, s1.limits)}
    if set(rename.values()) & (s2.function.free_symbols - set(rename)) or set(rename.values()) & r2.free_symbols:
        return None
    body2 = s2.function.xreplace(rename)
    f1, f2 = list(sp.Mul.make_args(s1.function)), list(sp.Mul.make_args(body2))
    common = []
    for f in f1:
        if f in f2 and f.free_symbols & {lim[0] for lim in s1.limits}:
            common.append(f)
            f2.remove(f)
    if not common:
        return None
    rest1 = sp.Mul(*[f for f in f1 if f not in common])  # a product holds each factor once
    return sp.Sum(sp.Mul(*common) * (rest1 * r1 + sp.Mul(*f2) * r2), *s1.limits)
