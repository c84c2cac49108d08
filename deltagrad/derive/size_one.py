"""Axes of size one, written ``_`` on the right of a spec: ``Y[i,j] = X[i,_,j]`` is a squeeze.

The chain rule gives ``dX[a,b,c] = G[a,c]*delta(_,b)``: on an axis of size one ``b`` takes only
the value ``_`` stands for, so the gradient reads ``dX[a,_,c] = G[a,c]`` and is lowered as a new
axis (``goutput[:, None, :]``), not as a one-hot row. A literal ``X[i,0,j]`` instead selects
entry 0 of an axis of any size, and its gradient keeps ``delta(0,b)``.

>>> from deltagrad.derive.derivation import derive
>>> d = derive("Y[i,j] = X[i,_,j]")
>>> d.grads["X"], gradient_target(d.spec, "X", d.steps["X"].indices)
(G[a, c], (a, 0, c))
"""

from __future__ import annotations

from dataclasses import replace

import sympy as sp

from deltagrad.derive.spec import UNIT, Spec, unit_axes
from deltagrad.errors import SpecError


def on_unit_axes(spec: Spec, steps: dict) -> dict:
    """Each input's steps with its gradient indices at axes of size one set to ``_`` (after
    the chain rule, whose deltas show where they come from)."""
    units = unit_axes(spec.rhs)
    out = dict(steps)
    for name, axes in units.items():
        st = steps[name]
        at = {st.indices[axis]: UNIT for axis in axes}
        out[name] = replace(st, eliminated=st.eliminated.xreplace(at), simplified=st.simplified.xreplace(at),
                            final=st.final.xreplace(at))
    return out


def gradient_target(spec: Spec, name: str, indices: tuple) -> tuple:
    """The gradient's indices for lowering: 0 (a new axis of size one) at the axes of size one."""
    axes = unit_axes(spec.rhs).get(name, ())
    return tuple(sp.Integer(0) if axis in axes else ix for axis, ix in enumerate(indices))


def refuse_in_program(spec: Spec) -> None:
    """A program's steps do not take ``_`` yet (their reverse mode does not know it)."""
    if unit_axes(spec.rhs):
        raise SpecError("an axis of size one (_) is not supported in a program of several steps yet: "
                        "squeeze it in an op of its own")


def shown_indices(spec: Spec, name: str, indices: tuple) -> tuple:
    """The gradient's indices as printed on its left side: ``_`` at the axes of size one
    (``dX[a,_,c]``).

    >>> from deltagrad.derive.derivation import derive
    >>> d = derive("Y[i,j] = X[i,_,j]")
    >>> shown_indices(d.spec, "X", d.steps["X"].indices)
    (a, _, c)
    """
    axes = unit_axes(spec.rhs).get(name, ())
    return tuple(UNIT if axis in axes else ix for axis, ix in enumerate(indices))
