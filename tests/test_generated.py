"""The committed deltagrad/generated package: fresh, importable on its own, numerically right,
array-API clean, and numerically stable where the table promises it."""

import os
import subprocess
import sys

import numpy as np
import pytest

import deltagrad.generated as gen
from deltagrad.codegen.module import GENERATED_DIR, standard_package
from deltagrad.codegen.op_class import class_name
from deltagrad.op_table import STANDARD_OPS
from gradcheck import check_op

rng = np.random.default_rng(7)


def softmax(x):
    e = np.exp(x - x.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def onehot(n, m):
    t = np.zeros((n, m))
    t[np.arange(n), rng.integers(0, m, size=n)] = 1
    return t


def conv2d(x, w, b):
    """Valid 2-D correlation by a loop over output positions (independent of the windows)."""
    kp, kq = w.shape[2:]
    ni, nj = x.shape[2] - kp + 1, x.shape[3] - kq + 1
    y = np.zeros((x.shape[0], w.shape[0], ni, nj))
    for i in range(ni):
        for j in range(nj):
            y[:, :, i, j] = np.einsum("bcpq,ocpq->bo", x[:, :, i:i + kp, j:j + kq], w) + b
    return y


def avg_pool2d(x):
    n, c, h, w = x.shape
    return x[:, :, :h // 2 * 2, :w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))


def max_pool2d(x):
    n, c, h, w = x.shape
    return x[:, :, :h // 2 * 2, :w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


# name -> (reference forward, inputs, size kwargs); one entry per op of the standard table
REFERENCE = {
    "divide": (lambda x, z: x / z, lambda: [rng.normal(size=(3, 4)), rng.uniform(0.5, 2, (3, 4))], {}),
    "multiply": (lambda x, z: x * z, lambda: [rng.normal(size=(3, 4)), rng.normal(size=(3, 4))], {}),
    "add": (lambda x, z: x + z, lambda: [rng.normal(size=(3, 4)), rng.normal(size=(3, 4))], {}),
    "subtract": (lambda x, z: x - z, lambda: [rng.normal(size=(3, 4)), rng.normal(size=(3, 4))], {}),
    "scale": (lambda c, x: c * x, lambda: [0.3, rng.normal(size=(3, 4))], {}),
    "matmul": (lambda x, w: x @ w, lambda: [rng.normal(size=(3, 5)), rng.normal(size=(5, 4))], {}),
    "linear": (lambda x, w, b: x @ w + b, lambda: [rng.normal(size=(3, 5)), rng.normal(size=(5, 4)), rng.normal(size=4)], {}),
    "sigmoid": (lambda x: 1 / (1 + np.exp(-x)), lambda: [rng.normal(size=(3, 4))], {}),
    "relu": (lambda x: np.maximum(x, 0), lambda: [rng.normal(size=(3, 4))], {}),
    "tanh": (np.tanh, lambda: [rng.normal(size=(3, 4))], {}),
    "exp": (np.exp, lambda: [rng.normal(size=(3, 4))], {}),
    "log": (np.log, lambda: [rng.uniform(0.5, 2, (3, 4))], {}),
    "sum": (np.sum, lambda: [rng.normal(size=(3, 4))], {}),
    "row_sum": (lambda x: x.sum(1), lambda: [rng.normal(size=(3, 4))], {}),
    "mean": (np.mean, lambda: [rng.normal(size=(3, 4))], {}),
    "row_mean": (lambda x: x.mean(1), lambda: [rng.normal(size=(3, 4))], {}),
    "expand": (lambda x: np.repeat(x[:, None], 5, axis=1), lambda: [rng.normal(size=3)], {"j": 5}),
    "normalize": (lambda x: x / x.sum(1, keepdims=True), lambda: [rng.uniform(0.5, 2, (3, 4))], {}),
    "squeeze": (lambda x: x[:, 0, :], lambda: [rng.normal(size=(3, 1, 4))], {}),
    "unsqueeze": (lambda x: x[:, None, :], lambda: [rng.normal(size=(3, 4))], {}),
    "transpose": (lambda x: x.T, lambda: [rng.normal(size=(3, 4))], {}),
    "softmax": (softmax, lambda: [rng.normal(size=(3, 4))], {}),
    "log_softmax": (lambda x: np.log(softmax(x)), lambda: [rng.normal(size=(3, 4))], {}),
    "conv2d": (conv2d, lambda: [rng.normal(size=(2, 3, 6, 5)), rng.normal(size=(4, 3, 3, 2)), rng.normal(size=4)], {}),
    "avg_pool2d": (avg_pool2d, lambda: [rng.normal(size=(2, 3, 5, 6))], {"p": 2, "q": 2}),
    "max_pool2d": (max_pool2d, lambda: [rng.normal(size=(2, 3, 5, 6))], {"p": 2, "q": 2}),
    "flatten": (lambda x: np.stack([x[b].ravel() for b in range(len(x))]), lambda: [rng.normal(size=(2, 3, 4, 5))], {}),
    "softmax_cross_entropy": (lambda x, t: -np.sum(t * np.log(softmax(x))) / x.shape[0],
                              lambda: [rng.normal(size=(3, 4)), onehot(3, 4)], {}),
    "row_max": (lambda x: x.max(1), lambda: [rng.permutation(12).reshape(3, 4) / 5.0], {}),
    "select": (lambda x, t: x[np.arange(3), t], lambda: [rng.normal(size=(3, 4)), np.array([3, 0, 3])], {}),
    "embedding": (lambda e, t: e[t], lambda: [rng.normal(size=(5, 3)), np.array([4, 1, 1, 0])], {}),
    "nll_loss": (lambda p, t: -np.log(p[np.arange(3), t]).sum() / 3,
                 lambda: [rng.uniform(0.2, 1, (3, 4)), np.array([1, 3, 1])], {}),
}


def test_the_table_and_the_reference_cover_the_same_ops():
    assert sorted(REFERENCE) == sorted(e.name for e in STANDARD_OPS)
    assert sorted(gen.__all__) == sorted(class_name(e.name) for e in STANDARD_OPS)


def test_committed_package_is_fresh():
    stale = [name for name, text in standard_package().items()
             if (GENERATED_DIR / name).read_text() != text]
    assert not stale, f"deltagrad/generated/{stale[0]} is stale: run `deltagrad codegen -o deltagrad/generated`"


def test_rendering_is_deterministic():
    from deltagrad.codegen.module import derive_entry

    first = standard_package()
    derive_entry.cache_clear()  # derive everything afresh for the second rendering
    assert standard_package() == first


@pytest.mark.parametrize("entry", STANDARD_OPS, ids=[e.name for e in STANDARD_OPS])
def test_every_generated_op_matches_finite_differences(entry):
    reference, make, sizes = REFERENCE[entry.name]
    check_op(getattr(gen, class_name(entry.name)), reference, make(), sizes)


@pytest.mark.parametrize("entry", STANDARD_OPS, ids=[e.name for e in STANDARD_OPS])
def test_every_generated_op_runs_under_array_api_strict(entry):
    xps = pytest.importorskip("array_api_strict")
    reference, make, sizes = REFERENCE[entry.name]
    op = getattr(gen, class_name(entry.name))
    arrays = make()
    ctx_np, ctx_xp = {}, {}
    out = op.forward(ctx_np, *arrays, **sizes)
    strict = [xps.asarray(a) if np.ndim(a) else a for a in arrays]
    out_xp = op.forward(ctx_xp, *strict, **sizes)
    assert type(out_xp).__module__.startswith("array_api_strict")
    np.testing.assert_allclose(np.asarray(out_xp), out, rtol=1e-12)
    g = rng.normal(size=np.shape(out))
    grads_np = op.backward(ctx_np, g)
    grads_xp = op.backward(ctx_xp, xps.asarray(g))
    for a, b in zip(grads_xp, grads_np):
        if b is None:  # an integer input
            assert a is None
            continue
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-12, atol=1e-14)


def test_softmax_cross_entropy_is_stable_at_plus_minus_1000():
    x = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 999.0]])
    t = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    ctx = {}
    loss = gen.SoftmaxCrossEntropy.forward(ctx, x, t)
    dx, dt = gen.SoftmaxCrossEntropy.backward(ctx, 1.0)
    assert np.isfinite(loss) and np.all(np.isfinite(dx)) and np.all(np.isfinite(dt))
    np.testing.assert_allclose(loss, (0.0 + 1.0 + np.log1p(np.exp(-1.0))) / 2, rtol=1e-12)
    p = np.array([[1.0, 0.0, 0.0], [0.0, 1 / (1 + np.exp(-1)), 1 - 1 / (1 + np.exp(-1))]])
    np.testing.assert_allclose(dx, (p - t) / 2, atol=1e-12)
    for op in (gen.Softmax, gen.LogSoftmax):
        ctx = {}
        y = op.forward(ctx, x)
        assert np.all(np.isfinite(y)) and np.all(np.isfinite(op.backward(ctx, np.ones_like(x))[0]))


def test_generated_files_need_nothing_of_deltagrad(tmp_path):
    for name in ("ops.py", "op_base.py"):
        (tmp_path / name).write_text((GENERATED_DIR / name).read_text())
    code = ("import sys, numpy as np; import ops; ctx = {}; "
            "y = ops.Sigmoid.forward(ctx, np.zeros((2, 2))); (dx,) = ops.Sigmoid.backward(ctx, np.ones((2, 2))); "
            "assert float(dx[0, 0]) == 0.25; assert not any(m.startswith('deltagrad') for m in sys.modules); print('ok')")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_codegen_cli_writes_a_package_from_specs(tmp_path):
    from click.testing import CliRunner

    from deltagrad.cli import main

    result = CliRunner().invoke(main, ["codegen", "softplus: Y[i,j] = log(1 + exp(X[i,j]))", "-o", str(tmp_path / "p")])
    assert result.exit_code == 0, result.output
    sys.path.insert(0, str(tmp_path))
    try:
        import importlib

        pkg = importlib.import_module("p")
        check_op(pkg.Softplus, lambda x: np.log1p(np.exp(x)), [rng.normal(size=(2, 3))])
    finally:
        sys.path.remove(str(tmp_path))
    bad = CliRunner().invoke(main, ["codegen", "Y[i] = nope(X[i])", "-o", str(tmp_path / "q")])
    assert bad.exit_code == 2 and bad.output.startswith("error: column")
    assert not (tmp_path / "q").exists()


def test_atomic_write_keeps_the_old_file_when_interrupted(tmp_path, monkeypatch):
    from deltagrad import files

    target = tmp_path / "ops.py"
    target.write_text("old\n")

    def crash(src, dst):
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(files.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        files.write_atomic(target, "new\n" * 1000)
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["ops.py"]
