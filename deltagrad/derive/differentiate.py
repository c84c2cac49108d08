"""∂expr/∂X[a,…] for index expressions, by SymPy's own rules without SymPy's dispatch.

``sympy.diff`` wraps every step in ``Derivative(…, evaluate=True)``, which checks free symbols
and assumptions at each node: about a third of a simple op's derivation time. The rules of the
node kinds an index expression is made of (sums, products, powers, functions whose derivative
comes from ``fdiff``, tensor entries) are applied here directly, building the same objects in the
same order as SymPy's ``_eval_derivative`` methods, so the result is SymPy's; any other node
(``Abs``, ``Max``, ``Piecewise``, deltagrad's own reductions) is handed to ``sympy.diff`` whole.
A subtree that does not mention the variable is 0 at once.

>>> from deltagrad.derive.spec import index, tensor, summed
>>> i, k, a, b = index('i'), index('k'), index('a'), index('b')
>>> X, W = tensor('X'), tensor('W')
>>> y = summed(X[i, k] * W[k, b], k)
>>> index_diff(y, X[a, b]) == sp.diff(y, X[a, b])
True
>>> index_diff(sp.tanh(X[i, k])**2, X[a, b])
2*(1 - tanh(X[i, k])**2)*tanh(X[i, k])*KroneckerDelta(a, i)*KroneckerDelta(b, k)
"""

from __future__ import annotations

from functools import reduce

import sympy as sp

#: Functions whose derivative SymPy builds by the generic chain rule of ``Function`` from ``fdiff``.
#: Max and Min apply the same rule through their ``fdiff`` (a Heaviside of the difference).
_BY_FDIFF = (sp.Function._eval_derivative, sp.Max._eval_derivative)


def _delta(i, j):
    """``KroneckerDelta(i, j)``; for two plain integer index symbols, built in SymPy's canonical
    order without its evaluation (which asks the assumption system whether ``i - j`` can be 0:
    nine tenths of the delta's cost, and for such symbols it never can decide).

    >>> from deltagrad.derive.spec import index
    >>> _delta(index('i'), index('a')) == sp.KroneckerDelta(index('i'), index('a')), _delta(index('a'), index('a'))
    (True, 1)
    """
    plain = {"integer": True}
    if (isinstance(i, sp.Symbol) and isinstance(j, sp.Symbol) and i != j
            and getattr(i, "_assumptions_orig", None) == plain and getattr(j, "_assumptions_orig", None) == plain):
        return sp.KroneckerDelta(*sorted((i, j), key=sp.default_sort_key), evaluate=False)
    return sp.KroneckerDelta(i, j)


def index_diff(expr: sp.Expr, wrt) -> sp.Expr:
    """``∂expr/∂wrt`` for ``wrt`` a tensor entry ``X[a, b]`` or a scalar symbol; equal to
    ``sympy.diff(expr, wrt)``.

    >>> from deltagrad.derive.spec import index, tensor, scalar
    >>> i, a = index('i'), index('a')
    >>> X, W, c = tensor('X'), tensor('W'), scalar('c')
    >>> index_diff(2*c*X[i]*(W[i] + 1), c), index_diff(sp.exp(c*X[i]), X[a])
    (2*(W[i] + 1)*X[i], c*exp(c*X[i])*KroneckerDelta(a, i))
    """
    name = wrt.base.label if isinstance(wrt, sp.Indexed) else wrt
    scalar = isinstance(wrt, sp.Symbol)
    mentions = {}

    def has(e) -> bool:  # does e read the variable's tensor (or symbol)?
        known = mentions.get(e)
        if known is None:
            if isinstance(e, sp.Indexed):
                known = e.base.label == name or any(has(ix) for ix in e.indices)
            elif isinstance(e, sp.Symbol):
                known = e == name
            else:
                known = any(has(arg) for arg in e.args)
            mentions[e] = known
        return known

    def d(e):
        if not has(e):
            return sp.S.Zero
        if isinstance(e, sp.Indexed) and isinstance(wrt, sp.Indexed) and e.base == wrt.base:
            if len(e.indices) != len(wrt.indices):
                return sp.diff(e, wrt)  # SymPy's own error
            result = sp.S.One
            for index1, index2 in zip(e.indices, wrt.indices):
                result *= _delta(index1, index2)
            return result
        if e == wrt:
            return sp.S.One
        if isinstance(e, sp.Add):
            return sp.Add(*[d(arg) for arg in e.args])
        if isinstance(e, sp.Mul):
            args, terms = list(e.args), []
            for n, arg in enumerate(args):
                da = d(arg)
                if da:
                    factors = args[:n] + [da] + args[n + 1:]
                    # SymPy's Leibniz rule for a symbol multiplies with Mul; for other variables, pairwise
                    terms.append(sp.Mul(*factors) if scalar else reduce(lambda x, y: x * y, factors, sp.S.One))
            return sp.Add(*terms) if scalar else sp.Add.fromiter(terms)
        if isinstance(e, sp.Pow):
            dbase, dexp = d(e.base), d(e.exp)
            return e * (dexp * sp.log(e.base) + dbase * e.exp / e.base)
        if isinstance(e, sp.Sum) and not any(has(part) for lim in e.limits for part in lim[1:]):
            limits = list(e.limits)
            last = limits.pop(-1)
            inner = e.func(e.function, *limits) if limits else e.function
            return e.func(d(inner), last)
        if isinstance(e, sp.Abs) and e.args[0].is_extended_real:  # Abs._eval_derivative, for a real argument
            return d(e.args[0]) * sp.sign(e.args[0])
        if isinstance(e, sp.Function) and type(e)._eval_derivative in _BY_FDIFF:
            terms = []
            for n, arg in enumerate(e.args, start=1):
                da = d(arg)
                if da == 0:
                    continue
                try:
                    df = e.fdiff(n)
                except sp.ArgumentIndexError:
                    df = sp.Function.fdiff(e, n)
                terms.append(df * da)
            return sp.Add(*terms)
        return sp.diff(e, wrt)

    return d(expr)
