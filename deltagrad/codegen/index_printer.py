"""Print index expressions as one readable line: ``Sum_j(...)``, ``delta(a,b)``, ``X[a,b]``,
and positive terms before negative ones. With ``order`` (the spec's input names), the factors of
a product are put in reading order, as the generated code and the LaTeX write-ups put them:
scalars, the output's gradient, Kronecker deltas, tensors in the order of ``order`` (then the
output, then saved values), functions, brackets, and sums last.

>>> from deltagrad.derive.spec import index, tensor, summed
>>> a, j = index('a'), index('j')
>>> G, Y = tensor('G'), tensor('Y')
>>> index_text(Y[a, j] * (G[a, j] - summed(G[a, j] * Y[a, j], j)))
'(G[a,j] - Sum_j(G[a,j]*Y[a,j]))*Y[a,j]'
>>> index_text((1 - Y[a, j]) * G[a, j] * Y[a, j], order=("X",))
'G[a,j]*Y[a,j]*(1 - Y[a,j])'
"""

from __future__ import annotations

import sympy as sp
from sympy.printing.precedence import precedence
from sympy.printing.str import StrPrinter


def reading_key(f, grad_name: str = "G", output: str = "Y", order=()):
    """Sort key of a factor of a product in reading order (see the module's docstring)."""
    rank = {n: k for k, n in enumerate(order)}

    def name_key(name):
        if name in rank:
            return (0, rank[name], name)
        return (1, 0, name) if name == output else (2, 0, name)

    base = f.base if isinstance(f, sp.Pow) and f.exp.is_Number and f.exp > 0 else f
    is_grad = (isinstance(base, sp.Indexed) and base.base.label.name == grad_name) or (
        isinstance(base, sp.Symbol) and base.name == grad_name)
    if isinstance(base, sp.Symbol) and not is_grad:
        return (-1, *name_key(base.name))
    if is_grad:
        return (0,)
    if isinstance(f, sp.KroneckerDelta):
        return (1,)
    if isinstance(base, sp.Indexed):
        return (2, *name_key(base.base.label.name), f is not base)
    if isinstance(f, sp.Sum):
        return (6,)
    if isinstance(f, sp.Add):
        return (5,)
    return (4,)


class IndexPrinter(StrPrinter):
    """SymPy's string printer with index-notation conventions."""

    def __init__(self, settings=None, order=None, grad_name="G", output="Y"):
        super().__init__(settings)
        self.reading = order
        self.grad_name = grad_name
        self.output = output

    def _print_Mul(self, expr):
        if self.reading is None:
            return super()._print_Mul(expr)
        coeff, rest = expr.as_coeff_Mul()
        factors = sorted(sp.Mul.make_args(rest), key=lambda f: reading_key(f, self.grad_name, self.output, self.reading))
        if coeff != 1:
            factors.insert(0, coeff)
        return super()._print_Mul(sp.Mul(*factors, evaluate=False))

    def _print_Sum(self, expr):
        ks = ",".join(lim[0].name for lim in expr.limits)
        return f"Sum_{ks}({self._print(expr.function)})"

    def _print_MaxOver(self, expr):
        ks = ",".join(lim[0].name for lim in expr.limits)
        return f"{expr.word.capitalize()}_{ks}({self._print(expr.function)})"

    _print_MinOver = _print_MaxOver

    def _print_Iverson(self, expr):
        return f"[{self._print(expr.args[0])} == {self._print(expr.args[1])}]"

    def _print_Exp1(self, expr):  # not "E": a spec may name a tensor E (an embedding)
        return "exp(1)"

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


def index_text(expr, order=None, grad_name: str = "G", output: str = "Y") -> str:
    """``expr`` in the index notation of deltagrad's text output; with ``order`` (input names),
    the factors of products in reading order."""
    # Indexed prints itself (its own _sympystr) as X[a, b]; tighten it to X[a,b].
    printer = IndexPrinter({"order": "none"}, order=order, grad_name=grad_name, output=output)
    return printer.doprint(sp.sympify(expr)).replace(", ", ",")


def merged_text(lhs: str, groups: tuple) -> str:
    """The printed output ``lhs`` with its merged axes in parentheses, as the spec wrote them.

    >>> merged_text("Y[b,c,i,j]", ((1, 2, 3),)), merged_text("Y[i,j]", ())
    ('Y[b,(c,i,j)]', 'Y[i,j]')
    """
    if not groups:
        return lhs
    name, _, rest = lhs.partition("[")
    idx = rest[:-1].split(",")
    for g in sorted(groups, reverse=True):
        idx[g[0]:g[-1] + 1] = ["(" + ",".join(idx[g[0]:g[-1] + 1]) + ")"]
    return f"{name}[{','.join(idx)}]"

