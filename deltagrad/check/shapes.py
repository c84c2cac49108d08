"""Do a claim's indices fit the shapes of the arrays they index? Each index of a claim must run
over one kind of axis (one size class of the spec), and each index on the left over the axis of
the input it stands for. ``dX[a,b] = Sum(G[a,j]*W[j,b], j)`` for ``Y = XW`` fails twice: ``j``
indexes an axis of G's second kind and one of W's first, and ``b`` runs over W's second axis,
not X's. Such a claim cannot be evaluated (its arrays do not line up), so it is judged here,
by its indices alone, and the fix is named where one transposed entry explains it.

>>> from deltagrad import derive
>>> from deltagrad.derive.spec import index, tensor
>>> d = derive("Y[i,j] = Sum(X[i,k]*W[k,j], k)")
>>> a, b, j = index('a'), index('b'), index('j')
>>> G, W = tensor('G'), tensor('W')
>>> from deltagrad.derive.spec import summed
>>> fit = IndexFit(d, "X", (a, b), "G")
>>> fit.score(summed(G[a, j] * W[j, b], j)), fit.score(summed(G[a, j] * W[b, j], j))
(2, 0)
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import sympy as sp

from deltagrad.derive.spec import extent, index, index_aliases, input_pattern, is_index


@dataclass(frozen=True)
class Axis:
    """The kind of one axis of a named array: ``key`` identifies its size class; ``label`` is
    how it reads (a spec index name such as ``k``, or ``X's axis 2`` for a literal-index axis)."""

    key: tuple
    label: str


@dataclass(frozen=True)
class Use:
    """Index ``var`` (its name and its scope: 0 for the left side's, n for the n-th Sum) standing
    at axis ``axis`` of ``node``, an axis of kind ``kind``."""

    var: tuple
    kind: Axis
    node: sp.Indexed
    axis: int


def axis_kinds(d, grad_name: str) -> dict:
    """Name → the kinds of its axes, for every array a claim may index: the inputs, the output
    gradient, the output and the forward's saved values."""
    spec = d.spec
    aliases = index_aliases(spec)

    def kind(ix, owner, pos):
        if is_index(ix):
            return Axis(("index", aliases.get(ix.name, ix.name)), ix.name)
        return Axis(("axis", owner, pos), f"{owner}'s axis {pos + 1}")

    kinds = {inp.name: tuple(kind(ix, inp.name, p) for p, ix in enumerate(input_pattern(spec, inp.name)))
             for inp in spec.inputs}
    out = tuple(kind(ix, spec.output, p) for p, ix in enumerate(spec.out_indices))
    kinds[spec.output] = kinds[grad_name] = out
    for r in (*d.values.reductions, *d.values.maxima):
        kinds.setdefault(r.name, tuple(kind(ix, r.name, p) for p, ix in enumerate(r.indices)))
    return kinds


def class_extent(d, kind: Axis):
    """The extent symbol of a kind of axis (None for a literal-index axis)."""
    return extent(index(kind.key[1])) if kind.key[0] == "index" else None


class IndexFit:
    """How the indices of right sides fit one input's gradient ``d{input}[lhs]``."""

    def __init__(self, d, input_name: str, lhs: tuple, grad_name: str):
        self.d = d
        self.input = input_name
        self.lhs = tuple(lhs)
        self.grad_name = grad_name
        self.kinds = axis_kinds(d, grad_name)
        self.expected = {(v, 0): k for v, k in zip(self.lhs, self.kinds[input_name])}

    def uses(self, expr) -> list:
        """Every index standing at an axis of a named array in ``expr``, with its scope."""
        return self._walk(expr)[0]

    def deltas(self, expr) -> list:
        """(first index, second index, the delta) for each ``delta(a,b)`` of two indices."""
        return self._walk(expr)[1]

    def _walk(self, expr):
        out, deltas = [], []
        counter = itertools.count(1)

        def walk(e, scope):
            if isinstance(e, sp.Sum):
                inner = dict(scope)
                for lim in e.limits:
                    inner[lim[0]] = next(counter)
                walk(e.function, inner)
                return
            if isinstance(e, sp.Indexed):
                kinds = self.kinds.get(e.base.label.name, ())
                for axis, ix in enumerate(e.indices):
                    if is_index(ix) and axis < len(kinds):
                        out.append(Use((ix, scope.get(ix, 0)), kinds[axis], e, axis))
                return
            if isinstance(e, sp.KroneckerDelta) and all(is_index(a) for a in e.args):
                deltas.append(((e.args[0], scope.get(e.args[0], 0)), (e.args[1], scope.get(e.args[1], 0)), e))
                return
            for a in e.args:
                walk(a, scope)

        walk(expr, {})
        return out, deltas

    def kinds_of(self, uses) -> dict:
        """Index (name, scope) → the kinds of axes it stands at, in order of first use."""
        found: dict = {}
        for u in uses:
            seen = found.setdefault(u.var, [])
            if u.kind.key not in [k.key for k in seen]:
                seen.append(u.kind)
        return found

    def problems(self, expr) -> tuple:
        """(indices at axes of two kinds, left indices at the wrong kind of axis, deltas of
        two indices over axes of different kinds)."""
        uses, deltas = self._walk(expr)
        found = self.kinds_of(uses)
        mixed = [v for v, ks in found.items() if len(ks) > 1]
        wrong = [v for v, want in self.expected.items()
                 if v in found and len(found[v]) == 1 and found[v][0].key != want.key]

        def kind(v):
            ks = found.get(v) or ([self.expected[v]] if v in self.expected else [])
            return ks[0] if len(ks) == 1 else None

        unequal = [e for v, w, e in deltas if kind(v) and kind(w) and kind(v).key != kind(w).key]
        return mixed, wrong, unequal

    def score(self, expr) -> int:
        """How many indices do not fit: 0 when the claim's shape is the input's."""
        return sum(len(found) for found in self.problems(expr))

    def unequal_delta(self, expr):
        """(the delta, label of its first index's axis, of its second's) for a delta of
        indices over axes of different kinds; None when there is none."""
        uses, deltas = self._walk(expr)
        found = self.kinds_of(uses)
        for v, w, e in deltas:
            kv = found.get(v) or ([self.expected[v]] if v in self.expected else [])
            kw = found.get(w) or ([self.expected[w]] if w in self.expected else [])
            if len(kv) == 1 and len(kw) == 1 and kv[0].key != kw[0].key:
                return e, kv[0].label, kw[0].label
        return None

    def fits(self, expr) -> bool:
        return self.score(expr) == 0

    def self_consistent(self, expr) -> bool:
        """True when every index runs over one kind of axis (the claim has a shape of its own)."""
        return not self.problems(expr)[0]

    def claim_shape(self, expr) -> tuple:
        """The kinds of axis the left indices run over (the input's own where unused)."""
        found = self.kinds_of(self.uses(expr))
        return tuple(found.get((v, 0), [self.expected[(v, 0)]])[0] for v in self.lhs)

    def transposed_entries(self, expr, rounds: int = 3):
        """[(entry, fixed entry), ...] whose index order, changed, makes ``expr`` fit; None if
        no such change of at most ``rounds`` entries does."""
        current, fixes = expr, []
        for _ in range(rounds):
            score = self.score(current)
            if score == 0:
                return fixes
            mixed, wrong, _ = self.problems(current)
            bad = set(mixed) | set(wrong)
            best = None
            # the output gradient last: a transposed entry is more often an input's
            nodes = sorted({u.node for u in self.uses(current) if u.var in bad},
                           key=lambda n: (n.base.label.name == self.grad_name, sp.default_sort_key(n)))
            for node in nodes:
                n = len(node.indices)
                if n < 2 or n > 4:
                    continue
                for perm in itertools.permutations(range(n)):
                    if perm == tuple(range(n)):
                        continue
                    swapped = node.base[tuple(node.indices[p] for p in perm)]
                    if swapped == node:
                        continue
                    candidate = current.xreplace({node: swapped})
                    s = self.score(candidate)
                    if s < score and (best is None or s < best[0]):
                        best = (s, node, swapped, candidate)
            if best is None:
                return None
            fixes.append((best[1], best[2]))
            current = best[3]
        return fixes if self.score(current) == 0 else None

    def whole_transpose(self, expr):
        """``expr`` with the two left indices swapped, when the gradient is a matrix."""
        if len(self.lhs) != 2:
            return None
        a, b = self.lhs
        return expr.xreplace({a: b, b: a})

    def mixed_index(self, expr):
        """(index name, [(array, axis number, kind label), ...]) for the first index that
        stands at axes of two kinds; None when there is none."""
        uses = self.uses(expr)
        mixed = self.problems(expr)[0]

        if not mixed:
            return None
        var = mixed[0]
        seen, where = set(), []
        for u in uses:
            if u.var == var and u.kind.key not in seen:
                seen.add(u.kind.key)
                where.append((u.node.base.label.name, u.axis + 1, u.kind.label))
        return var[0].name, where


__all__ = ["Axis", "IndexFit", "Use", "axis_kinds", "class_extent"]
