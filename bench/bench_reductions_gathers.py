"""Derived Max reductions and gathers against hand-written NumPy, side by side in one run.

Forward + backward in float32 (indices int64), the derived op (``derive(spec).compile()``) against
the NumPy a person would write:

- row_max ``y[i] = Max(X[i,k], k)``, 512x1000: ``X.max(axis=1)``, then one mask and one masked
  multiply (``m = X == y[:, None]; m * (g / m.sum(1))[:, None]``); target: within 1.2x;
- select ``y[i] = X[i, t[i]]``, 512x1000: ``X[arange, t]``, then a zero array with ``g`` put at
  ``t``; target: within 1.5x;
- embedding ``Y[n,d] = E[t[n], d]``, a 50000x300 table and 128 indices: ``E[t]``, then
  ``np.add.at`` of the rows into a zero table; target: within 1.5x;
- nll_loss ``L = -Sum(log(P[i, t[i]]), i)/size(i)``, 512x1000.

Every timing is the best of several rounds, the contenders interleaved round by round so that the
noise of a shared machine hits them alike; outputs and gradients are checked to agree first.

``--scatter`` also times the embedding's backward alone three ways (``np.add.at``, a one-hot
matrix product, ``np.bincount``): add.at is the fastest at this size, which is why the derived
op's ``scatter_add`` uses it with NumPy.

Run:  python bench/bench_reductions_gathers.py [--rounds N] [--scatter] [row_max select embedding nll_loss]
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import deltagrad  # noqa: E402

ROUNDS = 9


def best(fns: dict, number: int, rounds: int = ROUNDS) -> dict:
    """The best time per call of each function, interleaved round by round."""
    times = {k: float("inf") for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            start = time.perf_counter()
            for _ in range(number):
                f()
            times[k] = min(times[k], (time.perf_counter() - start) / number)
    return times


def derived_step(op, arrays, goutput):
    def step():
        ctx = {}
        op.forward(ctx, *arrays)
        return op.backward(ctx, goutput)
    return step


def row_max_case(rng):
    X = rng.normal(size=(512, 1000)).astype(np.float32)
    g = rng.normal(size=512).astype(np.float32)

    def hand():
        y = X.max(axis=1)
        m = X == y[:, None]
        return (m * (g / m.sum(axis=1, dtype=X.dtype))[:, None],)

    return "row_max  512x1000", "y[i] = Max(X[i,k], k)", [X], g, hand


def select_case(rng):
    X = rng.normal(size=(512, 1000)).astype(np.float32)
    t = rng.integers(0, 1000, size=512)
    g = rng.normal(size=512).astype(np.float32)
    rows = np.arange(512)

    def hand():
        X[rows, t]
        dX = np.zeros(X.shape, X.dtype)
        dX[rows, t] = g
        return dX, None

    return "select   512x1000", "y[i] = X[i, t[i]]", [X, t], g, hand


def embedding_case(rng):
    E = rng.normal(size=(50_000, 300)).astype(np.float32)
    t = rng.integers(0, 50_000, size=128)
    g = rng.normal(size=(128, 300)).astype(np.float32)

    def hand():
        E[t]
        dE = np.zeros(E.shape, E.dtype)
        np.add.at(dE, t, g)
        return dE, None

    return "embedding 50000x300, 128 rows", "Y[n,d] = E[t[n], d]", [E, t], g, hand


def nll_case(rng):
    P = rng.uniform(0.1, 1.0, size=(512, 1000)).astype(np.float32)
    t = rng.integers(0, 1000, size=512)
    g = np.float32(1.0)
    rows = np.arange(512)

    def hand():
        -np.log(P[rows, t]).sum() / 512
        dP = np.zeros(P.shape, P.dtype)
        dP[rows, t] = -g / (512 * P[rows, t])
        return dP, None

    return "nll_loss 512x1000", "L = -Sum(log(P[i, t[i]]), i)/size(i)", [P, t], g, hand


CASES = {"row_max": row_max_case, "select": select_case, "embedding": embedding_case, "nll_loss": nll_case}


def main(rounds: int = ROUNDS, names=None):
    rng = np.random.default_rng(0)
    print(f"numpy {np.__version__}; forward + backward, best of {rounds} rounds; ratio = derived / hand-written")
    for name in names or CASES:
        if name not in CASES:
            continue
        label, spec, arrays, g, hand = CASES[name](rng)
        op = deltagrad.derive(spec).compile()
        step = derived_step(op, arrays, g)
        for got, want in zip(step(), hand()):
            if want is None:
                assert got is None, "an integer input gets no gradient"
                continue
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        times = best({"derived": step, "hand": hand}, number=5, rounds=rounds)
        ratio = times["derived"] / times["hand"]
        print(f"{label:32s} derived {times['derived'] * 1e3:8.3f} ms   hand {times['hand'] * 1e3:8.3f} ms   "
              f"ratio {ratio:5.2f}x")


def scatter_strategies(rounds: int = ROUNDS):
    """The embedding's backward alone, three ways: ``np.add.at`` (what the derived op uses with
    NumPy), a one-hot matrix product (what it uses under a plain array-API namespace), and
    ``np.bincount`` per column."""
    rng = np.random.default_rng(1)
    t = rng.integers(0, 50_000, size=128)
    g = rng.normal(size=(128, 300)).astype(np.float32)

    def add_at():
        out = np.zeros((50_000, 300), np.float32)
        np.add.at(out, t, g)
        return out

    def one_hot():
        return (np.arange(50_000)[:, None] == t[None, :]).astype(np.float32) @ g

    def bincount():
        flat = (t[:, None] * 300 + np.arange(300)).ravel()
        return np.bincount(flat, g.ravel(), minlength=50_000 * 300).reshape(50_000, 300).astype(np.float32)

    times = best({"add.at": add_at, "one-hot @": one_hot, "bincount": bincount}, number=2, rounds=max(3, rounds // 3))
    print("embedding backward alone: " + "   ".join(f"{k} {v * 1e3:.2f} ms" for k, v in times.items()))


if __name__ == "__main__":
    args = sys.argv[1:]
    rounds = ROUNDS
    if "--rounds" in args:
        rounds = int(args[args.index("--rounds") + 1])
    main(rounds, [a for a in args if a in CASES] or None)
    if "--scatter" in args:
        scatter_strategies(rounds)
