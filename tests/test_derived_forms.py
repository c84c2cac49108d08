"""The derived rules have the forms a careful person would write, and read saved values."""

import sympy as sp

from deltagrad import derive
from deltagrad.derive.spec import index, summed, tensor

a, b, j = index("a"), index("b"), index("j")
G, Y = tensor("G"), tensor("Y")


def same(x, y):
    return sp.simplify(x - y) == 0


def test_sigmoid_is_written_through_its_output():
    d = derive("Y[i,j] = 1 / (1 + exp(-X[i,j]))")
    assert same(d.grads["X"], G[a, b] * Y[a, b] * (1 - Y[a, b]))
    assert d.saved == ("Y",)
    assert d.numpy("X") == "dX = goutput * Y * (1 - Y)"


def test_softmax_backward_is_y_times_g_minus_weighted_sum():
    d = derive("Y[i,j] = exp(X[i,j]) / Sum(exp(X[i,k]), k)")
    assert same(d.grads["X"], Y[a, b] * (G[a, b] - summed(G[a, j] * Y[a, j], j)))
    assert d.saved == ("Y",)
    assert "xp.sum(goutput * Y, axis=1)" in d.numpy("X")


def test_row_normalisation_reuses_the_saved_row_sum():
    d = derive("Y[i,j] = X[i,j] / Sum(X[i,k], k)")
    row_sum = tensor("row_sum")
    assert same(d.grads["X"], (G[a, b] - summed(G[a, j] * Y[a, j], j)) / row_sum[a])
    assert set(d.saved) == {"row_sum", "Y"}


def test_log_softmax_backward():
    d = derive("Y[i,j] = X[i,j] - log(Sum(exp(X[i,k]), k))")
    assert same(d.grads["X"], G[a, b] - sp.exp(Y[a, b]) * summed(G[a, j], j))


def test_tanh_and_exp_read_the_output():
    assert same(derive("Y[i,j] = tanh(X[i,j])").grads["X"], G[a, b] * (1 - Y[a, b] ** 2))
    assert same(derive("Y[i,j] = exp(X[i,j])").grads["X"], G[a, b] * Y[a, b])


def test_relu_keeps_its_input_and_uses_the_documented_kink_convention():
    d = derive("Y[i,j] = Max(0, X[i,j])")
    x = tensor("X")
    assert d.grads["X"] == G[a, b] * sp.Heaviside(x[a, b])
    assert d.saved == ("X",)
    import numpy as np

    op = d.compile()
    ctx = {}
    op.forward(ctx, np.array([[-1.0, 0.0, 2.0]]))
    (dx,) = op.backward(ctx, np.ones((1, 3)))
    assert dx.tolist() == [[0.0, 0.5, 1.0]]  # Heaviside(0) = 1/2, as SymPy


def test_matmul_lowers_to_blas_calls_on_both_sides():
    d = derive("Y[i,j] = Sum(X[i,k]*W[k,j], k)")
    assert d.numpy() == "dX = goutput @ W.T\ndW = X.T @ goutput"
    d = derive("Y[b,i,j] = Sum(X[b,i,k]*W[b,k,j], k)")
    assert d.numpy() == "dX = goutput @ W.mT\ndW = X.mT @ goutput"
    d = derive("Y[i,j] = Sum(X[i,k,l]*W[k,l,j], k, l)")
    assert "tensordot" in d.numpy("W") and "einsum" not in d.source()


def test_broadcast_backward_sums_over_the_broadcast_axis():
    d = derive("Y[i,j] = Sum(X[i,k]*W[k,j], k) + B[j]")
    assert d.numpy("B") == "dB = xp.sum(goutput, axis=0)"


def test_generated_code_has_no_python_loops_and_is_deterministic():
    specs = ["Y[i,j] = exp(X[i,j]) / Sum(exp(X[i,k]), k)", "y[b] = Sum(x[b,i]*A[i,j]*z[b,j], i, j)", "y[i] = X[i,i]"]
    for spec in specs:
        src = derive(spec).source()
        assert " for " not in src and "while" not in src
        assert src == derive(spec).source()


def test_forward_saves_exactly_what_backward_reads():
    d = derive("Y[i,j] = X[i,j] / Z[i,j]")
    op = d.compile()
    import numpy as np

    ctx = {}
    op.forward(ctx, np.ones((2, 2)), np.full((2, 2), 2.0))
    assert sorted(ctx) == sorted(d.saved) == ["Y", "Z"]


def test_every_step_is_kept():
    st = derive("Y[i,j] = Sum(X[i,k]*W[k,j], k)").steps["X"]
    assert st.chain_rule.has(sp.KroneckerDelta)
    assert not st.eliminated.has(sp.KroneckerDelta)
    assert st.final == st.simplified
