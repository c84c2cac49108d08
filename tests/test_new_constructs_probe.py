"""Regression tests from probing the new spec constructs (Max/Min reductions, gathers, functions,
'...', '_') in combination: each spec's op is compared with hand-written NumPy and its backward
with central finite differences in float64."""

from __future__ import annotations

import numpy as np

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
