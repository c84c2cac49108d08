"""Matrix/vector notation for a lowered program, in Unicode (docstrings) or LaTeX (write-ups).

A lowered backward such as ``dX = goutput @ W.T`` reads ``X∇ = G Wᵀ``; element-wise products
and quotients are ⊙ and ⊘, row sums use a vector of ones (``X𝟏``), broadcasting a column vector
across columns is ``v𝟏ᵀ``, functions act element-wise and are written as in the index form
(``exp(X)``, ``H(X)`` for the Heaviside step), and ``X^∘2`` is an element-wise power.

The notation is precedence-safe: a matrix product (juxtaposition, including the products with
``𝟏``) and an element-wise ⊙/⊘ never meet without brackets, so ``(G𝟏𝟏ᵀ) ⊙ exp(Y)`` and
``(Y^∘2 ⊙ G) Wᵀ`` cannot be misread. Beyond plain matrices: ``t∇ I`` (an identity matrix),
``diag(y∇)``, batched products written per slice (``X∇_a = G_a W_aᵀ for every a``), and slices
of three-axis arrays (squeeze, unsqueeze, select). Where none of these fits, :func:`matrix_form`
returns None and :func:`no_matrix_form_reason` says why.

>>> from deltagrad.derive.derivation import derive
>>> matrix_form(derive("Y[i,j] = Sum(X[i,k]*W[k,j], k)"), "W")
'dW = Xᵀ G'
>>> matrix_form(derive("Y[i,j] = 1 / (1 + exp(-X[i,j]))"), "X", style="latex")
'X^{\\\\nabla} = Y^{\\\\nabla} \\\\odot Y \\\\odot (1 - Y)'
>>> matrix_form(derive("Y[i,j] = X[i,j] - log(Sum(exp(X[i,k]), k))"), "X")
'dX = G - (G𝟏𝟏ᵀ) ⊙ exp(Y)'
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from deltagrad.codegen.latex_printer import name_latex, number_latex
from deltagrad.derive.array_program import Attr, BinOp, Call, Const, Neg, Subscript, Visitor
from deltagrad.derive.functions import generic_parts
from deltagrad.derive.names import NAMES


class NoMatrixForm(Exception):
    """The program uses something that matrix notation does not express plainly; the message
    says what, in words."""


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
    latex: bool


UNICODE = Style("d{}", "ᵀ", " ⊙ ", " ⊘ ", "𝟏", " ", " - ", "(", ")",
                {"exp": "exp", "log": "log", "tanh": "tanh", "sin": "sin", "cos": "cos", "sign": "sign",
                 "maximum": "max", "minimum": "min", "heaviside": "Heaviside", "diag": "diag",
                 **{f: f for f in ("sinh", "cosh", "asin", "acos", "atan", "asinh", "acosh", "atanh", "log1p",
                                   "expm1", "erf", "erfc")}, "sigmoid": "σ"}, False)
LATEX = Style("{}^{{\\nabla}}", "^{\\top}", " \\odot ", " \\oslash ", "\\mathbf{1}", " ", " - ",
              "(", ")",
              {"exp": "\\exp", "log": "\\log", "tanh": "\\tanh", "sin": "\\sin", "cos": "\\cos",
               "sign": "\\operatorname{sign}", "maximum": "\\max", "minimum": "\\min", "heaviside": "H",
               "diag": "\\operatorname{diag}", "sinh": "\\sinh", "cosh": "\\cosh", "asin": "\\arcsin",
               "acos": "\\arccos", "atan": "\\arctan", "sigmoid": "\\sigma",
               **{f: f"\\operatorname{{{f}}}" for f in ("asinh", "acosh", "atanh", "log1p", "expm1", "erf", "erfc")}},
              True)

# kinds: 0 scalar, 1 vector (1-D, shown as a column), 2 matrix, "col" an n×1 column (v[:, None])
# precedences: sums, element-wise products, matrix products, scalar multiples, atoms
_ADD, _HAD, _PROD, _SCALED, _ATOM = 1, 2, 3, 3.5, 4


def _tall(text: str) -> bool:
    return "\\frac" in text or "\\sum" in text or "\\sqrt" in text


class _Printer(Visitor):
    """Matrix-notation text, kind and precedence of each node; NoMatrixForm where there is none."""

    what = "print"

    def __init__(self, ranks, style: Style, grad_symbol: str, batch: str | None = None):
        self.ranks = ranks
        self.s = style
        self.latex = style.latex
        self.env = {}
        self.grad_symbol = grad_symbol
        self.batch = batch  # a three-axis array is a stack of matrices, shown as its slice X_a
        self.temporaries = set()

    def name(self, name):
        if name == NAMES.grad_output:
            return self.grad_symbol
        return name_latex(name) if self.latex else name

    def paren(self, text):
        if self.latex and _tall(text):
            return f"\\left({text}\\right)"
        return f"{self.s.left}{text}{self.s.right}"

    def wrap(self, item, prec):
        text, kind, p = item
        return self.paren(text) if p < prec else text

    def had_operand(self, item, right: bool = False, divide: bool = False):
        """An operand of ⊙ or ⊘: a sum or a matrix product is bracketed, and so is an element-wise
        product on the right, and anything but an atom right of ⊘."""
        p = item[2]
        if p in (_ADD, _PROD) or (right and p == _HAD) or (right and divide and p < _ATOM):
            return self.paren(item[0])
        return item[0]

    def prod_operand(self, item):
        """An operand of a matrix product: a sum or an element-wise product is bracketed."""
        return self.paren(item[0]) if item[2] in (_ADD, _HAD) else item[0]

    def unknown(self, n):
        if type(n).__name__ == "Helper":
            raise NoMatrixForm("it puts values at the positions an integer input holds (a scatter)")
        if type(n).__name__ == "Runtime":  # derive/windows.py: a scatter back through windows
            raise NoMatrixForm("it scatters back through the windows of a correlation (index arithmetic)")
        raise NoMatrixForm(f"it uses {type(n).__name__}")

    def sup(self, text):
        """Group a base that already carries a superscript before adding another (LaTeX)."""
        return f"{{{text}}}" if self.latex and "^" in text else text

    # each visit_ method returns (text, kind, precedence)
    def visit_Var(self, n):
        if n.name in self.env:
            return self.env[n.name]
        rank = self.ranks.get(n.name, 0 if NAMES.is_extent(n.name) else None)
        if rank == 3 and self.batch:
            text = self.name(n.name)
            sub = f"_{{{self.batch}}}" if self.latex else f"_{self.batch}"
            return text + sub, 2, _ATOM
        if rank is None:
            raise NoMatrixForm(f"it reads {n.name}, whose shape is not known here")
        if rank > 2:
            if n.name in self.temporaries:
                raise NoMatrixForm(f"the code needs an intermediate array with {rank} axes "
                                   f"({self._code(n.name)}), which no product of matrices gives")
            raise NoMatrixForm(f"{self._quote(n.name)} has {rank} axes")
        return self.name(n.name), rank, _ATOM

    def _code(self, name):
        return "\\texttt{" + name.replace("_", "\\_") + "}" if self.latex else name

    def _quote(self, name):
        return f"${name_latex(name)}$" if self.latex else name

    def visit_Const(self, n):
        v = n.value
        if self.latex:
            text = number_latex(sp.Float(v) if isinstance(v, float) else sp.Integer(v))
        else:
            text = str(int(v)) if float(v).is_integer() else repr(v)
        return text, 0, _ATOM if v >= 0 else _ADD

    def visit_tuple(self, n):
        raise NoMatrixForm("it builds a tuple")

    def visit_Neg(self, n):
        inner = self.visit(n.operand)
        return "-" + self.wrap(inner, _HAD), inner[1], _ADD

    def visit_Attr(self, n):
        inner = self.visit(n.value)
        if n.name == "mT" and self.batch and inner[1] == 2:
            return self.sup(self.wrap(inner, _ATOM)) + self.s.transpose, 2, _ATOM
        if n.name != "T" or inner[1] != 2:
            raise NoMatrixForm("it transposes an array of more than two axes" if n.name == "mT" else f"it reads .{n.name}")
        return self.sup(self.wrap(inner, _ATOM)) + self.s.transpose, 2, _ATOM

    def visit_Subscript(self, n):
        if _is_eye(n.value) and len(n.key) == 2 and isinstance(n.key[0], int):
            raise NoMatrixForm("it selects one entry along an axis")
        inner = self.visit(n.value)
        if n.key == (":", None) and inner[1] == 1:
            return self.prod_operand(inner) + self.s.ones + self.s.transpose, "col", _PROD
        raise NoMatrixForm("it indexes an array with a number or adds an axis")

    def broadcast(self, item, other_kind):
        """Show a vector that broadcasts against a matrix as rows: 𝟏bᵀ."""
        text, kind, p = item
        if kind == 1 and other_kind in (2, "col"):
            return self.s.ones + self.sup(self.wrap(item, _ATOM)) + self.s.transpose, 2, _PROD
        return item

    @staticmethod
    def joined(a, b):
        kinds = {a, b} - {0}
        if not kinds:
            return 0
        if 2 in kinds or len(kinds) > 1:
            return 2
        return kinds.pop()

    def product(self, a, b, kind):
        """A matrix product: neither side may be an element-wise product or a sum."""
        return f"{self.prod_operand(a)}{self.s.times}{self.prod_operand(b)}", kind, _PROD

    def scaled(self, c, m):
        """A scalar times an array: scalars commute, so only a sum needs brackets, and the
        result binds like the array it scales."""
        prec = _SCALED if m[2] >= _SCALED else max(m[2], _HAD)
        return f"{self.wrap(c, _HAD)}{self.s.times}{self.wrap(m, _HAD)}", m[1] if m[1] != "col" else 2, prec

    def visit_BinOp(self, n):
        s = self.s
        if n.op in "*/" and _leading_neg(n):
            inner = self.visit_BinOp(_strip_neg(n))
            return "-" + self.wrap(inner, _HAD), inner[1], _ADD
        diag = self.diagonal(n)
        if diag is not None:
            return diag
        a, b = self.visit(n.left), self.visit(n.right)
        if n.op == "@":
            if a[1] == 2 and b[1] in (1, 2):
                return self.product(a, b, b[1])
            if a[1] == 1 and b[1] == 2:
                return f"{self.sup(self.wrap(b, _ATOM))}{s.transpose}{s.times}{self.prod_operand(a)}", 1, _PROD
            if a[1] == 1 and b[1] == 1:
                return f"{self.sup(self.wrap(a, _ATOM))}{s.transpose}{s.times}{self.prod_operand(b)}", 0, _PROD
            raise NoMatrixForm("it multiplies arrays of more than two axes")
        if n.op == "**":
            if b[1] != 0 and not (b[1] == a[1]):
                raise NoMatrixForm("it raises to a power of another shape")
            exp = b[0]
            if isinstance(n.right, Const) and n.right.value == 0.5:
                return (f"\\sqrt{{{a[0]}}}" if self.latex else f"sqrt({a[0]})"), a[1], _ATOM
            if not isinstance(n.right, Const) or exp.startswith("-"):
                exp = self.wrap(b, _ATOM) if not isinstance(n.right, Const) else exp
            if a[1] == 0:
                sup = f"^{{{exp}}}" if self.latex else f"^{exp}"
            else:
                sup = f"^{{\\circ {exp}}}" if self.latex else f"^∘{exp}"
            return self.sup(self.wrap(a, _ATOM)) + sup, self.joined(a[1], b[1]), _ATOM
        kind = self.joined(a[1], b[1])
        a, b = self.broadcast(a, b[1]), self.broadcast(b, a[1])
        if n.op in "+-":
            if n.op == "+" and isinstance(n.left, Const) and isinstance(n.left.value, float):
                a, b = b, a  # var + 10^-5 reads better than 10^-5 + var
            op = " + " if n.op == "+" else s.minus
            return f"{self.wrap(a, _ADD)}{op}{self.wrap(b, _ADD + (n.op == '-'))}", kind, _ADD
        if n.op == "*":
            for one, other in ((n.left, b), (n.right, a)):
                if isinstance(one, Const) and one.value == 1:  # 1.0 * X, left by float arithmetic
                    return other
            if 0 in (a[1], b[1]) and a[1] != b[1]:
                return self.scaled(a, b) if a[1] == 0 else self.scaled(b, a)
            if a[1] == 0 and b[1] == 0:
                return f"{self.wrap(a, _HAD)}{s.times}{self.wrap(b, _HAD + 1)}", 0, _SCALED
            return f"{self.had_operand(a)}{s.odot}{self.had_operand(b, right=True)}", kind, _HAD
        if n.op == "/":
            if b[1] == 0:
                if self.latex:
                    left = n.left
                    if isinstance(left, Neg):
                        inner = self.visit(BinOp("/", left.operand, n.right))
                        return "-" + self.wrap(inner, _HAD), inner[1], _ADD
                    if isinstance(left, BinOp) and left.op == "*" and a[1] != 0:
                        c, m = self.visit(left.left), self.visit(left.right)
                        if c[1] == 0 and m[1] != 0:  # L/n (T - …): the scalar over the scalar, then the array
                            return f"\\frac{{{c[0]}}}{{{b[0]}}}{s.times}{self.wrap(m, _HAD)}", kind, _SCALED if m[2] >= _SCALED else max(m[2], _HAD)
                    return f"\\frac{{{a[0]}}}{{{b[0]}}}", kind, _ATOM
                return f"{self.had_operand(a)} / {self.wrap(b, _ATOM)}", kind, _HAD
            return f"{self.had_operand(a)}{s.oslash}{self.had_operand(b, right=True, divide=True)}", kind, _HAD
        raise NoMatrixForm(f"it uses the operator {n.op}")

    def diagonal(self, n):
        """``v[:, None] * eye(n)`` (either order) is diag(v); ``c * eye(n)`` is c I."""
        if n.op != "*":
            return None
        for vec, eye in ((n.left, n.right), (n.right, n.left)):
            if _is_eye(eye):
                if isinstance(vec, Subscript) and vec.key == (":", None):
                    v = self.visit(vec.value)
                    if v[1] == 1:
                        return f"{self.s.funcs['diag']}{self.paren(v[0])}", 2, _ATOM
                v = self.visit(vec)
                if v[1] == 0:
                    return f"{self.wrap(v, _HAD)}{self.s.times}I", 2, _SCALED
        return None

    def call(self, fn, inner):
        head = self.s.funcs[fn]
        return head + self.paren(inner)

    def visit_Apply(self, n):
        """A generic function acts on each entry: f(X), f'(X) in LaTeX."""
        x = self.visit(n.args[0])
        parts = generic_parts(n.fn)
        if self.latex:
            base, order = parts or (n.fn, 0)
            head = (base if len(base) == 1 else f"\\operatorname{{{base}}}") + "'" * order
        else:
            head = n.fn
        return head + self.paren(x[0]), x[1], _ATOM

    def visit_Call(self, n):
        s = self.s
        kwargs = dict(n.kwargs)
        fn = n.fn
        if fn == "sum":
            x = self.visit(n.args[0])
            axis = kwargs.get("axis")
            if x[1] == 2 and axis == 1:
                return f"{self.prod_operand(x)}{s.ones}", 1, _PROD
            if x[1] == 2 and axis == 0:
                return f"{self.sup(self.wrap(x, _ATOM))}{s.transpose}{s.ones}", 1, _PROD
            if axis is None and x[1] == 2:
                return f"{s.ones}{s.transpose}{self.prod_operand(x)}{s.ones}", 0, _PROD
            if axis in (None, 0) and x[1] == 1:
                return f"{s.ones}{s.transpose}{self.prod_operand(x)}", 0, _PROD
            raise NoMatrixForm("it sums over an axis of an array of more than two axes")
        if fn == "broadcast_to":
            x = self.visit(n.args[0])
            width = len(n.args[1])
            if x[1] == 0 and width == 2:
                return f"{self.prod_operand(x)}{s.times}{s.ones}{s.ones}{s.transpose}", 2, _PROD
            if x[1] == 0 and width == 1:
                return f"{self.prod_operand(x)}{s.times}{s.ones}", 1, _PROD
            if x[1] == "col":
                return x[0], 2, x[2]
            if x[1] == 1 and width == 2:
                return f"{s.ones}{self.sup(self.wrap(x, _ATOM))}{s.transpose}", 2, _PROD
            raise NoMatrixForm("it broadcasts to more than two axes")
        if fn == "eye":
            return "I", 2, _ATOM
        if fn == "zeros" and len(n.args[0]) <= 2:
            return "0", len(n.args[0]), _ATOM
        if fn == "sqrt":
            x = self.visit(n.args[0])
            return (f"\\sqrt{{{x[0]}}}" if self.latex else f"sqrt({x[0]})"), x[1], _ATOM
        if fn == "abs":
            x = self.visit(n.args[0])
            if self.latex:
                return (f"\\left\\lvert {x[0]} \\right\\rvert" if _tall(x[0]) else f"\\lvert {x[0]} \\rvert"), x[1], _ATOM
            return f"|{x[0]}|", x[1], _ATOM
        if fn == "logaddexp" and len(n.args) == 2 and isinstance(n.args[0], Call) and n.args[0].fn == "zeros_like":
            u = self.visit(n.args[1])
            inner = f"1 + {self.call('exp', u[0])}"
            return self.call("log", inner), u[1], _ATOM
        if fn in s.funcs and fn != "diag":
            args = [self.visit(a) for a in n.args]
            kind = args[0][1]
            for a in args[1:]:
                kind = self.joined(kind, a[1])
            return self.call(fn, ", ".join(a[0] for a in args)), kind, _ATOM
        if fn == "max" and kwargs.get("axis") == 1:
            x = self.visit(n.args[0])
            head = "\\operatorname{rowmax}" if self.latex else "rowmax"
            return head + self.paren(x[0]), 1, _ATOM
        if fn == "tensordot":
            raise NoMatrixForm("it contracts over several axes at once")
        if fn == "permute_dims":
            raise NoMatrixForm("it permutes the axes of an array of more than two axes")
        if fn == "linalg.diagonal":
            raise NoMatrixForm("it takes a diagonal of an array of more than two axes")
        if fn in ("take", "take_along_axis", "where", "arange"):
            raise NoMatrixForm("it reads or writes the positions an integer input holds")
        if fn == "astype":
            raise NoMatrixForm("it compares entries (an indicator [u = v])")
        raise NoMatrixForm(f"it calls {fn}")


def _is_eye(node) -> bool:
    return isinstance(node, Call) and node.fn == "eye"


def _leading_neg(n) -> bool:
    """True when the leftmost factor of a product/quotient is negated: -G ⊙ Y ⊘ Z."""
    while isinstance(n, BinOp) and n.op in "*/":
        n = n.left
    return isinstance(n, Neg)


def _strip_neg(n):
    if isinstance(n, Neg):
        return n.operand
    return BinOp(n.op, _strip_neg(n.left), n.right)


def _step(node):
    """``sign(x) + 1`` → x (twice the Heaviside step), else None."""
    if isinstance(node, BinOp) and node.op == "+":
        for s, one in ((node.left, node.right), (node.right, node.left)):
            if isinstance(s, Call) and s.fn == "sign" and isinstance(one, Const) and one.value == 1:
                return s.args[0]
    return None


def heaviside_rewrite(node):
    """The lowering writes H(x) as ``(sign(x) + 1) / 2`` (so that H(0) = 1/2); read it back as
    ``heaviside(x)`` so that the matrix form says what it means."""
    if isinstance(node, BinOp):
        if node.op == "/" and isinstance(node.right, Const) and node.right.value == 2:
            factors = _factors(node.left)
            for k, f in enumerate(factors):
                x = _step(f)
                if x is not None:
                    factors[k] = Call("heaviside", (heaviside_rewrite(x),))
                    out = factors[0]
                    for g in factors[1:]:
                        out = BinOp("*", out, g)
                    return heaviside_rewrite(out) if out is not node else out
        return BinOp(node.op, heaviside_rewrite(node.left), heaviside_rewrite(node.right))
    if isinstance(node, Neg):
        return Neg(heaviside_rewrite(node.operand))
    if isinstance(node, Call):
        return Call(node.fn, tuple(heaviside_rewrite(a) for a in node.args), node.kwargs)
    if isinstance(node, Attr):
        return Attr(heaviside_rewrite(node.value), node.name)
    if isinstance(node, Subscript):
        return Subscript(heaviside_rewrite(node.value), node.key)
    return node


def _factors(node) -> list:
    if isinstance(node, BinOp) and node.op == "*":
        return _factors(node.left) + [node.right]
    return [node]


def program_forms(program, style: Style = UNICODE, grad_symbol: str = "G", batch: str | None = None) -> dict:
    """Target → matrix-form text for every statement of ``program`` (temporaries inlined);
    a :class:`NoMatrixForm` (with its reason) for a target without one."""
    p = _Printer(program.ranks, style, grad_symbol, batch)
    p.temporaries = {st.target for st in program.statements} - set(program.results)
    out = {}
    for st in program.statements:
        try:
            p.env[st.target] = p.visit(heaviside_rewrite(st.value))
            out[st.target] = p.env[st.target][0]
        except NoMatrixForm as err:
            out[st.target] = err
    return out


def _slice_form(derivation, input_name: str, st: Style, grad: str):
    """Squeeze, select and unsqueeze: the gradient is the output's gradient put into (or taken
    out of) one slice of a three-axis array."""
    step = derivation.steps[input_name]
    final = step.final
    gname = derivation.grad_name
    name = name_latex(input_name) if st.latex else input_name
    lhs = st.grad.format(name)
    factors = sp.Mul.make_args(final)
    deltas = [f for f in factors if isinstance(f, sp.KroneckerDelta)]
    grads = [f for f in factors if isinstance(f, sp.Indexed) and f.base.label.name == gname]
    if len(factors) == 2 and len(deltas) == 1 and len(grads) == 1:
        d = deltas[0]
        k = next((x for x in d.args if x.is_Integer), None)
        free = next((x for x in d.args if not x.is_Integer), None)
        if k is None or free not in step.indices or len(step.indices) != 3:
            return None
        axis = step.indices.index(free)
        key = [":"] * 3
        key[axis] = str(k)
        if st.latex:
            sl = f"{lhs}_{{{','.join(key)}}}"
            return (f"{sl} = {grad}, \\quad {lhs}_{{{','.join(':' if n != axis else free.name for n in range(3))}}} = 0"
                    f" \\text{{ for }} {free.name} \\neq {k}")
        return f"{lhs}[{', '.join(key)}] = G, other slices 0"
    if len(factors) == 1 and grads and any(i.is_Integer for i in grads[0].indices):
        g = grads[0]
        key = ",".join(str(i) if i.is_Integer else ":" for i in g.indices)
        if st.latex:
            return f"{lhs} = {grad}_{{{key}}}"
        return f"{lhs} = G[{key.replace(',', ', ')}]"
    return None


def matrix_form(derivation, input_name: str, style: str = "unicode"):
    """``X∇ = …`` (LaTeX) or ``dX = …`` (Unicode) for one input's backward, or None when it has
    no plain matrix form."""
    form = _form(derivation, input_name, style)
    return None if isinstance(form, NoMatrixForm) else form


def no_matrix_form_reason(derivation, input_name: str, style: str = "latex") -> str | None:
    """Why an input's gradient has no matrix form, in words (None when it has one)."""
    form = _form(derivation, input_name, style)
    return str(form) if isinstance(form, NoMatrixForm) else None


def _form(derivation, input_name: str, style: str):
    st = LATEX if style == "latex" else UNICODE
    out_name = name_latex(derivation.output) if st.latex else derivation.output
    grad = LATEX.grad.format(out_name) if st.latex else "G"
    name = name_latex(input_name) if st.latex else input_name
    target = NAMES.gradient(input_name)
    forms = program_forms(derivation.backward, st, grad_symbol=grad)
    text = forms.get(target)
    if not isinstance(text, NoMatrixForm) and text is not None:
        return f"{st.grad.format(name)} = {text}"
    sliced = _slice_form(derivation, input_name, st, grad)
    if sliced is not None:
        return sliced
    indices = derivation.steps[input_name].indices
    if len(indices) == 3:  # a stack of matrices: written per slice
        b = indices[0].name
        batched = program_forms(derivation.backward, st, grad_symbol=grad, batch=b).get(target)
        if isinstance(batched, str):
            sub = f"_{{{b}}}" if st.latex else f"_{b}"
            each = f" \\text{{ for every }} {b}" if st.latex else f" for every {b}"
            return f"{st.grad.format(name)}{sub} = {batched}{each}"
    return text if isinstance(text, NoMatrixForm) else NoMatrixForm("it has no statement for this input")
