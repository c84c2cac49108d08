"""The hint for a claim or an Op class that is right only when an axis has size one.

``Y[i,j] = X[i,0,j]`` selects entry 0 of an axis of any size, so its gradient is one-hot along
that axis; a squeeze's gradient ``dX[a,_,c] = G[a,c]`` is right only for ``Y[i,j] = X[i,_,j]``,
the spec of an axis of size one. When a check fails on the literal spec, it is tried again on
the spec with ``_`` at each literal 0, and if it passes there the verdict says so.

>>> from deltagrad import derive
>>> spec, axes = size_one_spec(derive("Y[i,j] = X[i,0,j]").spec)
>>> spec.rhs, axes
(X[i, _, j], {'X': (1,)})
"""

from __future__ import annotations

from dataclasses import replace

import sympy as sp

from deltagrad.check.verdict import Diagnosis
from deltagrad.codegen.index_printer import index_text
from deltagrad.derive.spec import UNIT, input_pattern


def size_one_spec(spec):
    """(the spec with ``_`` at every input axis read only at index 0, those axes by input);
    (None, {}) when there is none."""
    zero, other = set(), set()
    for e in sp.preorder_traversal(spec.rhs):
        if isinstance(e, sp.Indexed):
            for axis, ix in enumerate(e.indices):
                (zero if ix == 0 and ix.is_Integer else other).add((e.base.label.name, axis))
    axes = sorted(zero - other)
    if not axes:
        return None, {}

    def rewrite(e):
        if isinstance(e, sp.Indexed):
            name = e.base.label.name
            return e.base[tuple(UNIT if (name, n) in axes else ix for n, ix in enumerate(e.indices))]
        if not e.args:
            return e
        return e.func(*[rewrite(a) for a in e.args])

    found: dict = {}
    for name, axis in axes:
        found[name] = found.get(name, ()) + (axis,)
    return replace(spec, rhs=rewrite(spec.rhs)), found


def size_one_derivation(d):
    """(the derivation of ``d``'s spec with ``_`` at its literal-0 axes, the hint's diagnosis),
    or (None, None) when it has none or it cannot be derived."""
    from deltagrad.api import derive  # the check layer sits above the API

    spec, axes = size_one_spec(d.spec)
    if spec is None or d.statements:
        return None, None
    try:
        d1 = derive(spec)
    except Exception:  # noqa: BLE001 - no hint is better than a failure here
        return None, None
    return d1, size_one_diagnosis(spec, axes)


def size_one_diagnosis(spec, axes: dict) -> Diagnosis:
    """'size_one': which axes must have size one, and how the spec writes that.

    >>> from deltagrad import derive
    >>> spec, axes = size_one_spec(derive("Y[i,j] = X[i,0,j]").spec)
    >>> size_one_diagnosis(spec, axes).params
    {'axes': (('X', 1),), 'written': ('X[i,_,j]',), 'squeeze': True}
    """
    pairs = tuple((name, axis) for name, found in axes.items() for axis in found)
    written = tuple(index_text(sp.IndexedBase(name)[input_pattern(spec, name)]) for name in axes)
    squeeze = len(spec.free_indices) < sum(len(input_pattern(spec, name)) for name in axes) and len(axes) == 1
    return Diagnosis("size_one", {"axes": pairs, "written": written, "squeeze": squeeze})
