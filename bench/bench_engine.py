"""Benchmarks for the derivation engine, side by side in one run; prints ratios.

1. Derive + compile time of every op the tests prove (the slowest is reported; target < 1 s).
2. Compiled matmul and sigmoid ops at MLP sizes (128×784 by 784×300), forward + backward,
   against the same computation hand-written in numpy (target: within 1.1×).

Run:  python bench/bench_engine.py
"""

from __future__ import annotations

import sys
import time
import timeit
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from deltagrad import derive  # noqa: E402


def derive_times():
    from test_ops_numeric import CASES  # the op table the tests prove

    rows = []
    for name, spec, *_ in CASES:
        start = time.perf_counter()
        derive(spec, name=name).compile()
        rows.append((time.perf_counter() - start, name, spec))
    return sorted(rows, reverse=True)


def best_of(fn, number, repeat=9):
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def compare(label, generated, hand, number):
    # interleave the two so that machine noise hits both alike
    gen, ref = [], []
    for _ in range(5):
        gen.append(best_of(generated, number, 3))
        ref.append(best_of(hand, number, 3))
    g, h = min(gen), min(ref)
    print(f"{label:<34} {g * 1e3:9.3f} ms {h * 1e3:9.3f} ms {g / h:7.3f}x")
    return g / h


def main():
    rows = derive_times()
    print(f"derive + compile, {len(rows)} ops; slowest five:")
    for t, name, spec in rows[:5]:
        print(f"  {t * 1e3:7.1f} ms  {name:<16} {spec}")
    print(f"slowest: {rows[0][0]:.3f} s ({rows[0][1]})  target < 1 s: {'ok' if rows[0][0] < 1 else 'MISSED'}\n")

    rng = np.random.default_rng(0)
    x, w = rng.normal(size=(128, 784)), rng.normal(size=(784, 300)) * 0.05
    g = rng.normal(size=(128, 300))
    h = rng.normal(size=(128, 300))
    matmul = derive("Y[i,j] = Sum(X[i,k]*W[k,j], k)").compile()
    sigmoid = derive("Y[i,j] = 1 / (1 + exp(-X[i,j]))").compile()

    def gen_matmul():
        ctx = {}
        matmul.forward(ctx, x, w)
        matmul.backward(ctx, g)

    def hand_matmul():
        y = x @ w  # noqa: F841
        dx = g @ w.T  # noqa: F841
        dw = x.T @ g  # noqa: F841

    def gen_sigmoid():
        ctx = {}
        sigmoid.forward(ctx, h)
        sigmoid.backward(ctx, g)

    def hand_sigmoid():
        y = 1 / (1 + np.exp(-h))
        dx = g * y * (1 - y)  # noqa: F841

    print(f"{'forward + backward (float64)':<34} {'generated':>12} {'hand numpy':>12} {'ratio':>8}")
    r1 = compare("matmul 128x784 @ 784x300", gen_matmul, hand_matmul, 20)
    r2 = compare("sigmoid 128x300", gen_sigmoid, hand_sigmoid, 1000)
    print(f"\nworst ratio {max(r1, r2):.3f}x  target <= 1.1x: {'ok' if max(r1, r2) <= 1.1 else 'MISSED'}")


if __name__ == "__main__":
    main()
