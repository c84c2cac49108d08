"""Lower index expressions to vectorised array code (plain :mod:`array_program` data).

Each SymPy node becomes an array whose axes are a tuple of index symbols. Element-wise
operations align their operands with a transpose and ``None`` axes and broadcast; a ``Sum`` of
a product becomes a contraction: ``@`` (matmul, batched or not) where it is a matrix product,
``tensordot`` where it is one, an element-wise product and ``sum(axis=...)`` otherwise. A
leftover Kronecker delta becomes an identity matrix or a one-hot row; a repeated index a
diagonal. There are no Python loops over elements.

>>> from deltagrad.derive.spec import index, tensor, summed, extent
>>> i, j, k = map(index, 'ijk')
>>> low = Lowering(order=(i, j))
>>> node = low.lower(summed(tensor('X')[i, k] * tensor('W')[k, j], k), (i, j))
>>> from deltagrad.codegen.python_printer import render
>>> render(node)
'X @ W'
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

from deltagrad.derive.array_program import Apply, Assign, Attr, BinOp, Call, Const, Helper, Neg, Subscript, Var
from deltagrad.derive.extrema import Extremum, Iverson
from deltagrad.derive.functions import (COMPARISONS, ELEMENTWISE, Generic, is_comparison, one_plus_exp, sigmoid,
                                         softplus, where)
from deltagrad.derive.names import NAMES, temporary_hint, unique
from deltagrad.derive.spec import UNIT, is_gather, is_index
from deltagrad.errors import SpecError

_ELEMENTWISE = {sp.exp: "exp", sp.log: "log", sp.tanh: "tanh", sp.sin: "sin", sp.cos: "cos", sp.Abs: "abs", sp.sign: "sign",
                **ELEMENTWISE}


@lru_cache(maxsize=8192)
def canonical(e):
    """A key of ``e`` with its free indices numbered by order of appearance, and those indices.

    Two expressions that differ only in the names of their free indices (``exp(X[a, j])``
    and ``exp(X[a, b])``) compute the same array, so they share one key. The key is plain
    tuples, not a renamed SymPy expression: building one was most of a lowering's time.

    >>> from deltagrad.derive.spec import index, tensor
    >>> a, b, j = map(index, 'abj')
    >>> canonical(sp.exp(tensor('X')[a, j]))[0] == canonical(sp.exp(tensor('X')[a, b]))[0]
    True
    """
    if not e.args:
        return e, []
    symbols = e.free_symbols
    position: dict = {}  # free index → its number, in order of first appearance (preorder)

    def key(node):
        if not node.args:
            if isinstance(node, sp.Symbol) and node in symbols and is_index(node):
                if node not in position:
                    position[node] = len(position)
                return _Renamed(position[node])
            return node
        keys = [key(a) for a in node.args]
        if isinstance(node, _UNORDERED):  # SymPy sorts these args: compare them as a multiset
            return node.func, frozenset(Counter(keys).items())
        return node.func, tuple(keys)

    shape = key(e)
    return shape, tuple(position)


@dataclass(frozen=True)
class _Renamed:
    """The n-th free index of an expression, in :func:`canonical`'s keys."""

    n: int


#: Nodes whose arguments SymPy keeps in its own sorted order, which renaming can change.
_UNORDERED = (sp.Add, sp.Mul, sp.KroneckerDelta, sp.Max, sp.Min)


class LoweringError(SpecError):
    """An expression the lowering does not know how to vectorise: a spec that cannot be used."""


@dataclass(frozen=True)
class Arr:
    """A lowered value: its expression node and one index symbol per axis."""

    node: object
    indices: tuple


def _softplus_argument(e):
    """``u`` when ``e`` is ``log(1 + exp(u))``, else None.

    >>> from deltagrad.derive.spec import index, tensor
    >>> x = tensor('X')[index('i')]
    >>> _softplus_argument(sp.log(1 + sp.exp(x))), _softplus_argument(sp.log(2 + sp.exp(x)))
    (X[i], None)
    """
    if isinstance(e, softplus):
        return e.args[0]
    ex = one_plus_exp(e.args[0]) if isinstance(e, sp.log) else None
    return ex.args[0] if ex is not None else None


def _as_sigmoid(e):
    """The product ``e`` with each ``exp(u) / (1 + exp(u))**n`` written ``sigmoid(u) / (1 +
    exp(u))**(n-1)``, or None when it has no such pair (Mish's and softplus's derivatives).

    >>> from deltagrad.derive.spec import index, tensor
    >>> x = tensor('X')[index('i')]
    >>> _as_sigmoid(x * sp.exp(x) / (1 + sp.exp(x))), _as_sigmoid(sp.exp(x) / (2 + sp.exp(x)))
    (sigmoid(X[i])*X[i], None)
    """
    factors = list(sp.Mul.make_args(e))
    for f in factors:
        ex = one_plus_exp(f.base) if isinstance(f, sp.Pow) and f.exp.is_Integer and f.exp < 0 else None
        if ex is not None and ex in factors:
            rest = [g for g in factors if g != f and g != ex]  # a Mul holds each base once
            return sp.Mul(*rest, sigmoid(ex.args[0]), sp.Pow(f.base, f.exp + 1))
    return None


def _zero_when(e) -> list:
    """The conditions under which a factor of the product ``e`` is exactly 0: a step (Heaviside)
    at a negative argument, a ``Min(0, W)`` or ``Max(0, W)`` on its flat side."""
    factors = sp.Mul.make_args(e)
    zero_when = [sp.StrictLessThan(f.args[0], 0) for f in factors if isinstance(f, sp.Heaviside)]
    zero_when += [sp.Eq(f, 0, evaluate=False) for f in factors  # Min(0, W), flat 0 for W >= 0
                  if isinstance(f, (sp.Max, sp.Min)) and not isinstance(f, Extremum) and sp.S.Zero in f.args]
    return zero_when


def _may_be_infinite(e) -> bool:
    """True when a factor of the product ``e`` can be infinite at a finite point: a log, an
    exponential that overflows, a division, a fractional or variable power.

    >>> from deltagrad.derive.spec import index, tensor
    >>> X = tensor('X')[index('i')]
    >>> _may_be_infinite(sp.Heaviside(X) * X**2), _may_be_infinite(sp.Heaviside(X) * X**sp.Rational(1, 2))
    (False, True)
    """
    return (e.has(sp.log, sp.exp, sp.sinh, sp.cosh)  # exp(800) is inf in float64, exp(100) in float32
            or any(not (p.exp.is_Integer and p.exp >= 0) for p in e.atoms(sp.Pow)))


def _absorb_into_where(e):
    """``G·where(c, 1, 0)`` as ``where(c, G, 0)``: a product with a ``where`` factor that has a
    constant branch, written with the other factors inside, so the code keeps ``G``'s dtype
    (``xp.where(X > 0, goutput, 0)``); Kronecker deltas stay outside. None when there is none.

    >>> from deltagrad.derive.spec import index, tensor
    >>> x, g = tensor('X')[index('i')], tensor('G')[index('i')]
    >>> _absorb_into_where(2 * g * where(x > 0, 1, 0))
    where(X[i] > 0, 2*G[i], 0)
    """
    factors = sp.Mul.make_args(e)
    chosen = next((f for f in factors if isinstance(f, where) and (f.args[1].is_Number or f.args[2].is_Number)), None)
    if chosen is None:
        return None
    outside = [f for f in factors if isinstance(f, sp.KroneckerDelta)]
    inside = [f for f in factors if f is not chosen and not isinstance(f, sp.KroneckerDelta)]
    if all(f.is_Number for f in inside):
        return None
    rest = sp.Mul(*inside)
    c, a, b = chosen.args
    return sp.Mul(*outside) * where(c, rest * a, rest * b)


def _python_scalar(e) -> bool:
    """True for an expression of sizes and numbers only: generated code holds it as a Python
    number, and a namespace function on it would return a float64 array scalar.

    >>> from deltagrad.derive.spec import extent, index, tensor
    >>> _python_scalar(extent(index('k')) + 1), _python_scalar(tensor('X')[index('i')])
    (True, False)
    """
    return not e.atoms(sp.Indexed, sp.Sum) and all(NAMES.is_extent(s.name) for s in e.free_symbols)


class Lowering:
    """Lowers one program's expressions, sharing temporaries between them.

    ``names`` maps SymPy names to variable names of the code (``G`` → ``goutput``);
    ``sizes`` maps an index or extent symbol to the variable holding its size;
    ``dtype_of`` names a variable whose dtype new arrays (identity matrices) take;
    ``reserved`` are names temporaries must not take.
    """

    def __init__(self, names=None, sizes=None, dtype_of="goutput", order=(), reserved=(), count_in=()):
        self.names = dict(names or {})
        self.sizes = dict(sizes or {})
        self.dtype_of = dtype_of
        self.order = list(order)
        self.reserved = set(reserved) | set(self.names.values())
        self.statements: list[Assign] = []
        self.ranks: dict = {}  # rank of each temporary
        self.memo: dict = {}
        self.counts = Counter()
        for e in count_in:
            self.count(e)
        self._temp = 0

    # -- bookkeeping ---------------------------------------------------------------------
    def count(self, expr):
        """Count the subexpressions of ``expr``, so repeated ones are computed once."""
        for node in sp.preorder_traversal(expr):
            if node.args and not isinstance(node, sp.Indexed):
                self.counts[canonical(node)[0]] += 1

    def fresh(self, node=None) -> str:
        """An unused name for a temporary: readable when ``node`` suggests one, else ``t0``, ``t1``…"""
        hint = temporary_hint(node) if node is not None else None
        if hint is not None:
            return unique(hint, self.reserved)
        while True:
            name = f"t{self._temp}"
            self._temp += 1
            if name not in self.reserved:
                self.reserved.add(name)
                return name

    def assign(self, target: str, node) -> Var:
        self.statements.append(Assign(target, node))
        self.reserved.add(target)
        return Var(target)

    def rank(self, idx):
        if idx not in self.order:
            self.order.append(idx)
        return self.order.index(idx)

    def size(self, idx):
        key = idx if idx in self.sizes else NAMES.extent_symbol(idx.name)
        if key not in self.sizes:
            raise LoweringError(f"the size of index {idx} is unknown here")
        return Var(self.sizes[key])

    # -- entry point ---------------------------------------------------------------------
    def lower(self, expr: sp.Expr, target: tuple):
        """A node computing ``expr`` with axes exactly ``target`` (broadcasting if needed)."""
        for idx in target:
            self.rank(idx)
        arr = self.arr(expr)
        extra = [i for i in arr.indices if i not in target]
        if extra:
            raise LoweringError(f"index {extra[0]} is free in {expr} but not in the result")
        if len(arr.indices) == len(target):
            return self.permute(arr, tuple(target)).node
        shape = tuple(self.size(i) for i in target)
        if arr.node == Const(0):  # a zero gradient (sign, Heaviside): an array of the gradient's dtype
            return Call("zeros", (shape,), (("dtype", Attr(Var(self.dtype_of), "dtype")),))
        return Call("broadcast_to", (self.align(arr, tuple(target)), shape))

    def lower_output(self, expr: sp.Expr, out_indices: tuple):
        """A node for an output ``Y[out_indices] = expr``: an integer 0 there is a new axis."""
        free = tuple(i for i in out_indices if not isinstance(i, sp.Integer))
        node = self.lower(expr, free)
        if len(free) == len(out_indices):
            return node
        return Subscript(node, tuple(None if isinstance(i, sp.Integer) else ":" for i in out_indices))

    def arr(self, e) -> Arr:
        shape, free = canonical(e)
        key = (shape, tuple(self.sizes.get(NAMES.extent_symbol(i.name)) for i in free))
        if key in self.memo:
            node, positions = self.memo[key]
            return Arr(node, tuple(free[p] for p in positions))
        out = self._arr(e)
        if self.counts[shape] > 1 and not isinstance(out.node, (Var, Const)):
            name = self.fresh(out.node)
            self.ranks[name] = len(out.indices)
            out = Arr(self.assign(name, out.node), out.indices)
        self.memo[key] = (out.node, tuple(free.index(i) for i in out.indices))
        return out

    def _arr(self, e) -> Arr:
        if isinstance(e, sp.Number):
            if e.is_Integer:
                return Arr(Const(int(e)), ())
            if e.is_Rational and abs(e.p) == 1:
                return Arr(BinOp("/", Const(int(e.p)), Const(int(e.q))), ())
            return Arr(Const(float(e)), ())
        if e.is_number:  # sqrt(10), exp(2): a Python float, which keeps float32 arrays float32
            return Arr(Const(float(e)), ())
        if isinstance(e, sp.Symbol):
            if NAMES.is_extent(e.name) and e.is_integer:
                return Arr(self.size(e), ())
            if is_index(e):
                raise LoweringError(f"index {e} used as a value")
            return Arr(Var(self.names.get(e.name, e.name)), ())
        if isinstance(e, sp.Indexed):
            return self.indexed(e)
        if isinstance(e, sp.Add):
            return self.add(e)
        if isinstance(e, sp.Mul):
            return self.mul(e)
        if isinstance(e, sp.Pow):
            return self.power(e)
        if isinstance(e, sp.Sum):
            return self.summation(e)
        if isinstance(e, sp.KroneckerDelta):
            return self.delta(e)
        if isinstance(e, sp.Heaviside):
            step = self.heaviside(e)
            return Arr(BinOp("/", step.node, Const(2)), step.indices)
        if isinstance(e, Extremum):
            body = self.arr(e.function)
            return self.sum_axes(body, {lim[0] for lim in e.limits}, fn=e.word)
        if isinstance(e, Iverson):
            args = [self.arr(a) for a in e.args]
            nodes, idx = self.combine(args)
            # the dtype of the array compared (goutput may be a Python float for a scalar output)
            first = args[0].node if isinstance(e.args[0], sp.Indexed) and isinstance(args[0].node, Var) else None
            dtype = Attr(first or Var(self.dtype_of), "dtype")
            return Arr(Call("astype", (BinOp("==", nodes[0], nodes[1]), dtype)), idx)
        if isinstance(e, (sp.Max, sp.Min)):
            fn = "maximum" if isinstance(e, sp.Max) else "minimum"
            args = [self.arr(a) for a in e.args]
            acc = args[0]
            for nxt in args[1:]:
                nodes, idx = self.combine([acc, nxt])
                acc = Arr(Call(fn, tuple(nodes)), idx)
            return acc
        if isinstance(e, where):
            return self.where(e)
        if isinstance(e, sp.Equality):  # only the lowering's own masks (Min(0, W) == 0) compare for equality
            nodes, idx = self.combine([self.arr(a) for a in e.args])
            return Arr(BinOp("==", nodes[0], nodes[1]), idx)
        if is_comparison(e):
            nodes, idx = self.combine([self.arr(e.lhs), self.arr(e.rhs)])
            return Arr(BinOp(COMPARISONS[type(e)], nodes[0], nodes[1]), idx)
        if isinstance(e, Generic):
            x = self.arr(e.args[0])
            return Arr(Apply(e.func.__name__, (x.node,)), x.indices)
        soft = _softplus_argument(e)
        if soft is not None:  # log(1 + exp(u)) = logaddexp(0, u): no overflow at u = 1000
            u = self.arr(soft)
            return Arr(Call("logaddexp", (Call("zeros_like", (u.node,)), u.node)), u.indices)
        for func, name in _ELEMENTWISE.items():
            if isinstance(e, func):
                x = self.arr(e.args[0])
                return Arr(Call(name, (x.node,)), x.indices)
        raise LoweringError(f"cannot lower {type(e).__name__}: {e}")

    # -- alignment -------------------------------------------------------------------------
    def sort(self, indices):
        return tuple(sorted(set(indices), key=self.rank))

    def permute(self, a: Arr, order: tuple) -> Arr:
        """``a`` with its axes in ``order`` (a permutation of its indices)."""
        if tuple(order) == a.indices:
            return a
        perm = tuple(a.indices.index(i) for i in order)
        if len(perm) == 2:
            return Arr(Attr(a.node, "T"), tuple(order))
        if perm[:-2] == tuple(range(len(perm) - 2)):
            return Arr(Attr(a.node, "mT"), tuple(order))
        return Arr(Call("permute_dims", (a.node, perm)), tuple(order))

    def align(self, a: Arr, to: tuple):
        """A node of ``a`` that broadcasts against axes ``to`` (a superset of its indices)."""
        present = tuple(i for i in to if i in a.indices)
        node = self.permute(a, present).node
        key = [":" if i in a.indices else None for i in to]
        while key and key[0] is None:  # broadcasting adds leading axes by itself
            key.pop(0)
        if all(k == ":" for k in key):
            return node
        return Subscript(node, tuple(key))  # a full key: the array API has no implicit trailing ':'

    def combine(self, arrs):
        """Aligned nodes of ``arrs`` and the index tuple they broadcast to."""
        to = self.sort([i for a in arrs for i in a.indices])
        return [self.align(a, to) for a in arrs], to

    # -- element-wise arithmetic ----------------------------------------------------------
    def add(self, e) -> Arr:
        def order(t):  # positive terms first; numbers first among them (1 - Y), then the widest (X @ W + B)
            return (t.could_extract_minus_sign(), not t.is_Number, -len([s for s in t.free_symbols if is_index(s)]))

        terms = sorted(e.args, key=order)
        signed = [(t.could_extract_minus_sign(), self.arr(-t if t.could_extract_minus_sign() else t)) for t in terms]
        nodes, to = self.combine([a for _, a in signed])
        node = Neg(nodes[0]) if signed[0][0] else nodes[0]
        for (negative, _), n in zip(signed[1:], nodes[1:]):
            node = BinOp("-" if negative else "+", node, n)
        return Arr(node, to)

    def where(self, e) -> Arr:
        """``xp.where(c, a, b)``: only the chosen branch's values reach the result."""
        nodes, idx = self.combine([self.arr(a) for a in e.args])
        node = Call("where", tuple(nodes))
        if e.args[1].is_Number and e.args[2].is_Number:  # where(c, 1, 0) alone is an integer array
            node = Call("astype", (node, Attr(Var(self.dtype_of), "dtype")))
        return Arr(node, idx)

    def mul(self, e) -> Arr:
        logistic = _as_sigmoid(e)
        if logistic is not None:  # exp(u)/(1 + exp(u)) is inf/inf at u = 100 in float32
            return self.arr(logistic)
        absorbed = _absorb_into_where(e)
        if absorbed is not None:
            return self.arr(absorbed)
        masked = self.masked_product(e)
        if masked is not None:
            return masked
        product = self.product(e)
        zero_when = _zero_when(e)
        if not zero_when or not _may_be_infinite(e):
            return product
        # Where a step (or a clipped factor) is 0 the product is 0, even if another factor is
        # infinite there (Max(0,V)**(Z-1)·H(V) at V < 0; Min(0,W)/sqrt(X·Min(0,W))): 0·inf is NaN.
        for condition in zero_when:
            nodes, idx = self.combine([self.arr(condition), product])
            product = Arr(Call("where", (nodes[0], Const(0), nodes[1])), idx)
        return product

    def product(self, e) -> Arr:
        """A plain product: a coefficient, factors, and a denominator."""
        coeff, rest = e.as_coeff_Mul()
        num, den = [], []
        for f in sp.Mul.make_args(rest):
            if isinstance(f, sp.Heaviside):
                num.append(self.heaviside(f))
                den.append(Arr(Const(2), ()))
            elif isinstance(f, sp.Pow) and f.exp.is_Number and f.exp < 0:
                den.append(self.arr(sp.Pow(f.base, -f.exp)))
            else:
                num.append(self.arr(f))
        if coeff.is_Rational and abs(coeff.p) == 1 and coeff.q != 1:
            den.insert(0, Arr(Const(int(coeff.q)), ()))
            coeff = sp.Integer(coeff.p)
        negative = coeff < 0
        num.sort(key=self._factor_rank)
        if abs(coeff) != 1:
            num.insert(0, Arr(Const(float(abs(coeff)) if not abs(coeff).is_Integer else int(abs(coeff))), ()))
        num, den = self._rows_first(num, den)
        nodes, to = self.combine(num + den)
        top = nodes[: len(num)] or [Const(1)]
        if negative:
            top[0] = Const(-top[0].value) if isinstance(top[0], Const) else Neg(top[0])
        node = self._times(top)
        bottom = nodes[len(num):]
        if bottom:
            node = BinOp("/", node, self._times(bottom))
        return Arr(node, to)

    def masked_product(self, e) -> Arr | None:
        """A product with indicators, its other factors computed on their own first:
        ``xp.where(t[:, None] == xp.arange(n), rest, 0)`` for one one-hot ``δ(b, t[a])`` (no
        multiply), ``(goutput / count)[:, None] * mask`` for masks ``[x == y]`` whose other factors
        have fewer axes (the gradient of a max: one full-size product)."""
        factors = sp.Mul.make_args(e)
        onehots = [f for f in factors if isinstance(f, sp.KroneckerDelta) and any(is_gather(a) for a in f.args)]
        masks = [f for f in factors if isinstance(f, Iverson)]
        if len(onehots) == 1 and not masks:
            rest = sp.Mul(*[f for f in factors if f is not onehots[0]])
            g, other = onehots[0].args if is_gather(onehots[0].args[0]) else onehots[0].args[::-1]
            if rest.is_number or not is_index(other):
                return None
            if ({s for s in rest.free_symbols if is_index(s)} <= set(g.indices) and other not in g.indices
                    and all(is_index(i) for i in g.indices) and len(set(g.indices)) == len(g.indices)):
                # rest[a] * δ(b, t[a]): rest put at b = t[a] in zeros, one write per row
                t = self.arr(g)
                values = self.lower(rest, t.indices)
                return Arr(Helper("put_along", (t.node, values, self.size(other))), (*t.indices, other))
            positions = Arr(Call("arange", (self.size(other),)), (other,))
            nodes, to = self.combine([self.arr(g), positions, self.arr(rest)])
            return Arr(Call("where", (BinOp("==", nodes[0], nodes[1]), nodes[2], Const(0))), to)
        if not masks or onehots:
            return None
        rest = sp.Mul(*[f for f in factors if not isinstance(f, Iverson)])
        free = {s for s in e.free_symbols if is_index(s)}
        if rest.is_number or not {s for s in rest.free_symbols if is_index(s)} < free:
            return None
        parts = [self.arr(rest), *(self.arr(m) for m in masks)]
        nodes, to = self.combine(parts)
        node = nodes[0]
        for n in nodes[1:]:
            node = BinOp("*", node, n)
        return Arr(node, to)

    def heaviside(self, e) -> Arr:
        """2·Heaviside(x) as ``sign(x) + 1``: 0, 1 or 2, so Heaviside(0) = 1/2 as in SymPy."""
        if len(e.args) > 1 and not (e.args[1].is_number and float(e.args[1]) == 0.5):
            raise LoweringError("only Heaviside(0) = 1/2 is supported")  # 1/2, or 0.5 after SymPy's float round trip
        x = self.arr(e.args[0])
        return Arr(BinOp("+", Call("sign", (x.node,)), Const(1)), x.indices)

    def _rows_first(self, num: list, den: list):
        """``(num, den)`` with the numerator's factors on fewer axes than the product (a row's
        sum, a reciprocal norm) multiplied together first, and divided there by a denominator on
        fewer axes: ``D * (s / (n*t))[:, None]`` is one pass over the full array,
        ``D * s[:, None] / (n*t)[:, None]`` two. Like any reordering of a product, it changes
        which partial product can overflow: ``(A*B)`` with A = B = 1e30 overflows float32 where
        ``X*A*B`` with a tiny X did not, and ``X*A`` with a huge X the other way round; fewer
        passes decide."""
        full = {i for a in num for i in a.indices}
        low = [a for a in num if a.indices and set(a.indices) < full]
        rows = den if any(a.indices for a in den) and {i for a in low + den for i in a.indices} < full else []
        if not low or (len(low) < 2 and not rows) or {i for a in low + rows for i in a.indices} >= full:
            return num, den
        nodes, to = self.combine(low + rows)
        node = self._times(nodes[:len(low)])
        if rows:
            node = BinOp("/", node, self._times(nodes[len(low):]))
        return [a for a in num if not any(a is b for b in low)] + [Arr(node, to)], ([] if rows else den)

    @staticmethod
    def _times(nodes: list):
        """The product of ``nodes``, left to right."""
        node = nodes[0]
        for n in nodes[1:]:
            node = BinOp("*", node, n)
        return node

    def _factor_rank(self, a: Arr) -> int:
        """Order of factors in a product: the output's gradient, plain arrays, then the rest."""
        if a.node == Var(self.names.get(self.dtype_of, self.dtype_of)) or a.node == Var(self.dtype_of):
            return 0
        return 1 if isinstance(a.node, (Var, Subscript, Attr)) else 2

    def power(self, e) -> Arr:
        base, exp = self.arr(e.base), e.exp
        if _python_scalar(e.base) and exp.is_Number:  # sizes stay Python numbers: n_j**0.5, not xp.sqrt
            return Arr(BinOp("**", base.node, Const(int(exp) if exp.is_Integer else float(exp))), base.indices)
        if exp == sp.Rational(1, 2):
            return Arr(Call("sqrt", (base.node,)), base.indices)
        if exp == -sp.Rational(1, 2):
            return Arr(BinOp("/", Const(1), Call("sqrt", (base.node,))), base.indices)
        if exp.is_Number and exp < 0:
            inner = self.arr(sp.Pow(e.base, -exp))
            return Arr(BinOp("/", Const(1), inner.node), inner.indices)
        if not exp.is_Integer and not e.base.atoms(sp.Indexed) and not _python_scalar(e.base):
            # a scalar input may be a Python float, and (-2.0)**1.5 is complex in Python: NaN as an array
            base = Arr(Call("asarray", (base.node,)), base.indices)
        if exp.is_Number:
            return Arr(BinOp("**", base.node, Const(int(exp) if exp.is_Integer else float(exp))), base.indices)
        power = self.arr(exp)
        nodes, to = self.combine([base, power])
        return Arr(BinOp("**", nodes[0], nodes[1]), to)

    # -- tensors, deltas -------------------------------------------------------------------
    def indexed(self, e) -> Arr:
        if any(is_gather(i) for i in e.indices):
            return self.gather(e)
        node = Var(self.names.get(e.base.label.name, e.base.label.name))
        key = [0 if i == UNIT else int(i) if isinstance(i, sp.Integer) else ":" for i in e.indices]
        if any(k != ":" for k in key):
            node = Subscript(node, tuple(key))
        idx = [i for i in e.indices if not isinstance(i, sp.Integer) and i != UNIT]
        while len(set(idx)) < len(idx):
            s = next(i for i in idx if idx.count(i) > 1)
            p = idx.index(s)
            q = idx.index(s, p + 1)
            others = [n for n in range(len(idx)) if n not in (p, q)]
            perm = tuple(others + [p, q])
            if perm != tuple(range(len(idx))):
                node = Call("permute_dims", (node, perm))
            node = Call("linalg.diagonal", (node,))
            idx = [idx[n] for n in others] + [s]
        return Arr(node, tuple(idx))

    def gather(self, e) -> Arr:
        """``X[i, t[i]]`` (``take_along_axis``) or ``E[t[n], d]`` (``take``): ``X`` read at the
        positions that an integer input holds."""
        found = [(p, ix) for p, ix in enumerate(e.indices) if is_gather(ix)]
        others = [ix for ix in e.indices if not is_gather(ix)]
        if len(found) != 1 or not all(is_index(ix) for ix in others) or len(set(others)) < len(others):
            raise LoweringError(f"cannot lower the gather {e}: one integer input per tensor, other axes named once")
        p, g = found[0]
        t = self.arr(g)
        x = Var(self.names.get(e.base.label.name, e.base.label.name))
        shared = [ix for ix in others if ix in t.indices]
        if not shared:  # E[t[n], d]: whole slices (t of several axes: flattened, then the shape restored)
            indices = tuple(others[:p]) + t.indices + tuple(others[p:])
            if len(t.indices) == 1:
                return Arr(Call("take", (x, t.node), (("axis", p),)), indices)
            flat = Call("take", (x, Call("reshape", (t.node, (Const(-1),)))), (("axis", p),))
            return self.reshaped(flat, indices)
        if set(t.indices) <= set(others):  # X[i, t[i]]: one entry per row
            aligned = self.permute(t, tuple(shared)).node
            key = tuple(":" if q != p and e.indices[q] in t.indices else None for q in range(len(e.indices)))
            taken = Call("take_along_axis", (x, Subscript(aligned, key)), (("axis", p),))
            return Arr(Subscript(taken, tuple(0 if q == p else ":" for q in range(len(e.indices)))), tuple(others))
        raise LoweringError(f"cannot lower the gather {e}")

    def delta(self, e) -> Arr:
        p, q = e.args
        if is_gather(p) or is_gather(q):  # δ(b, t[a]): a one-hot array, 1 where b = t[a]
            g, other = (p, q) if is_gather(p) else (q, p)
            if not is_index(other):
                raise LoweringError(f"cannot lower {e}")
            positions = Arr(Call("arange", (self.size(other),)), (other,))
            nodes, idx = self.combine([self.arr(g), positions])
            dtype = Attr(Var(self.dtype_of), "dtype")
            return Arr(Call("astype", (BinOp("==", nodes[0], nodes[1]), dtype)), idx)
        dtype = (("dtype", Attr(Var(self.dtype_of), "dtype")),)
        # δ(b, _): b runs over an axis of size one, whose only entry _ stands for (entry 0)
        p, q = (sp.Integer(0) if x == UNIT else x for x in (p, q))
        if isinstance(p, sp.Integer):
            p, q = q, p
        if isinstance(q, sp.Integer):
            return Arr(Subscript(Call("eye", (self.size(p),), dtype), (int(q), ":")), (p,))
        return Arr(Call("eye", (self.size(p),), dtype), (p, q))

    # -- sums and contractions -----------------------------------------------------------------
    def scatter(self, e) -> Arr | None:
        """``Σ_n δ(a, t[n]) F[n, d]`` as ``scatter_add(xp, t, F, n_a)``: rows of ``F`` added at the
        positions ``t`` holds (the backward of an embedding), for a ``t`` of one axis; else None."""
        indices = [lim[0] for lim in e.limits]
        for f in sp.Mul.make_args(e.function):
            if not isinstance(f, sp.KroneckerDelta) or not any(is_gather(a) for a in f.args):
                continue
            g, a = (f.args[0], f.args[1]) if is_gather(f.args[0]) else (f.args[1], f.args[0])
            rest = e.function / f
            if (not is_index(a) or a in indices or a in rest.free_symbols or len(g.indices) != 1
                    or g.indices[0] not in indices or g.indices[0] not in rest.free_symbols):
                continue
            n = g.indices[0]
            others = [k for k in indices if k != n]
            values = self.arr(sp.Sum(rest, *[lim for lim in e.limits if lim[0] != n]) if others else rest)
            values = self.permute(values, (n, *[i for i in values.indices if i != n]))
            node = Helper("scatter_add", (self.arr(g).node, values.node, self.size(a)))
            return Arr(node, (a, *values.indices[1:]))
        return None

    def summation(self, e) -> Arr:
        scattered = self.scatter(e)
        if scattered is not None:
            return scattered
        indices = [lim[0] for lim in e.limits]
        for k in indices:
            self.rank(k)
        coeff, rest = e.function.as_coeff_Mul()
        if _zero_when(rest) and _may_be_infinite(rest):  # masked as a whole where a step is 0 (mul)
            out = self.sum_axes(self.arr(rest), set(indices))
        else:
            out = self.contract([self.arr(f) for f in sp.Mul.make_args(rest)], set(indices))
        if coeff != 1:
            out = self.mul_const(out, coeff)
        return out

    def mul_const(self, a: Arr, coeff) -> Arr:
        if coeff == -1:
            return Arr(Neg(a.node), a.indices)
        return Arr(BinOp("*", self.arr(coeff).node, a.node), a.indices)

    def contract(self, ops, summed: set) -> Arr:
        ops = list(ops)
        summed = set(summed)
        while len(ops) > 1:
            pairs = [(p, q) for p in range(len(ops)) for q in range(p + 1, len(ops))]
            p, q = min(pairs, key=lambda pq: (len(set(ops[pq[0]].indices) | set(ops[pq[1]].indices)), pq))
            a, b = ops[p], ops[q]
            rest = [o for n, o in enumerate(ops) if n not in (p, q)]
            elsewhere = {i for o in rest for i in o.indices}
            now = {s for s in summed if (s in a.indices or s in b.indices) and s not in elsewhere}
            summed -= now
            ops = rest + [self.pair(a, b, now)]
        return self.sum_axes(ops[0], summed & set(ops[0].indices))

    def reshaped(self, node, indices: tuple) -> Arr:
        """``node`` reshaped to the axes ``indices``."""
        return Arr(Call("reshape", (node, tuple(self.size(i) for i in indices))), indices)

    def extent_of(self, indices):
        """The number of entries over ``indices``: ``n_c * n_p * n_q``."""
        node = self.size(indices[0])
        for i in indices[1:]:
            node = BinOp("*", node, self.size(i))
        return node

    def reshaped_matmul(self, x: Arr, y: Arr, contracted: list) -> Arr | None:
        """Σ_K x[P, K, N]·y[M, K] (or y[K, M]) as one matmul of reshaped operands,
        ``(m, k) @ (p, k, n)``, laid out [P, M, N] with no permutation (a convolution over an im2col
        copy in [b, c, p, q, i, j] order gives [b, o, i, j] directly); None when the axes are not
        in such blocks. Only where x has free axes on both sides of K, which tensordot would
        return as [P, N, M] and leave to be permuted."""
        k = len(contracted)
        for start in range(1, len(x.indices) - k):
            block = list(x.indices[start:start + k])
            if set(block) == set(contracted):
                break
        else:
            return None
        lead, tail = list(x.indices[:start]), list(x.indices[start + k:])
        if list(y.indices[-k:]) == block:
            middle, flip = list(y.indices[:-k]), False
        elif list(y.indices[:k]) == block:
            middle, flip = list(y.indices[k:]), True
        else:
            return None
        if not middle or any(i in lead or i in tail for i in middle):
            return None

        sizes = (block, middle) if flip else (middle, block)
        left = y.node if len(middle) == 1 and k == 1 else Call("reshape", (y.node, tuple(map(self.extent_of, sizes))))
        if flip:
            left = Attr(left, "T")
        right = Call("reshape", (x.node, tuple(map(self.extent_of, (lead, block, tail)))))
        return self.reshaped(BinOp("@", left, right), tuple(lead + middle + tail))

    def summed_matmul(self, x: Arr, y: Arr, contracted: list) -> Arr | None:
        """Σ over L and T of x[L, F, T]·y[L, M, T] as ``sum((l, m, t) @ (l, t, f), axis=0)``, laid
        out [M, F] (a convolution's kernel gradient: G[b, o, i, j] against the im2col copy
        [b, c, p, q, i, j], which tensordot would first copy into [c, p, q, b, i, j]); None when the
        axes are not in such blocks."""
        in_x = [i for i in x.indices if i in contracted]
        n_lead = next((n for n, i in enumerate(x.indices) if i not in contracted), len(x.indices))
        head, tail = list(x.indices[:n_lead]), []
        rest = list(x.indices[n_lead:])
        while rest and rest[-1] in contracted:
            tail.insert(0, rest.pop())
        free_x = rest
        if not head or not tail or not free_x or any(i in contracted for i in free_x) or len(head) + len(tail) != len(in_x):
            return None
        if list(y.indices[:len(head)]) != head or list(y.indices[len(y.indices) - len(tail):]) != tail:
            return None
        free_y = list(y.indices[len(head):len(y.indices) - len(tail)])
        if not free_y or any(i in contracted or i in free_x for i in free_y):
            return None

        y3 = Call("reshape", (y.node, tuple(map(self.extent_of, (head, free_y, tail)))))
        x3 = Attr(Call("reshape", (x.node, tuple(map(self.extent_of, (head, free_x, tail))))), "mT")
        return self.reshaped(Call("sum", (BinOp("@", y3, x3),), (("axis", 0),)), tuple(free_y + free_x))

    def sum_axes(self, a: Arr, over, fn: str = "sum") -> Arr:
        """``a`` reduced by ``xp.<fn>`` (sum, max, min) over the axes of ``over``."""
        over = [i for i in a.indices if i in over]
        if not over:
            return a
        kept = tuple(i for i in a.indices if i not in over)
        if not kept:
            return Arr(Call(fn, (a.node,)), ())
        axes = tuple(a.indices.index(i) for i in over)
        return Arr(Call(fn, (a.node,), (("axis", axes[0] if len(axes) == 1 else axes),)), kept)

    def pair(self, a: Arr, b: Arr, over: set) -> Arr:
        """The product of ``a`` and ``b`` summed over ``over``, as a BLAS call where one fits."""
        a = self.sum_axes(a, over - set(b.indices))
        b = self.sum_axes(b, over - set(a.indices))
        shared = [i for i in a.indices if i in b.indices]
        contracted = [i for i in shared if i in over]
        batch = [i for i in shared if i not in over]
        a_free = [i for i in a.indices if i not in b.indices]
        b_free = [i for i in b.indices if i not in a.indices]
        if not contracted:
            nodes, to = self.combine([a, b])
            return Arr(BinOp("*", nodes[0], nodes[1]), to)
        one = len(contracted) == 1 and len(a_free) <= 1 and len(b_free) <= 1
        if one and (not batch or (a_free and b_free)):
            if a_free and b_free and self.rank(a_free[0]) > self.rank(b_free[0]):
                a, b, a_free, b_free = b, a, b_free, a_free
            k = contracted[0]
            if not a_free and b_free and b.indices[-1] == k:  # vector @ matrix.T reads better as matrix @ vector
                a, b, a_free, b_free = b, a, b_free, a_free
            left = self.permute(a, tuple(batch + a_free + [k]))
            right = self.permute(b, tuple(batch + [k] + b_free))
            return Arr(BinOp("@", left.node, right.node), tuple(batch + a_free + b_free))
        if not batch and a_free and b_free:
            for x, y in ((a, b), (b, a)):
                product = self.reshaped_matmul(x, y, contracted) or self.summed_matmul(x, y, contracted)
                if product is not None:
                    return product
        if not batch and (a_free or b_free):
            if a_free and b_free and self.rank(a_free[0]) > self.rank(b_free[0]):
                a, b, a_free, b_free = b, a, b_free, a_free
            axes = (tuple(a.indices.index(i) for i in contracted), tuple(b.indices.index(i) for i in contracted))
            node = Call("tensordot", (a.node, b.node), (("axes", axes),))
            return Arr(node, tuple(a_free + b_free))
        nodes, to = self.combine([a, b])
        return self.sum_axes(Arr(BinOp("*", nodes[0], nodes[1]), to), set(contracted))
