"""Max/Min reductions over named indices, k-way ties of element-wise Max/Min, and gathers by an
integer input: every rule checked by central finite differences in float64, ties by their exact
split, and the derivation's cost."""

from __future__ import annotations

import time

import numpy as np
import pytest

import deltagrad
from deltagrad.errors import SpecError
from tests.gradcheck import check_op

RNG = np.random.default_rng(7)


def distinct(*shape):
    """Random floats with no ties (a permutation scaled), so finite differences see no kink."""
    n = int(np.prod(shape))
    return (RNG.permutation(n).reshape(shape) / n * 4 - 2) + RNG.uniform(0, 1e-3, size=shape)


REDUCTIONS = [
    ("y[i] = Max(X[i,k], k)", lambda X: X.max(axis=1), [(4, 5)]),
    ("y[i] = Min(X[i,k], k)", lambda X: X.min(axis=1), [(4, 5)]),
    ("y[b,c] = Max(X[b,c,p,q], p, q)", lambda X: X.max(axis=(2, 3)), [(2, 3, 2, 4)]),
    ("y[b,c] = Min(X[b,c,p,q], p, q)", lambda X: X.min(axis=(2, 3)), [(2, 3, 2, 4)]),
    ("y[k] = Max(X[i,k], i)", lambda X: X.max(axis=0), [(4, 5)]),
    ("m = Max(X[i,k], i, k)", lambda X: X.max(), [(3, 4)]),
    ("Y[i,j] = X[i,j] - Max(X[i,k], k)", lambda X: X - X.max(axis=1, keepdims=True), [(3, 5)]),
    ("Y[i,j] = exp(X[i,j] - Max(X[i,k], k)) * W[i,j]", lambda X, W: np.exp(X - X.max(1, keepdims=True)) * W,
     [(3, 4), (3, 4)]),
    ("Y[i,j] = Min(X[i,k], k) * Max(X[k,j], k)", lambda X: X.min(1)[:, None] * X.max(0)[None, :], [(4, 4)]),
    ("m[i] = Max(X[i,k], k); Y[i,j] = exp(X[i,j] - m[i]) / Sum(exp(X[i,l] - m[i]), l)",
     lambda X: np.exp(X - X.max(1, keepdims=True)) / np.exp(X - X.max(1, keepdims=True)).sum(1, keepdims=True),
     [(3, 5)]),
    ("s[i] = Sum(X[i,k], k); Y[i] = Max(X[i,k], k) - Min(X[i,k], k) + s[i]",
     lambda X: X.max(1) - X.min(1) + X.sum(1), [(3, 5)]),
]


@pytest.mark.parametrize("spec,reference,shapes", REDUCTIONS, ids=[r[0] for r in REDUCTIONS])
def test_reduction_finite_differences(spec, reference, shapes):
    op = deltagrad.derive(spec).compile()
    check_op(op, reference, [distinct(*s) for s in shapes])


@pytest.mark.parametrize("spec", [r[0] for r in REDUCTIONS[:7]])
def test_reduction_derives_and_compiles_under_a_second(spec):
    start = time.perf_counter()
    deltagrad.derive(spec).compile()
    assert time.perf_counter() - start < 1.0


def test_reduction_form_is_told_from_elementwise():
    # trailing bare names that the first argument uses as indices: a reduction
    assert "xp.max(X, axis=1)" in deltagrad.derive("y[i] = Max(X[i,k], k)").source()
    # a bare name that no argument uses as an index: a scalar input, element-wise
    d = deltagrad.derive("Y[i,k] = Max(X[i,k], c)")
    assert d.inputs == ("X", "c") and "maximum" in d.source()
    with pytest.raises(SpecError, match="summed on the right and also free on the left"):
        deltagrad.derive("Y[i,k] = Max(X[i,k], k)")
    with pytest.raises(SpecError, match="names the same index twice"):
        deltagrad.derive("y[i] = Max(X[i,k], k, k)")


def test_reduction_backward_reads_the_output_and_one_mask():
    source = deltagrad.derive("y[i] = Max(X[i,k], k)").source()
    assert "y = xp.max(X, axis=1)" in source
    backward = source.split("def backward")[1]
    assert backward.count("==") == 1 and "xp.sum(X_is_y, axis=1)" in backward


def test_reduction_ties_split_equally():
    op = deltagrad.derive("y[i] = Max(X[i,k], k)").compile()
    X = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0]])
    ctx = {}
    np.testing.assert_array_equal(op.forward(ctx, X), [3.0, 2.0])
    (dX,) = op.backward(ctx, np.array([1.0, 2.0]))
    np.testing.assert_allclose(dX, [[0, 0.5, 0.5, 0], [0.5, 0.5, 0.5, 0.5]])
    op = deltagrad.derive("y[b] = Min(X[b,p,q], p, q)").compile()
    X = np.array([[[0.0, 1.0], [0.0, 0.0]]])
    ctx = {}
    op.forward(ctx, X)
    (dX,) = op.backward(ctx, np.array([3.0]))
    np.testing.assert_allclose(dX, [[[1.0, 0.0], [1.0, 1.0]]])


def test_reduction_keeps_float32():
    op = deltagrad.derive("y[i] = Max(X[i,k], k)").compile()
    ctx = {}
    X = distinct(3, 4).astype(np.float32)
    y = op.forward(ctx, X)
    (dX,) = op.backward(ctx, np.ones(3, dtype=np.float32))
    assert y.dtype == np.float32 and dX.dtype == np.float32


@pytest.mark.parametrize("kind,pick", [("Max", np.maximum), ("Min", np.minimum)])
def test_kway_ties_of_elementwise_max(kind, pick):
    op = deltagrad.derive(f"Y[i] = {kind}(X[i], Z[i], W[i])").compile()
    X = np.array([1.0, 2.0, 5.0, 0.0])
    Z = np.array([1.0, 2.0, 4.0, 3.0])
    W = np.array([1.0, 0.0, 5.0, 3.0])
    ctx = {}
    np.testing.assert_array_equal(op.forward(ctx, X, Z, W), pick(pick(X, Z), W))
    dX, dZ, dW = op.backward(ctx, np.full(4, 6.0))
    total = dX + dZ + dW
    np.testing.assert_allclose(total, 6.0)  # a tie never creates or loses gradient
    np.testing.assert_allclose([dX[0], dZ[0], dW[0]], [2.0, 2.0, 2.0])  # three-way tie: 1/3 each
    if kind == "Max":
        np.testing.assert_allclose([dX[1], dZ[1], dW[1]], [3.0, 3.0, 0.0])
        np.testing.assert_allclose([dX[2], dZ[2], dW[2]], [3.0, 0.0, 3.0])


def test_kway_ties_finite_differences_away_from_ties():
    op = deltagrad.derive("Y[i] = Max(X[i], Z[i], W[i])").compile()
    check_op(op, lambda X, Z, W: np.maximum(np.maximum(X, Z), W), [distinct(5), distinct(5), distinct(5)])


def test_row_max_of_ten_literal_columns_keeps_working():
    cols = ", ".join(f"X[i,{n}]" for n in range(10))
    op = deltagrad.derive(f"y[i] = Max({cols})").compile()
    check_op(op, lambda X: X[:, :10].max(axis=1), [distinct(3, 10)])
    ctx = {}
    X = np.zeros((1, 10))
    X[0, [2, 5]] = 1.0
    op.forward(ctx, X)
    (dX,) = op.backward(ctx, np.ones(1))
    np.testing.assert_allclose(dX[0], [0, 0, 0.5, 0, 0, 0.5, 0, 0, 0, 0])


def test_two_way_ties_keep_heaviside():
    d = deltagrad.derive("Y[i,j] = Max(0, X[i,j])")
    assert "Heaviside" in str(d.grads["X"])
