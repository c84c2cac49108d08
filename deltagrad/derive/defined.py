"""Where a spec and its derivatives are defined: the checks that keep ``nan``, ``zoo`` and complex
parts out of generated code, and the test that a rewritten gradient is finite wherever the form
it replaces is.

>>> from deltagrad.derive.parse import parse_spec
>>> check_forward_defined(parse_spec("Y[i] = X[i] / 0"))
Traceback (most recent call last):
...
deltagrad.errors.SpecError: the right-hand side is undefined (it divides by zero or takes 0 to a negative power): Y[i] = X[i] / 0
>>> check_gradient_defined(sp.nan, "X")
Traceback (most recent call last):
...
deltagrad.errors.SpecError: the derivative with respect to X is undefined (nan) for every value: 0**X and similar forms have no derivative; rewrite the spec
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from deltagrad.derive.numeric import FLOAT_DRAWS, index_sizes, random_environments, evaluate_gradient
from deltagrad.errors import SpecError

#: Parts a real spec's derivative must not need: they exist only for complex values.
COMPLEX_PARTS = (sp.re, sp.im, sp.arg, sp.atan2, sp.conjugate, sp.Derivative, sp.Subs)
#: Draws for the definedness test: the usual ones, a wide range of both signs (4**P at P = 5) and
#: negative values only (so that a scalar input is negative at least once).
DEFINED_DRAWS = FLOAT_DRAWS + ((-6.0, 6.0, False), (-2.0, -0.3, False), (-3.0, 3.0, True))


def _undefined(expr) -> bool:
    return expr.has(sp.nan, sp.zoo, sp.oo, -sp.oo)


def _complex(expr) -> bool:
    return expr.has(sp.I) or any(expr.atoms(f) for f in COMPLEX_PARTS)


def check_forward_defined(spec) -> None:
    """Refuse a right-hand side that is undefined (``X/0``) or not real (``(-X**2)**0.5``)."""
    if _undefined(spec.rhs):
        raise SpecError("the right-hand side is undefined (it divides by zero or takes 0 to a negative power): "
                        f"{spec.text or spec.rhs}")
    if _complex(spec.rhs):
        raise SpecError(f"the right-hand side is not real (a root or a fractional power of a negative value): {spec.text or spec.rhs}")


def check_gradient_defined(expr, input_name: str) -> None:
    """Refuse a derivative that is ``nan``/``zoo`` or needs complex parts (``Abs(sqrt(X))``)."""
    if _undefined(expr):
        raise SpecError(f"the derivative with respect to {input_name} is undefined (nan) for every value: "
                        "0**X and similar forms have no derivative; rewrite the spec")
    if _complex(expr):
        raise SpecError(f"the derivative with respect to {input_name} needs complex parts ({_parts(expr)}): "
                        "Abs or a power of a value that may be complex (a root, a fractional power) is not "
                        "supported; write it for real values, e.g. sqrt(Abs(X)) instead of Abs(sqrt(X))")


def _parts(expr) -> str:
    found = sorted({type(a).__name__ for f in COMPLEX_PARTS for a in expr.atoms(f)} | ({"I"} if expr.has(sp.I) else set()))
    return ", ".join(found)


def as_defined(first, second, spec, values, input_name: str, grad_indices, grad_name: str, seed: int = 12345) -> bool:
    """True when ``second`` equals ``first`` wherever ``first`` is finite, and is finite there too,
    on draws that include negative values and a wide range (so a rewrite that is NaN for negative
    X, or overflows at P = 5, is caught).
    """
    sizes = index_sizes(spec, input_name, grad_indices)
    seen = False
    for env in random_environments(spec, values, sizes, grad_name, DEFINED_DRAWS * 2, seed):
        a = evaluate_gradient(first, env, sizes, grad_indices, grad_name)
        b = evaluate_gradient(second, env, sizes, grad_indices, grad_name)
        if a.shape != b.shape:
            try:
                a, b = np.broadcast_arrays(a, b)
            except ValueError:
                return False
        fine = np.isfinite(a)
        if np.any(fine & ~np.isfinite(b)):
            return False
        if not np.allclose(a[fine], b[fine], rtol=1e-9, atol=1e-10):
            return False
        seen = seen or bool(fine.any())
    return seen
