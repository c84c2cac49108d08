"""LaTeX for index expressions, in the notation of the write-ups: X_{ab}, Y^{\\nabla}_{ij},
\\delta_{ai}, \\sum_{k}, and positive terms first.

>>> from deltagrad.derive.spec import index, tensor, summed
>>> a, j = index('a'), index('j')
>>> latex_index(tensor('G')[a, j] * summed(tensor('X')[a, j], j), grad_name='G', output='Y')
'Y^{\\\\nabla}_{aj} \\\\sum_{j} X_{aj}'
"""

from __future__ import annotations

import sympy as sp
from sympy.printing.latex import LatexPrinter

from deltagrad.derive.names import NAMES


def _indices(indices) -> str:
    parts = [str(i) for i in indices]
    return "".join(parts) if all(len(p) == 1 for p in parts) else ",".join(parts)


def name_latex(name: str) -> str:
    """A variable name in LaTeX: R0 → \\mathit{R0} (it may carry indices), n_k → n_{k},
    longer words in \\mathrm.

    >>> name_latex("R0"), name_latex("n_k"), name_latex("X"), name_latex("logits")
    ('\\\\mathit{R0}', 'n_{k}', 'X', '\\\\mathrm{logits}')
    """
    if NAMES.is_extent(name):
        return f"n_{{{NAMES.index_of_extent(name)}}}"
    if len(name) > 1 and name[0].isalpha() and name[1:].isdigit():
        return f"\\mathit{{{name}}}"
    if len(name) == 1:
        return name
    return "\\mathrm{" + name.replace("_", "\\_") + "}"


class IndexLatexPrinter(LatexPrinter):
    """SymPy's LaTeX printer with index-notation conventions."""

    def __init__(self, grad_name="G", output="Y"):
        super().__init__({"order": "none"})
        self.grad_name = grad_name
        self.output = output

    def grad(self):
        return f"{name_latex(self.output)}^{{\\nabla}}"

    def _print_Indexed(self, expr):
        label = expr.base.label.name
        base = self.grad() if label == self.grad_name else name_latex(label)
        return f"{base}_{{{_indices(expr.indices)}}}"

    def _print_Symbol(self, expr, style="plain"):
        if expr.name == self.grad_name:
            return self.grad()
        if NAMES.is_extent(expr.name) or (len(expr.name) > 1 and expr.name[1:].isdigit()):
            return name_latex(expr.name)
        return super()._print_Symbol(expr)

    def _print_Sum(self, expr):
        ks = ",".join(str(lim[0]) for lim in expr.limits)
        body = self._print(expr.function)
        if isinstance(expr.function, sp.Add):
            body = f"\\left({body}\\right)"
        return f"\\sum_{{{ks}}} {body}"

    def _print_KroneckerDelta(self, expr, exp=None):
        return f"\\delta_{{{_indices(expr.args)}}}"

    def _print_Heaviside(self, expr, exp=None):
        return f"H\\left({self._print(expr.args[0])}\\right)"

    def _as_ordered_terms(self, expr, order=None):
        terms = super()._as_ordered_terms(expr, order=order)
        return sorted(terms, key=lambda t: t.could_extract_minus_sign())


def latex_index(expr, grad_name="G", output="Y") -> str:
    """``expr`` as LaTeX index notation."""
    return IndexLatexPrinter(grad_name, output).doprint(expr)
