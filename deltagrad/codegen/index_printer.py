"""Print index expressions as one readable line: ``Sum_j(...)``, ``delta(a,b)``, ``X[a,b]``,
and positive terms before negative ones.

>>> from deltagrad.derive.spec import index, tensor, summed
>>> a, j = index('a'), index('j')
>>> G, Y = tensor('G'), tensor('Y')
>>> index_text(Y[a, j] * (G[a, j] - summed(G[a, j] * Y[a, j], j)))
'(G[a,j] - Sum_j(G[a,j]*Y[a,j]))*Y[a,j]'
"""

from __future__ import annotations

import sympy as sp
from sympy.printing.precedence import precedence
from sympy.printing.str import StrPrinter


class IndexPrinter(StrPrinter):
    """SymPy's string printer with index-notation conventions."""

    def _print_Sum(self, expr):
        ks = ",".join(lim[0].name for lim in expr.limits)
        return f"Sum_{ks}({self._print(expr.function)})"

    def _print_KroneckerDelta(self, expr):
        return f"delta({self._print(expr.args[0])},{self._print(expr.args[1])})"

    def _print_Heaviside(self, expr):
        return f"Heaviside({self._print(expr.args[0])})"

    def _print_Add(self, expr, order=None):
        terms = sorted(self._as_ordered_terms(expr, order=order), key=lambda t: t.could_extract_minus_sign())
        prec = precedence(expr)
        out = []
        for term in terms:
            text = self._print(term)
            sign = "+"
            if text.startswith("-") and not term.is_Add:
                sign, text = "-", text[1:]
            out += [sign, f"({text})" if precedence(term) < prec or term.is_Add else text]
        first = out.pop(0)
        return ("" if first == "+" else first) + " ".join(out)


def index_text(expr) -> str:
    """``expr`` in the index notation of deltagrad's text output."""
    # Indexed prints itself (its own _sympystr) as X[a, b]; tighten it to X[a,b].
    return IndexPrinter({"order": "none"}).doprint(sp.sympify(expr)).replace(", ", ",")
