"""The little that generated ops need at run time: a base class and two helpers (part of deltagrad).

This file is written by hand as ``deltagrad/op_base.py``; ``deltagrad codegen`` copies it
verbatim into every generated package as ``op_base.py``. Generated modules import only this
file, so they can be dropped into a vugrad-style project. It depends on nothing but the array
libraries it is given: inside deltagrad it takes ``ShapeError`` from ``deltagrad.errors`` (one
class for the whole package), and elsewhere it defines its own.

>>> import numpy as np
>>> check_shapes("Matmul", ("i", "k", "j"), {"X": (np.ones((2, 3)), ("i", "k")), "W": (np.ones((3, 4)), ("k", "j"))})
(2, 3, 4)
"""

from __future__ import annotations

__all__ = ["Op", "ShapeError", "array_namespace", "check_shapes"]


class Op:
    """An operation with a static ``forward(context, *inputs)`` and ``backward(context, goutput)``.

    ``forward`` stores in the ``context`` dict exactly what ``backward`` reads; ``backward``
    returns one gradient per input, in input order, each with its input's shape. A caller may
    set ``context["needs_input_grad"]`` (one bool per input, as in PyTorch) before calling
    ``backward``; a gradient that is not needed is then not computed and comes back as None.
    """

    @staticmethod
    def forward(context, *inputs, **sizes):  # pragma: no cover - interface
        raise NotImplementedError

    @staticmethod
    def backward(context, goutput):  # pragma: no cover - interface
        raise NotImplementedError


if __name__.startswith("deltagrad."):  # deltagrad.op_base or deltagrad.generated.op_base
    from deltagrad.errors import ShapeError  # the one ShapeError of deltagrad
else:  # copied beside generated ops: import nothing of deltagrad, even where it is installed

    class ShapeError(ValueError):
        """Arrays whose shapes disagree with the op's index notation."""


def array_namespace(*values):
    """The array-API namespace of the first array among ``values``; NumPy when there is none.

    >>> import numpy as np
    >>> array_namespace(2.0, np.ones(3)) is np
    True
    """
    for v in values:
        if hasattr(v, "__array_namespace__"):
            return v.__array_namespace__()
    for v in values:
        mod = type(v).__module__.split(".")[0]
        if mod == "cupy":  # pragma: no cover - needs a GPU
            import cupy

            return cupy
    import numpy

    return numpy


def check_shapes(op: str, order: tuple, arrays: dict, given: dict | None = None) -> tuple:
    """The size of each index in ``order``, checked to agree across all ``arrays``.

    ``arrays`` maps an input's name to ``(value, pattern)``: one index name (or an integer
    literal, or ``"_"`` for an axis of size one) per axis, ``()`` for a scalar. ``given`` holds
    sizes passed as keyword arguments.

    >>> import numpy as np
    >>> check_shapes("Div", ("i", "j"), {"X": (np.ones((2, 3)), ("i", "j")), "Z": (np.ones((3, 2)), ("i", "j"))})
    ... # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ...
    ShapeError: Div: index 'i' has size 2 in X (axis 0) but 3 in Z (axis 0)
    """
    sizes: dict = {}
    seen: dict = {}
    for name, (value, pattern) in arrays.items():
        shape = tuple(getattr(value, "shape", ()))
        if len(shape) != len(pattern):
            want = "a scalar" if not pattern else f"rank {len(pattern)} ({', '.join(map(str, pattern))})"
            raise ShapeError(f"{op}: input {name} must be {want}, got shape {shape}")
        for axis, (ix, n) in enumerate(zip(pattern, shape)):
            if ix == "_":
                if n != 1:
                    raise ShapeError(f"{op}: input {name} axis {axis} has size {n}, but the spec writes _ there "
                                     "(an axis of size one)")
                continue
            if isinstance(ix, int):
                if n <= ix:
                    raise ShapeError(f"{op}: input {name} axis {axis} has size {n}, too small for index {ix}")
                continue
            if ix in sizes and sizes[ix] != n:
                raise ShapeError(f"{op}: index {ix!r} has size {sizes[ix]} in {seen[ix]} but {n} in {name} (axis {axis})")
            if ix not in sizes:
                sizes[ix], seen[ix] = n, f"{name} (axis {axis})"
    for ix, n in (given or {}).items():
        if n is None:
            continue
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ShapeError(f"{op}: size {ix}={n!r} must be a non-negative int")
        if ix in sizes and sizes[ix] != n:
            raise ShapeError(f"{op}: index {ix!r} has size {sizes[ix]} in {seen[ix]} but {ix}={n} was given")
        sizes[ix] = n
    missing = [ix for ix in order if ix not in sizes]
    if missing:
        raise ShapeError(f"{op}: the size of index {missing[0]!r} is not known: pass {missing[0]}=N")
    return tuple(sizes[ix] for ix in order)
