"""Matrix/vector notation for a lowered program, in Unicode (docstrings) or LaTeX (write-ups).

A lowered backward such as ``dX = goutput @ W.T`` reads ``X∇ = G Wᵀ``; element-wise products
and quotients are ⊙ and ⊘, row sums use a vector of ones (``X𝟏``), and broadcasting a column
vector across columns is ``v𝟏ᵀ``. Only programs on scalars, vectors and matrices with these
operations have a matrix form; for anything else (tensordot, axis permutations, identity
matrices, diagonals, batched products) :func:`matrix_form` returns None and the write-up says so.

>>> from deltagrad.derive.derivation import derive
>>> matrix_form(derive("Y[i,j] = Sum(X[i,k]*W[k,j], k)"), "W")
'W∇ = Xᵀ G'
>>> matrix_form(derive("Y[i,j] = 1 / (1 + exp(-X[i,j]))"), "X", style="latex")
'X^{\\\\nabla} = Y^{\\\\nabla} \\\\odot Y \\\\odot \\\\left(1 - Y\\\\right)'
"""

from __future__ import annotations

from dataclasses import dataclass

from deltagrad.codegen.latex_printer import name_latex
from deltagrad.derive.array_program import BinOp, Const, Neg, Visitor
from deltagrad.derive.names import NAMES


class NoMatrixForm(Exception):
    """The program uses something that matrix notation does not express plainly."""


@dataclass(frozen=True)
class Style:
    grad: str  # format for the gradient of a name
    transpose: str
    odot: str
    oslash: str
    ones: str
    times: str
    minus: str
    left: str
    right: str
    funcs: dict


UNICODE = Style("{}∇", "ᵀ", " ⊙ ", " ⊘ ", "𝟏", " ", " - ", "(", ")",
                {"exp": "exp", "log": "log", "tanh": "tanh", "sqrt": "sqrt", "abs": "abs", "sign": "sign",
                 "sin": "sin", "cos": "cos", "maximum": "max", "minimum": "min", "max": "rowmax"})
LATEX = Style("{}^{{\\nabla}}", "^{\\top}", " \\odot ", " \\oslash ", "\\mathbf{1}", " \\, ", " - ",
              "\\left(", "\\right)",
              {"exp": "\\exp", "log": "\\log", "tanh": "\\tanh", "sqrt": "\\sqrt", "abs": "\\operatorname{abs}",
               "sign": "\\operatorname{sign}", "sin": "\\sin", "cos": "\\cos", "maximum": "\\max",
               "minimum": "\\min", "max": "\\operatorname{rowmax}"})

# kinds: 0 scalar, 1 vector (1-D, shown as a column), 2 matrix, "col" an n×1 column (v[:, None])
_ADD, _MUL, _ATOM = 1, 2, 3


class _Printer(Visitor):
    """Matrix-notation text, kind and precedence of each node; NoMatrixForm where there is none."""

    def __init__(self, ranks, style: Style, grad_symbol: str):
        self.ranks = ranks
        self.s = style
        self.latex = style is LATEX
        self.env = {}
        self.grad_symbol = grad_symbol

    def name(self, name):
        if name == NAMES.grad_output:
            return self.grad_symbol
        return name_latex(name) if self.latex else name

    def wrap(self, item, prec):
        text, kind, p = item
        return f"{self.s.left}{text}{self.s.right}" if p < prec else text

    def unknown(self, n):
        raise NoMatrixForm(type(n).__name__)

    # each visit_ method returns (text, kind, precedence)
    def visit_Var(self, n):
        if n.name in self.env:
            return self.env[n.name]
        rank = self.ranks.get(n.name, 0 if NAMES.is_extent(n.name) else None)
        if rank is None or rank > 2:
            raise NoMatrixForm(n.name)
        return self.name(n.name), rank, _ATOM

    def visit_Const(self, n):
        v = n.value
        text = str(int(v)) if float(v).is_integer() else repr(v)
        return text, 0, _ATOM if v >= 0 else _ADD

    def visit_tuple(self, n):
        raise NoMatrixForm("tuple")

    def visit_Neg(self, n):
        inner = self.visit(n.operand)
        return "-" + self.wrap(inner, _MUL), inner[1], _ADD

    def visit_Attr(self, n):
        inner = self.visit(n.value)
        if n.name != "T" or inner[1] != 2:
            raise NoMatrixForm(n.name)
        return self.sup(self.wrap(inner, _ATOM)) + self.s.transpose, 2, _ATOM

    def visit_Subscript(self, n):
        inner = self.visit(n.value)
        if n.key == (":", None) and inner[1] == 1:
            return self.wrap(inner, _ATOM) + self.s.ones + self.s.transpose, "col", _ATOM
        raise NoMatrixForm("subscript")

    def sup(self, text):
        """Group a base that already carries a superscript before adding another (LaTeX)."""
        return f"{{{text}}}" if self.latex and "^" in text else text

    def broadcast(self, item, other_kind):
        """Show a vector that broadcasts against a matrix as rows: 𝟏bᵀ."""
        text, kind, p = item
        if kind == 1 and other_kind in (2, "col"):
            return self.s.ones + self.wrap(item, _ATOM) + self.s.transpose, 2, _ATOM
        return item

    @staticmethod
    def joined(a, b):
        kinds = {a, b} - {0}
        if not kinds:
            return 0
        if 2 in kinds or len(kinds) > 1:
            return 2
        return kinds.pop()

    def visit_BinOp(self, n):
        s = self.s
        if n.op in "*/" and _leading_neg(n):
            inner = self.visit_BinOp(_strip_neg(n))
            return "-" + self.wrap(inner, _MUL), inner[1], _ADD
        a, b = self.visit(n.left), self.visit(n.right)
        if n.op == "@":
            if a[1] == 2 and b[1] in (1, 2):
                return f"{self.wrap(a, _MUL)}{s.times}{self.wrap(b, _MUL)}", b[1], _MUL
            if a[1] == 1 and b[1] == 2:
                return f"{self.sup(self.wrap(b, _ATOM))}{s.transpose}{s.times}{self.wrap(a, _MUL)}", 1, _MUL
            if a[1] == 1 and b[1] == 1:
                return f"{self.sup(self.wrap(a, _ATOM))}{s.transpose}{s.times}{self.wrap(b, _MUL)}", 0, _MUL
            raise NoMatrixForm("@")
        if n.op == "**":
            if not isinstance(n.right, Const):
                raise NoMatrixForm("**")
            exp = self.visit(n.right)[0]
            sup = f"^{{\\circ {exp}}}" if self.latex else f"^∘{exp}"
            if a[1] == 0:
                sup = f"^{{{exp}}}" if self.latex else f"^{exp}"
            return self.sup(self.wrap(a, _ATOM)) + sup, a[1], _ATOM
        kind = self.joined(a[1], b[1])
        a, b = self.broadcast(a, b[1]), self.broadcast(b, a[1])
        if n.op in "+-":
            op = " + " if n.op == "+" else s.minus
            return f"{self.wrap(a, _ADD)}{op}{self.wrap(b, _ADD + (n.op == '-'))}", kind, _ADD
        if n.op == "*":
            op = s.times if 0 in (a[1], b[1]) else s.odot
            return f"{self.wrap(a, _MUL)}{op}{self.wrap(b, _MUL + 1)}", kind, _MUL
        if n.op == "/":
            if b[1] == 0:
                if self.latex:
                    return f"\\frac{{{a[0]}}}{{{b[0]}}}", kind, _ATOM
                return f"{self.wrap(a, _MUL)} / {self.wrap(b, _MUL + 1)}", kind, _MUL
            return f"{self.wrap(a, _MUL)}{s.oslash}{self.wrap(b, _MUL + 1)}", kind, _MUL
        raise NoMatrixForm(n.op)

    def visit_Call(self, n):
        s = self.s
        kwargs = dict(n.kwargs)
        fn = n.fn
        if fn == "sum":
            x = self.visit(n.args[0])
            axis = kwargs.get("axis")
            if x[1] == 2 and axis == 1:
                return f"{self.wrap(x, _ATOM)}{s.ones}", 1, _ATOM
            if x[1] == 2 and axis == 0:
                return f"{self.sup(self.wrap(x, _ATOM))}{s.transpose}{s.ones}", 1, _ATOM
            if axis is None and x[1] == 2:
                return f"{s.ones}{s.transpose}{self.wrap(x, _ATOM)}{s.ones}", 0, _MUL
            if axis in (None, 0) and x[1] == 1:
                return f"{s.ones}{s.transpose}{self.wrap(x, _ATOM)}", 0, _MUL
            raise NoMatrixForm("sum")
        if fn == "broadcast_to":
            x = self.visit(n.args[0])
            width = len(n.args[1])
            if x[1] == 0 and width == 2:
                return f"{self.wrap(x, _MUL)}{s.times}{s.ones}{s.ones}{s.transpose}", 2, _MUL
            if x[1] == 0 and width == 1:
                return f"{self.wrap(x, _MUL)}{s.times}{s.ones}", 1, _MUL
            if x[1] == "col":
                return x[0], 2, x[2]
            if x[1] == 1 and width == 2:
                return f"{s.ones}{self.wrap(x, _ATOM)}{s.transpose}", 2, _ATOM
            raise NoMatrixForm("broadcast_to")
        if fn in s.funcs and fn not in ("max",):
            args = [self.visit(a) for a in n.args]
            kind = args[0][1]
            for a in args[1:]:
                kind = self.joined(kind, a[1])
            inner = ", ".join(a[0] for a in args)
            if self.latex:
                return f"{s.funcs[fn]}\\left[{inner}\\right]", kind, _ATOM
            return f"{s.funcs[fn]}[{inner}]", kind, _ATOM
        if fn == "max" and kwargs.get("axis") == 1:
            x = self.visit(n.args[0])
            return f"{s.funcs['max']}{s.left}{x[0]}{s.right}", 1, _ATOM
        raise NoMatrixForm(fn)


def _leading_neg(n) -> bool:
    """True when the leftmost factor of a product/quotient is negated: -G ⊙ Y ⊘ Z."""
    while isinstance(n, BinOp) and n.op in "*/":
        n = n.left
    return isinstance(n, Neg)


def _strip_neg(n):
    if isinstance(n, Neg):
        return n.operand
    return BinOp(n.op, _strip_neg(n.left), n.right)


def program_forms(program, style: Style = UNICODE, grad_symbol: str = "G") -> dict:
    """Target → matrix-form text for every statement of ``program`` (temporaries inlined);
    None for a target without one."""
    p = _Printer(program.ranks, style, grad_symbol)
    out = {}
    for st in program.statements:
        try:
            p.env[st.target] = p.visit(st.value)
            out[st.target] = p.env[st.target][0]
        except NoMatrixForm:
            out[st.target] = None
    return out


def matrix_form(derivation, input_name: str, style: str = "unicode"):
    """``X∇ = …`` for one input's backward, or None when it has no plain matrix form."""
    st = LATEX if style == "latex" else UNICODE
    grad = st.grad.format(name_latex(derivation.output) if st is LATEX else derivation.output)
    forms = program_forms(derivation.backward, st, grad_symbol=grad if st is LATEX else "G")
    text = forms.get(NAMES.gradient(input_name))
    if text is None:
        return None
    name = name_latex(input_name) if st is LATEX else input_name
    return f"{st.grad.format(name)} = {text}"
