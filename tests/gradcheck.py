"""Central finite differences in float64: the independent check of every derived rule."""

from __future__ import annotations

import numpy as np


def is_integer(a) -> bool:
    """An integer array: the indices of a gather, held fixed (no gradient, no finite differences)."""
    return isinstance(a, np.ndarray) and a.dtype.kind in "iu"


def numeric_grads(reference, arrays, goutput, eps=1e-6):
    """d/d(input) of sum(goutput * reference(*arrays)) for each input, by central differences;
    None for an integer input (the indices of a gather)."""
    arrays = [a if is_integer(a) else np.array(a, dtype=np.float64) if np.ndim(a) else float(a) for a in arrays]
    grads = []
    for n, a in enumerate(arrays):
        if is_integer(a):
            grads.append(None)
            continue
        if np.ndim(a) == 0:
            def f(v, n=n):
                args = list(arrays)
                args[n] = v
                return float(np.sum(goutput * reference(*args)))
            grads.append(np.array((f(a + eps) - f(a - eps)) / (2 * eps)))
            continue
        g = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            plus, minus = a.copy(), a.copy()
            plus[idx] += eps
            minus[idx] -= eps
            args_p = list(arrays)
            args_p[n] = plus
            args_m = list(arrays)
            args_m[n] = minus
            g[idx] = (np.sum(goutput * reference(*args_p)) - np.sum(goutput * reference(*args_m))) / (2 * eps)
        grads.append(g)
    return grads


def check_op(op, reference, arrays, sizes=None, rtol=1e-6, atol=1e-7, seed=0):
    """Run ``op`` forward and backward and compare with ``reference`` and finite differences.

    Returns the context that forward filled, for tests that look at what was saved.
    """
    rng = np.random.default_rng(seed)
    context = {}
    out = op.forward(context, *arrays, **(sizes or {}))
    expected = reference(*arrays)
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-12)
    goutput = rng.normal(size=np.shape(expected))
    grads = op.backward(context, goutput)
    assert isinstance(grads, tuple) and len(grads) == len(arrays)
    for n, (got, want, a) in enumerate(zip(grads, numeric_grads(reference, arrays, goutput), arrays)):
        if want is None:
            assert got is None, f"gradient {n} of an integer input must be None"
            continue
        assert np.shape(got) == np.shape(a), f"gradient {n} has shape {np.shape(got)}, input {np.shape(a)}"
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=f"gradient of input {n}")
    return context
