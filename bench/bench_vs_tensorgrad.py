"""Derivation speed, side by side: deltagrad against tensorgrad 0.3.0, op by op, in one run.

For each op of the table below, the same forward is given to both tools:

* deltagrad: ``deltagrad.derive(spec).compile()`` — parse, chain rule, delta elimination,
  simplification, saved values, array programs, and the ``Op`` class built from its source;
* tensorgrad: build the expression (``tg.Variable`` with named symbolic edges and
  ``tensorgrad.functions``), take the gradient of ``<G, Y>`` w.r.t. every input (``G`` a
  variable shaped like the output, so that each gradient is the same vector-Jacobian product
  as deltagrad's backward), ``compile_to_callable(Y, *grads)`` (normalise/simplify, lower to
  its IR, optimise), and ``program.codegen.specialize(dims)`` — the straight-line torch code
  generated and exec'd, i.e. runnable code. tensorgrad specialises lazily on the first call;
  calling ``specialize`` ourselves generates the same code without running it.

Every repetition is a cold start of that op: fresh objects, SymPy's cache and the engines' own
``lru_cache``s cleared (not timed): deltagrad's ``derive.lower.canonical`` and
``derive.numeric.lowered``/``forward_statements`` (on ``derive``'s path)
and ``codegen.module.derive_entry`` (not on it: only the package writer uses it), tensorgrad's
``structure.size_key``. What stays warm is per process, not per spec: imports, deltagrad's Jinja
environment and the first-call costs both tools pay once (a warm-up op runs first). The two tools alternate, repetition by repetition, so that
machine noise hits both alike; the table shows medians. Each op is also checked numerically:
both tools' forward output and gradients on one random float64 input must agree.

Needs a separate environment with tensorgrad (which needs torch); see the report that
introduced this file. tensorgrad 0.3.0's ``CompiledProgram.__call__`` uses torch's named
tensors (``refine_names``, ``align_to``), which torch >= 2.13 no longer has, so this script
calls the specialised function positionally (in ``program.vars`` order) and applies the
program's own output permutations (``program._wrap_plans``) itself.

Run:  /work/bench-venv/bin/python bench/bench_vs_tensorgrad.py [--ops a,b] [--repeat N] [--json FILE]
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import platform
import signal
import statistics
import sys
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sympy as sp  # noqa: E402

import deltagrad  # noqa: E402

try:
    import torch
    import tensorgrad as tg
    import tensorgrad.functions as F
    from tensorgrad.compiler import compile_to_callable
except ImportError as exc:  # pragma: no cover - depends on the environment
    sys.exit(f"error: tensorgrad is not importable ({exc}); run with /work/bench-venv/bin/python")

# ---------------------------------------------------------------------------------------------
# sizes: one symbol per edge name; ``n`` is the size of square matrices
b, i, j, k, l, n = sp.symbols("b i j k l n")
DIMS = {b: 2, i: 3, j: 4, k: 5, l: 6, n: 4}


def V(name, *shape, **named):
    return tg.Variable(name, *shape, **named)


@dataclass
class OpCase:
    name: str
    spec: str
    build: Callable  # () -> (Y, [Variables], output edge order as in the spec's left side)
    positive: tuple = ()  # inputs drawn from [0.5, 2] instead of N(0, 1)


def _ij(*names):
    return [V(x, i, j) for x in names]


def ew(fn):
    """An element-wise op of X[i,j]."""

    def build():
        (X,) = _ij("X")
        return fn(X), [X], ("i", "j")

    return build


def ew2(fn):
    """An element-wise op of X[i,j] and Z[i,j]."""

    def build():
        X, Z = _ij("X", "Z")
        return fn(X, Z), [X, Z], ("i", "j")

    return build


def _scalar_times():
    c, X = V("c"), V("X", i, j)
    return c * X, [c, X], ("i", "j")


def _bias_add():
    X, B = V("X", i, j), V("B", j)
    return X + B, [X, B], ("i", "j")


def _row_scale():
    X, s = V("X", i, j), V("s", i)
    return X * s, [X, s], ("i", "j")


def _reduce(fn, order):
    def build():
        X = V("X", i, j)
        return fn(X), [X], order

    return build


def _matmul_xw():
    X, W = V("X", i, k), V("W", k, j)
    return X @ W, [X, W], ("i", "j")


def _matmul_wx():
    W, X = V("W", i, k), V("X", k, j)
    return W @ X, [W, X], ("i", "j")


def _linear_bias():
    X, W, B = V("X", i, k), V("W", k, j), V("B", j)
    return X @ W + B, [X, W, B], ("i", "j")


def _batched_matmul():
    A, B = V("A", b, i, k), V("B", b, k, j)
    return F.dot(A, B, "k"), [A, B], ("b", "i", "j")


def _outer():
    u, v = V("u", i), V("v", j)
    return u @ v, [u, v], ("i", "j")


def _matvec():
    A, x = V("A", i, j), V("x", j)
    return A @ x, [A, x], ("i",)


def _dot():
    u, v = V("u", i), V("v", i)
    return u @ v, [u, v], ()


def _bilinear():
    x, A, z = V("x", b, i), V("A", i, j), V("z", b, j)
    return F.sum((x @ A) * z, "j"), [x, A, z], ("b",)


def _quadratic_form():
    x, A = V("x", i=n), V("A", i=n, j=n)
    return x @ A @ x.rename(i="j"), [x, A], ()


def _gram():
    X = V("X", i, k)
    return X @ X.rename(i="l"), [X], ("i", "l")


def _trace():
    A = V("A", i=n, j=n)
    return F.trace(A), [A], ()


def _diagonal():
    A = V("A", i=n, j=n)
    return F.diag(A, ["i"]), [A], ("i",)


def _trace_product():
    A, B = V("A", i, j), V("B", j, i)
    return A @ B, [A, B], ()


def _transpose():
    X = V("X", i, j)
    return X, [X], ("j", "i")


def _symmetrise():
    X = V("X", i=n, j=n)
    return X + X.rename(i="j", j="i"), [X], ("i", "j")


def _tensordot():
    A, B = V("A", i, j, k), V("B", j, k, l)
    return A @ B, [A, B], ("i", "l")


def _chain_product():
    A, B, C = V("A", i, j), V("B", j, k), V("C", k, l)
    return A @ B @ C, [A, B, C], ("i", "l")


def _cross_entropy():
    T, X = V("T", i, j), V("X", i, j)
    return F.sum(F.cross_entropy(X, T, "j")), [T, X], ()


def _mse():
    P, T = V("P", i, j), V("T", i, j)
    return F.mean((P - T) ** 2), [P, T], ()


def _centred(X):
    return X - F.mean(X, "j", keepdims=True)


def _layer_norm(X):
    c = _centred(X)
    return c / F.sqrt(F.mean(c * c, "j", keepdims=True) + 1)


def _layer_norm_affine():
    X, g, B = V("X", i, j), V("g", j), V("B", j)
    return g * _layer_norm(X) + B, [X, g, B], ("i", "j")


def _attention():
    S, Vv = V("S", i, j), V("V", j, l)
    return F.softmax(S, "j") @ Vv, [S, Vv], ("i", "l")


def _sigmoid_layer():
    X, W = V("X", i, k), V("W", k, j)
    return F.sigmoid(X @ W), [X, W], ("i", "j")


def _tanh_layer():
    X, W, B = V("X", i, k), V("W", k, j), V("B", j)
    return F.tanh(X @ W + B), [X, W, B], ("i", "j")


def _mlp2():
    X, W, Vv = V("X", i, k), V("W", k, j), V("V", j, l)
    return F.relu(X @ W) @ Vv, [X, W, Vv], ("i", "l")


def _pairwise_sq_dist():
    X, Z = V("X", i, k), V("Z", l, k)
    return F.sum((X - Z) ** 2, "k"), [X, Z], ("i", "l")


def _logistic_loss():
    T, X, w = V("T", i), V("X", i, k), V("w", k)
    return F.sum(F.log(1 + F.exp(-(T * (X @ w))))), [T, X, w], ()


LAYER_NORM = ("(X[i,j] - Sum(X[i,k], k)/size(k)) / sqrt(Sum((X[i,m] - Sum(X[i,p], p)/size(p))**2, m)/size(m) + 1)")

OPS = [
    # element-wise
    OpCase("divide", "Y[i,j] = X[i,j] / Z[i,j]", ew2(lambda X, Z: X / Z), ("Z",)),
    OpCase("multiply", "Y[i,j] = X[i,j] * Z[i,j]", ew2(lambda X, Z: X * Z)),
    OpCase("add", "Y[i,j] = X[i,j] + Z[i,j]", ew2(lambda X, Z: X + Z)),
    OpCase("subtract", "Y[i,j] = X[i,j] - Z[i,j]", ew2(lambda X, Z: X - Z)),
    OpCase("scale_shift", "Y[i,j] = 2*X[i,j] + 3", ew(lambda X: 2 * X + 3)),
    OpCase("scalar_times", "Y[i,j] = c*X[i,j]", _scalar_times),
    OpCase("sigmoid", "Y[i,j] = 1 / (1 + exp(-X[i,j]))", ew(F.sigmoid)),
    OpCase("tanh", "Y[i,j] = tanh(X[i,j])", ew(F.tanh)),
    OpCase("exp", "Y[i,j] = exp(X[i,j])", ew(F.exp)),
    OpCase("log", "Y[i,j] = log(X[i,j])", ew(F.log), ("X",)),
    OpCase("relu", "Y[i,j] = Max(0, X[i,j])", ew(F.relu)),
    OpCase("abs", "Y[i,j] = Abs(X[i,j])", ew(F.abs)),
    OpCase("sqrt", "Y[i,j] = sqrt(X[i,j])", ew(F.sqrt), ("X",)),
    OpCase("square", "Y[i,j] = X[i,j]**2", ew(lambda X: X**2)),
    OpCase("cube", "Y[i,j] = X[i,j]**3", ew(lambda X: X**3)),
    OpCase("reciprocal", "Y[i,j] = 1 / X[i,j]", ew(lambda X: 1 / X), ("X",)),
    OpCase("rsqrt", "Y[i,j] = 1 / sqrt(X[i,j])", ew(lambda X: F.pow(X, Fraction(-1, 2))), ("X",)),
    OpCase("softplus", "Y[i,j] = log(1 + exp(X[i,j]))", ew(lambda X: F.log(1 + F.exp(X)))),
    OpCase("swish", "Y[i,j] = X[i,j] / (1 + exp(-X[i,j]))", ew(lambda X: X * F.sigmoid(X))),
    OpCase("bias_add", "Y[i,j] = X[i,j] + B[j]", _bias_add),
    OpCase("row_scale", "Y[i,j] = X[i,j] * s[i]", _row_scale),
    # reductions
    OpCase("row_sum", "y[i] = Sum(X[i,j], j)", _reduce(lambda X: F.sum(X, "j"), ("i",))),
    OpCase("total_sum", "s = Sum(X[i,j], i, j)", _reduce(F.sum, ())),
    OpCase("mean", "m = Sum(X[i,j], i, j) / (size(i) * size(j))", _reduce(F.mean, ())),
    OpCase("row_mean", "y[i] = Sum(X[i,j], j) / size(j)", _reduce(lambda X: F.mean(X, "j"), ("i",))),
    OpCase("sum_squares", "L = Sum(X[i,j]**2, i, j)", _reduce(F.frobenius2, ())),
    # products and contractions
    OpCase("matmul_XW", "Y[i,j] = Sum(X[i,k]*W[k,j], k)", _matmul_xw),
    OpCase("matmul_WX", "Y[i,j] = Sum(W[i,k]*X[k,j], k)", _matmul_wx),
    OpCase("linear_bias", "Y[i,j] = Sum(X[i,k]*W[k,j], k) + B[j]", _linear_bias),
    OpCase("batched_matmul", "Y[b,i,j] = Sum(A[b,i,k]*B[b,k,j], k)", _batched_matmul),
    OpCase("outer", "Y[i,j] = u[i]*v[j]", _outer),
    OpCase("matvec", "y[i] = Sum(A[i,j]*x[j], j)", _matvec),
    OpCase("dot", "s = Sum(u[i]*v[i], i)", _dot),
    OpCase("bilinear", "y[b] = Sum(x[b,i]*A[i,j]*z[b,j], i, j)", _bilinear),
    OpCase("quadratic_form", "q = Sum(x[i]*A[i,j]*x[j], i, j)", _quadratic_form),
    OpCase("gram", "Y[i,l] = Sum(X[i,k]*X[l,k], k)", _gram),
    OpCase("trace", "t = Sum(A[i,i], i)", _trace),
    OpCase("diagonal", "y[i] = A[i,i]", _diagonal),
    OpCase("trace_product", "t = Sum(A[i,j]*B[j,i], i, j)", _trace_product),
    OpCase("transpose", "Y[j,i] = X[i,j]", _transpose),
    OpCase("symmetrise", "Y[i,j] = X[i,j] + X[j,i]", _symmetrise),
    OpCase("tensordot", "Y[i,l] = Sum(A[i,j,k]*B[j,k,l], j, k)", _tensordot),
    OpCase("chain_product", "Y[i,l] = Sum(A[i,j]*B[j,k]*C[k,l], j, k)", _chain_product),
    # normalisations and losses
    OpCase("normalize_rows", "Y[i,j] = X[i,j] / Sum(X[i,k], k)",
           _reduce(lambda X: X / F.sum(X, "j", keepdims=True), ("i", "j")), ("X",)),
    OpCase("l2_normalize", "Y[i,j] = X[i,j] / sqrt(Sum(X[i,k]**2, k))",
           _reduce(lambda X: X / F.sqrt(F.sum(X * X, "j", keepdims=True)), ("i", "j"))),
    OpCase("softmax", "Y[i,j] = exp(X[i,j]) / Sum(exp(X[i,k]), k)", _reduce(lambda X: F.softmax(X, "j"), ("i", "j"))),
    OpCase("log_softmax", "Y[i,j] = X[i,j] - log(Sum(exp(X[i,k]), k))",
           _reduce(lambda X: F.log_softmax(X, "j"), ("i", "j"))),
    OpCase("log_sum_exp", "y[i] = log(Sum(exp(X[i,j]), j))", _reduce(lambda X: F.log(F.sum(F.exp(X), "j")), ("i",))),
    OpCase("cross_entropy", "L = -Sum(T[i,j]*(X[i,j] - log(Sum(exp(X[i,k]), k))), i, j)", _cross_entropy),
    OpCase("mse", "L = Sum((P[i,j] - T[i,j])**2, i, j) / (size(i) * size(j))", _mse),
    OpCase("row_variance", "y[i] = Sum((X[i,j] - Sum(X[i,k], k)/size(k))**2, j) / size(j)",
           _reduce(lambda X: F.mean(_centred(X) ** 2, "j"), ("i",))),
    OpCase("layer_norm", "Y[i,j] = " + LAYER_NORM, _reduce(_layer_norm, ("i", "j"))),
    OpCase("layer_norm_affine", f"Y[i,j] = g[j]*({LAYER_NORM}) + B[j]", _layer_norm_affine),
    OpCase("attention", "Y[i,l] = Sum(exp(S[i,j])*V[j,l], j) / Sum(exp(S[i,k]), k)", _attention),
    OpCase("sigmoid_layer", "Y[i,j] = 1 / (1 + exp(-Sum(X[i,k]*W[k,j], k)))", _sigmoid_layer),
    OpCase("tanh_layer", "Y[i,j] = tanh(Sum(X[i,k]*W[k,j], k) + B[j])", _tanh_layer),
    OpCase("mlp2", "Y[i,l] = Sum(Max(0, Sum(X[i,k]*W[k,j], k))*V[j,l], j)", _mlp2),
    OpCase("pairwise_sq_dist", "D[i,l] = Sum((X[i,k] - Z[l,k])**2, k)", _pairwise_sq_dist),
    OpCase("logistic_loss", "L = Sum(log(1 + exp(-T[i]*Sum(X[i,k]*w[k], k))), i)", _logistic_loss),
]


# ---------------------------------------------------------------------------------------------
# the two timed paths


def clear_caches():
    """Forget everything an earlier repetition could have left (not timed)."""
    sp.core.cache.clear_cache()
    # derive_entry is not on derive()'s path (only the package writer uses it): cleared to be sure.
    for module_name, attr in CACHED:
        fn = getattr(sys.modules.get(module_name), attr, None)
        if hasattr(fn, "cache_clear"):
            fn.cache_clear()
    gc.collect()


# lru_caches that could carry work from one repetition to the next (missing ones are skipped)
CACHED = [("deltagrad.derive.lower", "canonical"), ("deltagrad.derive.numeric", "lowered"),
          ("deltagrad.derive.numeric", "forward_statements"),
          ("deltagrad.codegen.module", "derive_entry"),
          ("tensorgrad.structure", "size_key")]


def deltagrad_path(case: OpCase):
    start = time.perf_counter()
    derivation = deltagrad.derive(case.spec, name=case.name)
    cls = derivation.compile()
    return time.perf_counter() - start, (derivation, cls), {}


def tensorgrad_path(case: OpCase):
    start = time.perf_counter()
    Y, variables, order = case.build()
    G = V("G", {e: Y.shape[e] for e in order})
    loss = G @ Y if order else G * Y  # <G, Y>: its gradients are the vector-Jacobian products
    grads = [loss.grad(v) for v in variables]
    built = time.perf_counter()
    program = compile_to_callable(Y, *grads)
    compiled = time.perf_counter()
    fn = program.codegen.specialize({s: DIMS[s] for s in program.symbols}, dtype=torch.float64)
    end = time.perf_counter()
    parts = {"build_grad": built - start, "compile_to_callable": compiled - built, "specialize": end - compiled}
    return end - start, (Y, variables, order, G, program, fn), parts


class Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise Timeout()


def attempt(path, case, timeout):
    """(seconds, artefacts, parts) or raises; a SIGALRM interrupts an attempt past ``timeout``."""
    clear_caches()
    if timeout:
        signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        return path(case)
    except Timeout:
        raise Timeout(f"timed out after {timeout:g} s") from None
    finally:
        if timeout:
            signal.setitimer(signal.ITIMER_REAL, 0)


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:110]


# ---------------------------------------------------------------------------------------------
# numerical agreement


def check(case: OpCase, dg, tgr, seed=0) -> str:
    derivation, cls = dg
    Y, variables, order, G, program, fn = tgr
    rng = np.random.default_rng(seed)
    values = {}
    for var in variables + [G]:
        shape = tuple(DIMS[s] for s in var.shape.values())
        if var.name in case.positive:
            values[var.name] = rng.uniform(0.5, 2.0, size=shape)
        else:
            values[var.name] = rng.normal(size=shape)
    # tensorgrad: positional, each input laid out in its variable's edge order
    outs = fn(*[torch.from_numpy(values[v.name]) for v in program.vars])
    tg_arrays = []
    for out, (_, edge_order), (perm, names) in zip(outs, program.outputs, program._wrap_plans):
        names = tuple(names) if perm is not None else tuple(edge_order)
        if perm is not None:
            out = out.permute(perm)
        tg_arrays.append((out.detach().numpy(), names))
    wanted = [tuple(order)] + [tuple(v.edges) for v in variables]
    tg_aligned = []
    for (arr, names), want in zip(tg_arrays, wanted):
        tg_aligned.append(np.transpose(arr, [names.index(e) for e in want]) if want else np.asarray(arr))
    # deltagrad: arguments in the derivation's input order
    names = list(derivation.signature.patterns)
    ctx = {}
    y = cls.forward(ctx, *[values[nm] for nm in names])
    grads = cls.backward(ctx, values["G"])
    dg_by_name = dict(zip(names, grads))
    dg_arrays = [np.asarray(y)] + [np.asarray(dg_by_name[v.name]) for v in variables]
    bad = []
    for label, a, t in zip(["Y"] + ["d" + v.name for v in variables], dg_arrays, tg_aligned):
        t = np.broadcast_to(t, a.shape) if t.shape != a.shape and t.size == 1 else t
        if a.shape != t.shape or not np.allclose(a, t, rtol=1e-7, atol=1e-9):
            bad.append(label)
    return "ok" if not bad else "MISMATCH " + ",".join(bad)


# ---------------------------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    spec: str
    dg: list = field(default_factory=list)
    tg: list = field(default_factory=list)
    tg_parts: list = field(default_factory=list)
    dg_error: str | None = None
    tg_error: str | None = None
    check: str = "-"

    @property
    def dg_med(self):
        return statistics.median(self.dg) if self.dg and not self.dg_error else None

    @property
    def tg_med(self):
        return statistics.median(self.tg) if self.tg and not self.tg_error else None

    @property
    def ratio(self):
        d, t = self.dg_med, self.tg_med
        return d / t if d is not None and t else None


def run_case(case: OpCase, repeat: int, budget: float, timeout: float) -> Row:
    row = Row(case.name, case.spec)
    dg_art = tg_art = None
    for rep in range(repeat):
        for tool in ("dg", "tg"):
            if getattr(row, f"{tool}_error"):
                continue
            times = row.dg if tool == "dg" else row.tg
            if rep > 0 and sum(times) > budget:  # slow: fewer repetitions
                continue
            try:
                sec, art, parts = attempt(deltagrad_path if tool == "dg" else tensorgrad_path, case, timeout)
            except Exception as exc:  # noqa: BLE001 - one cell says what went wrong
                setattr(row, f"{tool}_error", "error: " + one_line(exc))
                continue
            times.append(sec)
            if tool == "dg":
                dg_art = dg_art or art
            else:
                tg_art = tg_art or art
                row.tg_parts.append(parts)
    if dg_art and tg_art:
        try:
            row.check = check(case, dg_art, tg_art)
        except Exception as exc:  # noqa: BLE001
            row.check = "error: " + one_line(exc)
    return row


def fmt_time(row: Row, tool: str) -> str:
    err = getattr(row, f"{tool}_error")
    if err:
        return err
    med = row.dg_med if tool == "dg" else row.tg_med
    return f"{med:.4f}"


def warm_up():
    """Imports and first-call costs of both tools, outside the timings."""
    case = OpCase("warm_up", "Y[i,j] = Sum(X[i,k]*W[k,j], k) + exp(Z[i,j])",
                  lambda: ((lambda X, W, Z: (X @ W + F.exp(Z), [X, W, Z], ("i", "j")))(V("X", i, k), V("W", k, j), V("Z", i, j))))
    for _ in range(2):
        deltagrad_path(case)
        tensorgrad_path(case)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ops", help="comma-separated op names (default: all)")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions per op per tool (median; default 3)")
    parser.add_argument("--budget", type=float, default=20.0,
                        help="stop repeating a tool on an op once its repetitions took this many seconds (default 20)")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="give up on one attempt after this many seconds (default 300; 0: never)")
    parser.add_argument("--json", help="write the results to this file")
    parser.add_argument("--list", action="store_true", help="list the ops and exit")
    args = parser.parse_args(argv)

    cases = OPS
    if args.list:
        for c in cases:
            print(f"{c.name:<20} {c.spec}")
        return 0
    if args.ops:
        wanted = [s.strip() for s in args.ops.split(",") if s.strip()]
        known = {c.name: c for c in cases}
        unknown = [w for w in wanted if w not in known]
        if unknown:
            parser.error(f"unknown op(s): {', '.join(unknown)} (see --list)")
        cases = [known[w] for w in wanted]

    torch.set_default_dtype(torch.float64)
    from importlib.metadata import version

    print(f"deltagrad {deltagrad.__version__} vs tensorgrad {version('tensorgrad')} (torch {torch.__version__}), "
          f"python {platform.python_version()}, {len(cases)} ops, median of up to {args.repeat} cold runs each "
          f"(fewer once a tool's runs on an op pass {args.budget:g} s)")
    print("deltagrad: derive(spec).compile();  tensorgrad: build + grad of <G,Y> w.r.t. every input + "
          "compile_to_callable + codegen.specialize")
    warm_up()
    header = f"{'op':<18} {'deltagrad s':>12} {'tensorgrad s':>13} {'dg/tg':>8}  {'n':>3}  check"
    print(header)
    print("-" * len(header))
    rows = []
    t_start = time.perf_counter()
    for case in cases:
        row = run_case(case, args.repeat, args.budget, args.timeout)
        rows.append(row)
        ratio = f"{row.ratio:8.2f}" if row.ratio is not None else f"{'-':>8}"
        nrep = f"{len(row.dg)}/{len(row.tg)}"
        print(f"{row.name:<18} {fmt_time(row, 'dg'):>12} {fmt_time(row, 'tg'):>13} {ratio}  {nrep:>3}  {row.check}")
        sys.stdout.flush()

    both = [r for r in rows if r.ratio is not None]
    print("-" * len(header))
    if both:
        dg_total = sum(r.dg_med for r in both)
        tg_total = sum(r.tg_med for r in both)
        ratios = [r.ratio for r in both]
        geo = math.exp(statistics.fmean(math.log(x) for x in ratios))
        print(f"{'total (' + str(len(both)) + ' ops)':<18} {dg_total:12.3f} {tg_total:13.3f} {dg_total / tg_total:8.2f}")
        print(f"median of ratios dg/tg: {statistics.median(ratios):.2f}   geometric mean: {geo:.2f}   "
              f"range: {min(ratios):.2f} .. {max(ratios):.2f}   deltagrad faster on {sum(x < 1 for x in ratios)}"
              f"/{len(ratios)} ops")
    slow = sorted((r for r in rows if r.dg_med is not None), key=lambda r: -r.dg_med)[:8]
    print("slowest deltagrad ops: " + ", ".join(f"{r.name} {r.dg_med:.3f} s" for r in slow))
    slow_tg = sorted((r for r in rows if r.tg_med is not None), key=lambda r: -r.tg_med)[:5]
    print("slowest tensorgrad ops: " + ", ".join(f"{r.name} {r.tg_med:.3f} s" for r in slow_tg))
    problems = [r for r in rows if r.dg_error or r.tg_error or r.check != "ok"]
    if problems:
        print("not ok: " + "; ".join(f"{r.name} ({r.dg_error or r.tg_error or r.check})" for r in problems))
    print(f"wall time {time.perf_counter() - t_start:.1f} s")

    if args.json:
        out = {
            "versions": {"deltagrad": deltagrad.__version__, "tensorgrad": version("tensorgrad"),
                         "torch": torch.__version__, "python": platform.python_version()},
            "repeat": args.repeat,
            "ops": [
                {
                    "name": r.name, "spec": r.spec,
                    "deltagrad_s": r.dg, "tensorgrad_s": r.tg,
                    "deltagrad_median_s": r.dg_med, "tensorgrad_median_s": r.tg_med, "ratio": r.ratio,
                    "tensorgrad_parts_median_s": {
                        key: statistics.median(p[key] for p in r.tg_parts) for key in (r.tg_parts[0] if r.tg_parts else {})
                    },
                    "deltagrad_error": r.dg_error, "tensorgrad_error": r.tg_error, "check": r.check,
                }
                for r in rows
            ],
        }
        if both:
            out["total"] = {"deltagrad_s": dg_total, "tensorgrad_s": tg_total, "ratio": dg_total / tg_total,
                            "median_of_ratios": statistics.median(ratios), "geometric_mean_ratio": geo}
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
