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
from sympy.concrete.expr_with_limits import ExprWithLimits

from deltagrad.derive.ellipsis import ELLIPSIS
from deltagrad.derive.ellipsis import check_ellipsis as ellipsis_rules
from deltagrad.derive.affine import affine_problem, is_affine
from deltagrad.derive.names import NAMES
from deltagrad.errors import SpecError

#: Limits that keep SymPy from running away on hostile or absurd input.
MAX_NODES = 2000
#: Names that are numbers, in specs and in claims alike (so that a printed rule reads back; e
#: prints as exp(1), since E is a common tensor name).
CONSTANTS = {"pi": sp.pi}
MAX_DEPTH = 60
MAX_RANK = 8
MAX_INDICES = 16
#: Names the generated code uses for itself.
RESERVED = frozenset(NAMES.reserved_in_code())


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
    return NAMES.extent_symbol(idx.name)


def tensor(name: str) -> sp.IndexedBase:
    """The real tensor called ``name``.

    >>> tensor('X')[index('i')]
    X[i]
    """
    return sp.IndexedBase(name, real=True)


def itensor(name: str) -> sp.IndexedBase:
    """The integer tensor called ``name``, whose entries select positions of another tensor's axis
    (a gather: ``X[i, t[i]]``, ``E[t[n], d]``).

    >>> itensor('t')[index('i')].is_integer
    True
    """
    # its label is a non-negative integer symbol, which no index is (see is_index)
    return sp.IndexedBase(sp.Symbol(name, integer=True, nonnegative=True), integer=True)


def is_gather(ix: sp.Basic) -> bool:
    """True for an index position that holds an integer tensor's entry (``t[i]`` in ``X[i, t[i]]``).

    >>> is_gather(itensor('t')[index('i')]), is_gather(index('i'))
    (True, False)
    """
    return isinstance(ix, sp.Indexed) and ix.base.is_integer is True


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


#: ``_`` at an axis of an input on the right (``X[i,_,j]``): an axis of size one, read at its
#: only entry. Not an index: it is never summed, never free, and has no size to pass.
UNIT = sp.Symbol("_", integer=True, nonnegative=True)


def is_index(sym: sp.Basic) -> bool:
    """True for an index symbol (as opposed to a scalar input, an extent or the ``_`` of an
    axis of size one).

    >>> is_index(index('i')), is_index(scalar('c')), is_index(UNIT)
    (True, False, False)
    """
    return (isinstance(sym, sp.Symbol) and sym.is_integer is True and not NAMES.is_extent(sym.name)
            and sym.is_nonnegative is not True and sym != UNIT)  # an integer tensor's label t is no index


def unit_axes(expr) -> dict:
    """Input name → the axes written ``_`` (size one) in ``expr``.

    >>> from deltagrad.derive.parse import parse_spec
    >>> unit_axes(parse_spec("Y[i,j] = X[i,_,j] * W[j]").rhs)
    {'X': (1,)}
    """
    found: dict = {}
    for e in sp.preorder_traversal(expr):
        if isinstance(e, sp.Indexed):
            for axis, ix in enumerate(e.indices):
                if ix == UNIT and axis not in found.setdefault(e.base.label.name, ()):
                    found[e.base.label.name] += (axis,)
    return {name: tuple(sorted(axes)) for name, axes in found.items() if axes}


@dataclass(frozen=True)
class Input:
    """One input of an op: its name and rank (0 for a scalar)."""

    name: str
    rank: int
    #: an integer input: its entries select positions (a gather); it gets no gradient
    integer: bool = False


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
    #: (index name, index name) pairs known to run over the same axis beyond what ``rhs`` shows
    #: (a program's indices, renamed summation indices)
    extra_aliases: tuple = field(default=())
    #: positions of ``out_indices`` that the op returns merged into one axis, row-major, a tuple
    #: each (``Y[b,(c,i,j)]``: ``((1, 2, 3),)``); the derivation reads the output unmerged
    out_groups: tuple = field(default=())

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


def check_spec(name, output, out_indices, rhs, inputs_order=None, where=None, text="", known_sizes=()) -> Spec:
    """Check a canonical forward spec and return it as a :class:`Spec`.

    ``where`` maps a name (tensor, scalar or index) to the column where the text first uses
    it, so that errors can point at it. ``inputs_order`` fixes the order of the inputs;
    by default it is the order of first appearance in ``rhs``; ``known_sizes`` are index names
    whose sizes are known from elsewhere (another step of a program). The rules are the ``check_*``
    functions below, run in this order; the first that fails raises its :class:`SpecError`.

    >>> i, j = index('i'), index('j')
    >>> check_spec('neg', 'Y', (i, j), -tensor('X')[i, j]).inputs
    (Input(name='X', rank=2, integer=False),)
    >>> check_spec('bad', 'Y', (i,), tensor('X')[i, j])
    Traceback (most recent call last):
    ...
    deltagrad.errors.SpecError: index 'j' is free on the right but not on the left: add it to Y[...] or sum over it with Sum(..., j)
    """
    where = where or {}
    ellipsis_rules(output, tuple(out_indices), rhs, where)  # the rules of ... (derive/ellipsis.py)
    use = walk_rhs(rhs, where)
    check_output_not_on_right(output, use, where)
    check_output_valid_name(output, where)
    check_not_reserved(output, where)
    lhs_names = check_output_indices(out_indices, use, where)
    check_output_rank(out_indices)
    check_free_indices_on_left(output, use, lhs_names, where)
    check_summed_not_on_left(rhs, lhs_names, where)
    check_sizes_known(rhs, use, [*lhs_names, *known_sizes], where)
    all_indices = check_index_count(use, lhs_names)
    check_size_names_free(output, use, all_indices, where)
    check_uses_an_input(use)
    order = check_inputs_order(inputs_order, use.order)
    check_gradient_names_free(order, output, use, where)
    inputs = tuple(Input(n, use.ranks[n], n in use.integers) for n in order)
    carried = {s for e in rhs.atoms(sp.Indexed) for ix in e.indices
               for s in (ix.free_symbols if is_affine(ix) else {ix}) if isinstance(s, sp.Symbol)}
    size_indices = tuple(ix for ix in out_indices if isinstance(ix, sp.Symbol) and ix not in carried)
    return Spec(name, output, tuple(out_indices), rhs, inputs, text, size_indices)


def _fail(message: str, where: dict, at: str | None = None):
    """Raise the :class:`SpecError` ``message``, at the column where ``at`` is first used."""
    raise SpecError(message, where.get(at))


@dataclass
class RhsUse:
    """What :func:`walk_rhs` found on the right-hand side of a spec.

    ``ranks``: input name → rank (0 for a scalar); ``order``: inputs in order of first use;
    ``free``: index name → symbol, for indices outside every Sum that binds them; ``kinds``:
    name → 'a tensor', 'an index' or 'a scalar'; ``sizes``: index names used as ``size(k)``;
    ``nodes``: the number of nodes visited; ``axes``: (tensor, axis) → whether it is written
    ``_`` (an axis of size one) there.
    """

    ranks: dict = field(default_factory=dict)
    order: list = field(default_factory=list)
    free: dict = field(default_factory=dict)
    kinds: dict = field(default_factory=dict)
    sizes: list = field(default_factory=list)
    nodes: int = 0
    integers: set = field(default_factory=set)
    axes: dict = field(default_factory=dict)


def walk_rhs(rhs: sp.Expr, where: dict) -> RhsUse:
    """Walk the right-hand side once, applying the rules that hold node by node.

    >>> i, k = index('i'), index('k')
    >>> use = walk_rhs(summed(tensor('X')[i, k], k) * scalar('c'), {})
    >>> use.order, use.ranks, sorted(use.free)
    (['c', 'X'], {'c': 0, 'X': 2}, ['i'])
    """
    use = RhsUse()
    _walk(rhs, frozenset(), 0, use, where)
    return use


def _walk(e: sp.Basic, bound: frozenset, depth: int, use: RhsUse, where: dict) -> None:
    """Visit node ``e`` (``bound``: the indices of the Sums around it) and its arguments."""
    use.nodes += 1
    check_node_count(use.nodes)
    check_depth(depth)
    if isinstance(e, sp.Indexed):
        _visit_tensor(e, bound, use, where)
    elif isinstance(e, ExprWithLimits):  # Sum, and Max/Min over indices
        new = set(bound)
        for lim in e.limits:
            k = lim[0]
            check_name(k.name, "an index", use, where)
            check_not_summed_twice(k, new, where)
            check_summed_index_used(k, e, where)
            new.add(k)
        _walk(e.function, frozenset(new), depth + 1, use, where)
    elif isinstance(e, sp.Symbol) and NAMES.is_extent(e.name) and e.is_integer:
        use.sizes.append(NAMES.index_of_extent(e.name))
    elif isinstance(e, sp.Symbol):
        check_index_in_brackets(e, where)
        check_name(e.name, "a scalar", use, where)
        if e.name not in use.order:
            use.order.append(e.name)
            use.ranks[e.name] = 0
    else:
        check_exponent(e)
        for arg in e.args:
            _walk(arg, bound, depth + 1, use, where)


def _visit_tensor(e: sp.Indexed, bound: frozenset, use: RhsUse, where: dict, integer: bool = False) -> None:
    """Record tensor ``e`` and its indices, applying the rules on tensors and their indices."""
    nm = e.base.label.name
    check_name(nm, "an integer tensor" if integer else "a tensor", use, where)
    if integer:
        use.integers.add(nm)
    check_rank_limit(nm, len(e.indices), where)
    check_rank_consistent(nm, len(e.indices), use, where)
    if nm not in use.order:
        use.order.append(nm)
    for axis, ix in enumerate(e.indices):
        check_unit_axis(nm, axis, ix == UNIT, use, where)
        if ix == UNIT:
            continue
        if isinstance(ix, sp.Integer):
            check_integer_index(nm, ix, where)
            continue
        if is_gather(ix) and not integer:  # X[i, t[i]]: t is an integer input, indexed as usual
            check_plain_gather(nm, ix, where)
            _visit_tensor(ix, bound, use, where, integer=True)
            continue
        if is_affine(ix):  # X[2*i+p]: its names are indices like any other
            check_affine_index(nm, ix, where)
            names = sorted(ix.free_symbols, key=lambda s: s.name)
        else:
            check_tensor_index(nm, ix, where)
            names = [ix]
        for s in names:
            if s != ELLIPSIS:
                check_name(s.name, "an index", use, where)
            if s not in bound:
                use.free[s.name] = s


# The rules, one function each, in the order check_spec and walk_rhs apply them.


def check_node_count(nodes: int) -> None:
    """A spec has at most MAX_NODES nodes."""
    if nodes > MAX_NODES:
        _fail(f"the spec is too large (more than {MAX_NODES} nodes)", {})


def check_depth(depth: int) -> None:
    """A spec is nested at most MAX_DEPTH levels deep."""
    if depth > MAX_DEPTH:
        _fail(f"the spec is nested too deeply (more than {MAX_DEPTH} levels)", {})


def check_valid_name(nm: str, where: dict) -> None:
    """A name is a Python identifier and not a keyword."""
    if not nm.isidentifier() or keyword.iskeyword(nm):
        _fail(f"{nm!r} is not a valid name (letters, digits and _, not a Python keyword)", where, nm)


def check_not_reserved(nm: str, where: dict) -> None:
    """A name is not one the generated code uses, does not start with _ and is no size (n_k, n_X_0)."""
    if NAMES.is_extent(nm):
        _fail(f"the name {nm!r} is reserved: names that start with {NAMES.extent_prefix!r} are sizes "
              "in the generated code; rename it", where, nm)
    if NAMES.is_reserved(nm):
        _fail(f"the name {nm!r} is reserved for the generated code; rename it", where, nm)
    if nm in CONSTANTS:
        _fail(f"the name {nm!r} is the constant {sp.pretty(CONSTANTS[nm], use_unicode=True)}; rename it", where, nm)


def check_name(nm: str, kind: str, use: RhsUse, where: dict) -> None:
    """A name on the right is valid, not reserved, and one kind of thing (the three rules below)."""
    check_valid_name(nm, where)
    check_not_reserved(nm, where)
    check_one_kind(nm, kind, use, where)


def check_one_kind(nm: str, kind: str, use: RhsUse, where: dict) -> None:
    """A name is always the same kind of thing: a tensor, an index or a scalar."""
    seen = use.kinds.setdefault(nm, kind)
    if seen != kind:
        _fail(f"{nm!r} is used both as {seen} and as {kind}", where, nm)


def check_rank_limit(nm: str, rank: int, where: dict) -> None:
    """A tensor has at most MAX_RANK indices."""
    if rank > MAX_RANK:
        _fail(f"tensor {nm!r} has {rank} indices; at most {MAX_RANK} are supported", where, nm)


def check_rank_consistent(nm: str, rank: int, use: RhsUse, where: dict) -> None:
    """A tensor has the same number of indices wherever it is used."""
    if use.ranks.setdefault(nm, rank) != rank:
        _fail(f"tensor {nm!r} is used with rank {use.ranks[nm]} and with rank {rank}", where, nm)


def check_integer_index(nm: str, ix: sp.Integer, where: dict) -> None:
    """An integer index of a tensor is not negative."""
    if ix < 0:
        _fail(f"tensor {nm!r} has a negative index {ix}", where, nm)


def check_unit_axis(nm: str, axis: int, unit: bool, use: RhsUse, where: dict) -> None:
    """An axis written ``_`` (size one) is written ``_`` wherever the tensor is used."""
    if use.axes.setdefault((nm, axis), unit) != unit:
        _fail(f"axis {axis} of {nm!r} is written _ (an axis of size one) in one place but not in another: "
              "write _ there everywhere", where, nm)


def check_tensor_index(nm: str, ix: sp.Basic, where: dict) -> None:
    """A tensor is indexed by index names or integers only."""
    if not is_index(ix):
        _fail(f"tensor {nm!r} is indexed by {ix}, which is neither an index name nor an integer", where, nm)


def check_plain_gather(nm: str, ix: sp.Indexed, where: dict) -> None:
    """An integer tensor inside brackets is indexed by index names or integers (no gather of a gather)."""
    if any(not (isinstance(i, sp.Integer) or is_index(i)) for i in ix.indices):
        _fail(f"{ix.base.label.name}[...] inside {nm}[...] must be indexed by index names or integers", where, nm)


def check_affine_index(nm: str, ix: sp.Basic, where: dict) -> None:
    """An index expression is index names times small positive integers plus an offset (derive/affine.py)."""
    problem = affine_problem(ix)
    if problem:
        _fail(f"tensor {nm!r}: {problem}", where, nm)


def check_not_summed_twice(k: sp.Symbol, bound: set, where: dict) -> None:
    """A Sum does not sum again over an index that an enclosing Sum binds."""
    if k in bound:
        _fail(f"index {k.name!r} is summed twice in nested sums; use another name", where, k.name)


def check_summed_index_used(k: sp.Symbol, s: sp.Sum, where: dict) -> None:
    """A Sum's index appears inside the Sum."""
    if k not in s.function.free_symbols:
        _fail(f"summed index {k.name!r} is not used inside its Sum", where, k.name)


def check_index_in_brackets(e: sp.Symbol, where: dict) -> None:
    """An index is used only inside a tensor's brackets."""
    if is_index(e):
        _fail(f"index {e.name!r} is used outside a tensor's brackets", where, e.name)


def check_exponent(e: sp.Basic) -> None:
    """A literal exponent is at most 64 in magnitude."""
    if isinstance(e, sp.Pow) and e.exp.is_Number and abs(e.exp) > 64:
        _fail(f"the exponent {e.exp} is too large (at most 64 in magnitude)", {})


def check_output_not_on_right(output: str, use: RhsUse, where: dict) -> None:
    """The output does not appear on the right-hand side."""
    if output in use.kinds:
        _fail(f"the output {output!r} also appears on the right-hand side", where, output)


def check_output_valid_name(output: str, where: dict) -> None:
    """The output's name is a Python identifier and not a keyword."""
    if not output.isidentifier() or keyword.iskeyword(output):
        _fail(f"{output!r} is not a valid name for the output", where)


def check_output_indices(out_indices, use: RhsUse, where: dict) -> list:
    """Each output index is 0 or an index name used once on the left; returns those names."""
    lhs_names: list = []
    for ix in out_indices:
        if isinstance(ix, sp.Integer):
            check_new_axis(ix)
            continue
        check_not_repeated_on_left(ix, lhs_names, where)
        check_left_index_kind(ix, use, where)
        lhs_names.append(ix.name)
    return lhs_names


def check_new_axis(ix: sp.Integer) -> None:
    """An integer index on the left is 0 (a new axis of size one)."""
    if ix != 0:
        _fail(f"an integer index on the left must be 0 (a new axis of size one), not {ix}", {})


def check_not_repeated_on_left(ix: sp.Symbol, lhs_names: list, where: dict) -> None:
    """An index appears at most once on the left."""
    if ix.name in lhs_names:
        _fail(f"index {ix.name!r} appears twice on the left; use a repeated index on the right instead", where, ix.name)


def check_left_index_kind(ix: sp.Symbol, use: RhsUse, where: dict) -> None:
    """An index on the left is not used as a tensor or a scalar on the right."""
    if use.kinds.get(ix.name, "an index") != "an index":
        _fail(f"{ix.name!r} is used both as {use.kinds[ix.name]} and as an index", where, ix.name)


def check_output_rank(out_indices) -> None:
    """The output has at most MAX_RANK indices."""
    if len(out_indices) > MAX_RANK:
        _fail(f"the output has {len(out_indices)} indices; at most {MAX_RANK} are supported", {})


def check_free_indices_on_left(output: str, use: RhsUse, lhs_names: list, where: dict) -> None:
    """Every index free on the right appears on the left."""
    for nm in use.free:
        if nm not in lhs_names:
            _fail(
                f"index {nm!r} is free on the right but not on the left: "
                f"add it to {output}[...] or sum over it with Sum(..., {nm})",
                where,
                nm,
            )


def check_summed_not_on_left(rhs: sp.Expr, lhs_names: list, where: dict) -> None:
    """No index summed on the right appears on the left."""
    for e in sp.preorder_traversal(rhs):
        if isinstance(e, ExprWithLimits):
            for lim in e.limits:
                if lim[0].name in lhs_names:
                    _fail(f"index {lim[0].name!r} is summed on the right and also free on the left", where, lim[0].name)


def check_sizes_known(rhs: sp.Expr, use: RhsUse, lhs_names: list, where: dict) -> None:
    """Each size(k) names an index that a tensor or the output carries."""
    carried_names = {s.name for e in rhs.atoms(sp.Indexed) for ix in e.indices for s in ix.free_symbols}
    for nm in use.sizes:
        if nm not in carried_names and nm not in lhs_names:
            _fail(f"size({nm}): no tensor is indexed by {nm!r}, so its size is unknown", where, nm)


def check_index_count(use: RhsUse, lhs_names: list) -> set:
    """A spec uses at most MAX_INDICES index names; returns them."""
    all_indices = {n for n, k in use.kinds.items() if k == "an index"} | set(lhs_names)
    if len(all_indices) > MAX_INDICES:
        _fail(f"the spec uses {len(all_indices)} index names; at most {MAX_INDICES} are supported", {})
    return all_indices


def check_size_names_free(output: str, use: RhsUse, all_indices: set, where: dict) -> None:
    """No name is n_k for an index k: that name is the size of k."""
    for nm in list(use.kinds) + [output]:
        if NAMES.index_of_extent(nm) in all_indices:
            _fail(f"the name {nm!r} is reserved for the size of index {NAMES.index_of_extent(nm)!r}; rename it", where, nm)


def check_uses_an_input(use: RhsUse) -> None:
    """The right-hand side uses at least one input."""
    if not use.order:
        _fail("the right-hand side uses no input", {})


def check_inputs_order(inputs_order, order: list) -> list:
    """An explicit input order names each input once; returns the order to use."""
    if inputs_order is None:
        return order
    missing = [n for n in inputs_order if n not in order]
    extra = [n for n in order if n not in inputs_order]
    if missing or extra or len(set(inputs_order)) != len(inputs_order):
        raise SpecError(
            f"inputs={list(inputs_order)} must name each input of the right-hand side once: "
            f"it uses {', '.join(order)}"
        )
    return list(inputs_order)


def check_gradient_names_free(order: list, output: str, use: RhsUse, where: dict) -> None:
    """No name is dX for an input X: that name is the gradient of X."""
    for nm in order:
        if "d" + nm in use.kinds or "d" + nm == output:
            _fail(f"the name {'d' + nm!r} is reserved for the gradient of {nm!r}; rename it", where, "d" + nm)


def input_pattern(spec: Spec, name: str) -> tuple:
    """The indices of input ``name`` on the right-hand side: of its occurrence with the most
    index names (the first in SymPy's canonical order among those), each literal replaced by an
    index that runs over that axis in another occurrence, if one does.

    >>> from deltagrad.derive.parse import parse_spec
    >>> input_pattern(parse_spec("Y[i,j] = X[i,0,j] * W[j]"), "X")
    (i, 0, j)
    >>> input_pattern(parse_spec("Y[j] = X[j,1] * Sum(X[1,k], k)"), "X")
    (j, k)
    """
    found = [e for e in sp.preorder_traversal(spec.rhs) if isinstance(e, sp.Indexed) and e.base.label.name == name]
    if not found:
        return ()
    # the same choice under any hash seed: the occurrence with the most named indices, then
    # the first in SymPy's canonical order (preorder follows Max's argument order, which varies)
    best = max(sum(isinstance(i, sp.Symbol) for i in e.indices) for e in found)
    chosen = min((e for e in found if sum(isinstance(i, sp.Symbol) for i in e.indices) == best),
                 key=sp.default_sort_key).indices
    # an axis the chosen occurrence selects from with a literal takes an index that runs over it
    # elsewhere (X[j,1] beside X[1,k]): so that index's size is known from the input's shape
    others = sorted(found, key=sp.default_sort_key)
    return tuple(ix if isinstance(ix, sp.Symbol) else
                 next((e.indices[axis] for e in others if isinstance(e.indices[axis], sp.Symbol)), ix)
                 for axis, ix in enumerate(chosen))


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
            if not isinstance(ix, sp.Symbol) or ix == UNIT:  # a literal, `_`, or a gather t[i] (its own axis)
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
    for n, m in spec.extra_aliases:
        a, b = find(m), find(n)
        if a != b:
            if b in out and a not in out:
                a, b = b, a
            parent[b] = a
    return {n: find(n) for n in parent}
