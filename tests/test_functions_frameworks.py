"""The new functions on the PyTorch and JAX targets: gradcheck and gradgradcheck (torch) and
check_grads of order 2 (JAX) in float64, and the same numbers as the NumPy op; a generic
function with the framework's own implementations. Skipped where a framework is missing."""

from __future__ import annotations

import numpy as np
import pytest

from deltagrad import derive
from test_functions import COMPOSED, draw, shapes_of

NAMES = ["erf_times", "swish", "leaky_relu", "where_two_inputs", "asinh_rows", "log1p_softplus", "sign_times"]
GENERIC = "Y[i,j] = f(X[i,j])*Z[i,j]"


@pytest.mark.parametrize("name", NAMES)
def test_torch_gradcheck_gradgradcheck_and_the_numpy_numbers(name):
    torch = pytest.importorskip("torch")
    spec, _, draws = COMPOSED[name]
    d = derive(spec)
    arrays = draw(draws, shapes_of(d), seed=2)
    f = d.compile(target="torch")
    xs = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    op, ctx = d.compile(), {}
    expected = op.forward(ctx, *arrays)
    got = f(*xs)
    np.testing.assert_allclose(got.detach().numpy(), expected, rtol=1e-12, atol=1e-12)
    g = np.random.default_rng(1).normal(size=np.shape(expected))
    for mine, theirs in zip(torch.autograd.grad(got, xs, torch.tensor(g)), op.backward(ctx, g)):
        np.testing.assert_allclose(mine.numpy(), theirs, rtol=1e-10, atol=1e-12)
    assert torch.autograd.gradcheck(f, xs)
    assert torch.autograd.gradgradcheck(f, xs)


@pytest.mark.parametrize("name", NAMES)
def test_jax_check_grads_and_the_numpy_numbers(name):
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp
    from jax.test_util import check_grads

    spec, _, draws = COMPOSED[name]
    d = derive(spec)
    arrays = draw(draws, shapes_of(d), seed=2)
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        f = d.compile(target="jax")
        xs = [jnp.asarray(a, dtype=jnp.float64) for a in arrays]
        op, ctx = d.compile(), {}
        expected = op.forward(ctx, *arrays)
        y, pullback = jax.vjp(f, *xs)
        np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-12, atol=1e-12)
        g = np.random.default_rng(1).normal(size=np.shape(expected))
        for mine, theirs in zip(pullback(jnp.asarray(g)), op.backward(ctx, g)):
            np.testing.assert_allclose(np.asarray(mine), theirs, rtol=1e-10, atol=1e-12)
        check_grads(f, xs, order=2, modes=["rev"])
    finally:
        jax.config.update("jax_enable_x64", before)


def test_a_generic_function_on_torch_and_jax():
    torch = pytest.importorskip("torch")
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp
    from jax.test_util import check_grads

    d = derive(GENERIC, functions=["f"])
    x, z = draw([lambda r, s: r.normal(size=s)] * 2, shapes_of(d))
    f = d.compile(target="torch", functions={"f": torch.tanh, "f_prime": lambda v: 1 - torch.tanh(v) ** 2,
                                             "f_prime2": lambda v: -2 * torch.tanh(v) * (1 - torch.tanh(v) ** 2)})
    xs = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (x, z)]
    assert torch.autograd.gradcheck(f, xs)
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        g = d.compile(target="jax", functions={"f": jnp.tanh, "f_prime": lambda v: 1 - jnp.tanh(v) ** 2})
        check_grads(g, [jnp.asarray(x), jnp.asarray(z)], order=1, modes=["rev"])
    finally:
        jax.config.update("jax_enable_x64", before)
