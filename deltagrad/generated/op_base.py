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

__all__ = ["Op", "ShapeError", "array_namespace", "check_shapes", "put_along", "scatter_add"]


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
    literal) per axis, ``()`` for a scalar. ``given`` holds sizes passed as keyword arguments.

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


def scatter_add(xp, index, values, size: int):
    """Zeros of ``size`` rows (and the trailing shape of ``values``) with row ``values[n]`` added
    at row ``index[n]``, repeated indices adding up: the backward of a gather (an embedding).

    NumPy uses ``numpy.add.at``, CuPy ``cupyx.scatter_add``, PyTorch ``index_add``, JAX
    ``.at[].add``; any other array-API namespace a one-hot matrix product.

    >>> import numpy as np
    >>> scatter_add(np, np.array([2, 0, 2]), np.array([[1.0], [2.0], [3.0]]), 4).tolist()
    [[2.0], [0.0], [4.0], [0.0]]
    """
    shape = (size, *values.shape[1:])
    kind = type(values).__module__.split(".")[0]
    if kind == "numpy":
        import numpy

        out = numpy.zeros(shape, dtype=values.dtype)
        numpy.add.at(out, index, values)
        return out
    if kind == "cupy":  # pragma: no cover - needs a GPU
        import cupyx

        out = xp.zeros(shape, dtype=values.dtype)
        cupyx.scatter_add(out, index, values)
        return out
    if kind == "torch":
        return xp.zeros(shape, dtype=values.dtype, device=values.device).index_add(0, index, values)
    if kind in ("jax", "jaxlib"):
        return xp.zeros(shape, dtype=values.dtype).at[index].add(values)
    onehot = xp.astype(xp.arange(size)[:, None] == index[None, :], values.dtype)
    flat = xp.reshape(values, (values.shape[0], -1))
    return xp.reshape(onehot @ flat, shape)


def put_along(xp, index, values, size: int):
    """Zeros of shape ``index.shape + (size,)`` with ``values`` (of ``index``'s shape) put at
    position ``index[...]`` of the last axis: the backward of ``X[i, t[i]]`` (a one-hot row times
    a value). NumPy uses ``put_along_axis``, PyTorch ``scatter``; others a ``where``.

    >>> import numpy as np
    >>> put_along(np, np.array([2, 0]), np.array([5.0, 7.0]), 3).tolist()
    [[0.0, 0.0, 5.0], [7.0, 0.0, 0.0]]
    """
    kind = type(values).__module__.split(".")[0]
    if kind == "numpy":
        import numpy

        out = numpy.zeros((*index.shape, size), dtype=values.dtype)
        numpy.put_along_axis(out, index[..., None], values[..., None], axis=-1)
        return out
    if kind == "torch":
        out = xp.zeros((*index.shape, size), dtype=values.dtype, device=values.device)
        return out.scatter(-1, index[..., None], values[..., None])
    return xp.where(index[..., None] == xp.arange(size), values[..., None], 0)
