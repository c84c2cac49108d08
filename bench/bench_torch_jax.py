"""Derived PyTorch and JAX ops against the frameworks' own autograd, side by side in one run.

For each op (GELU in its tanh form, layer norm with eps, softmax cross-entropy, attention), one
forward + backward in float32 on 2 threads:

- torch: the op compiled with ``derive(spec).compile(target="torch")`` against PyTorch's autograd
  on the same composite forward written in torch ops (target: within 1.0x), and against PyTorch's
  fused op where one exists (``F.gelu(approximate="tanh")``, ``F.layer_norm``; target: within 1.2x);
- jax: ``compile(target="jax")`` against ``jax.vjp`` of the same composite, both under ``jax.jit``
  (target: within 1.0x);
- torch.compile: the derived op under ``torch.compile`` (inductor fuses its element-wise chains,
  forward and backward) against the fused op, where one exists (``--no-compile`` skips it: it
  compiles C++ with the system's compiler, about half a minute an op).

Every timing is the best of several rounds, with the contenders interleaved round by round so
that the noise of a shared machine hits them alike. Outputs and gradients are checked to agree
before anything is timed.

Run:  python bench/bench_torch_jax.py [--rounds N] [--no-compile]
      (needs torch and jax: pip install -e '.[torch,jax]')
"""

from __future__ import annotations

import os
import platform
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads=2")

import numpy as np  # noqa: E402

import deltagrad  # noqa: E402

THREADS = 2
ROUNDS = 9

# GELU in its tanh form, in named steps (the backward reads the saved tanh t), and in one line
GELU = ("u[i,j] = 0.7978845608028654*(X[i,j] + 0.044715*X[i,j]**3); t[i,j] = tanh(u[i,j]); "
        "Y[i,j] = 0.5*X[i,j]*(1 + t[i,j])")
GELU_ONE_LINE = "Y[i,j] = 0.5*X[i,j]*(1 + tanh(0.7978845608028654*(X[i,j] + 0.044715*X[i,j]**3)))"
LAYER_NORM = ("mu[i] = Sum(X[i,k], k)/size(k); D[i,j] = X[i,j] - mu[i]; "
              "var[i] = Sum(D[i,k]**2, k)/size(k); Y[i,j] = D[i,j]/sqrt(var[i] + 0.00001)")
CROSS_ENTROPY = "L = -Sum(T[i,j]*(X[i,j] - log(Sum(exp(X[i,k]), k))), i, j) / size(i)"
ATTENTION = "S[i,j] = Sum(Q[i,d]*K[j,d], d); P[i,j] = exp(S[i,j])/Sum(exp(S[i,l]), l); O[i,e] = Sum(P[i,j]*V[j,e], j)"


def inputs(name, rng):
    """float32 inputs of each op: 2048x1024, attention 512x64."""
    if name == "attention":
        return [rng.normal(size=(512, 64)).astype(np.float32) * 0.5 for _ in range(3)]
    x = rng.normal(size=(2048, 1024)).astype(np.float32)
    if name == "cross_entropy":
        t = np.zeros_like(x)
        t[np.arange(x.shape[0]), rng.integers(0, x.shape[1], x.shape[0])] = 1
        return [x, t]
    return [x]


SPECS = {"gelu": (GELU, None), "gelu_1line": (GELU_ONE_LINE, None), "layer_norm": (LAYER_NORM, None), "cross_entropy": (CROSS_ENTROPY, ["X", "T"]),
         "attention": (ATTENTION, None)}


# -- the same composite forwards, written in each framework ------------------------------------------
def torch_composites(torch, F):
    def gelu(x):
        return 0.5 * x * (1 + torch.tanh(0.7978845608028654 * (x + 0.044715 * x**3)))

    def layer_norm(x):
        mu = x.mean(1, keepdim=True)
        d = x - mu
        var = (d**2).mean(1, keepdim=True)
        return d / torch.sqrt(var + 1e-5)

    def cross_entropy(x, t):
        m = x.amax(1, keepdim=True)
        lse = m + torch.log(torch.exp(x - m).sum(1, keepdim=True))
        return -(t * (x - lse)).sum() / x.shape[0]

    def attention(q, k, v):
        s = q @ k.T
        e = torch.exp(s - s.amax(1, keepdim=True))
        return (e / e.sum(1, keepdim=True)) @ v

    native = {"gelu": lambda x: F.gelu(x, approximate="tanh"),
              "layer_norm": lambda x: F.layer_norm(x, x.shape[1:], eps=1e-5)}
    return {"gelu": gelu, "layer_norm": layer_norm, "cross_entropy": cross_entropy, "attention": attention}, native


def jax_composites(jnp):
    def gelu(x):
        return 0.5 * x * (1 + jnp.tanh(0.7978845608028654 * (x + 0.044715 * x**3)))

    def layer_norm(x):
        mu = x.mean(1, keepdims=True)
        d = x - mu
        var = (d**2).mean(1, keepdims=True)
        return d / jnp.sqrt(var + 1e-5)

    def cross_entropy(x, t):
        m = x.max(1, keepdims=True)
        lse = m + jnp.log(jnp.exp(x - m).sum(1, keepdims=True))
        return -(t * (x - lse)).sum() / x.shape[0]

    def attention(q, k, v):
        s = q @ k.T
        e = jnp.exp(s - s.max(1, keepdims=True))
        return (e / e.sum(1, keepdims=True)) @ v

    return {"gelu": gelu, "layer_norm": layer_norm, "cross_entropy": cross_entropy, "attention": attention}


# -- timing -------------------------------------------------------------------------------------------
def best(fns: dict, number: int, rounds: int = ROUNDS) -> dict:
    """Best seconds per call of each function, interleaved round by round."""
    times = {k: float("inf") for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            start = time.perf_counter()
            for _ in range(number):
                fn()
            times[k] = min(times[k], (time.perf_counter() - start) / number)
    return times


def torch_step(torch, f, arrays, grad_inputs):
    """One forward + backward of ``f``; the output's gradient is fixed (ones for a scalar)."""
    leaves = [torch.from_numpy(a).requires_grad_(n in grad_inputs) for n, a in enumerate(arrays)]
    out = f(*leaves)
    g = torch.ones_like(out) if out.ndim == 0 else torch.from_numpy(
        np.random.default_rng(1).normal(size=tuple(out.shape)).astype(np.float32))

    def step():
        for x in leaves:
            x.grad = None
        f(*leaves).backward(g)
        return [leaves[n].grad for n in grad_inputs]

    return step


def jax_step(jax, f, arrays, grad_inputs):
    """One forward + backward of ``f`` under ``jax.jit`` (``jax.vjp`` with a fixed cotangent)."""
    import jax.numpy as jnp

    xs = [jnp.asarray(a) for a in arrays]
    out = jax.eval_shape(f, *xs)
    g = jnp.ones(out.shape, out.dtype) if not out.shape else jnp.asarray(
        np.random.default_rng(1).normal(size=out.shape).astype(np.float32))

    @jax.jit
    def fwd_bwd(*args):
        y, pullback = jax.vjp(f, *args)
        grads = pullback(g)
        return y, [grads[n] for n in grad_inputs]

    def step():
        y, grads = fwd_bwd(*xs)
        jax.block_until_ready(grads)
        return grads

    return step


def agree(a, b, what):
    for x, y in zip(a, b):
        x, y = np.asarray(x), np.asarray(y)
        scale = max(1.0, float(np.abs(y).max()))
        assert np.abs(x - y).max() <= 2e-3 * scale, f"{what}: gradients differ by {np.abs(x - y).max():.3g}"


def main(compiled: bool = True, rounds: int = ROUNDS):
    import jax
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(THREADS)
    jax.config.update("jax_platforms", "cpu")
    rng = np.random.default_rng(0)
    composite_t, native_t = torch_composites(torch, F)
    composite_j = jax_composites(jax.numpy)
    print(f"deltagrad {deltagrad.__version__}, torch {torch.__version__}, jax {jax.__version__}, "
          f"python {platform.python_version()}, {THREADS} threads, float32; best of {rounds} interleaved rounds")
    print(f"{'forward+backward':<30}{'derived':>11}{'autograd':>11}{'ratio':>8}{'fused':>11}{'ratio':>8}")
    results = []
    for label, (spec, order) in SPECS.items():
        name = label.removesuffix("_1line")  # the same op, its spec written in one line
        arrays = inputs(name, rng)
        grad_inputs = [0] if name == "cross_entropy" else list(range(len(arrays)))
        d = deltagrad.derive(spec, name=name, inputs=order)
        number = 20 if name != "attention" else 50

        steps = {"derived": torch_step(torch, d.compile(target="torch"), arrays, grad_inputs),
                 "autograd": torch_step(torch, composite_t[name], arrays, grad_inputs)}
        if name in native_t:
            steps["fused"] = torch_step(torch, native_t[name], arrays, grad_inputs)
        ref = steps["autograd"]()
        for k, s in steps.items():
            agree(s(), ref, f"torch {name} {k}")
        t = best(steps, number, rounds)
        line = f"torch {label + ' ' + 'x'.join(map(str, arrays[0].shape)):<24}"
        line += f"{t['derived'] * 1e3:8.2f} ms{t['autograd'] * 1e3:8.2f} ms{t['derived'] / t['autograd']:7.2f}x"
        if "fused" in t:
            line += f"{t['fused'] * 1e3:8.2f} ms{t['derived'] / t['fused']:7.2f}x"
        print(line, flush=True)
        results.append(("torch", label, t))
        if name in native_t and compiled and label == name:
            steps = {"compiled": torch_step(torch, torch.compile(d.compile(target="torch")), arrays, grad_inputs),
                     "fused": steps["fused"]}
            agree(steps["compiled"](), ref, f"torch.compile {name}")
            t = best(steps, number, rounds)
            print(f"{'  torch.compile(derived)':<30}{t['compiled'] * 1e3:8.2f} ms{'':19}"
                  f"{t['fused'] * 1e3:8.2f} ms{t['compiled'] / t['fused']:7.2f}x", flush=True)
            results.append(("torch.compile", name, t))

        steps = {"derived": jax_step(jax, d.compile(target="jax"), arrays, grad_inputs),
                 "autograd": jax_step(jax, composite_j[name], arrays, grad_inputs)}
        agree(steps["derived"](), steps["autograd"](), f"jax {name}")
        t = best(steps, number, rounds)
        line = f"jax   {label + ' ' + 'x'.join(map(str, arrays[0].shape)):<24}"
        line += f"{t['derived'] * 1e3:8.2f} ms{t['autograd'] * 1e3:8.2f} ms{t['derived'] / t['autograd']:7.2f}x"
        print(line, flush=True)
        results.append(("jax", label, t))
    return results


if __name__ == "__main__":
    args = sys.argv[1:]
    n = int(args[args.index("--rounds") + 1]) if "--rounds" in args else ROUNDS
    sys.exit(0 if main(compiled="--no-compile" not in args, rounds=n) else 1)
