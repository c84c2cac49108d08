"""The new spec functions on CuPy: each op's forward and backward on the GPU equal the NumPy op's
(float64 and float32 stay their dtype; erf and erfc come from cupyx.scipy.special).

    python bench/functions_cupy.py        # prints one line per spec and "ok" at the end
"""

from __future__ import annotations

import time

import numpy as np

SPECS = [
    "Y[i,j] = erf(X[i,j])*Z[i,j]",
    "Y[i,j] = erfc(X[i,j])",
    "Y[i,j] = X[i,j]*sigmoid(X[i,j])",
    "Y[i,j] = softplus(X[i,j])",
    "Y[i,j] = asinh(X[i,j]) + atan(X[i,j]) + sinh(X[i,j]) + cosh(X[i,j]) + expm1(X[i,j])",
    "Y[i,j] = asin(X[i,j]/4) + acos(X[i,j]/4) + atanh(X[i,j]/4) + log1p(X[i,j]**2) + acosh(2 + X[i,j]**2)",
    "Y[i,j] = where(X[i,j] > Z[i,j], X[i,j]*Z[i,j], exp(X[i,j]))",
    "Y[i,j] = sign(X[i,j])*Z[i,j]",
    "Y[i,j] = sigmoid(Sum(X[i,k]*W[k,j], k))",
]


def main():
    import cupy

    from deltagrad import derive

    rng = np.random.default_rng(0)
    for spec in SPECS:
        d = derive(spec)
        op = d.compile()
        sizes = {"i": 64, "j": 48, "k": 32}
        arrays = [rng.normal(size=tuple(sizes[ix] for ix in d.signature.patterns[n])) for n in d.inputs]
        for dtype, tol in ((np.float64, 1e-12), (np.float32, 1e-5)):
            host = [a.astype(dtype) for a in arrays]
            ctx_h, ctx_d = {}, {}
            y_h = op.forward(ctx_h, *host)
            start = time.perf_counter()
            y_d = op.forward(ctx_d, *[cupy.asarray(a) for a in host])
            g = rng.normal(size=y_h.shape).astype(dtype)
            grads_d = op.backward(ctx_d, cupy.asarray(g))
            cupy.cuda.Device().synchronize()
            seconds = time.perf_counter() - start
            grads_h = op.backward(ctx_h, g)
            assert isinstance(y_d, cupy.ndarray) and y_d.dtype == dtype, (spec, y_d.dtype)
            np.testing.assert_allclose(cupy.asnumpy(y_d), y_h, rtol=tol, atol=tol)
            for gd, gh in zip(grads_d, grads_h):
                assert gd.dtype == dtype, (spec, gd.dtype)
                np.testing.assert_allclose(cupy.asnumpy(gd), gh, rtol=tol, atol=tol)
            print(f"{np.dtype(dtype).name:8s} {seconds * 1e3:7.2f} ms  {spec}")
    print("ok")


if __name__ == "__main__":
    main()
