"""LaTeX for index expressions, in the notation of the write-ups: X_{ab}, Y^{\\nabla}_{ij},
\\delta_{ai}, \\sum_{k}, functions as \\exp(…) and \\log(…) (as in the matrix forms), positive
terms first, and the factors of a product in a fixed reading order: the output's gradient, then
Kronecker deltas, then tensors in the order their names first appear in the spec (then the
output, then saved values), then functions, brackets, and sums last.

>>> from deltagrad.derive.spec import index, tensor, summed
>>> a, j = index('a'), index('j')
>>> latex_index(tensor('G')[a, j] * summed(tensor('X')[a, j], j), grad_name='G', output='Y')
'Y^{\\\\nabla}_{aj} \\\\sum_{j} X_{aj}'
>>> k, i = index('k'), index('i')
>>> latex_index(summed(tensor('W')[k, j] * tensor('X')[i, k], k), order=('X', 'W'))
'\\\\sum_{k} X_{ik} W_{kj}'
"""

from __future__ import annotations

import math
import re

import sympy as sp

from deltagrad.codegen.index_printer import reading_key
from deltagrad.derive.extrema import Extremum, Iverson
from deltagrad.derive.functions import COMPARISONS, Generic, where
from deltagrad.derive.names import NAMES
from deltagrad.derive.spec import is_index

_GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda",
          "mu", "nu", "xi", "pi", "rho", "sigma", "tau", "phi", "chi", "psi", "omega", "Gamma", "Delta",
          "Theta", "Lambda", "Xi", "Pi", "Sigma", "Phi", "Psi", "Omega"}

_ADD, _MUL, _POW, _ATOM = 1, 2, 3, 4

#: Element-wise functions, written the same way in index and matrix forms.
FUNCTIONS = {"exp": r"\exp", "log": r"\log", "tanh": r"\tanh", "sin": r"\sin", "cos": r"\cos",
             "sign": r"\operatorname{sign}", "heaviside": "H", "max": r"\max", "min": r"\min",
             "maximum": r"\max", "minimum": r"\min", "asin": r"\arcsin", "acos": r"\arccos", "atan": r"\arctan",
             "sinh": r"\sinh", "cosh": r"\cosh", "sigmoid": r"\sigma"}
#: ``where``'s comparisons
_RELATIONS = {">": ">", ">=": r"\geq", "<": "<", "<=": r"\leq"}


def index_latex(name) -> str:
    """An index name: j → j; j1, j2 (renamed apart by the engine) → j', j''.

    >>> index_latex("j"), index_latex("j1"), index_latex("k2")
    ('j', "j'", "k''")
    """
    name = str(name).replace("*", " ")  # an affine index: 2*i + p → 2 i + p
    if name == "...":  # any leading axes (derive/ellipsis.py)
        return "\\ldots"
    if name == "_":  # an axis of size one
        return r"\_"
    m = re.fullmatch(r"([a-zA-Z])(\d)", name)
    if m:
        return m.group(1) + "'" * int(m.group(2))
    return name


def _indices(indices) -> str:
    # a gather's index t[i] reads t_{i} (a subscript of a subscript)
    parts = [f"{name_latex(i.base.label.name)}_{{{_indices(i.indices)}}}" if isinstance(i, sp.Indexed) else index_latex(i)
             for i in indices]
    return "".join(parts) if all(len(p.rstrip("'")) == 1 for p in parts) else ",".join(parts)


def name_latex(name: str) -> str:
    """A variable name in LaTeX, upright when it is a word: n_k → n_{k}, mu → \\mu,
    row_sum → \\mathrm{row\\_sum}, R0 → \\mathrm{R0}.

    >>> name_latex("R0"), name_latex("n_k"), name_latex("X"), name_latex("row_sum"), name_latex("mu")
    ('\\\\mathrm{R0}', 'n_{k}', 'X', '\\\\mathrm{row\\\\_sum}', '\\\\mu')
    """
    if NAMES.is_extent(name):
        return f"n_{{{NAMES.index_of_extent(name).replace('_', ',')}}}"
    if len(name) == 1:
        return name
    if name in _GREEK:
        return "\\" + name
    return "\\mathrm{" + name.replace("_", "\\_") + "}"


def number_latex(value) -> str:
    """A number as a reader writes it: 2, \\frac{1}{2}, 0.044715, 10^{-5}, 3.16228 \\cdot 10^{7}.

    >>> number_latex(sp.Float(1e-5)), number_latex(sp.Rational(3, 2)), number_latex(sp.Float(0.5))
    ('10^{-5}', '\\\\frac{3}{2}', '0.5')
    """
    value = sp.sympify(value)
    if value.is_Integer:
        return str(int(value))
    if value.is_Rational:
        sign = "-" if value < 0 else ""
        return f"{sign}\\frac{{{abs(value.p)}}}{{{value.q}}}"
    v = float(value)
    if v == 0:
        return "0"
    sign = "-" if v < 0 else ""
    v = abs(v)
    if float(v).is_integer() and v < 1e5:
        return sign + str(int(v))
    exp10 = math.floor(math.log10(v))
    mant = v / 10 ** exp10
    if abs(mant - 1) < 1e-12:
        return f"{sign}10^{{{exp10}}}"
    if -4 <= exp10 < 5:
        return sign + f"{v:.6g}"
    return f"{sign}{mant:.6g} \\cdot 10^{{{exp10}}}"


def _is_grad(e, grad_name) -> bool:
    if isinstance(e, sp.Indexed):
        return e.base.label.name == grad_name
    return isinstance(e, sp.Symbol) and e.name == grad_name


def _tall(text: str) -> bool:
    return "\\frac" in text or "\\sum" in text or "\\sqrt" in text


class IndexLatexPrinter:
    """Index expressions as LaTeX (see the module's docstring for the conventions).

    ``order``: names in their reading order (the spec's inputs by first appearance);
    ``rename``: a symbol or tensor name → its LaTeX (named subexpressions).
    """

    def __init__(self, grad_name="G", output="Y", order=(), rename=None):
        self.grad_name = grad_name
        self.output = output
        self.order = tuple(order)
        self.rename = dict(rename or {})

    def grad(self):
        return f"{name_latex(self.output)}^{{\\nabla}}"

    def doprint(self, expr) -> str:
        return self.p(sp.sympify(expr))

    # -- the reading order of factors ---------------------------------------------------------
    def factor_key(self, f):
        return reading_key(f, self.grad_name, self.output, self.order)

    def ordered(self, factors):
        return sorted(factors, key=self.factor_key)

    # -- printing --------------------------------------------------------------------------------
    def prec(self, e) -> int:
        if isinstance(e, sp.Add):
            return _ADD
        if isinstance(e, sp.Mul):
            return _ADD if e.could_extract_minus_sign() else _MUL
        if isinstance(e, (sp.Sum, Extremum)):
            return _MUL
        if isinstance(e, sp.Pow):
            if e.exp.is_Number and e.exp < 0:
                return _MUL
            return _POW
        if isinstance(e, sp.Rational) and not e.is_Integer:
            return _MUL
        if e.is_Number and e < 0:
            return _ADD
        if isinstance(e, sp.Float):
            return _MUL if "cdot" in number_latex(e) else _ATOM
        return _ATOM

    def paren(self, text: str) -> str:
        return f"\\left({text}\\right)" if _tall(text) else f"({text})"

    def wrap(self, e, prec) -> str:
        text = self.p(e)
        return self.paren(text) if self.prec(e) < prec else text

    def p(self, e) -> str:
        if isinstance(e, sp.Indexed):
            label = e.base.label.name
            base = self.grad() if label == self.grad_name else self.rename.get(label) or name_latex(label)
            return f"{base}_{{{_indices(e.indices)}}}"
        if isinstance(e, sp.Symbol):
            if is_index(e):
                return index_latex(e.name)
            if e.name == self.grad_name:
                return self.grad()
            if e.name in self.rename:
                return self.rename[e.name]
            return name_latex(e.name)
        if e.is_Number:
            return number_latex(e)
        if isinstance(e, sp.Add):
            return self.add(e)
        if isinstance(e, sp.Mul):
            return self.mul(e)
        if isinstance(e, sp.Pow):
            return self.pow(e)
        if isinstance(e, sp.Sum):
            return self.sum(e)
        if isinstance(e, sp.KroneckerDelta):
            return f"\\delta_{{{_indices(e.args)}}}"
        if isinstance(e, sp.exp):
            return self.func(r"\exp", e.args[0])
        if isinstance(e, sp.Heaviside):
            return self.func("H", e.args[0])
        if isinstance(e, sp.sign):
            return self.func(r"\operatorname{sign}", e.args[0])
        if isinstance(e, sp.Abs):
            inner = self.p(e.args[0])
            return f"\\left\\lvert {inner} \\right\\rvert" if _tall(inner) else f"\\lvert {inner} \\rvert"
        if isinstance(e, Extremum):
            ks = ",".join(index_latex(lim[0]) for lim in e.limits)
            return f"\\{e.word}_{{{ks}}} " + self.wrap(e.function, _POW)
        if isinstance(e, Iverson):
            return f"[{self.p(e.args[0])} = {self.p(e.args[1])}]"
        if isinstance(e, (sp.Max, sp.Min)):
            name = r"\max" if isinstance(e, sp.Max) else r"\min"
            inner = ", ".join(self.p(a) for a in e.args)
            return name + self.paren(inner)
        if isinstance(e, where):
            c, a, b = e.args
            return (f"\\begin{{cases}} {self.p(a)} & \\text{{if }} {self.p(c)} \\\\ "
                    f"{self.p(b)} & \\text{{otherwise}} \\end{{cases}}")
        if type(e) in COMPARISONS:
            return f"{self.p(e.lhs)} {_RELATIONS[COMPARISONS[type(e)]]} {self.p(e.rhs)}"
        if isinstance(e, Generic):
            base = e.func.generic_base
            head = base if len(base) == 1 else f"\\operatorname{{{base}}}"
            return self.func(head + "'" * e.func.generic_order, e.args[0])
        if isinstance(e, sp.Function) and e.func.__name__ in FUNCTIONS and len(e.args) == 1:
            return self.func(FUNCTIONS[e.func.__name__], e.args[0])
        if isinstance(e, sp.Function):
            name = e.func.__name__
            head = "\\" + name if name in _GREEK else (name if len(name) == 1 else f"\\operatorname{{{name}}}")
            return head + self.paren(", ".join(self.p(a) for a in e.args))
        return sp.latex(e)

    def func(self, head: str, arg) -> str:
        return head + self.paren(self.p(arg))

    def add(self, e) -> str:
        def key(t):
            return (t.could_extract_minus_sign(), isinstance(t, sp.Float))

        terms = sorted(sp.Add.make_args(e), key=key)
        out = ""
        for n, t in enumerate(terms):
            negative = t.could_extract_minus_sign()
            text = self.wrap(-t if negative else t, _ADD + 1) if n or negative else self.p(t)
            if n == 0:
                out = ("-" if negative else "") + text
            else:
                out += (" - " if negative else " + ") + text
        return out

    def split_fraction(self, e):
        """(sign, coefficient, numerator factors, denominator factors) of a product."""
        coeff, rest = e.as_coeff_Mul()
        num, den = [], []
        for f in sp.Mul.make_args(rest):
            if isinstance(f, sp.Float) and abs(abs(float(f)) - 1) < 1e-12:  # a 1.0 left by float arithmetic
                coeff = coeff * (1 if f > 0 else -1)
                continue
            if isinstance(f, sp.Sum) and f.function.could_extract_minus_sign():
                f = sp.Sum(-f.function, *f.limits)  # -Σ, not Σ -
                coeff = -coeff
            if isinstance(f, sp.Pow) and f.exp.is_Number and f.exp < 0:
                den.append(sp.Pow(f.base, -f.exp) if f.exp != -1 else f.base)
            else:
                num.append(f)
        negative = coeff < 0
        coeff = abs(coeff)
        if isinstance(coeff, sp.Float) and abs(float(coeff) - 1) < 1e-12:
            coeff = sp.S.One
        if coeff.is_Rational and coeff.q != 1:
            den.insert(0, sp.Integer(coeff.q))
            coeff = sp.Integer(coeff.p)
        return negative, coeff, num, den

    def product(self, coeff, factors) -> str:
        factors = self.ordered(factors)
        parts = [number_latex(coeff)] if coeff != 1 else []
        for n, f in enumerate(factors):
            last = n == len(factors) - 1
            if isinstance(f, sp.Sum) and not last:
                parts.append(self.paren(self.p(f)))
            else:
                parts.append(self.wrap(f, _MUL))
        if not parts:
            return "1"
        out = parts[0]
        for prev, part in zip(parts, parts[1:]):
            joiner = " \\cdot " if (prev[-1:].isdigit() and part[:1].isdigit()) else " "
            out += joiner + part
        return out

    def mul(self, e) -> str:
        negative, coeff, num, den = self.split_fraction(e)
        sign = "-" if negative else ""
        if negative and coeff == 1 and not den and len(num) == 1 and isinstance(num[0], sp.Add):
            return self.add(sp.Add(*[-t for t in num[0].args]))  # -(A - B) reads B - A
        if not den:
            return sign + self.product(coeff, num)
        bottom = self.p(den[0]) if len(den) == 1 else self.product(sp.S.One, den)
        simple_den = all(not d.atoms(sp.Indexed, sp.Sum) for d in den)
        compound = [f for f in num if isinstance(f, (sp.Add, sp.Sum))]
        if simple_den and compound:  # -1/n Σ …, L/n (T - …): the scalar factor first
            plain = [f for f in num if f not in compound]
            top = self.product(coeff, plain) if plain or coeff != 1 else "1"
            return f"{sign}\\frac{{{top}}}{{{bottom}}} " + self.product(sp.S.One, compound)
        top = self.p(num[0]) if len(num) == 1 and coeff == 1 else self.product(coeff, num)
        if len(num) == 1 and isinstance(num[0], sp.Add) and "\\frac" in top:
            # no fraction inside a fraction's numerator: 1/den (…) instead
            return f"{sign}\\frac{{{number_latex(coeff)}}}{{{bottom}}} \\left({top}\\right)"
        return f"{sign}\\frac{{{top}}}{{{bottom}}}"

    def pow(self, e) -> str:
        base, exp = e.base, e.exp
        if exp == sp.Rational(1, 2):
            return f"\\sqrt{{{self.p(base)}}}"
        if exp.is_Number and exp < 0:
            return self.mul(e)
        if isinstance(base, (sp.Indexed, sp.Symbol)) and not (isinstance(base, sp.Indexed) and _is_grad(base, self.grad_name)):
            btext = self.p(base)
            if "^" in btext:
                btext = "{" + btext + "}"
        elif isinstance(base, sp.Pow) and base.exp == sp.Rational(1, 2):
            btext = self.p(base)
            btext = self.paren(btext)
        else:
            btext = self.p(base)
            btext = self.paren(btext) if self.prec(base) <= _POW or "^" in btext else btext
        if exp.is_Rational and not exp.is_Integer:
            etext = f"{exp.p}/{exp.q}"
        else:
            etext = self.p(exp)
        return f"{btext}^{{{etext}}}"

    def sum(self, e) -> str:
        ks = ",".join(index_latex(lim[0]) for lim in e.limits)
        body = e.function
        if body.could_extract_minus_sign():
            return "-" + self.sum(sp.Sum(-body, *e.limits))
        text = self.p(body)
        if isinstance(body, sp.Add):
            text = self.paren(text)
        return f"\\sum_{{{ks}}} {text}"


def latex_index(expr, grad_name="G", output="Y", order=(), rename=None) -> str:
    """``expr`` as LaTeX index notation."""
    return IndexLatexPrinter(grad_name, output, order, rename).doprint(expr)
