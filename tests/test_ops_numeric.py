"""Every op the engine is proven on: derive, compile, and check against finite differences
of an independent numpy forward written here."""

import numpy as np
import pytest

from deltagrad import derive
from gradcheck import check_op

rng = np.random.default_rng(1)


def r(*shape, low=-1.5, high=1.5):
    return rng.uniform(low, high, size=shape)


def softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def correlate1d(x, w):
    return np.array([np.dot(x[i:i + len(w)], w) for i in range(len(x) - len(w) + 1)])


def conv2d(x, w, b):
    kp, kq = w.shape[2:]
    return np.stack([np.stack([np.einsum("bcpq,ocpq->bo", x[:, :, i:i + kp, j:j + kq], w) + b
                               for j in range(x.shape[3] - kq + 1)], axis=-1)
                     for i in range(x.shape[2] - kp + 1)], axis=-2)


CASES = [
    # (id, spec, reference forward, inputs, size kwargs)
    ("divide", "Y[i,j] = X[i,j] / Z[i,j]", lambda x, z: x / z, [r(3, 4), r(3, 4, low=0.5, high=2)], {}),
    ("sigmoid", "Y[i,j] = 1 / (1 + exp(-X[i,j]))", lambda x: 1 / (1 + np.exp(-x)), [r(3, 4)], {}),
    ("relu", "Y[i,j] = Max(0, X[i,j])", lambda x: np.maximum(0, x), [r(3, 4)], {}),
    ("tanh", "Y[i,j] = tanh(X[i,j])", np.tanh, [r(3, 4)], {}),
    ("exp", "Y[i,j] = exp(X[i,j])", np.exp, [r(3, 4)], {}),
    ("log", "Y[i,j] = log(X[i,j])", np.log, [r(3, 4, low=0.5, high=2)], {}),
    ("matmul_XW", "Y[i,j] = Sum(X[i,k]*W[k,j], k)", lambda x, w: x @ w, [r(3, 5), r(5, 4)], {}),
    ("matmul_WX", "Y[i,j] = Sum(W[i,k]*X[k,j], k)", lambda w, x: w @ x, [r(3, 5), r(5, 4)], {}),
    ("broadcast_16", "Y[i,j] = x[i]", lambda x: np.repeat(x[:, None], 16, axis=1), [r(3)], {"j": 16}),
    ("row_normalise", "Y[i,j] = X[i,j] / Sum(X[i,k], k)", lambda x: x / x.sum(1, keepdims=True), [r(3, 4, low=0.5, high=2)], {}),
    ("squeeze", "Y[i,j] = X[i,_,j]", lambda x: x[:, 0, :], [r(3, 1, 4)], {}),
    ("select_axis", "Y[i,j] = X[i,1,j]", lambda x: x[:, 1, :], [r(3, 2, 4)], {}),
    ("unsqueeze", "Y[i,_,j] = X[i,j]", lambda x: x[:, None, :], [r(3, 4)], {}),
    ("row_sum", "y[i] = Sum(X[i,k], k)", lambda x: x.sum(1), [r(3, 4)], {}),
    ("total_sum", "s = Sum(X[i,k], i, k)", lambda x: x.sum(), [r(3, 4)], {}),
    ("centre_rows", "Y[i,j] = X[i,j] - Sum(X[i,k], k) / 4", lambda x: x - x.sum(1, keepdims=True) / 4, [r(3, 4)], {}),
    ("row_mean", "y[i] = Sum(X[i,k], k) / size(k)", lambda x: x.mean(1), [r(3, 4)], {}),
    ("mean", "m = Sum(X[i,j], i, j) / (size(i) * size(j))", np.mean, [r(3, 4)], {}),
    ("softmax", "Y[i,j] = exp(X[i,j]) / Sum(exp(X[i,k]), k)", softmax, [r(3, 4)], {}),
    ("log_softmax", "Y[i,j] = X[i,j] - log(Sum(exp(X[i,k]), k))", lambda x: np.log(softmax(x)), [r(3, 4)], {}),
    ("cross_entropy", "L = -Sum(T[i,j]*log(P[i,j]), i, j)", lambda t, p: -np.sum(t * np.log(p)),
     [softmax(r(3, 4)), softmax(r(3, 4))], {}),
    ("linear_bias", "Y[i,j] = Sum(X[i,k]*W[k,j], k) + B[j]", lambda x, w, b: x @ w + b, [r(3, 5), r(5, 4), r(4)], {}),
    ("transpose", "Y[i,j] = X[j,i]", lambda x: x.T, [r(3, 4)], {}),
    ("outer", "Y[i,j] = x[i]*z[j]", np.outer, [r(3), r(4)], {}),
    ("batched_matmul", "Y[b,i,j] = Sum(X[b,i,k]*W[b,k,j], k)", lambda x, w: x @ w, [r(2, 3, 5), r(2, 5, 4)], {}),
    ("scalar_times", "Y[i,j] = c*X[i,j]", lambda c, x: c * x, [1.7, r(3, 4)], {}),
    ("diagonal", "y[i] = X[i,i]", lambda x: np.diagonal(x).copy(), [r(4, 4)], {}),
    ("trace", "t = Sum(X[i,i], i)", np.trace, [r(4, 4)], {}),
    ("symmetrise", "Y[i,j] = X[i,j] + X[j,i]", lambda x: x + x.T, [r(4, 4)], {}),
    ("matvec", "y[i] = Sum(X[i,j]*v[j], j)", lambda x, v: x @ v, [r(3, 4), r(4)], {}),
    ("abs", "Y[i,j] = Abs(X[i,j])", np.abs, [r(3, 4)], {}),
    ("max_pair", "Y[i,j] = Max(X[i,j], Z[i,j])", np.maximum, [r(3, 4), r(3, 4)], {}),
    ("min_clip", "Y[i,j] = Min(X[i,j], 1)", lambda x: np.minimum(x, 1), [r(3, 4)], {}),
    ("power", "Y[i,j] = X[i,j]**Z[i,j]", lambda x, z: x**z, [r(3, 4, low=0.5, high=2), r(3, 4)], {}),
    ("sqrt", "Y[i,j] = sqrt(X[i,j])", np.sqrt, [r(3, 4, low=0.5, high=2)], {}),
    ("sin_cos", "Y[i,j] = sin(X[i,j]) * cos(Z[i,j])", lambda x, z: np.sin(x) * np.cos(z), [r(3, 4), r(3, 4)], {}),
    ("log_sum_exp", "y[i] = log(Sum(exp(X[i,k]), k))", lambda x: np.log(np.exp(x).sum(1)), [r(3, 4)], {}),
    ("mean_sq_error", "L = Sum((P[i,j] - T[i,j])**2, i, j) / 12", lambda p, t: np.sum((p - t) ** 2) / 12, [r(3, 4), r(3, 4)], {}),
    ("tensordot", "Y[i,j] = Sum(X[i,k,l]*W[k,l,j], k, l)", lambda x, w: np.tensordot(x, w, axes=2), [r(2, 3, 4), r(3, 4, 5)], {}),
    ("bilinear", "y[b] = Sum(x[b,i]*A[i,j]*z[b,j], i, j)", lambda x, a, z: np.einsum("bi,ij,bj->b", x, a, z),
     [r(2, 3), r(3, 4), r(2, 4)], {}),
    ("diagonal_sum", "y[i] = Sum(X[i,j,j], j)", lambda x: np.einsum("ijj->i", x), [r(3, 4, 4)], {}),
    ("exp_over_squares", "y[i] = Sum(exp(X[i,k]), k) / Sum(X[i,k]**2, k)",
     lambda x: np.exp(x).sum(1) / (x**2).sum(1), [r(3, 4)], {}),
    ("scalar_log_sum_exp", "L = log(Sum(exp(x[i]), i))", lambda x: np.log(np.exp(x).sum()), [r(5)], {}),
    ("row_variance", "y[i] = Sum((X[i,k] - Sum(X[i,m], m)/size(m))**2, k) / size(k)", lambda x: x.var(1), [r(3, 4)], {}),
    ("layer_norm", "Y[i,j] = (X[i,j] - Sum(X[i,k], k)/size(k)) / sqrt(Sum((X[i,m] - Sum(X[i,n], n)/size(n))**2, m)/size(m) + 1)",
     lambda x: (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + 1), [r(3, 4)], {}),
    ("gram", "Y[i,j] = Sum(X[i,k]*X[j,k], k)", lambda x: x @ x.T, [r(3, 4)], {}),
    ("chain_product", "Y[i,k] = Sum(A[i,j]*B[j,k]*C[k], j)", lambda a, b, c: (a @ b) * c, [r(2, 3), r(3, 4), r(4)], {}),
    ("conv1d", "Y[i] = Sum(X[i+k]*W[k], k)", correlate1d, [r(7), r(3)], {}),
    ("conv2d", "Y[b,o,i,j] = Sum(X[b,c,i+p,j+q]*W[o,c,p,q], c, p, q) + B[o]", conv2d,
     [r(2, 2, 5, 4), r(3, 2, 2, 3), r(3)], {}),
    ("avg_pool_2x2", "Y[b,c,i,j] = Sum(X[b,c,2*i+p,2*j+q], p, q) / 4",
     lambda x: x.reshape(2, 3, 2, 2, 3, 2).mean(axis=(3, 5)), [r(2, 3, 4, 6)], {"p": 2, "q": 2}),
    ("tanh_layer", "Y[i,j] = tanh(Sum(X[i,k]*W[k,j], k) + B[j])", lambda x, w, b: np.tanh(x @ w + b),
     [r(2, 3), r(3, 4), r(4)], {}),
]


@pytest.mark.parametrize("name, spec, reference, arrays, sizes", CASES, ids=[c[0] for c in CASES])
def test_derived_backward_matches_finite_differences(name, spec, reference, arrays, sizes):
    op = derive(spec, name=name).compile()
    check_op(op, reference, arrays, sizes)


def test_float32_inputs_keep_their_dtype():
    op = derive("Y[i,j] = X[i,j] / Sum(X[i,k], k)").compile()
    x = r(3, 4, low=0.5, high=2).astype(np.float32)
    ctx = {}
    y = op.forward(ctx, x)
    (dx,) = op.backward(ctx, np.ones_like(y))
    assert y.dtype == np.float32 and dx.dtype == np.float32
