"""Regression tests from probing the new spec constructs (Max/Min reductions, gathers, functions,
'...', '_') in combination: each spec's op is compared with hand-written NumPy and its backward
with central finite differences in float64."""

from __future__ import annotations

import numpy as np
import pytest

from deltagrad import derive
from gradcheck import check_op


def test_an_index_reused_by_a_max_reduction_of_an_earlier_statement():
    # the inlined program renamed a Sum's bound index apart but not a Max's: "summed twice"
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3, 4))
    lse = derive("m[i] = Max(X[i,k], k); y[i] = m[i] + log(Sum(exp(X[i,k] - m[i]), k))")
    check_op(lse.compile(), lambda X: np.log(np.exp(X).sum(1)), [X])
    shifted = derive("m[i] = Max(X[i,k], k); Y[i,k] = X[i,k] - m[i]")
    check_op(shifted.compile(), lambda X: X - X.max(1, keepdims=True), [X])
    twice = derive("m[i] = Min(X[i,k], k); y[i] = Max(X[i,k] - 2*m[i], k)")
    check_op(twice.compile(), lambda X: (X - 2 * X.min(1, keepdims=True)).max(1), [X])


GATHER_PRODUCTS = {
    "y[i] = sigmoid(X[i, t[i]])": lambda X, t: 1 / (1 + np.exp(-X[np.arange(3), t])),
    "y[i] = X[i, t[i]]*Z[i, t[i]]": lambda X, t, Z: X[np.arange(3), t] * Z[np.arange(3), t],
    "y[i] = v[t[i]]*x[i]": lambda v, t, x: v[t] * x,
}


def _gather_inputs(d):
    rng = np.random.default_rng(3)
    shapes = {"X": (3, 4), "Z": (3, 4), "v": (4,), "x": (3,)}
    return [np.array([1, 3, 0]) if n == "t" else rng.normal(size=shapes[n]) for n in d.inputs]


@pytest.mark.parametrize("spec", list(GATHER_PRODUCTS))
def test_a_gather_whose_gradient_is_a_product_on_torch_and_jax(spec):
    # put_along / scatter_add printed a product unparenthesised: goutput * y * (1 - y)[..., None]
    d = derive(spec)
    arrays = _gather_inputs(d)
    check_op(d.compile(), GATHER_PRODUCTS[spec], arrays)
    ctx, g = {}, np.random.default_rng(4).normal(size=3)
    d.compile().forward(ctx, *arrays)
    want = d.compile().backward(ctx, g)
    torch = pytest.importorskip("torch")
    xs = [torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    y = d.compile(target="torch")(*xs)
    got = torch.autograd.grad(y, [x for x in xs if x.requires_grad], torch.tensor(g))
    for mine, theirs in zip(got, [w for w in want if w is not None]):
        np.testing.assert_allclose(mine.numpy(), theirs, rtol=1e-12)
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        _, pullback = jax.vjp(d.compile(target="jax"), *[jnp.asarray(a) for a in arrays])
        for mine, theirs, a in zip(pullback(jnp.asarray(g)), want, arrays):
            if a.dtype.kind == "f":
                np.testing.assert_allclose(np.asarray(mine), theirs, rtol=1e-12)
    finally:
        jax.config.update("jax_enable_x64", before)


SQUEEZES = {
    "Y[i,j] = exp(X[i,_,j])": lambda X: np.exp(X[:, 0]),
    "y[i] = Max(X[i,_,k], k)": lambda X: X[:, 0].max(1),
    "Y[i,j] = exp(X[i,_,j])/Sum(exp(X[i,_,k]), k)": lambda X: np.exp(X[:, 0]) / np.exp(X[:, 0]).sum(1, keepdims=True),
}


@pytest.mark.parametrize("spec", list(SQUEEZES))
def test_a_squeeze_whose_gradient_is_rewritten_through_a_saved_value(spec):
    # the numeric comparison of a rewrite lowered delta(_, b) and raised LoweringError (a traceback)
    X = np.random.default_rng(5).normal(size=(3, 1, 4))
    check_op(derive(spec).compile(), SQUEEZES[spec], [X])


def test_a_gather_by_an_integer_input_that_carries_the_ellipsis():
    # the integer input t carries '...': KeyError in the derivation, then an unbound dt in backward
    rng = np.random.default_rng(6)
    X, E, t = rng.normal(size=(2, 3, 4)), rng.normal(size=(5, 4)), np.array([[1, 3, 0], [2, 2, 0]])
    select = derive("y[...] = X[..., t[...]]")
    check_op(select.compile(), lambda X, t: np.take_along_axis(X, t[..., None], -1)[..., 0], [X, t])
    embed = derive("Y[...,d] = E[t[...], d]")
    check_op(embed.compile(), lambda E, t: E[t], [E, t])


@pytest.mark.parametrize("spec, name", [("Y[...,i,j] = Sum(X[...,i,k]*W[k,j], k)", "W"),
                                        ("Y[...,d] = E[t[...], d]", "E"),
                                        ("Y[...,j] = Max(X[...,k]*W[k,j], k)", "W")])
def test_a_printed_rule_that_sums_over_the_ellipsis_is_a_claim_it_reads(spec, name):
    # the rule prints Sum_...,i(...), which claims refused as a syntax error
    from deltagrad.check.claims import check_claim
    from deltagrad.codegen.text import derivation_text

    d = derive(spec)
    (rule,) = [line for line in derivation_text(d, name).splitlines() if line.startswith(f"d{name}[")]
    assert "Sum_..." in rule
    assert check_claim(d, rule).correct
    assert not check_claim(d, rule.replace(" = ", " = 2*", 1)).correct


def test_where_of_two_numbers_keeps_float32_through_a_scatter():
    # dE = goutput * scatter_add(..., xp.where(c, 1, 0) ...): an integer array, so float64 out
    rng = np.random.default_rng(8)
    E, t = rng.normal(size=(5, 4)), np.array([4, 4, 0, 1])
    d = derive("y = Sum(where(E[t[n], d] > 0, E[t[n], d], 0), n, d)")
    check_op(d.compile(), lambda E, t: np.maximum(E[t], 0).sum(), [E, t])
    ctx = {}
    d.compile().forward(ctx, E.astype(np.float32), t)
    dE, dt = d.compile().backward(ctx, np.float32(1.5))
    assert dE.dtype == np.float32 and dt is None
    np.testing.assert_allclose(dE, _relu_scatter(E, t), rtol=1e-6)


def _relu_scatter(E, t):
    out = np.zeros_like(E)
    np.add.at(out, t, 1.5 * (E[t] > 0))
    return out
