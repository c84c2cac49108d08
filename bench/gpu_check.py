"""The GPU path, run for real: generated ops on CuPy, derived PyTorch/JAX ops on CUDA, side by side.

Needs an NVIDIA GPU with CuPy (and, for the framework part, a CUDA build of torch and jax).
What it does, in one run, printing one line a check and a table of timings:

1. every op of the standard table (``deltagrad.generated``) forward and backward on CuPy arrays
   against the same op on NumPy (float64: agree to 1e-9; float32: stays float32 and on the GPU);
2. ops compiled with ``compile(target="torch")`` on CUDA tensors: ``gradcheck`` in float64,
   float32 in gives float32 CUDA tensors out, and forward+backward time against PyTorch's
   autograd on the same composite (and the fused op where one exists), on the GPU;
3. the same ops with ``compile(target="jax")`` on JAX's GPU backend: ``check_grads`` order 2;
4. a generated op at a large size on CuPy against hand-written CuPy (forward+backward).

Run:  python bench/gpu_check.py        (exit 1 if any check fails)
"""

from __future__ import annotations

import sys
import time
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

FAILURES: list[str] = []


def report(name, ok, detail=""):
    print(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}", flush=True)
    if not ok:
        FAILURES.append(name)


def best_of(fn, rounds=20, sync=lambda: None):
    fn()
    sync()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return min(times)


def generated_ops_on_cupy():
    import cupy as cp

    import deltagrad.generated as gen
    from deltagrad.codegen.op_class import class_name
    from deltagrad.op_table import STANDARD_OPS
    from test_generated import REFERENCE

    for entry in STANDARD_OPS:
        try:
            _, make, sizes = REFERENCE[entry.name]
            op = getattr(gen, class_name(entry.name))
            arrays = make()
            ctx_np, ctx_cp = {}, {}
            out = op.forward(ctx_np, *arrays, **sizes)
            out_cp = op.forward(ctx_cp, *[cp.asarray(a) if np.ndim(a) else a for a in arrays], **sizes)
            g = np.random.default_rng(0).normal(size=np.shape(out))
            grads = op.backward(ctx_np, g)
            grads_cp = op.backward(ctx_cp, cp.asarray(g))
            agree = np.allclose(cp.asnumpy(out_cp), out, rtol=1e-9, atol=1e-12) and all(
                (a is None and b is None) or np.allclose(cp.asnumpy(a), b, rtol=1e-9, atol=1e-12)
                for a, b in zip(grads_cp, grads))
            f32 = [cp.asarray(a, dtype=cp.float32) if np.ndim(a) and np.asarray(a).dtype.kind == "f" else
                   (cp.asarray(a) if np.ndim(a) else a) for a in arrays]
            ctx32 = {}
            out32 = op.forward(ctx32, *f32, **sizes)
            grads32 = op.backward(ctx32, cp.asarray(g, dtype=cp.float32))
            kept = isinstance(out32, cp.ndarray) and out32.dtype == cp.float32 and all(
                d is None or (isinstance(d, cp.ndarray) and d.dtype == cp.float32)
                for d in grads32 if d is not None and np.ndim(d))
            report(f"cupy {entry.name}", agree and kept, "" if agree and kept else f"agree={agree} float32 kept={kept}")
        except Exception as err:  # noqa: BLE001 - every op gets a line
            report(f"cupy {entry.name}", False, f"{type(err).__name__}: {err}")


SPECS = {
    "gelu_tanh": ("Y[i,j] = 0.5*X[i,j]*(1 + tanh(0.7978845608028654*(X[i,j] + 0.044715*X[i,j]**3)))",
                  lambda torch, x: torch.nn.functional.gelu(x, approximate="tanh")),
    "layer_norm": ("mu[i] = Sum(X[i,k], k)/size(k); D[i,j] = X[i,j] - mu[i]; "
                   "var[i] = Sum(D[i,k]**2, k)/size(k); Y[i,j] = D[i,j]/sqrt(var[i] + 0.00001)",
                   lambda torch, x: torch.nn.functional.layer_norm(x, x.shape[-1:], eps=1e-5)),
    "softmax": ("Y[i,j] = exp(X[i,j]) / Sum(exp(X[i,k]), k)", lambda torch, x: torch.softmax(x, dim=1)),
}


def torch_on_cuda():
    import torch

    import deltagrad

    dev = torch.device("cuda")
    for name, (spec, native) in SPECS.items():
        try:
            f = deltagrad.derive(spec).compile(target="torch")
            x = torch.randn(6, 5, dtype=torch.float64, device=dev, requires_grad=True)
            ok = torch.autograd.gradcheck(f, (x,)) and torch.autograd.gradgradcheck(f, (x,))
            x32 = torch.randn(2048, 1024, device=dev, requires_grad=True)
            y = f(x32)
            y.backward(torch.ones_like(y))
            kept = y.dtype == torch.float32 and y.device.type == "cuda" and x32.grad.device.type == "cuda"
            close = torch.allclose(y, native(torch, x32.detach()), atol=1e-4)
            report(f"torch cuda {name}", ok and kept and close, f"gradcheck={ok} float32/cuda kept={kept} matches native={close}")
            g = torch.randn_like(x32)

            def derived():
                x32.grad = None
                f(x32).backward(g)

            def fused():
                x32.grad = None
                native(torch, x32).backward(g)

            t_d = best_of(derived, sync=torch.cuda.synchronize)
            t_n = best_of(fused, sync=torch.cuda.synchronize)
            print(f"     timing {name} 2048x1024 fwd+bwd: derived {t_d * 1e3:.3f} ms, torch native {t_n * 1e3:.3f} ms,"
                  f" ratio {t_d / t_n:.2f}x", flush=True)
        except Exception as err:  # noqa: BLE001
            traceback.print_exc()
            report(f"torch cuda {name}", False, f"{type(err).__name__}: {err}")


def jax_on_gpu():
    import jax
    import jax.numpy as jnp
    from jax.test_util import check_grads

    import deltagrad

    jax.config.update("jax_enable_x64", True)
    print(f"     jax devices: {jax.devices()}", flush=True)
    for name, (spec, _) in SPECS.items():
        try:
            f = deltagrad.derive(spec).compile(target="jax")
            x = jnp.asarray(np.random.default_rng(1).normal(size=(6, 5)))
            check_grads(f, (x,), order=2, modes=["rev"])
            report(f"jax gpu {name}", list(f(x).devices())[0].platform == "gpu")
        except Exception as err:  # noqa: BLE001
            report(f"jax gpu {name}", False, f"{type(err).__name__}: {err}")


def cupy_speed():
    import cupy as cp

    import deltagrad.generated as gen

    x = cp.random.standard_normal((4096, 4096), dtype=cp.float32)
    g = cp.random.standard_normal((4096, 4096), dtype=cp.float32)

    def derived():
        ctx = {}
        gen.Softmax.forward(ctx, x)
        gen.Softmax.backward(ctx, g)

    def by_hand():
        e = cp.exp(x - x.max(axis=1, keepdims=True))
        y = e / e.sum(axis=1, keepdims=True)
        return y * (g - (g * y).sum(axis=1, keepdims=True))

    sync = cp.cuda.Stream.null.synchronize
    t_d, t_h = best_of(derived, sync=sync), best_of(by_hand, sync=sync)
    print(f"     timing softmax 4096x4096 float32 on CuPy fwd+bwd: generated {t_d * 1e3:.3f} ms, "
          f"hand-written {t_h * 1e3:.3f} ms, ratio {t_d / t_h:.2f}x", flush=True)


def main():
    import cupy as cp

    print(f"     GPU: {cp.cuda.runtime.getDeviceProperties(0)['name'].decode()}, CuPy {cp.__version__}", flush=True)
    for part in (generated_ops_on_cupy, cupy_speed, torch_on_cuda, jax_on_gpu):
        try:
            part()
        except Exception as err:  # noqa: BLE001 - a missing framework fails its part only
            report(part.__name__, False, f"{type(err).__name__}: {err}")
    print(f"{len(FAILURES)} failed: {FAILURES}" if FAILURES else "all GPU checks passed")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
