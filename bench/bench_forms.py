"""Forward+backward of derived ops against the textbook numpy a person writes, float32, side by
side in one run; plus the float32 accuracy of normalisations at large row means.

    python bench/bench_forms.py [--repeat N]

Each op is timed as forward + backward of the generated class and of a hand-written numpy
version (the formulas of a textbook or of PyTorch's derivatives.yaml), best of N, in one run;
the ratio generated / textbook is printed with the issue's target (<= 1.2x).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import deltagrad

LAYER_NORM = ("mu[i] = Sum(X[i,k], k)/size(k); D[i,j] = X[i,j] - mu[i]; var[i] = Sum(D[i,k]**2, k)/size(k); "
              "Y[i,j] = D[i,j]/sqrt(var[i] + 0.00001)")
LAYER_NORM_ONE_LINE = ("Y[i,j] = (X[i,j] - Sum(X[i,k], k)/size(k)) / "
                       "sqrt(Sum((X[i,m] - Sum(X[i,n], n)/size(n))**2, m)/size(m) + 0.00001)")
SOFTMAX_CE = "L = -Sum(T[i,j]*(X[i,j] - log(Sum(exp(X[i,k]), k))), i, j)/size(i)"
ATTENTION = "S[i,j] = Sum(Q[i,d]*K[j,d], d); P[i,j] = exp(S[i,j])/Sum(exp(S[i,l]), l); O[i,e] = Sum(P[i,j]*V[j,e], j)"


def layer_norm_numpy(x, g, eps=1e-5):
    mu = x.mean(1, keepdims=True)
    d = x - mu
    var = (d * d).mean(1, keepdims=True)
    rstd = 1 / np.sqrt(var + eps)
    y = d * rstd
    n = x.shape[1]
    gx = rstd * (g - g.mean(1, keepdims=True) - y * (g * y).mean(1, keepdims=True))
    return y, gx


def softmax_ce_numpy(x, t, g):
    m = x.max(1, keepdims=True)
    e = np.exp(x - m)
    s = e.sum(1, keepdims=True)
    logp = x - m - np.log(s)
    n = x.shape[0]
    loss = -(t * logp).sum() / n
    p = e / s
    gx = g * (p * t.sum(1, keepdims=True) - t) / n
    gt = -g * logp / n
    return loss, gx, gt


def attention_numpy(q, k, v, g):
    s = q @ k.T
    e = np.exp(s - s.max(1, keepdims=True))
    p = e / e.sum(1, keepdims=True)
    o = p @ v
    gp = g @ v.T
    gs = p * (gp - (gp * p).sum(1, keepdims=True))
    return o, gs @ k, gs.T @ q, p.T @ g


def best(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def run_op(op, arrays, g, sizes=None):
    ctx = {}
    op.forward(ctx, *arrays, **(sizes or {}))
    return op.backward(ctx, g)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    f32 = np.float32
    x = rng.normal(size=(512, 1024)).astype(f32)
    gy = rng.normal(size=(512, 1024)).astype(f32)
    t = rng.dirichlet(np.ones(1024), size=512).astype(f32)
    q, k, v = (rng.normal(size=(256, 64)).astype(f32) for _ in range(3))
    go = rng.normal(size=(256, 64)).astype(f32)

    rows = []
    t0 = time.perf_counter()
    ln = deltagrad.derive(LAYER_NORM, name="layer_norm").compile()
    ln1 = deltagrad.derive(LAYER_NORM_ONE_LINE, name="layer_norm_one_line").compile()
    ce = deltagrad.derive(SOFTMAX_CE, name="softmax_cross_entropy", inputs=["X", "T"]).compile()
    att = deltagrad.derive(ATTENTION, name="attention").compile()
    derive_s = time.perf_counter() - t0
    cases = [
        ("layer norm 512x1024 (program)", lambda: run_op(ln, [x], gy), lambda: layer_norm_numpy(x, gy)),
        ("layer norm 512x1024 (one line)", lambda: run_op(ln1, [x], gy), lambda: layer_norm_numpy(x, gy)),
        ("softmax cross-entropy 512x1024", lambda: run_op(ce, [x, t], f32(1.0)), lambda: softmax_ce_numpy(x, t, f32(1.0))),
        ("attention Q,K,V 256x64 (program)", lambda: run_op(att, [q, k, v], go), lambda: attention_numpy(q, k, v, go)),
    ]
    print(f"derive + compile of the four ops: {derive_s:.2f} s")
    print(f"{'forward+backward, float32':34s} {'generated':>11s} {'textbook':>11s} {'ratio':>7s}  target <= 1.2x")
    for name, gen, ref in cases:
        gen(), ref()  # warm up
        a, b = best(gen, args.repeat), best(ref, args.repeat)
        rows.append((name, a, b))
        print(f"{name:34s} {a * 1e3:9.2f}ms {b * 1e3:9.2f}ms {a / b:6.2f}x  {'ok' if a / b <= 1.2 else 'MISSED'}")

    print("\nfloat32 gradient at row mean 1e4, relative error against float64 (target <= 1e-3):")
    xl = 1e4 + rng.normal(size=(64, 256))
    gl = rng.normal(size=(64, 256))
    for name, op in (("layer norm (program)", ln), ("layer norm (one line)", ln1)):
        res = {dt: run_op(op, [xl.astype(dt)], gl.astype(dt))[0] for dt in (np.float64, np.float32)}
        err = np.abs(res[np.float32] - res[np.float64]).max() / np.abs(res[np.float64]).max()
        print(f"  {name:26s} {err:.1e}  {'ok' if err <= 1e-3 else 'MISSED'}  dtype {res[np.float32].dtype}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
