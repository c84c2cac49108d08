"""SymPy's ``simplify``, trimmed to what a gradient's expression can hold.

This is the algorithm of ``sympy.simplify.simplify.simplify`` (SymPy 1.14, BSD-3-Clause,
Copyright (c) SymPy Development Team), step for step, called as
``simplify(expr, ratio=1, measure=count_ops, rational=None, inverse=False)``, with three
differences that leave its answer unchanged on every expression :mod:`deltagrad.derive.simplify`
gives it (checked on the whole test suite) and halve its time:

* a tensor entry ``X[a, b]`` is an atom: SymPy simplifies each of its indices on its own, one
  recursive ``simplify`` (with its assumption queries) per entry;
* the branches for expressions our specs never reach here are left out: sums and trigonometric
  functions are hidden behind symbols before this runs, and there are no integrals, products,
  Bessel, combinatorial or hypergeometric functions, or physical quantities;
* a ``Piecewise`` (a ``sign`` rewritten through ``Abs``) returns None: the caller then runs
  SymPy's own, whose Piecewise handling is long.

>>> x, y = sp.symbols('x y', positive=True)
>>> simplify(x / (x * y + x), sp.count_ops)
1/(y + 1)
"""

from __future__ import annotations

import sympy as sp
from sympy.core.exprtools import factor_terms
from sympy.core.function import _mexpand, expand_log, expand_mul, expand_power_exp
from sympy.core.rules import Transform
from sympy.core.traversal import bottom_up
from sympy.functions.elementary.exponential import ExpBase
from sympy.functions.elementary.hyperbolic import HyperbolicFunction
from sympy.functions.elementary.trigonometric import TrigonometricFunction
from sympy.polys import cancel, together
from sympy.simplify.powsimp import powsimp
from sympy.simplify.radsimp import collect_abs, fraction, radsimp
from sympy.simplify.simplify import kroneckersimp, logcombine, nfloat, nsimplify, signsimp
from sympy.simplify.trigsimp import exptrigsimp
from sympy.utilities.iterables import has_variety

#: Taken whole: nothing inside a tensor entry is simplified.
_ATOMIC = (sp.Indexed, sp.IndexedBase)
_HANDLED = (sp.Add, sp.Mul, sp.Pow, ExpBase)

# SymPy's "get rid of hollow 2-arg Mul factorization": 2*(x + y) as a product of its args
_HOLLOW_MUL = Transform(lambda x: sp.Mul(*x.args),
                        lambda x: x.is_Mul and len(x.args) == 2 and x.args[0].is_Number and x.args[1].is_Add
                        and x.is_commutative)


def simplify(expr, measure, ratio=1):
    """SymPy's ``simplify(expr, ratio=ratio, measure=measure, rational=None, inverse=False)``,
    or None where the expression becomes a ``Piecewise`` (see the module's docstring)."""

    def shorter(*choices):
        return choices[0] if not has_variety(choices) else min(choices, key=measure)

    def done(e):
        return shorter(e, collect_abs(e))

    if not isinstance(expr, sp.Basic) or not expr.args or isinstance(expr, _ATOMIC):
        return expr
    own = getattr(expr, "_eval_simplify", None)
    if own is not None:  # a log, a relation: their own simplify, as SymPy dispatches it
        return own(ratio=ratio, measure=measure, rational=None, inverse=False, doit=True)
    original = expr = collect_abs(signsimp(expr))
    if not isinstance(expr, sp.Basic) or not expr.args or isinstance(expr, _ATOMIC):
        return expr
    failed = []

    def deep(x):  # the arguments of functions, each simplified on its own
        args = [simplify(a, measure, ratio) for a in x.args]
        if any(a is None for a in args):
            failed.append(x)
            return x
        return x.func(*args)

    expr = expr.replace(lambda x: isinstance(x, sp.Expr) and x.args and not isinstance(x, _HANDLED + _ATOMIC), deep,
                        simultaneous=False)
    if failed:
        return None
    if not isinstance(expr, _HANDLED):
        return done(expr)
    floats = expr.has(sp.Float)
    if floats:
        expr = nsimplify(expr, rational=True)
    expr = bottom_up(expr, lambda w: getattr(w, "normal", lambda: w)())
    expr = sp.Mul(*powsimp(expr).as_content_primitive())
    cancelled = cancel(expr)
    expr1 = shorter(cancelled, _mexpand(cancelled).cancel())
    expr2 = shorter(together(expr, deep=True), together(expr1, deep=True))
    expr = shorter(expr2, expr1, expr)
    if not isinstance(expr, sp.Basic):
        return expr
    expr = factor_terms(expr, sign=False)
    if expr.has(sp.sign):
        expr = expr.rewrite(sp.Abs)
    if expr.has(sp.Piecewise):
        return None
    if expr.has(sp.KroneckerDelta):
        expr = kroneckersimp(expr)
    if expr.has(sp.log):
        expr = shorter(expand_log(expr, deep=True), logcombine(expr))
    short = shorter(powsimp(expr, combine="exp", deep=True), powsimp(expr), expr)
    short = shorter(short, cancel(short))
    short = shorter(short, factor_terms(short), expand_power_exp(expand_mul(short)))
    if short.has(TrigonometricFunction, HyperbolicFunction, ExpBase, sp.exp):
        short = exptrigsimp(short)
    expr = short.xreplace(_HOLLOW_MUL)
    numer, denom = expr.as_numer_denom()
    if denom.is_Add:
        n, d = fraction(radsimp(1 / denom, symbolic=False, max_terms=1))
        if n is not sp.S.One:
            expr = (numer * n).expand() / d
    if expr.could_extract_minus_sign():
        n, d = fraction(expr)
        if d != 0:
            expr = signsimp(-n / (-d))
    if measure(expr) > ratio * measure(original):
        expr = original
    if floats:
        expr = nfloat(expr, exponent=False)
    return done(expr)
