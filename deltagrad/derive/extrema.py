"""Max/Min reductions over named indices, the indicator ``[x == y]`` and the tie rule.

``Max(X[i,k], k)`` in a spec is :class:`MaxOver` (``Min`` is :class:`MinOver`): the largest
``X[i,k]`` over the whole range of ``k``, a SymPy expression with bound indices like ``Sum``.
Its derivative routes the gradient to the arg-max and splits it equally between tied entries:

    ∂ max_k f(k) / ∂x = Σ_k [f(k) == M] ∂f(k)/∂x / Σ_k [f(k) == M],   M = max_k f(k),

where ``[u == v]`` is the indicator :class:`Iverson` (1 where ``u = v``, else 0). The same rule
holds for the element-wise ``Max(a, b, c, …)`` of three or more arguments
(:func:`differentiate`): each of ``k`` tied arguments gets ``1/k`` of the gradient (SymPy's own
``Heaviside(a - Max(b, c))`` would give each ``1/2``). Two arguments keep ``Heaviside`` with
``H(0) = 1/2``, which is the same rule.

>>> from deltagrad.derive.spec import index, tensor
>>> i, k, a, b = map(index, 'ikab')
>>> X = tensor('X')
>>> m = reduce_extremum('Max', X[i, k], k)
>>> m
MaxOver(X[i, k], (k, 0, n_k - 1))
>>> sp.diff(m, X[a, b])  # doctest: +NORMALIZE_WHITESPACE
Sum(Iverson(X[i, k], MaxOver(X[i, k1], (k1, 0, n_k - 1)))*KroneckerDelta(a, i)*KroneckerDelta(b, k), (k, 0, n_k - 1))/Sum(Iverson(X[i, k], MaxOver(X[i, k1], (k1, 0, n_k - 1))), (k, 0, n_k - 1))
"""

from __future__ import annotations

import sympy as sp
from sympy.concrete.expr_with_limits import ExprWithLimits
from sympy.functions.elementary.miscellaneous import MinMaxBase

from deltagrad.derive.differentiate import index_diff
from deltagrad.derive.names import NAMES, axis_word, unique


class Iverson(sp.Function):
    """The indicator ``[x == y]``: 1 where ``x`` equals ``y``, else 0 (flat: derivative 0).

    >>> x, y = sp.symbols('x y', real=True)
    >>> Iverson(x, y), Iverson(x, x), Iverson(sp.Integer(1), sp.Integer(2))
    (Iverson(x, y), 1, 0)
    """

    nargs = 2
    is_real = True
    is_nonnegative = True
    is_integer = True

    @classmethod
    def eval(cls, x, y):
        if x == y:
            return sp.S.One
        if x.is_number and y.is_number:
            return sp.S.One if sp.Eq(x, y) is sp.true else sp.S.Zero
        return None

    def fdiff(self, argindex=1):
        return sp.S.Zero


class Extremum(ExprWithLimits):
    """The largest (:class:`MaxOver`) or smallest (:class:`MinOver`) value of a body over the
    whole ranges of its bound indices. ``xreplace`` never touches a bound index."""

    word = "max"  # the name of the reduction in code (xp.max) and in saved values (row_max)

    def _eval_is_real(self):
        return True

    def _xreplace(self, rule):
        bound = {lim[0] for lim in self.limits}
        if isinstance(rule, dict) and any(k in bound for k in rule):
            rule = {k: v for k, v in rule.items() if k not in bound}
            if not rule:
                return self, False
        return super()._xreplace(rule)

    def rename_bound(self, mapping: dict):
        """The same reduction with its bound indices renamed by ``mapping``."""
        body = sp.Basic.xreplace(self.function, mapping)
        limits = [(mapping.get(lim[0], lim[0]), *lim[1:]) for lim in self.limits]
        return type(self)(body, *limits)

    def _eval_derivative(self, x):
        # the max inside the indicator binds its own indices, primed (k'), apart from the sums' k
        taken = {str(s) for s in self.atoms(sp.Symbol)}
        primed = {}
        for lim in self.limits:
            name = next(f"{lim[0].name}{n}" for n in range(1, 10**3) if f"{lim[0].name}{n}" not in taken)
            taken.add(name)
            primed[lim[0]] = sp.Symbol(name, integer=True)
        share = Iverson(self.function, self.rename_bound(primed))
        return sp.Sum(share * sp.diff(self.function, x), *self.limits) / sp.Sum(share, *self.limits)


class MaxOver(Extremum):
    """``max_k body``: ``Max(X[i,k], k)`` in a spec."""

    word = "max"


class MinOver(Extremum):
    """``min_k body``: ``Min(X[i,k], k)`` in a spec."""

    word = "min"


REDUCTIONS = {"Max": MaxOver, "Min": MinOver}


def reduce_extremum(kind: str, body, *indices):
    """``Max`` or ``Min`` (``kind``) of ``body`` over the whole range of each of ``indices``.

    >>> from deltagrad.derive.spec import index, tensor
    >>> reduce_extremum('Min', tensor('X')[index('i'), index('k')], index('k'))
    MinOver(X[i, k], (k, 0, n_k - 1))
    """
    return REDUCTIONS[kind](body, *[(k, 0, NAMES.extent_symbol(k.name) - 1) for k in indices])


def extremum_name(expr: Extremum, kept: tuple, used: set) -> str:
    """``row_max``, ``col_min``, ``total_max``…: a readable, unused name for a saved extremum.

    >>> from deltagrad.derive.spec import index, tensor
    >>> i, k = index('i'), index('k')
    >>> extremum_name(reduce_extremum('Max', tensor('X')[i, k], k), (i,), set())
    'row_max'
    """
    entries = sorted(expr.function.atoms(sp.Indexed), key=sp.default_sort_key)
    where = axis_word(entries[0].indices, kept) if len(entries) == 1 else None
    return unique(f"{where}_{expr.word}" if where else f"axis_{expr.word}", used)


class TiedMax(sp.Max):
    """The element-wise ``Max`` of three or more arguments, left unevaluated (cheap to rebuild)
    and differentiated by the tie rule: ``∂Max(x1, …, xn)/∂x1 = [x1 == M] / Σ_j [xj == M]``."""

    def __new__(cls, *args, **assumptions):
        assumptions["evaluate"] = False
        return MinMaxBase.__new__(cls, *args, **assumptions)

    def fdiff(self, argindex=1):
        shares = [Iverson(a, self) for a in self.args]
        return shares[argindex - 1] / sp.Add(*shares)

    def _sympystr(self, printer):
        return f"{type(self).__mro__[1].__name__}({', '.join(printer._print(a) for a in self.args)})"


class TiedMin(sp.Min):
    """The element-wise ``Min`` of three or more arguments (see :class:`TiedMax`)."""

    __new__ = TiedMax.__new__
    fdiff = TiedMax.fdiff
    _sympystr = TiedMax._sympystr


def elementwise(kind: str, *args):
    """``Max(a, b)`` as SymPy's (its derivative ``Heaviside(a - b)``, ``H(0) = 1/2``), and
    ``Max(a, b, c, …)`` as :class:`TiedMax` (``1/k`` each of ``k`` tied arguments).

    >>> x, z, w = sp.symbols('x z w', real=True)
    >>> type(elementwise('Max', x, z)).__name__, type(elementwise('Min', x, z, w)).__name__
    ('Max', 'TiedMin')
    """
    if len(args) > 2:
        return (TiedMax if kind == "Max" else TiedMin)(*args)
    return (sp.Max if kind == "Max" else sp.Min)(*args)


def differentiate(expr, wrt):
    """``∂expr/∂wrt``, with a k-way tie of an element-wise ``Max``/``Min`` split ``1/k`` each.

    >>> x, z, w = sp.symbols('x z w', real=True)
    >>> differentiate(sp.Max(x, z, w), x)
    Iverson(x, Max(w, x, z))/(Iverson(w, Max(w, x, z)) + Iverson(x, Max(w, x, z)) + Iverson(z, Max(w, x, z)))
    >>> differentiate(sp.Max(x, z), x)
    Heaviside(x - z)
    """
    tied = {}
    for node in sp.preorder_traversal(expr):
        if isinstance(node, (sp.Max, sp.Min)) and not isinstance(node, (TiedMax, TiedMin)) and len(node.args) > 2:
            tied[node] = elementwise("Max" if isinstance(node, sp.Max) else "Min", *node.args)
    return index_diff(expr.xreplace(tied) if tied else expr, wrt)
