"""Property tests: random shapes and values, every derived backward against finite differences."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from deltagrad import derive
from gradcheck import check_op

sizes = st.integers(min_value=1, max_value=5)
seeds = st.integers(min_value=0, max_value=2**32 - 1)
OPS = {}


def op(spec, **kw):
    if spec not in OPS:
        OPS[spec] = derive(spec, **kw).compile()
    return OPS[spec]


@settings(max_examples=25, deadline=None)
@given(n=sizes, k=sizes, m=sizes, seed=seeds)
def test_matmul_any_shape(n, k, m, seed):
    rng = np.random.default_rng(seed)
    check_op(op("Y[i,j] = Sum(X[i,k]*W[k,j], k)"), lambda x, w: x @ w, [rng.normal(size=(n, k)), rng.normal(size=(k, m))])


@settings(max_examples=25, deadline=None)
@given(n=sizes, m=sizes, seed=seeds, scale=st.floats(0.1, 5.0))
def test_softmax_any_shape_and_scale(n, m, seed, scale):
    rng = np.random.default_rng(seed)

    def softmax(x):
        e = np.exp(x - x.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    check_op(op("Y[i,j] = exp(X[i,j]) / Sum(exp(X[i,k]), k)"), softmax, [scale * rng.normal(size=(n, m))], atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(n=sizes, m=sizes, seed=seeds)
def test_broadcast_any_width(n, m, seed):
    rng = np.random.default_rng(seed)
    check_op(op("Y[i,j] = x[i]"), lambda x: np.repeat(x[:, None], m, axis=1), [rng.normal(size=n)], {"j": m})


@settings(max_examples=25, deadline=None)
@given(b=sizes, n=sizes, k=sizes, m=sizes, seed=seeds)
def test_linear_with_bias_and_batched_matmul(b, n, k, m, seed):
    rng = np.random.default_rng(seed)
    check_op(op("Y[i,j] = Sum(X[i,k]*W[k,j], k) + B[j]"), lambda x, w, bias: x @ w + bias,
             [rng.normal(size=(n, k)), rng.normal(size=(k, m)), rng.normal(size=m)])
    check_op(op("Y[b,i,j] = Sum(X[b,i,k]*W[b,k,j], k)"), lambda x, w: x @ w,
             [rng.normal(size=(b, n, k)), rng.normal(size=(b, k, m))])


@settings(max_examples=25, deadline=None)
@given(n=sizes, m=sizes, seed=seeds)
def test_row_normalise_positive_inputs(n, m, seed):
    rng = np.random.default_rng(seed)
    check_op(op("Y[i,j] = X[i,j] / Sum(X[i,k], k)"), lambda x: x / x.sum(1, keepdims=True),
             [rng.uniform(0.2, 3.0, size=(n, m))], atol=1e-6)
