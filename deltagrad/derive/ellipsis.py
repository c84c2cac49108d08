"""``...`` in an index list: any number of leading axes shared by every tensor that carries it.

``Y[...] = X[...] / Z[...]`` and ``y[...,i] = Sum(X[...,i,k], k)`` hold at every rank. The
engine sees ``...`` as one index, :data:`ELLIPSIS`, that is never summed: the derivation, the
lowering and the printed rules treat it as a single axis (``dX[..., a, b] = G[..., a]``). The
generated op flattens the leading ``...`` axes of each input that carries it into that one
axis on the way in (a reshape, free for contiguous arrays) and restores them on the way out,
so one class serves every rank (rank 0 included, where ``...`` is the only index).

Rules (each a :class:`SpecError` when broken): ``...`` comes first in every index list that
has it; it is never summed; the output carries it exactly when an input does. At run time
every input that carries it must have the same leading shape (no broadcasting between them).

>>> from deltagrad.derive.parse import parse_spec
>>> s = parse_spec("y[...,i] = Sum(X[...,i,k], k)")
>>> s.out_indices, carriers(s)
((..., i), ('X',))
"""

from __future__ import annotations

import sympy as sp

from deltagrad.errors import SpecError

#: The index that stands for the ``...`` axes (printed ``...``; code names it ``batch``).
ELLIPSIS = sp.Symbol("...", integer=True)
#: The generated code's name for the flattened ``...`` axes (extents, check_shapes patterns).
CODE_NAME = "batch"


def is_ellipsis(ix) -> bool:
    """True for the ``...`` index.

    >>> is_ellipsis(ELLIPSIS), is_ellipsis(sp.Symbol("i", integer=True))
    (True, False)
    """
    return ix == ELLIPSIS


def has_ellipsis(spec) -> bool:
    """True when the spec's output carries ``...``.

    >>> from deltagrad.derive.parse import parse_spec
    >>> has_ellipsis(parse_spec("Y[...] = exp(X[...])")), has_ellipsis(parse_spec("Y[i] = exp(X[i])"))
    (True, False)
    """
    return any(is_ellipsis(i) for i in spec.out_indices)


def carriers(spec) -> tuple:
    """The inputs that carry ``...``, in input order."""
    carrying = {e.base.label.name for e in spec.rhs.atoms(sp.Indexed) if ELLIPSIS in e.indices}
    return tuple(i.name for i in spec.inputs if i.name in carrying)


def check_ellipsis(output: str, out_indices: tuple, rhs: sp.Expr, where: dict) -> None:
    """The rules of ``...`` (see the module's docstring); ``where`` holds columns for errors.

    >>> from deltagrad.derive.parse import parse_spec
    >>> parse_spec("Y[i,...] = X[i,...]")
    Traceback (most recent call last):
    ...
    deltagrad.errors.SpecError: column 1: '...' must come first in Y[i, ...]: it stands for the leading axes
    >>> parse_spec("Y[...,i] = W[i]")
    Traceback (most recent call last):
    ...
    deltagrad.errors.SpecError: column 1: the output Y carries '...' but no input does: its leading axes would be unknown
    """
    col = where.get(output)
    if ELLIPSIS in out_indices[1:]:
        raise SpecError(f"'...' must come first in {output}[{', '.join(map(str, out_indices))}]: "
                        "it stands for the leading axes", col)
    carried = False
    for e in sorted(rhs.atoms(sp.Indexed), key=sp.default_sort_key):
        if ELLIPSIS in e.indices:
            carried = True
            if e.indices[0] != ELLIPSIS:
                raise SpecError(f"'...' must come first in {e}: it stands for the leading axes",
                                where.get(e.base.label.name))
    for s in rhs.atoms(sp.Sum):
        if any(lim[0] == ELLIPSIS for lim in s.limits):
            raise SpecError("'...' is never summed: sum over named indices only", col)
    named = {ix.name for ix in (*out_indices, *rhs.free_symbols) if isinstance(ix, sp.Symbol)}
    if (carried or ELLIPSIS in out_indices) and "batch" in named:
        raise SpecError("with '...' the name 'batch' is taken (n_batch is the size of the flattened '...' axes); "
                        "rename it", where.get("batch"))
    if ELLIPSIS in out_indices and not carried:
        raise SpecError(f"the output {output} carries '...' but no input does: its leading axes would be unknown", col)


def flat_rank(pattern: tuple) -> int:
    """The number of named axes after ``...`` in an input's pattern (``...`` itself left out).

    >>> flat_rank(("batch", "i", "k")), flat_rank(("batch",))
    (2, 0)
    """
    return len(pattern) - 1


def with_ellipsis_gradients(steps: dict, spec) -> dict:
    """Each step of an input that carries ``...`` with its gradient's first index renamed to
    ``...`` (the chain rule gives it a fresh name, as it does every gradient index; the deltas
    have removed the output's ``...`` by then, so the rename captures nothing); the other
    gradient indices move down one letter (``dX[...,a,b]``). In the chain-rule and partial
    forms, where the output's ``...`` is still summed, that sum runs over the freed last name
    and a delta sets it to ``...``.
    """
    from dataclasses import replace

    out = dict(steps)
    for name in carriers(spec):
        if name not in steps:  # an integer input (t in X[..., t[...]]) gets no gradient
            continue
        st = steps[name]
        idx = st.indices
        # (a, b, c) -> (..., a, b): the named axes keep the first letters
        shift = {idx[0]: ELLIPSIS, **{idx[k]: idx[k - 1] for k in range(1, len(idx))}}
        both = {**shift, ELLIPSIS: idx[-1]}
        out[name] = replace(st, indices=(ELLIPSIS, *idx[:-1]), partial=st.partial.xreplace(both),
                            chain_rule=st.chain_rule.xreplace(both), eliminated=st.eliminated.xreplace(shift),
                            simplified=st.simplified.xreplace(shift), final=st.final.xreplace(shift))
    return out
