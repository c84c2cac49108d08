"""The forward spec of an op in canonical SymPy form, and the checks every spec must pass.

Whether a spec comes from text (:mod:`deltagrad.derive.parse`) or from SymPy objects
(:mod:`deltagrad.derive.from_sympy`), it ends up as a :class:`Spec` built from the symbol
constructors below, so the rest of the engine sees one vocabulary:

* an index is ``Symbol(name, integer=True)``; its extent is ``Symbol('n_' + name)``;
* a tensor is ``IndexedBase(name, real=True)``; a scalar input is ``Symbol(name, real=True)``;
* a reduction is ``Sum(body, (k, 0, n_k - 1))``: always over the whole range of ``k``.

>>> i, k = index('i'), index('k')
>>> summed(tensor('X')[i, k], k)
Sum(X[i, k], (k, 0, n_k - 1))
"""

from __future__ import annotations

import keyword
from dataclasses import dataclass, field

import sympy as sp

from deltagrad.errors import SpecError

#: Limits that keep SymPy from running away on hostile or absurd input.
MAX_NODES = 2000
MAX_DEPTH = 60
MAX_RANK = 8
MAX_INDICES = 16
#: Names the generated code uses for itself.
RESERVED = frozenset({"xp", "context", "goutput", "self", "cls", "Op", "np", "math"})


def index(name: str) -> sp.Symbol:
    """The index symbol called ``name``.

    >>> index('i').is_integer
    True
    """
    return sp.Symbol(name, integer=True)


def extent(idx: sp.Symbol) -> sp.Symbol:
    """The symbol for the number of values index ``idx`` runs over.

    >>> extent(index('k'))
    n_k
    """
    return sp.Symbol(f"n_{idx.name}", integer=True, positive=True)


def tensor(name: str) -> sp.IndexedBase:
    """The real tensor called ``name``.

    >>> tensor('X')[index('i')]
    X[i]
    """
    return sp.IndexedBase(name, real=True)


def scalar(name: str) -> sp.Symbol:
    """The real scalar input called ``name``.

    >>> scalar('c').is_real
    True
    """
    return sp.Symbol(name, real=True)


def summed(body: sp.Expr, *indices: sp.Symbol) -> sp.Expr:
    """``body`` summed over the whole range of each index in ``indices``.

    >>> summed(tensor('X')[index('i'), index('j')], index('i'), index('j'))
    Sum(X[i, j], (i, 0, n_i - 1), (j, 0, n_j - 1))
    """
    return sp.Sum(body, *[(k, 0, extent(k) - 1) for k in indices])


def is_index(sym: sp.Basic) -> bool:
    """True for an index symbol (as opposed to a scalar input or an extent).

    >>> is_index(index('i')), is_index(scalar('c'))
    (True, False)
    """
    return isinstance(sym, sp.Symbol) and sym.is_integer is True and not sym.name.startswith("n_")


@dataclass(frozen=True)
class Input:
    """One input of an op: its name and rank (0 for a scalar)."""

    name: str
    rank: int


@dataclass(frozen=True)
class Spec:
    """A checked forward spec: ``output[out_indices] = rhs``.

    ``out_indices`` holds index symbols, or ``Integer(0)`` for a new axis of size one.
    ``size_indices`` are output indices that no input carries: their sizes are keyword
    arguments of ``forward``.
    """

    name: str
    output: str
    out_indices: tuple
    rhs: sp.Expr
    inputs: tuple[Input, ...]
    text: str = ""
    size_indices: tuple = field(default=())

    @property
    def lhs(self) -> sp.Expr:
        """The output as a SymPy object: ``Y[i, j]`` or the scalar ``L``."""
        if not self.out_indices:
            return scalar(self.output)
        return tensor(self.output)[self.out_indices]

    @property
    def free_indices(self) -> tuple:
        """The output's index symbols, literal axes left out."""
        return tuple(i for i in self.out_indices if isinstance(i, sp.Symbol))

    def input(self, name: str) -> Input:
        """The input called ``name``; ``SpecError`` when there is none."""
        for inp in self.inputs:
            if inp.name == name:
                return inp
        raise SpecError(f"{name!r} is not an input of {self.name} (inputs: {', '.join(i.name for i in self.inputs)})")


def check_spec(name, output, out_indices, rhs, inputs_order=None, where=None, text="") -> Spec:
    """Check a canonical forward spec and return it as a :class:`Spec`.

    ``where`` maps a name (tensor, scalar or index) to the column where the text first uses
    it, so that errors can point at it. ``inputs_order`` fixes the order of the inputs;
    by default it is the order of first appearance in ``rhs``.

    >>> i, j = index('i'), index('j')
    >>> check_spec('neg', 'Y', (i, j), -tensor('X')[i, j]).inputs
    (Input(name='X', rank=2),)
    >>> check_spec('bad', 'Y', (i,), tensor('X')[i, j])
    Traceback (most recent call last):
    ...
    deltagrad.errors.SpecError: index 'j' is free on the right but not on the left: add it to Y[...] or sum over it with Sum(..., j)
    """
    where = where or {}

    def fail(message, at=None):
        raise SpecError(message, where.get(at))

    ranks: dict[str, int] = {}
    order: list[str] = []
    free: dict[str, sp.Symbol] = {}
    kinds: dict[str, str] = {}
    sizes_used: list[str] = []
    count = 0

    def kind(nm, k):
        if not nm.isidentifier() or keyword.iskeyword(nm):
            fail(f"{nm!r} is not a valid name (letters, digits and _, not a Python keyword)", nm)
        if nm in RESERVED or nm.startswith("_"):
            fail(f"the name {nm!r} is reserved for the generated code; rename it", nm)
        seen = kinds.setdefault(nm, k)
        if seen != k:
            fail(f"{nm!r} is used both as {seen} and as {k}", nm)

    def walk(e, bound, depth):
        nonlocal count
        count += 1
        if count > MAX_NODES:
            fail(f"the spec is too large (more than {MAX_NODES} nodes)")
        if depth > MAX_DEPTH:
            fail(f"the spec is nested too deeply (more than {MAX_DEPTH} levels)")
        if isinstance(e, sp.Indexed):
            nm = e.base.label.name
            kind(nm, "a tensor")
            rank = len(e.indices)
            if rank > MAX_RANK:
                fail(f"tensor {nm!r} has {rank} indices; at most {MAX_RANK} are supported", nm)
            if ranks.setdefault(nm, rank) != rank:
                fail(f"tensor {nm!r} is used with rank {ranks[nm]} and with rank {rank}", nm)
            if nm not in order:
                order.append(nm)
            for ix in e.indices:
                if isinstance(ix, sp.Integer):
                    if ix < 0:
                        fail(f"tensor {nm!r} has a negative index {ix}", nm)
                    continue
                if not is_index(ix):
                    fail(f"tensor {nm!r} is indexed by {ix}, which is neither an index name nor an integer", nm)
                kind(ix.name, "an index")
                if ix not in bound:
                    free[ix.name] = ix
            return
        if isinstance(e, sp.Sum):
            new = set(bound)
            for lim in e.limits:
                k = lim[0]
                kind(k.name, "an index")
                if k in new:
                    fail(f"index {k.name!r} is summed twice in nested sums; use another name", k.name)
                if k not in e.function.free_symbols:
                    fail(f"summed index {k.name!r} is not used inside its Sum", k.name)
                new.add(k)
            walk(e.function, frozenset(new), depth + 1)
            return
        if isinstance(e, sp.Symbol) and e.name.startswith("n_") and e.is_integer:
            sizes_used.append(e.name[2:])
            return
        if isinstance(e, sp.Symbol):
            if is_index(e):
                fail(f"index {e.name!r} is used outside a tensor's brackets", e.name)
            kind(e.name, "a scalar")
            if e.name not in order:
                order.append(e.name)
                ranks[e.name] = 0
            return
        if isinstance(e, sp.Pow) and e.exp.is_Number and abs(e.exp) > 64:
            fail(f"the exponent {e.exp} is too large (at most 64 in magnitude)")
        for arg in e.args:
            walk(arg, bound, depth + 1)

    walk(rhs, frozenset(), 0)

    if output in kinds:
        fail(f"the output {output!r} also appears on the right-hand side", output)
    if not output.isidentifier() or keyword.iskeyword(output):
        fail(f"{output!r} is not a valid name for the output")
    if output in RESERVED or output.startswith("_"):
        fail(f"the name {output!r} is reserved for the generated code; rename it", output)
    lhs_names = []
    for ix in out_indices:
        if isinstance(ix, sp.Integer):
            if ix != 0:
                fail(f"an integer index on the left must be 0 (a new axis of size one), not {ix}")
            continue
        if ix.name in lhs_names:
            fail(f"index {ix.name!r} appears twice on the left; use a repeated index on the right instead", ix.name)
        if kinds.get(ix.name, "an index") != "an index":
            fail(f"{ix.name!r} is used both as {kinds[ix.name]} and as an index", ix.name)
        lhs_names.append(ix.name)
    if len(out_indices) > MAX_RANK:
        fail(f"the output has {len(out_indices)} indices; at most {MAX_RANK} are supported")
    for nm in free:
        if nm not in lhs_names:
            fail(
                f"index {nm!r} is free on the right but not on the left: "
                f"add it to {output}[...] or sum over it with Sum(..., {nm})",
                nm,
            )
    for e in sp.preorder_traversal(rhs):
        if isinstance(e, sp.Sum):
            for lim in e.limits:
                if lim[0].name in lhs_names:
                    fail(f"index {lim[0].name!r} is summed on the right and also free on the left", lim[0].name)
    carried_names = {ix.name for e in rhs.atoms(sp.Indexed) for ix in e.indices if isinstance(ix, sp.Symbol)}
    for nm in sizes_used:
        if nm not in carried_names and nm not in lhs_names:
            fail(f"size({nm}): no tensor is indexed by {nm!r}, so its size is unknown", nm)
    all_indices = {n for n, k in kinds.items() if k == "an index"} | set(lhs_names)
    if len(all_indices) > MAX_INDICES:
        fail(f"the spec uses {len(all_indices)} index names; at most {MAX_INDICES} are supported")
    for nm in list(kinds) + [output]:
        if nm.startswith("n_") and nm[2:] in all_indices:
            fail(f"the name {nm!r} is reserved for the size of index {nm[2:]!r}; rename it", nm)
    if not order:
        fail("the right-hand side uses no input")

    if inputs_order is not None:
        missing = [n for n in inputs_order if n not in order]
        extra = [n for n in order if n not in inputs_order]
        if missing or extra or len(set(inputs_order)) != len(inputs_order):
            raise SpecError(
                f"inputs={list(inputs_order)} must name each input of the right-hand side once: "
                f"it uses {', '.join(order)}"
            )
        order = list(inputs_order)
    for nm in order:
        if "d" + nm in kinds or "d" + nm == output:
            fail(f"the name {'d' + nm!r} is reserved for the gradient of {nm!r}; rename it", "d" + nm)
    inputs = tuple(Input(n, ranks[n]) for n in order)
    carried = {ix for e in rhs.atoms(sp.Indexed) for ix in e.indices if isinstance(ix, sp.Symbol)}
    size_indices = tuple(ix for ix in out_indices if isinstance(ix, sp.Symbol) and ix not in carried)
    return Spec(name, output, tuple(out_indices), rhs, inputs, text, size_indices)


def input_pattern(spec: Spec, name: str) -> tuple:
    """The indices of the first occurrence of input ``name`` on the right-hand side.

    >>> from deltagrad.derive.parse import parse_spec
    >>> input_pattern(parse_spec("Y[i,j] = X[i,0,j] * W[j]"), "X")
    (i, 0, j)
    """
    return next((e.indices for e in sp.preorder_traversal(spec.rhs)
                 if isinstance(e, sp.Indexed) and e.base.label.name == name), ())


def index_aliases(spec: Spec) -> dict:
    """Index name → the name of the index it must equal in size (itself for the first of a class).

    Two indices that stand at the same axis of a tensor (``X[i,j]`` and ``X[i,k]``) run over
    the same range, so they share one size.

    >>> from deltagrad.derive.parse import parse_spec
    >>> index_aliases(parse_spec("Y[i,j] = X[i,j] / Sum(X[i,k], k)"))
    {'i': 'i', 'k': 'j', 'j': 'j'}
    """
    parent: dict = {}

    def find(n):
        while parent.setdefault(n, n) != n:
            n = parent[n]
        return n

    out = {i.name for i in spec.free_indices}
    first: dict = {}
    for node in sp.preorder_traversal(spec.rhs):
        if not isinstance(node, sp.Indexed):
            continue
        name = node.base.label.name
        for axis, ix in enumerate(node.indices):
            if isinstance(ix, sp.Integer):
                continue
            find(ix.name)
            key = (name, axis)
            if key in first:
                a, b = find(first[key]), find(ix.name)
                if a != b:
                    if b in out and a not in out:
                        a, b = b, a
                    parent[b] = a
            else:
                first[key] = ix.name
    for ix in spec.free_indices:
        find(ix.name)
    return {n: find(n) for n in parent}
