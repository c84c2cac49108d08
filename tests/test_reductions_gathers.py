"""Max/Min reductions over named indices, k-way ties of element-wise Max/Min, and gathers by an
integer input: every rule checked by central finite differences in float64, ties by their exact
split, and the derivation's cost."""

from __future__ import annotations

import time

import numpy as np
import pytest

import deltagrad
from deltagrad.errors import SpecError
from gradcheck import check_op

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


GATHERS = [
    ("y[i] = X[i, t[i]]", lambda X, t: X[np.arange(len(t)), t], [(4, 5), ("t", 4, 5)]),
    ("Y[i] = X[t[i], i]", lambda X, t: X[t, np.arange(len(t))], [(5, 4), ("t", 4, 5)]),
    ("Y[n,d] = E[t[n], d]", lambda E, t: E[t], [(6, 3), ("t", 7, 6)]),
    ("Y[b,s,d] = E[t[b,s], d]", lambda E, t: E[t], [(5, 3), ("t", (2, 3), 5)]),
    ("L = -Sum(log(P[i, t[i]]), i)/size(i)", lambda P, t: -np.log(P[np.arange(len(t)), t]).sum() / len(t),
     [("pos", 4, 5), ("t", 4, 5)]),
    ("Y[i,d] = E[t[i], d] * W[i,d]", lambda E, t, W: E[t] * W, [(5, 3), ("t", 4, 5), (4, 3)]),
    ("Y[i,j] = X[i, t[i]] * Z[i,j]", lambda X, t, Z: X[np.arange(3), t][:, None] * Z, [(3, 4), ("t", 3, 4), (3, 2)]),
    ("L = -Sum(X[i, t[i]] - log(Sum(exp(X[i,k]), k)), i)/size(i)",
     lambda X, t: -(X[np.arange(3), t] - np.log(np.exp(X).sum(1))).sum() / 3, [(3, 4), ("t", 3, 4)]),
    ("P[i,j] = exp(X[i,j])/Sum(exp(X[i,k]), k); L = -Sum(log(P[i, t[i]]), i)/size(i)",
     lambda X, t: -np.log((np.exp(X) / np.exp(X).sum(1, keepdims=True))[np.arange(3), t]).sum() / 3,
     [(3, 4), ("t", 3, 4)]),
    ("h[n,e] = Sum(E[t[n], d]*W[d,e], d); Y[n,e] = tanh(h[n,e])", lambda E, t, W: np.tanh(E[t] @ W),
     [(5, 3), ("t", 4, 5), (3, 2)]),
]


def draw(shape):
    """A float array of ``shape``, or ("t", shape, m): integers below m (repeats included), or
    ("pos", rows, cols): positive floats."""
    if shape[0] == "t":
        _, s, m = shape
        return RNG.integers(0, m, size=s)
    if shape[0] == "pos":
        return RNG.uniform(0.2, 1.0, size=shape[1:])
    return RNG.normal(size=shape)


@pytest.mark.parametrize("spec,reference,shapes", GATHERS, ids=[g[0] for g in GATHERS])
def test_gather_finite_differences(spec, reference, shapes):
    """Each float input against central differences; each integer input held fixed, given None."""
    op = deltagrad.derive(spec).compile()
    check_op(op, reference, [draw(s) for s in shapes])


@pytest.mark.parametrize("spec", [g[0] for g in GATHERS[:5]])
def test_gather_derives_and_compiles_under_a_second(spec):
    start = time.perf_counter()
    deltagrad.derive(spec).compile()
    assert time.perf_counter() - start < 1.0


def test_gather_inputs_are_integer_and_get_no_gradient():
    d = deltagrad.derive("Y[n,d] = E[t[n], d]")
    assert [(i.name, i.integer) for i in d.spec.inputs] == [("E", False), ("t", True)]
    assert set(d.grads) == {"E"}
    assert "scatter_add(xp, t, goutput, n_E_0)" in d.source()
    assert "return dE, None" in d.source()
    assert "put_along(xp, t, goutput, n_X_1)" in deltagrad.derive("y[i] = X[i, t[i]]").source()


def test_embedding_repeated_indices_add_up():
    op = deltagrad.derive("Y[n,d] = E[t[n], d]").compile()
    E = np.arange(8.0).reshape(4, 2)
    t = np.array([3, 1, 3, 3])
    ctx = {}
    np.testing.assert_array_equal(op.forward(ctx, E, t), E[t])
    dE, dt = op.backward(ctx, np.ones((4, 2)))
    assert dt is None
    np.testing.assert_array_equal(dE, [[0, 0], [1, 1], [0, 0], [3, 3]])


def test_gather_keeps_float32():
    op = deltagrad.derive("L = -Sum(log(P[i, t[i]]), i)/size(i)").compile()
    P = RNG.uniform(0.2, 1, (3, 4)).astype(np.float32)
    ctx = {}
    op.forward(ctx, P, np.array([0, 3, 3]))
    dP, _ = op.backward(ctx, 1.0)
    assert dP.dtype == np.float32


@pytest.mark.parametrize("spec,message", [
    ("Y[i] = X[i, t[i]] * t[i]", "used both as"),
    ("Y[i] = X[i, t[u[i]]]", "an index must be"),
    ("Y[i] = X[i, t[i]] + X[i, t[i,i]]", "rank"),
])
def test_gather_spec_errors(spec, message):
    with pytest.raises(SpecError, match=message):
        deltagrad.derive(spec)


def check_verdicts(spec, *claims):
    from deltagrad.check.claims import check_claim

    d = deltagrad.derive(spec)
    return [check_claim(d, c).correct for c in claims]


def test_claims_about_a_gather():
    assert check_verdicts("y[i] = X[i, t[i]]", "dX[a,b] = G[a]*delta(b, t[a])", "dX[a,b] = G[a]",
                          "dX[p,q] = G[p]*delta(t[p], q)") == [True, False, True]
    assert check_verdicts("Y[n,d] = E[t[n], d]", "dE[a,b] = Sum_n(G[n,b]*delta(a,t[n]))",
                          "dE[a,b] = Sum(G[n,b]*delta(b,t[n]), n)") == [True, False]
    with pytest.raises(SpecError, match="integer input"):
        check_verdicts("y[i] = X[i, t[i]]", "dt[a] = G[a]")


def test_claims_about_a_max_reduction():
    assert check_verdicts("y[i] = Max(X[i,k], k)", "dX[a,b] = G[a]*[X[a,b] == y[a]]/Sum_k([X[a,k] == y[a]])",
                          "dX[a,b] = G[a]*[X[a,b] == Max_k(X[a,k])]/Sum(([X[a,k] == Max(X[a,j], j)]), k)",
                          "dX[a,b] = G[a]*[X[a,b] == y[a]]") == [True, True, False]
    assert check_verdicts("Y[i] = Max(X[i], Z[i], W[i])",
                          "dX[a] = G[a]*[X[a] == Y[a]]/([X[a] == Y[a]] + [Z[a] == Y[a]] + [W[a] == Y[a]])",
                          "dX[a] = G[a]*[X[a] == Y[a]]") == [True, False]


def test_text_output_pastes_back_as_a_claim():
    for spec in ("y[i] = Max(X[i,k], k)", "Y[i,j] = X[i,j] - Min(X[i,k], k)", "y[i] = X[i, t[i]]"):
        d = deltagrad.derive(spec)
        from deltagrad.codegen.index_printer import index_text

        name, step = next(iter(d.steps.items()))
        idx = ",".join(i.name for i in step.indices)
        claim = f"d{name}[{idx}] = {index_text(step.final)}"
        assert check_verdicts(spec, claim) == [True], claim


def test_latex_of_a_max_reduction_and_a_gather():
    text = deltagrad.derive("y[i] = Max(X[i,k], k)").latex(fragment=True)
    assert r"\max_{k} X_{ik}" in text and "[X_{ab} = y_{a}]" in text and "split equally" in text
    text = deltagrad.derive("y[i] = X[i, t[i]]").latex(fragment=True)
    assert r"X_{i t_{i}}" in text or r"X_{i,t_{i}}" in text
    assert r"\delta_{b t_{a}}" in text or r"\delta_{b,t_{a}}" in text


@pytest.mark.parametrize("spec", ["y[i] = Max(X[i,k], k)", "Y[b,c] = Min(X[b,c,p,q], p, q)",
                                  "Y[i,j] = X[i,j] - Max(X[i,k], k)", "y[i] = X[i, t[i]]",
                                  "Y[n,d] = E[t[n], d]", "L = -Sum(log(P[i, t[i]]), i)/size(i)"])
def test_writeup_compiles_without_overfull_boxes(spec, tmp_path):
    import shutil
    import subprocess

    if not shutil.which("pdflatex"):
        pytest.skip("pdflatex is not installed")
    (tmp_path / "w.tex").write_text(deltagrad.derive(spec).latex())
    subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "w.tex"], cwd=tmp_path,
                   capture_output=True, timeout=120)
    log = (tmp_path / "w.log").read_text(errors="replace")
    assert (tmp_path / "w.pdf").exists() and "Overfull" not in log and "\n!" not in log


def test_kway_ties_from_sympy():
    import sympy as sp

    i = sp.Idx("i")
    X, Z, W, Y = (sp.IndexedBase(n) for n in "XZWY")
    op = deltagrad.derive((Y[i], sp.Max(X[i], Z[i], W[i])), inputs=["X", "Z", "W"]).compile()
    ctx = {}
    ones = np.ones(2)
    op.forward(ctx, ones, ones, ones)
    for g in op.backward(ctx, np.full(2, 3.0)):
        np.testing.assert_allclose(g, 1.0)
