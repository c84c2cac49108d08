"""The JAX target: derived ops built on jax.custom_vjp, proven with check_grads of order 2
(reverse mode, float64) on every standard op and a broad set of further specs and programs.

Skipped, with the reason, where JAX is not installed (`pip install -e '.[jax]'`); CI installs it."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

if os.environ.get("CI"):  # CI installs JAX (.ci/run): there a missing jax is an error, not a skip
    import jax
else:
    jax = pytest.importorskip("jax", reason="JAX is not installed: pip install -e '.[jax]'")

import jax.numpy as jnp  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from jax.test_util import check_grads  # noqa: E402

from deltagrad import ShapeError, derive  # noqa: E402
from deltagrad.cli import main  # noqa: E402
from framework_cases import CASES, IDS, case, integer_inputs  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def float64():
    """float64 for the numerical checks (JAX's default is float32); restored afterwards."""
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", before)


@pytest.mark.parametrize("kind, name, spec, inputs, arrays, sizes", CASES, ids=IDS)
def test_check_grads_of_order_two(kind, name, spec, inputs, arrays, sizes):
    d, arrays, sizes = case(kind, name, spec, inputs, arrays, sizes)
    f = d.compile(target="jax")
    ints = integer_inputs(d)
    xs = [jnp.asarray(a) if n in ints else jnp.asarray(a, dtype=jnp.float64) for n, a in enumerate(arrays)]
    # the same forward and the same backward as the NumPy op
    op = d.compile()
    ctx = {}
    expected = op.forward(ctx, *arrays, **sizes)
    y, pullback = jax.vjp(lambda *a: f(*a, **sizes), *xs)
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-12, atol=1e-12)
    g = np.random.default_rng(1).normal(size=np.shape(expected))
    for n, (mine, theirs) in enumerate(zip(pullback(jnp.asarray(g)), op.backward(ctx, g))):
        if n in ints:  # an integer input: a float0 cotangent in JAX, None from the NumPy op
            assert mine.dtype == jax.dtypes.float0 and theirs is None
            continue
        np.testing.assert_allclose(np.asarray(mine), theirs, rtol=1e-10, atol=1e-12)

    # custom_vjp has no forward mode: reverse over reverse, as Hessian-vector products use
    def floats_only(*fs):
        it = iter(fs)
        return f(*[xs[n] if n in ints else next(it) for n in range(len(xs))], **sizes)

    check_grads(floats_only, [x for n, x in enumerate(xs) if n not in ints], order=2, modes=["rev"])


def test_generated_function_reads_like_the_numpy_op():
    d = derive("Y[i,j] = exp(X[i,j]) / Sum(exp(X[i,k]), k)", name="softmax")
    src = d.compile(target="jax").source
    from deltagrad.codegen.op_class import op_context

    for line in op_context(d)["backward_doc"]:  # the NumPy op's docstring: index form, matrix form
        assert line in src
    assert "@jax.custom_vjp\ndef _softmax(X):" in src
    assert "return Y, (Y,)" in src
    assert "dX = Y * (goutput - jnp.sum(goutput * Y, axis=1)[:, None])" in src
    assert "_softmax.defvjp(_softmax_fwd, _softmax_bwd)" in src
    assert "xp." not in src.replace("xp.sign", "")


def test_jit_hessian_and_float32():
    f = derive("Y[i,j] = X[i,j] / Sum(X[i,k], k)").compile(target="jax")
    x = jnp.asarray(np.random.default_rng(0).uniform(0.5, 2, size=(3, 4)), dtype=jnp.float32)
    loss = lambda x: jnp.sum(f(x) ** 2)  # noqa: E731
    g = jax.jit(jax.grad(loss))(x)
    assert f(x).dtype == g.dtype == jnp.float32
    h = jax.hessian(loss)(x.astype(jnp.float64))  # reverse over reverse through the derived rule
    ref = jax.hessian(lambda x: jnp.sum((x / x.sum(1, keepdims=True)) ** 2))(x.astype(jnp.float64))
    np.testing.assert_allclose(h, ref, rtol=1e-10, atol=1e-12)


def test_integer_inputs_get_a_float0_cotangent():
    d = derive("L = -Sum(T[i,j]*(X[i,j] - log(Sum(exp(X[i,k]), k))), i, j) / size(i)", inputs=["X", "T"])
    f = d.compile(target="jax")
    x = jnp.asarray(np.random.default_rng(0).normal(size=(4, 3)))
    t = jax.nn.one_hot(jnp.array([0, 2, 1, 1]), 3, dtype=jnp.int32)
    _, pullback = jax.vjp(f, x, t)
    dx, dt = pullback(jnp.ones((), x.dtype))
    assert dt.dtype == jax.dtypes.float0
    np.testing.assert_allclose(dx, (jax.nn.softmax(x, axis=1) - t) / 4, rtol=1e-12)
    np.testing.assert_allclose(jax.grad(f)(x, t), dx)


def test_shapes_are_checked_with_the_messages_of_the_numpy_ops():
    d = derive("Y[i,j] = Sum(X[i,k]*W[k,j], k)", name="matmul")
    with pytest.raises(ShapeError) as numpy_error:
        d.compile().forward({}, np.ones((2, 3)), np.ones((4, 5)))
    with pytest.raises(ShapeError) as jax_error:
        jax.jit(d.compile(target="jax"))(jnp.ones((2, 3)), jnp.ones((4, 5)))
    assert str(jax_error.value) == str(numpy_error.value)


def test_size_keywords_literal_indices_and_scalars():
    expand = derive("Y[i,j] = x[i]", name="expand").compile(target="jax")
    x = jnp.arange(3.0)
    assert expand(x, j=5).shape == (3, 5)
    np.testing.assert_allclose(jax.grad(lambda x: expand(x, j=5).sum())(x), np.full(3, 5.0))
    select = derive("Y[i,j] = X[i,1,j]").compile(target="jax")
    x = jnp.ones((2, 3, 4))
    gx = jax.jit(jax.grad(lambda x: select(x).sum()))(x)
    np.testing.assert_allclose(gx[:, 1, :], 1.0)
    np.testing.assert_allclose(gx[:, 0, :], 0.0)
    scale = derive("Y[i,j] = c*X[i,j]").compile(target="jax")
    dc, dx = jax.grad(lambda c, x: scale(c, x).sum(), argnums=(0, 1))(2.0, jnp.ones((2, 2)))
    assert float(dc) == 4.0 and np.all(dx == 2.0)


def test_cli_prints_and_writes_jax_ops(tmp_path):
    out = CliRunner().invoke(main, ["derive", "Y[i,j] = X[i,j] / Z[i,j]", "--name", "divide", "--format", "jax"])
    assert out.exit_code == 0 and "import jax.numpy as jnp\n" in out.output
    assert "def divide(X, Z):" in out.output
    out = CliRunner().invoke(main, ["codegen", "--target", "jax", "-o", str(tmp_path / "jops")])
    assert out.exit_code == 0, out.output
    code = ("import jax, jax.numpy as jnp, jops; from jax.test_util import check_grads; "
            "jax.config.update('jax_enable_x64', True); x = jnp.linspace(-1, 1, 12).reshape(3, 4); "
            "check_grads(jops.log_softmax, [x], order=2, modes=['rev']); print(jops.log_softmax.__doc__)")
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "Row-wise log-softmax." in run.stdout
