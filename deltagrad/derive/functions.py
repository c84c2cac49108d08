"""The spec language's functions beyond SymPy's own: ``log1p``, ``expm1``, ``sigmoid``,
``softplus``, ``where(COND, A, B)`` and generic functions that the user declares (``f``, whose
derivative is the named function ``f_prime``).

Each is a SymPy ``Function`` whose derivative SymPy takes from :meth:`fdiff`, so that SymPy never
rewrites it into a form that overflows (``softplus`` stays ``softplus``, not ``log(1 + exp(x))``).

``where(c, a, b)`` is ``a`` where the comparison ``c`` holds and ``b`` elsewhere. A comparison is
flat: its derivative is 0, so the derivative of ``where`` routes the gradient to the branch the
forward chose, ``where(c, a', b')``. At a boundary such as ``where(X > 0, X, 0)`` at ``X = 0``
the condition is false, so the gradient is that of ``b`` (here 0), as the forward computed ``b``.

>>> from deltagrad.derive.spec import index, tensor
>>> x = tensor('X')[index('i')]
>>> sigmoid(x).diff(x)
(1 - sigmoid(X[i]))*sigmoid(X[i])
>>> where(x > 0, x**2, 0).diff(x)
where(X[i] > 0, 2*X[i], 0)
>>> generic("f")(x).diff(x)
f_prime(X[i])
"""

from __future__ import annotations

import re
from functools import lru_cache

import sympy as sp
from sympy.core.relational import Relational


class _Elementwise(sp.Function):
    """A one-argument function that evaluates itself on numbers through an explicit formula."""

    nargs = 1

    @classmethod
    def formula(cls, x):  # pragma: no cover - overridden
        raise NotImplementedError

    @classmethod
    def eval(cls, x):
        if x.is_Number:
            return cls.formula(x)
        return None

    def _eval_is_real(self):
        return self.args[0].is_real

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return self.formula(x)


class log1p(_Elementwise):
    """``log(1 + x)``, exact for small ``x``."""

    @classmethod
    def formula(cls, x):
        return sp.log(1 + x)

    def fdiff(self, argindex=1):
        return 1 / (1 + self.args[0])


class expm1(_Elementwise):
    """``exp(x) - 1``, exact for small ``x``."""

    @classmethod
    def formula(cls, x):
        return sp.exp(x) - 1

    def fdiff(self, argindex=1):
        return sp.exp(self.args[0])


class sigmoid(_Elementwise):
    """``1 / (1 + exp(-x))``; its derivative ``sigmoid(x) (1 - sigmoid(x))`` reads the output."""

    @classmethod
    def formula(cls, x):
        return 1 / (1 + sp.exp(-x))

    def fdiff(self, argindex=1):
        return self * (1 - self)


class softplus(_Elementwise):
    """``log(1 + exp(x))``, computed as ``logaddexp(0, x)`` (finite at ``x = 1000``)."""

    @classmethod
    def formula(cls, x):
        return sp.log(1 + sp.exp(x))

    def fdiff(self, argindex=1):
        return sigmoid(self.args[0])


def one_plus_exp(e):
    """``exp(u)`` when ``e`` is ``1 + exp(u)``, else None (the denominator of a sigmoid, the
    argument of a softplus).

    >>> x = sp.Symbol('x')
    >>> one_plus_exp(1 + sp.exp(-x)), one_plus_exp(2 + sp.exp(x))
    (exp(-x), None)
    """
    if not isinstance(e, sp.Add) or len(e.args) != 2 or sp.S.One not in e.args:
        return None
    ex = next(a for a in e.args if a != 1)
    return ex if isinstance(ex, sp.exp) else None


class where(sp.Function):
    """``where(c, a, b)``: ``a`` where the comparison ``c`` holds, else ``b``.

    A Kronecker delta common to both branches (or to the one branch when the other is 0) is
    taken out, so that delta elimination sees it: ``where(c, δ·a, 0) = δ·where(c, a, 0)``.
    """

    nargs = 3

    @classmethod
    def eval(cls, c, a, b):
        if c is sp.true:
            return a
        if c is sp.false:
            return b
        if a == b:
            return a
        fa, fb = sp.Mul.make_args(a), sp.Mul.make_args(b)
        if a == 0:
            common = [f for f in fb if isinstance(f, sp.KroneckerDelta)]
        else:
            common = [f for f in fa if isinstance(f, sp.KroneckerDelta) and (b == 0 or f in fb)]
        if common:
            def rest(branch, factors):
                return sp.S.Zero if branch == 0 else sp.Mul(*[f for f in factors if f not in common])

            return sp.Mul(*common) * cls(c, rest(a, fa), rest(b, fb))
        return None

    def _eval_is_commutative(self):
        return True

    def _eval_derivative(self, s):
        c, a, b = self.args
        return where(c, sp.diff(a, s), sp.diff(b, s))

    def _eval_subs(self, old, new):
        return None

    def _sympystr(self, printer):
        c, a, b = self.args
        return f"where({printer._print(c)}, {printer._print(a)}, {printer._print(b)})"


#: comparison class → the operator of the code (``X > 0``)
COMPARISONS = {sp.StrictGreaterThan: ">", sp.GreaterThan: ">=", sp.StrictLessThan: "<", sp.LessThan: "<="}


def is_comparison(e) -> bool:
    """True for ``a < b``, ``a <= b``, ``a > b`` or ``a >= b``."""
    return isinstance(e, Relational) and type(e) in COMPARISONS


class Generic(sp.Function):
    """A one-argument function that the user declared: its derivative is the named function
    ``NAME_prime``, then ``NAME_prime2``, …; the code calls implementations the user passes."""

    nargs = 1
    generic_base = ""
    generic_order = 0

    def fdiff(self, argindex=1):
        return generic(self.generic_base, self.generic_order + 1)(self.args[0])


def generic_name(base: str, order: int) -> str:
    """The name of a generic function's ``order``-th derivative.

    >>> generic_name("f", 0), generic_name("f", 1), generic_name("f", 2)
    ('f', 'f_prime', 'f_prime2')
    """
    return base if order == 0 else f"{base}_prime" + ("" if order == 1 else str(order))


@lru_cache(maxsize=None)
def generic(base: str, order: int = 0) -> type:
    """The SymPy function class of generic function ``base``'s ``order``-th derivative (one
    class per name, so that ``f(x) == f(x)``)."""
    return type(generic_name(base, order), (Generic,), {"generic_base": base, "generic_order": order})


def generic_parts(name: str):
    """``(base, order)`` of a derivative's name, or None: ``f_prime2`` → ``('f', 2)``.

    >>> generic_parts("f_prime"), generic_parts("g_prime3"), generic_parts("f")
    (('f', 1), ('g', 3), None)
    """
    m = re.fullmatch(r"(.+)_prime(\d*)", name)
    if not m:
        return None
    return m.group(1), int(m.group(2) or 1)


def generic_functions(expr) -> set:
    """The base names of the generic functions ``expr`` calls."""
    return {f.func.generic_base for f in expr.atoms(Generic)}


def stand_in(name: str):
    """A fixed smooth NumPy function for a generic function's name, used where the derivation
    checks a rewrite numerically and the user's implementation is not known; each name gets
    its own, so that ``f`` and ``f_prime`` stay independent.

    >>> import numpy as np
    >>> float(stand_in("f")(np.float64(0.5))) != float(stand_in("f_prime")(np.float64(0.5)))
    True
    """
    seed = sum((n + 1) * ord(c) for n, c in enumerate(name))
    a, b, c = 0.5 + (seed % 7) / 7, (seed % 11) / 11, 0.1 + (seed % 5) / 10

    def f(x):
        import numpy as np

        return np.sin(a * x + b) + c * x

    return f


#: SymPy function → the array namespace's element-wise function of the same name
ELEMENTWISE = {sp.sinh: "sinh", sp.cosh: "cosh", sp.asin: "asin", sp.acos: "acos", sp.atan: "atan",
               sp.asinh: "asinh", sp.acosh: "acosh", sp.atanh: "atanh", log1p: "log1p", expm1: "expm1",
               sp.erf: "erf", sp.erfc: "erfc", sigmoid: "sigmoid"}

#: Calls of the lowered code that the array API lacks: each printer writes them its own way
#: (NumPy: ``special(xp).erf``, torch: ``torch.erf``, JAX: ``jax.scipy.special.erf``).
SPECIAL_CALLS = ("erf", "erfc", "sigmoid")

#: The functions a spec may call besides the original ones, with their arity.
SPEC_FUNCTIONS = {
    "erf": (sp.erf, 1), "erfc": (sp.erfc, 1), "asin": (sp.asin, 1), "acos": (sp.acos, 1), "atan": (sp.atan, 1),
    "sinh": (sp.sinh, 1), "cosh": (sp.cosh, 1), "asinh": (sp.asinh, 1), "acosh": (sp.acosh, 1),
    "atanh": (sp.atanh, 1), "log1p": (log1p, 1), "expm1": (expm1, 1), "sigmoid": (sigmoid, 1),
    "softplus": (softplus, 1), "sign": (sp.sign, 1), "where": (where, 3),
}
