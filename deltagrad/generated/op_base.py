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

__all__ = ["Op", "ShapeError", "array_namespace", "check_shapes", "flat_batch", "flatten_batch", "put_along",
           "scatter_add", "special", "unflatten_batch", "unwindow", "window_count", "windows"]


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


def flatten_batch(op: str, arrays: dict) -> tuple:
    """The shared leading ``...`` shape of ``arrays``, and each array with those axes flattened
    into one (a spec with ``...``: one op for every rank).

    ``arrays`` maps an input's name to ``(value, n)``: ``n`` is the number of named axes after
    ``...``. Every input must have the same leading shape (no broadcasting between them).

    >>> import numpy as np
    >>> batch, (x,) = flatten_batch("RowSum", {"X": (np.ones((2, 3, 4)), 1)})
    >>> batch, x.shape
    ((2, 3), (6, 4))
    >>> flatten_batch("Div", {"X": (np.ones((2, 3)), 0), "Z": (np.ones((3, 2)), 0)})
    ... # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ...
    ShapeError: Div: the '...' axes of Z have shape (3, 2) but those of X (2, 3); they must be equal
    """
    batch = first = None
    flat = []
    for name, (value, n) in arrays.items():
        if not hasattr(value, "reshape"):  # a Python number: a 0-d array
            import numpy

            value = numpy.asarray(value)
        shape = tuple(value.shape)
        if len(shape) < n:
            raise ShapeError(f"{op}: input {name} must have at least {n} axes ('...' and {n} more), got shape {shape}")
        lead = shape[: len(shape) - n]
        if batch is None:
            batch, first = lead, name
        elif lead != batch:
            raise ShapeError(f"{op}: the '...' axes of {name} have shape {lead} but those of {first} {batch}; "
                             "they must be equal")
        flat.append(value.reshape((_product(lead),) + shape[len(shape) - n:]))
    return batch, tuple(flat)


def unflatten_batch(value, batch: tuple):
    """``value`` (its first axis the flattened ``...`` axes) with the ``...`` shape ``batch`` restored;
    None stays None (a gradient that was not asked for).

    >>> import numpy as np
    >>> unflatten_batch(np.ones((6, 4)), (2, 3)).shape
    (2, 3, 4)
    """
    if value is None:
        return None
    return value.reshape(tuple(batch) + tuple(value.shape[1:]))


def flat_batch(value, batch: tuple):
    """``value`` with its leading ``...`` axes (of shape ``batch``) flattened into one.

    >>> import numpy as np
    >>> flat_batch(np.ones((2, 3, 4)), (2, 3)).shape
    (6, 4)
    """
    return value.reshape((_product(batch),) + tuple(value.shape[len(batch):]))


def merge_axes(value, groups: tuple):
    """``value`` with the axes of each group merged into one, row-major (``((0,), (1, 2, 3))``
    flattens ``[b, c, i, j]`` to ``[b, c·i·j]``): the output of a spec such as ``Y[b,(c,i,j)]``.

    >>> import numpy as np
    >>> merge_axes(np.ones((2, 3, 4, 5)), ((0,), (1, 2, 3))).shape
    (2, 60)
    """
    return _reshape(value, tuple(_product(value.shape[p] for p in group) for group in groups))


def split_axes(value, shape: tuple):
    """``value`` (merged axes, see :func:`merge_axes`) with the axes of ``shape`` again: the
    gradient of a merged output, read the way the derivation reads the output.

    >>> import numpy as np
    >>> split_axes(np.ones((2, 60)), (2, 3, 4, 5)).shape
    (2, 3, 4, 5)
    """
    return _reshape(value, tuple(shape))


def _reshape(value, shape: tuple):
    """NumPy's, CuPy's, torch's and JAX's ``.reshape``, or the array API's ``reshape``."""
    method = getattr(value, "reshape", None)
    return method(shape) if method is not None else array_namespace(value).reshape(value, shape)


def _product(sizes) -> int:
    out = 1
    for n in sizes:
        out *= int(n)
    return out


class _Special:
    """The element-wise functions the array API lacks, for one array namespace ``xp``."""

    def __init__(self, xp):
        self.xp = xp

    def _scipy(self):
        """SciPy's ``special`` module for ``xp`` (imported on first use: only ops that call erf need it)."""
        name = getattr(self.xp, "__name__", "")
        try:
            if name.startswith("cupy"):  # pragma: no cover - needs a GPU
                import cupyx.scipy.special as module
            elif name.startswith("jax"):
                import jax.scipy.special as module
            elif name.startswith("torch"):
                import torch.special as module
            else:
                import scipy.special as module
        except ImportError:
            raise ImportError("erf and erfc on NumPy arrays need SciPy: pip install scipy") from None
        return module

    def erf(self, x):
        """The error function."""
        return (getattr(self.xp, "erf", None) or self._scipy().erf)(x)

    def erfc(self, x):
        """The complementary error function ``1 - erf(x)``, exact where erf is near 1."""
        return (getattr(self.xp, "erfc", None) or self._scipy().erfc)(x)

    def sigmoid(self, x):
        """``1 / (1 + exp(-x))`` as ``exp(-logaddexp(0, -x))``: no overflow, exact in both tails."""
        xp = self.xp
        return xp.exp(-xp.logaddexp(xp.zeros_like(x), -x))


def special(xp) -> _Special:
    """erf, erfc and sigmoid for the array namespace ``xp`` (NumPy's erf is SciPy's, CuPy's
    ``cupyx.scipy.special``'s, imported on first use).

    >>> import numpy as np
    >>> float(special(np).sigmoid(np.float64(0.0))), float(special(np).erf(np.float64(0.0)))
    (0.5, 0.0)
    """
    return _Special(xp)


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


# -- windows: the run time of index arithmetic (X[b,c,2*i+p,2*j+q]) ---------------------------------
# ``axes`` holds one (axis, count, window, stride, dilation, offset) per windowed axis: position
# stride*i + dilation*p + offset for i < count and p < window (window None: no window axis).


def window_count(op: str, index: str, reads: tuple, known=None) -> int:
    """How many positions index ``index`` runs over: the most where every read is in range.

    ``reads`` holds one (tensor, axis, size, window, stride, dilation, offset) per access;
    ``known``, when the index's size is known from elsewhere, is checked instead.

    >>> window_count("Conv", "i", (("X", 0, 10, 3, 1, 1, 0),))
    8
    >>> window_count("Pool", "i", (("X", 0, 5, 2, 2, 1, 0),))
    2
    """
    best = None
    for tensor, axis, size, window, stride, dilation, offset in reads:
        if window is not None and window < 1:
            raise ShapeError(f"{op}: a window of size {window} along axis {axis} of {tensor} is empty")
        span = 1 if window is None else dilation * (window - 1) + 1
        count = (size - offset - span) // stride + 1
        if count < 1:
            raise ShapeError(f"{op}: axis {axis} of {tensor} has size {size}, too small for a window of "
                             f"{span} (with offset {offset}): index {index!r} would have no position")
        if known is not None and known > count:
            raise ShapeError(f"{op}: index {index!r} has size {known}, but axis {axis} of {tensor} "
                             f"(size {size}) has room for {count} positions")
        best = count if best is None else min(best, count)
    return best if known is None else known


def _stop(offset, count, stride):
    return offset + stride * (count - 1) + 1


def windows(x, axes, order=None):
    """A view of ``x`` with each windowed axis cut to its ``count`` window starts and the
    positions inside each window appended as new last axes (NumPy/CuPy: a strided view, no copy;
    PyTorch: ``Tensor.unfold``; other array-API libraries: one ``take`` per axis). With
    ``order``, those axes permuted, as one contiguous array (the im2col matrix, copied once).
    NumPy/CuPy windows no longer than their stride (pooling) are copied once, window axes
    outermost in memory, so that reductions over them are fast; the values are the same.

    >>> import numpy as np
    >>> windows(np.arange(6), ((0, 2, 3, 2, 1, 0),)).tolist()
    [[0, 1, 2], [2, 3, 4]]
    >>> windows(np.arange(6), ((0, 2, 3, 2, 1, 0),), (1, 0)).tolist()
    [[0, 2], [1, 3], [2, 4]]
    """
    view = _windows(x, axes)
    mod = type(view).__module__.split(".")[0]
    if order is None:
        if mod in ("numpy", "cupy") and _apart(axes):
            return _window_major(__import__(mod), view, x.ndim)
        return view
    if mod in ("numpy", "cupy"):
        return __import__(mod).ascontiguousarray(view.transpose(order))
    if mod == "torch":
        return view.permute(order).contiguous()
    return array_namespace(view).permute_dims(view, tuple(order))


def _apart(axes):
    """Whether no window is longer than its stride (pooling): a copy is then no bigger than the input."""
    return all(w is None or s >= w for a, c, w, s, d, o in axes)


def _window_major(lib, view, ndim):
    """``view`` copied with its window axes outermost, then viewed back in its own axis order:
    the same values, but a reduction over the window axes becomes a few whole-array elementwise
    passes (NumPy reduces over outer axes fast, over short strided inner ones slowly)."""
    inner = tuple(range(ndim, view.ndim))
    copy = lib.ascontiguousarray(view.transpose(inner + tuple(range(ndim))))
    return copy.transpose(tuple(range(len(inner), view.ndim)) + tuple(range(len(inner))))


def _windows(x, axes):
    mod = type(x).__module__.split(".")[0]
    if mod in ("numpy", "cupy"):
        lib = __import__(mod)
        with_window = [(a, (w - 1) * d + 1) for a, c, w, s, d, o in axes if w is not None]
        view = x
        if with_window:
            view = lib.lib.stride_tricks.sliding_window_view(
                x, tuple(span for _, span in with_window), axis=tuple(a for a, _ in with_window))
        key = [slice(None)] * x.ndim
        for a, c, w, s, d, o in axes:
            key[a] = slice(o, _stop(o, c, s), s)
        key += [slice(None, None, d) for a, c, w, s, d, o in axes if w is not None]
        return view[tuple(key)]
    if mod == "torch":  # Tensor.unfold: a strided view, windows appended in the order of the axes
        view = x
        for a, c, w, s, d, o in axes:
            if w is not None:
                view = view.unfold(a, (w - 1) * d + 1, 1)
        key = [slice(None)] * x.ndim
        for a, c, w, s, d, o in axes:
            key[a] = slice(o, _stop(o, c, s), s)
        key += [slice(None, None, d) for a, c, w, s, d, o in axes if w is not None]
        return view[tuple(key)]
    xp = array_namespace(x)
    out, ndim = x, x.ndim
    for a, c, w, s, d, o in axes:
        starts = xp.arange(c) * s + o
        if w is None:
            out = xp.take(out, starts, axis=a)
            continue
        idx = xp.reshape(starts[:, None] + xp.arange(w)[None, :] * d, (-1,))
        out = xp.take(out, idx, axis=a)
        shape = tuple(out.shape)
        out = xp.reshape(out, shape[:a] + (c, w) + shape[a + 1:])
        perm = [k for k in range(out.ndim) if k != a + 1] + [a + 1]
        out = xp.permute_dims(out, tuple(perm))
    del ndim
    return out


def unwindow(shape, *pairs):
    """The gradient of an input from the gradients of its windowed views: each ``(grad, axes,
    order)`` triple (``order`` as given to :func:`windows`, or None) is scattered back, one strided
    add per position in the window (never per element).

    >>> import numpy as np
    >>> unwindow((6,), np.ones((2, 3)), ((0, 2, 3, 2, 1, 0),), None).tolist()
    [1.0, 1.0, 2.0, 1.0, 1.0, 0.0]
    """
    import itertools

    first = pairs[0]
    mod = type(first).__module__.split(".")[0]
    if mod in ("numpy", "cupy") and len(pairs) == 3 and pairs[2] is not None:
        return _unwindow_major(__import__(mod), shape, *pairs)
    if mod in ("numpy", "cupy") and len(pairs) == 3 and _tiled(pairs[1]):
        return _unwindow_tiled(__import__(mod), shape, *pairs[:2])
    if mod == "torch":
        out = first.new_zeros(tuple(shape))
    else:
        out = array_namespace(first).zeros(tuple(shape), dtype=first.dtype)
    for grad, axes, order in zip(pairs[0::3], pairs[1::3], pairs[2::3]):
        if order is not None:  # back to the windows' own layout
            inverse = tuple(sorted(range(len(order)), key=order.__getitem__))
            mod = type(grad).__module__.split(".")[0]
            grad = grad.transpose(inverse) if mod in ("numpy", "cupy") else (
                grad.permute(inverse) if mod == "torch" else array_namespace(grad).permute_dims(grad, inverse))
        ranges = [range(w) for a, c, w, s, d, o in axes if w is not None]
        for position in itertools.product(*ranges):
            key = _position_key(len(shape), axes, position)
            part = grad[(Ellipsis, *position)] if position else grad
            if hasattr(out, "at"):  # JAX: arrays are immutable
                out = out.at[key].add(part)
            elif type(out).__module__.split(".")[0] == "torch":  # out of place, so autograd sees every add
                out = _torch_add(out, key, part)
            else:
                out[key] += part
    return out


def _position_key(ndim: int, axes, position) -> tuple:
    """The slices of an input's ``ndim`` axes that window ``position`` (one offset per windowed
    axis) reads: its entries at every window start."""
    key = [slice(None)] * ndim
    inside = iter(position)
    for a, c, w, s, d, o in axes:
        start = o + (d * next(inside) if w is not None else 0)
        key[a] = slice(start, _stop(start, c, s), s)
    return tuple(key)


def _tiled(axes):
    """Whether the windows tile their axes: each as long as its stride, undilated, from 0 (2×2
    pooling with stride 2), so that no two windows share an element."""
    return all(w is not None and s == w and d == 1 and o == 0 for a, c, w, s, d, o in axes)


def _unwindow_tiled(lib, shape, grad, axes):
    """:func:`unwindow` of windows that tile their axes (NumPy/CuPy): no two windows share an
    element, so each window position is assigned, not added, into an uninitialised array; only
    the rows and columns that no window reaches (an odd size) are zeroed.

    >>> import numpy as np
    >>> _unwindow_tiled(np, (5,), np.arange(4.0).reshape(2, 2), ((0, 2, 2, 2, 1, 0),)).tolist()
    [0.0, 1.0, 2.0, 3.0, 0.0]
    """
    import itertools

    out = lib.empty(tuple(shape), dtype=grad.dtype)
    for a, c, w, s, d, o in axes:
        if c * s < shape[a]:  # the tail no window covers
            tail = [slice(None)] * len(shape)
            tail[a] = slice(c * s, None)
            out[tuple(tail)] = 0
    for position in itertools.product(*[range(w) for a, c, w, s, d, o in axes]):
        out[_position_key(len(shape), axes, position)] = grad[(Ellipsis, *position)]
    return out


def _unwindow_major(lib, shape, grad, axes, order):
    """:func:`unwindow` of one im2col gradient (NumPy/CuPy): the gradient copied once with the
    window positions outermost, then the windowed axes, and added into an output laid out with the
    windowed axes first, so that each position's add runs over long contiguous stretches. The same
    adds in the same order as the general path, so the same values."""
    import itertools

    ndim = len(shape)
    inverse = tuple(sorted(range(len(order)), key=order.__getitem__))
    grad = grad.transpose(inverse)  # the windows' own layout: x's axes, then the window positions
    keyed = [a for a, c, w, s, d, o in axes]
    rest = [a for a in range(ndim) if a not in keyed]
    positions = tuple(range(ndim, grad.ndim))
    grad = lib.ascontiguousarray(grad.transpose(positions + tuple(keyed) + tuple(rest)))
    layout = keyed + rest
    out = lib.zeros(tuple(shape[a] for a in layout), dtype=grad.dtype)
    for position in itertools.product(*[range(w) for a, c, w, s, d, o in axes if w is not None]):
        key, inside = [], iter(position)
        for a, c, w, s, d, o in axes:
            start = o + (d * next(inside) if w is not None else 0)
            key.append(slice(start, _stop(start, c, s), s))
        out[tuple(key)] += grad[position]
    return lib.ascontiguousarray(out.transpose(tuple(sorted(range(ndim), key=layout.__getitem__))))


def _torch_add(out, key, part):
    """``out`` with ``part`` added at the strided slice ``key`` (torch: through a padded copy, so
    that double backward sees an out-of-place op)."""
    import torch

    mask = torch.zeros_like(out)
    mask[tuple(key)] = part
    return out + mask
