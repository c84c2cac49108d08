"""Programs: a forward as named steps, derived by reverse mode over the steps and written
through the user's own names; every result checked against central finite differences."""

import re

import numpy as np
import pytest
import sympy as sp
from click.testing import CliRunner

from deltagrad import SpecError, derive
from deltagrad.cli import main
from deltagrad.derive.spec import index, summed, tensor
from gradcheck import check_op

rng = np.random.default_rng(3)


def r(*shape, low=-2.0, high=2.0):
    return rng.uniform(low, high, size=shape)


def softmax(x):
    e = np.exp(x - x.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


LAYER_NORM = ("mu[i] = Sum(X[i,k], k)/size(k); D[i,j] = X[i,j] - mu[i]; "
              "var[i] = Sum(D[i,k]**2, k)/size(k); Y[i,j] = D[i,j]/sqrt(var[i] + 0.00001)")
CROSS_ENTROPY = "P[i,j] = exp(X[i,j])/Sum(exp(X[i,k]), k); L = -Sum(T[i,j]*log(P[i,j]), i, j)/size(i)"
ATTENTION = "S[i,j] = Sum(Q[i,d]*K[j,d], d); P[i,j] = exp(S[i,j])/Sum(exp(S[i,l]), l); O[i,e] = Sum(P[i,j]*V[j,e], j)"

PROGRAMS = [
    ("centre", "m[i] = Sum(X[i,k], k)/size(k); Y[i,j] = X[i,j] - m[i]",
     lambda x: x - x.mean(1, keepdims=True), [r(3, 4)]),
    ("cross_entropy", CROSS_ENTROPY,
     lambda x, t: -(t * np.log(softmax(x))).sum() / x.shape[0], [r(3, 4), r(3, 4, low=0, high=1)]),
    ("layer_norm", LAYER_NORM,
     lambda x: (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + 1e-5), [r(3, 4)]),
    ("attention", ATTENTION, lambda q, k, v: softmax(q @ k.T) @ v, [r(3, 2), r(4, 2), r(4, 5)]),
    ("stacked_tanh", "H[i,j] = tanh(Sum(X[i,k]*W1[k,j], k) + B1[j]); Y[i,l] = tanh(Sum(H[i,j]*W2[j,l], j) + B2[l])",
     lambda x, w1, b1, w2, b2: np.tanh(np.tanh(x @ w1 + b1) @ w2 + b2), [r(2, 3), r(3, 4), r(4), r(4, 2), r(2)]),
    ("silu", "s[i,j] = 1/(1 + exp(-X[i,j])); Y[i,j] = X[i,j]*s[i,j]", lambda x: x / (1 + np.exp(-x)), [r(3, 4)]),
    ("rms_norm", "ms[i] = Sum(X[i,k]**2, k)/size(k); Y[i,j] = X[i,j]/sqrt(ms[i] + 0.000001)",
     lambda x: x / np.sqrt((x**2).mean(1, keepdims=True) + 1e-6), [r(3, 4)]),
    ("cosine", "na[i] = sqrt(Sum(A[i,k]**2, k)); nb[i] = sqrt(Sum(B[i,k]**2, k)); c[i] = Sum(A[i,k]*B[i,k], k)/(na[i]*nb[i])",
     lambda a, b: (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1), [r(3, 4), r(3, 4)]),
    ("scalar_step", "s = Sum(X[i,j], i, j); Y[i,j] = X[i,j]*s", lambda x: x * x.sum(), [r(2, 3)]),
    ("index_reuse", "a[i] = Sum(X[i,k], k); Y[k] = Sum(W[k,i]*a[i], i)", lambda x, w: w @ x.sum(1), [r(3, 4), r(5, 3)]),
]


@pytest.mark.parametrize("name, spec, reference, arrays", PROGRAMS, ids=[p[0] for p in PROGRAMS])
def test_program_backward_matches_finite_differences(name, spec, reference, arrays):
    op = derive(spec, name=name).compile()
    check_op(op, reference, arrays)


def test_cross_entropy_reads_the_softmax_by_its_own_name():
    d = derive(CROSS_ENTROPY)
    a, b, j = index("a"), index("b"), index("j")
    P, T = tensor("P"), tensor("T")
    G, n_i = sp.Symbol("G", real=True), sp.Symbol("n_i", integer=True, positive=True)
    want = G * (P[a, b] * summed(T[a, j], j) - T[a, b]) / n_i
    assert sp.simplify(d.grads["X"].xreplace({sp.Symbol("n_k", integer=True, positive=True): sp.Symbol("n_j", integer=True, positive=True)}) - want) == 0
    assert "P" in d.saved and not re.search(r"\bX\b", d.numpy("X").split("=", 1)[1])


def test_layer_norm_stays_centred_and_float32_accurate_at_large_means():
    d = derive(LAYER_NORM)
    assert {"D", "var"} <= set(d.saved) and "X" not in d.saved  # the backward reads D, var and Y, not X
    op = d.compile()
    x = 1e4 + rng.normal(size=(16, 64))
    g = rng.normal(size=(16, 64))
    grads = {}
    for dt in (np.float64, np.float32):
        ctx = {}
        op.forward(ctx, x.astype(dt))
        (grads[dt],) = op.backward(ctx, g.astype(dt))
    assert grads[np.float32].dtype == np.float32
    err = np.abs(grads[np.float32] - grads[np.float64]).max() / np.abs(grads[np.float64]).max()
    assert err <= 1e-3


def test_attention_forward_is_stable_and_uses_matmuls():
    d = derive(ATTENTION)
    src = d.source()
    assert "Q @ K.T" in src and "xp.max(S, axis=1)" in src and "einsum" not in src
    op = d.compile()
    q, k, v = (rng.normal(size=s).astype(np.float32) * 30 for s in [(8, 4), (6, 4), (6, 3)])
    ctx = {}
    out = op.forward(ctx, q, k, v)
    grads = op.backward(ctx, np.ones_like(out))
    assert all(np.isfinite(a).all() for a in (out, *grads))


def test_programs_are_separated_by_newlines_too():
    one = derive("m[i] = Sum(X[i,k], k)/size(k); Y[i,j] = X[i,j] - m[i]")
    two = derive("m[i] = Sum(X[i,k], k)/size(k)\nY[i,j] = X[i,j] - m[i]")
    assert one.grads == two.grads


def test_sympy_programs_are_lists_of_pairs():
    i, j, k = sp.symbols("i j k", cls=sp.Idx)
    X, m, Y = sp.IndexedBase("X"), sp.IndexedBase("m"), sp.IndexedBase("Y")
    d = derive([(m[i], sp.Sum(X[i, k], (k, 0, 3))), (Y[i, j], X[i, j] - m[i])])
    assert d.grads == derive("m[i] = Sum(X[i,k], k); Y[i,j] = X[i,j] - m[i]").grads


def test_an_index_name_reused_for_another_axis_is_kept_apart():
    d = derive("a[i] = Sum(X[i,k], k); Y[k] = Sum(W[k,i]*a[i], i)")  # k: X's axis 1, then W's axis 0
    op = d.compile()
    ctx = {}
    y = op.forward(ctx, r(3, 4), r(5, 3))
    assert y.shape == (5,)


@pytest.mark.parametrize("spec, message", [
    ("Y[i] = X[i]; Z[i] = X[i]", "which no later statement reads"),
    ("m[i] = X[i]; m[i] = 2*X[i]", "assigned twice"),
    ("Y[i] = m[i]*X[i]; m[i] = X[i]", "before statement 2 assigns it"),
    ("m[i,j] = X[i,j]; Y[i] = m[i]", "m has 2 indices where it is assigned but 1 here"),
    ("m[i] = Sum(X[i,k], k); Y[i] = m[i] + foo(X[i,0])", "statement 2: .*unknown function 'foo'"),
    ("m[i] = X[i,j]; Y[i] = m[i]", "statement 1 \\(m\\): index 'j' is free"),
])
def test_bad_programs_are_refused_with_the_statement_named(spec, message):
    with pytest.raises(SpecError, match=message):
        derive(spec)


def test_cli_derives_a_program_and_checks_a_claim_against_it():
    r_ = CliRunner().invoke(main, ["derive", CROSS_ENTROPY])
    assert r_.exit_code == 0 and "dX[a,b]" in r_.output and "P" in r_.output
    r_ = CliRunner().invoke(main, ["derive", CROSS_ENTROPY, "--format", "numpy"])
    assert r_.exit_code == 0 and 'context["P"] = P' in r_.output
    silu = "s[i,j] = 1/(1 + exp(-X[i,j])); Y[i,j] = X[i,j]*s[i,j]"
    claim = "dX[a,b] = G[a,b]*(1/(1 + exp(-X[a,b])) + X[a,b]*exp(-X[a,b])/(1 + exp(-X[a,b]))**2)"
    r_ = CliRunner().invoke(main, ["check", silu, "--claim", claim])
    assert r_.exit_code == 0, r_.output
    r_ = CliRunner().invoke(main, ["check", silu, "--claim", claim.replace("X[a,b]*exp", "2*X[a,b]*exp")])
    assert r_.exit_code == 1, r_.output
    r_ = CliRunner().invoke(main, ["derive", "m[i] = X[i]; m[i] = X[i]"])
    assert r_.exit_code == 2 and "Traceback" not in r_.output


def test_codegen_takes_a_named_program(tmp_path):
    r_ = CliRunner().invoke(main, ["codegen", f"layer_norm: {LAYER_NORM}", "-o", str(tmp_path)])
    assert r_.exit_code == 0, r_.output
    assert "class LayerNorm(Op):" in (tmp_path / "ops.py").read_text()


def test_a_one_line_layer_norm_is_split_at_its_centred_values():
    spec = ("Y[i,j] = (X[i,j] - Sum(X[i,k], k)/size(k)) / "
            "sqrt(Sum((X[i,m] - Sum(X[i,n], n)/size(n))**2, m)/size(m) + 0.00001)")
    d = derive(spec)
    assert [s.output for s in d.statements] == ["row_sum", "X_centred", "Y"]
    assert "X_centred" in d.saved
    op = d.compile()
    x = 1e4 + rng.normal(size=(8, 32))
    g = rng.normal(size=(8, 32))
    grads = {}
    for dt in (np.float64, np.float32):
        ctx = {}
        op.forward(ctx, x.astype(dt))
        (grads[dt],) = op.backward(ctx, g.astype(dt))
    err = np.abs(grads[np.float32] - grads[np.float64]).max() / np.abs(grads[np.float64]).max()
    assert err <= 1e-3  # was ~2 (meaningless) with the expanded, uncentred form
    check_op(op, lambda v: (v - v.mean(1, keepdims=True)) / np.sqrt(v.var(1, keepdims=True) + 1e-5), [r(3, 4)])


def test_a_softmax_is_not_split():
    assert derive("Y[i,j] = exp(X[i,j]) / Sum(exp(X[i,k]), k)").statements == ()


def test_attention_scores_written_in_one_line_are_max_shifted():
    d = derive("P[i,j] = exp(Sum(Q[i,d]*K[j,d], d)) / Sum(exp(Sum(Q[i,d]*K[l,d], d)), l)")
    assert "Q @ K.T" in d.source() and "xp.max(" in d.source()
    op = d.compile()
    q, k = (rng.normal(size=s).astype(np.float32) * 30 for s in [(8, 4), (6, 4)])  # scores near 100s
    ctx = {}
    p = op.forward(ctx, q, k)
    grads = op.backward(ctx, np.ones_like(p))
    assert all(np.isfinite(a).all() for a in (p, *grads))
    check_op(op, lambda a, b: softmax(a @ b.T), [r(3, 2), r(4, 2)])


def test_softplus_does_not_overflow():
    op = derive("Y[i,j] = log(1 + exp(X[i,j]))").compile()
    ctx = {}
    x = np.array([[1000.0, -1000.0, 0.5]], dtype=np.float32)
    y = op.forward(ctx, x)
    (dx,) = op.backward(ctx, np.ones_like(y))
    np.testing.assert_allclose(y, [[1000.0, 0.0, np.log1p(np.exp(0.5))]], rtol=1e-6)
    np.testing.assert_allclose(dx, [[1.0, 0.0, 1 / (1 + np.exp(-0.5))]], rtol=1e-6)
    assert y.dtype == np.float32 and dx.dtype == np.float32


def test_generated_source_is_the_same_under_any_hash_seed():
    import subprocess
    import sys

    code = ("import deltagrad\n"
            f"for s in {[LAYER_NORM, CROSS_ENTROPY, ATTENTION, 'Y[i] = Sum(Max(V[m,0],V[m,i],V[1,i]), m)']!r}:\n"
            "    print(deltagrad.derive(s).source())\n")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**__import__("os").environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2", "3")}
    assert len(outs) == 1


NLL_OF_SOFTMAX = "P[i,j] = exp(X[i,j])/Sum(exp(X[i,k]), k); L = -Sum(log(P[i, t[i]]), i)/size(i)"


def test_nll_of_a_softmax_program_cancels_the_gathered_probability():
    """dX used to keep P[a,b]·δ(b,t[a])/P[a,t[a]], 0/0 where P[a,t[a]] underflows (logits ±300)."""
    d = derive(NLL_OF_SOFTMAX)
    assert str(d.grads["X"]) == "G*(-KroneckerDelta(b, t[a]) + P[a, b])/n_i"
    op = d.compile()
    rng = np.random.default_rng(3)
    t = np.array([0, 2, 1, 3])

    def reference(x, t):
        z = x - x.max(axis=1, keepdims=True)
        return -np.mean(z[np.arange(4), t] - np.log(np.exp(z).sum(axis=1)))

    check_op(op, reference, [rng.normal(size=(4, 5)), t])
    x = (rng.choice([-300.0, 300.0], size=(4, 5))).astype(np.float32)
    context = {}
    with np.errstate(all="ignore"):  # the forward's log of an underflowed P is the user's -inf
        op.forward(context, x, t)
    dx = op.backward(context, np.float32(1.0))[0]
    assert dx.dtype == np.float32 and np.all(np.isfinite(dx))
    p = np.exp(x - x.max(axis=1, keepdims=True)); p /= p.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(dx, (p - np.eye(5)[t]) / 4, atol=1e-6)


def test_sums_of_centred_steps_are_zero_so_layer_norm_is_textbook():
    """Sum_j(D[a,j]) is 0 for D = X - mean(X): the layer norm's gradient used to carry it (a pass
    over the data, and a rounding-sized number in float32); now dX = (G - mean G - D·mean(G·D)/
    (var+eps))/sqrt(var+eps), and row variance's dX = 2·G·(X - mean)/n."""
    ln = derive("mu[i] = Sum(X[i,k], k)/size(k); D[i,j] = X[i,j] - mu[i]; var[i] = Sum(D[i,k]**2, k)/size(k); "
                "Y[i,j] = D[i,j]/sqrt(var[i] + 0.00001)")
    assert not any(isinstance(s.function, sp.Indexed) and s.function.base.label.name == "D"
                   for s in ln.grads["X"].atoms(sp.Sum))
    var = derive("y[i] = Sum((X[i,k] - Sum(X[i,m], m)/size(m))**2, k) / size(k)")
    assert str(var.grads["X"]) == "2*G[a]*X_centred[a, b]/n_m"
    x = rng.normal(size=(4, 6))
    for d, reference in [(ln, lambda x: (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + 1e-5)),
                         (var, lambda x: x.var(1))]:
        check_op(d.compile(), reference, [x])


def test_sums_with_common_factors_merge_so_attention_has_four_matrix_products():
    """dQ was (P ⊙ GVᵀ)K − (PK) ⊙ s𝟏ᵀ and dK likewise: six matrix products where the textbook's
    dS = P ⊙ (GVᵀ − s𝟏ᵀ), dQ = dS K, dK = dSᵀ Q has four."""
    d = derive(ATTENTION)
    for name in ("Q", "K"):
        rule = d.grads[name]
        assert isinstance(rule, sp.Sum), rule  # one contraction
    source = d.source()
    assert source.count(" @ ") == 6  # QKᵀ and PV forward; GVᵀ, dS K, dSᵀ Q, Pᵀ G backward


def test_a_compound_tanh_becomes_a_step_so_gelu_and_stacked_layers_read_their_saved_values():
    """GELU's tanh form in one line used to derive a polynomial in tanh(...)**2 (22 passes), and
    three stacked tanh layers an eight-term expansion; each compound tanh is now a step."""
    gelu = derive("Y[i,j] = 0.5*X[i,j]*(1 + tanh(0.7978845608*(X[i,j] + 0.044715*X[i,j]**3)))")
    assert [s.output for s in gelu.statements] == ["u", "t", "Y"]
    backward = gelu.source().split("def backward")[1]
    assert "xp.tanh" not in backward and "(1 - t**2)" in backward
    stacked = derive("Y[i,j] = tanh(2*tanh(2*tanh(2*X[i,j])))")
    assert str(stacked.grads["X"]) == "8*(1 - Y[a, b]**2)*(1 - t[a, b]**2)*(1 - t_2[a, b]**2)*G[a, b]"
    x = rng.normal(size=(3, 4))
    check_op(gelu.compile(), lambda x: 0.5 * x * (1 + np.tanh(0.7978845608 * (x + 0.044715 * x**3))), [x])
    check_op(stacked.compile(), lambda x: np.tanh(2 * np.tanh(2 * np.tanh(2 * x))), [x])


def test_a_sigmoid_inside_a_product_becomes_a_step_read_by_the_backward():
    """SiLU and the sigmoid GELU: their backward divided by (1 + exp(-x))**2 and printed 1.702
    as 851/500; the sigmoid is now a step s, and the backward is PyTorch's s*(1 + x*(1 - s))."""
    silu = derive("Y[i,j] = X[i,j]/(1 + exp(-X[i,j]))")
    assert [st.output for st in silu.statements] == ["s", "Y"]
    backward = silu.source().split("def backward")[1]
    assert "exp" not in backward and "s" in silu.saved
    gelu = derive("Y[i,j] = X[i,j]/(1 + exp(-1.702*X[i,j]))")
    assert str(gelu.grads["X"]) == "(-1.702*(s[a, b] - 1)*X[a, b] + 1)*G[a, b]*s[a, b]"
    assert str(derive("Y[i,j] = 1/(1 + exp(-X[i,j]))").grads["X"]) == "(1 - Y[a, b])*G[a, b]*Y[a, b]"  # no step
    x = rng.normal(size=(3, 4))
    check_op(silu.compile(), lambda x: x / (1 + np.exp(-x)), [x])
    check_op(gelu.compile(), lambda x: x / (1 + np.exp(-1.702 * x)), [x])
    big = np.array([[-1e4, -100.0, -20.0, 0.0, 20.0, 100.0, 1e4]], dtype=np.float32)
    for op in (silu.compile(), gelu.compile()):
        context = {}
        with np.errstate(over="ignore"):  # exp(1e4) is inf: 1/(1 + inf) is the exact 0
            y = op.forward(context, big)
        (dx,) = op.backward(context, np.ones_like(y))
        assert y.dtype == dx.dtype == np.float32 and np.all(np.isfinite(y)) and np.all(np.isfinite(dx))
        np.testing.assert_allclose(dx[0, [0, 3, 6]], [0.0, 0.5, 1.0])


@pytest.mark.parametrize("spec, split", [
    ("Y[i,j] = X[i,j]*(1/(1 + exp(-X[i,j])))**2", True),  # a power of a sigmoid: s**2
    ("Y[i,j] = 1/(1 + exp(-1/(1 + exp(-X[i,j]))))", True),  # a sigmoid of a sigmoid
    ("Y[i,j] = c*X[i,j]/(1 + exp(-c*X[i,j]))", False),  # a scalar in v: dc would keep exp(v)*s**2
    ("Y[i,j] = X[i,j]*exp(-X[i,j])/(1 + exp(-X[i,j]))", False),  # exp(v)/(1 + exp(v)): one sigmoid as it is
    ("Y[i] = tanh(2*tanh(2*X[i]))/(1 + exp(c))", True),  # a sigmoid of no index does not stop the tanh steps
])
def test_which_sigmoids_become_steps(spec, split):
    d = derive(spec)
    assert bool(d.statements) == split
    big = np.array([-1e4, -100.0, -20.0, 0.0, 20.0, 100.0, 1e4], dtype=np.float32)
    arrays = {"X": big if "Y[i]" in spec else big[None, :], "c": np.float32(0.5)}
    op = d.compile()
    context = {}
    with np.errstate(over="ignore"):
        y = op.forward(context, *[arrays[n] for n in d.inputs])
        grads = op.backward(context, np.ones_like(y))
    assert np.all(np.isfinite(y)) and all(np.all(np.isfinite(g)) for g in grads if "exp(-X" not in spec)


def test_attention_scores_with_differently_named_dummies_are_one_max_shifted_step():
    """exp(Sum_d(Q K)) / Sum_l(exp(Sum_c(Q K))): the two score sums run over one axis under two
    names (c and d), and were two reductions, the numerator's not max-shifted: NaN in float32 at
    scores in the hundreds."""
    d = derive("Y[i,j] = exp(Sum(Q[i,d]*K[j,d], d)) / Sum(exp(Sum(Q[i,c]*K[l,c], c)), l)")
    assert [s.output for s in d.statements] == ["K_Q_sum", "Y"]
    op = d.compile()
    q, k = (rng.normal(0, 10, size=(8, 32)).astype(np.float32) for _ in range(2))
    context = {}
    y = op.forward(context, q, k)
    grads = op.backward(context, np.ones_like(y))
    assert np.all(np.isfinite(y)) and all(np.all(np.isfinite(g)) for g in grads)


@pytest.mark.parametrize("spec", [
    "O[i,e] = Sum(exp(Sum(Q[i,d]*K[j,d], d))*V[j,e], j) / Sum(exp(Sum(Q[i,c]*K[l,c], c)), l)",
    "S[i,j] = Sum(Q[i,d]*K[j,d], d); O[i,e] = Sum(exp(S[i,j])*V[j,e], j) / Sum(exp(S[i,l]), l)",
])
def test_attention_with_values_is_max_shifted_in_forward_and_backward(spec):
    """The weighted sum exp(S)·V and the normaliser sum exp(S) share one row maximum, so the
    shift cancels between them: in one line (the scores written twice, over j and over l) and as
    a program. Before, the scores were two steps and neither sum was shifted: inf/NaN in float32
    at scores in the hundreds."""
    d = derive(spec)
    src = d.source()
    assert src.count("Q @ K.T") == 1 and "xp.max(" in src
    op = d.compile()
    q, k = (rng.normal(0, 6, size=(8, 4)) for _ in range(2))  # scores up to ~150
    v, g = rng.normal(size=(8, 3)), rng.normal(size=(8, 3))
    results = {}
    for dtype in (np.float64, np.float32):
        ctx = {}
        out = op.forward(ctx, q.astype(dtype), k.astype(dtype), v.astype(dtype))
        results[dtype] = (out, *op.backward(ctx, g.astype(dtype)))
        assert all(a.dtype == dtype and np.isfinite(a).all() for a in results[dtype])
    assert np.abs(q @ k.T).max() > 89  # exp overflows float32 there
    for lo, hi in zip(results[np.float32], results[np.float64]):
        assert np.abs(lo - hi).max() <= 1e-4 * max(np.abs(hi).max(), 1.0)
    check_op(op, lambda a, b, c: softmax(a @ b.T) @ c, [r(3, 2), r(4, 2), r(4, 5)])


def test_softmax_entropy_shares_one_maximum_between_its_sums():
    """log Σexp(X) − Σexp(X)·X / Σexp(X): the weighted sum and the normaliser are shifted by the
    same row maximum (before, only the plain sum was, and the shift could not cancel)."""
    op = derive("H[i] = log(Sum(exp(X[i,k]),k)) - Sum(exp(X[i,k])*X[i,k],k)/Sum(exp(X[i,k]),k)").compile()
    x = rng.normal(0, 100, size=(4, 6))
    ctx64, ctx32 = {}, {}
    h64, h32 = op.forward(ctx64, x), op.forward(ctx32, x.astype(np.float32))
    (g64,), (g32,) = op.backward(ctx64, np.ones(4)), op.backward(ctx32, np.ones(4, np.float32))
    assert np.isfinite(h32).all() and np.isfinite(g32).all() and g32.dtype == np.float32
    # H = max + log Σ − Σ·X/Σ cancels down from the scale of X: float32 keeps ~1e-6 of it
    np.testing.assert_allclose(h32, h64, atol=1e-5 * np.abs(x).max())
    np.testing.assert_allclose(g32, g64, atol=1e-5 * np.abs(x).max())
    p = lambda a: softmax(a)  # noqa: E731
    check_op(op, lambda a: -(p(a) * np.log(p(a))).sum(1), [r(3, 4)])


def test_mish_gradient_is_finite_at_large_inputs():
    """Mish's backward has exp(X)/(1 + exp(X)): inf/inf = NaN at X = 100 in float32 (X = 800 in
    float64); it is lowered as sigmoid(X)."""
    d = derive("Y[i,j] = X[i,j]*tanh(log(1 + exp(X[i,j])))")
    assert "sigmoid(X)" in d.source()
    op = d.compile()
    x = np.array([[-1000.0, -100.0, -3.0, 0.5, 100.0, 1000.0]])
    for dtype in (np.float32, np.float64):
        ctx = {}
        y = op.forward(ctx, x.astype(dtype))
        (dx,) = op.backward(ctx, np.ones_like(y))
        assert dx.dtype == dtype and np.isfinite(dx).all()
        sp_ = np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0)  # softplus, stable
        s = 1 / (1 + np.exp(-np.clip(x, -500, 500)))
        expected = np.tanh(sp_) + x * s * (1 - np.tanh(sp_) ** 2)
        np.testing.assert_allclose(dx, expected, rtol=1e-5, atol=1e-6)
    check_op(op, lambda a: a * np.tanh(np.log1p(np.exp(a))), [r(3, 4)])


def test_sigmoid_layer_backward_reads_its_output():
    """1/(1 + exp(-XW)): the derivative goes through the inverse of the sigmoid at the saved
    matmul (exp(-z) = 1/Y - 1), so it is the textbook Y(1 - Y), and finite at z = -100 in float32
    (Y²·exp(-z) was 0·inf = NaN there)."""
    d = derive("Y[i,j] = 1/(1+exp(-Sum(X[i,k]*W[k,j], k)))")
    assert str(d.grads["X"]) == "Sum((1 - Y[a, j])*G[a, j]*W[b, j]*Y[a, j], (j, 0, n_j - 1))"
    assert "exp" not in d.source().split("def backward")[1]
    op = d.compile()
    x = np.array([[50.0, -50.0], [2.0, 1.0]])
    w = np.array([[2.0, -2.0, 0.1], [0.0, 1.0, 0.3]])  # z reaches ±100
    for dtype in (np.float32, np.float64):
        ctx = {}
        with np.errstate(over="ignore"):  # the forward's exp(100) is inf: 1/(1 + inf) = 0, exact
            y = op.forward(ctx, x.astype(dtype), w.astype(dtype))
        dx, dw = op.backward(ctx, np.ones_like(y))
        assert dx.dtype == dw.dtype == dtype and np.isfinite(dx).all() and np.isfinite(dw).all()
    check_op(op, lambda a, b: 1 / (1 + np.exp(-a @ b)), [r(3, 2), r(2, 4)])


def lse(x, axis):
    m = x.max(axis, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(axis, keepdims=True))).squeeze(axis)


@pytest.mark.parametrize("spec, reference", [
    # a weight that holds exp(X) itself: only the factor exp(X) is shifted, never the weight
    ("Y[i] = Sum(exp(X[i,k])/(1+exp(X[i,k])), k)/Sum(exp(X[i,l]), l)",
     lambda x: (1 / (1 + np.exp(-x))).sum(1) / np.exp(x).sum(1)),
    # sums of exponentials along both axes of one tensor: a row and a column maximum
    ("Y[i,j] = log(Sum(exp(X[i,k]),k)) + log(Sum(exp(X[k,j]),k))", lambda x: lse(x, 1)[:, None] + lse(x, 0)[None, :]),
    ("Y[i,j] = exp(X[i,j])/Sum(exp(X[i,k]),k) + log(Sum(exp(X[l,j]),l))", lambda x: softmax(x) + lse(x, 0)[None, :]),
    # an entropy through log-softmax: the weighted sum reads the normaliser's log
    ("H[i] = -Sum(exp(X[i,k])/Sum(exp(X[i,l]),l) * (X[i,k] - log(Sum(exp(X[i,j]),j))), k)",
     lambda x: -(softmax(x) * np.log(softmax(x))).sum(1)),
])
def test_shifted_sums_keep_the_forward_exact_and_finite(spec, reference):
    """Found by review of the shared-maximum rewrite: the weight's own exp(X) was shifted too
    (wrong forward values), a second axis of one tensor lost its maximum, and a weighted sum
    reading log(normaliser) blocked the normaliser's shift (float32 inf)."""
    op = derive(spec).compile()
    x = r(4, 4)
    np.testing.assert_allclose(op.forward({}, x), reference(x), rtol=1e-10)
    check_op(op, reference, [x])
    x32 = rng.normal(0, 100, size=(4, 4)).astype(np.float32)
    ctx = {}
    with np.errstate(over="ignore", invalid="ignore"):
        y = op.forward(ctx, x32)
    assert y.dtype == np.float32 and (np.isfinite(y).all() or "1+exp" in spec)  # sigmoid/Σexp: 0/inf is exact 0
    if "1+exp" not in spec:
        (dx,) = op.backward(ctx, np.ones_like(y))
        assert np.isfinite(dx).all()


@pytest.mark.parametrize("spec, reference, shapes", [
    ("O[i,e] = Sum(exp(Sum(Q[i,d]*K[j,d], d)/8)*V[j,e], j) / Sum(exp(Sum(Q[i,c]*K[l,c], c)/8), l)",
     lambda q, k, v: softmax(q @ k.T / 8) @ v, [(3, 2), (4, 2), (4, 5)]),
    ("P[i,j] = exp(Sum(Q[i,d]*K[j,d], d)/8 + M[i,j]) / Sum(exp(Sum(Q[i,d]*K[l,d], d)/8 + M[i,l]), l)",
     lambda q, k, m: softmax(q @ k.T / 8 + m), [(3, 2), (4, 2), (3, 4)]),
    ("O[i,e] = Sum(exp(Sum(Q[i,d]*K[j,d], d) + B[i,j])*V[j,e], j)/Sum(exp(Sum(Q[i,c]*K[l,c], c) + B[i,l]), l)",
     lambda q, k, b, v: softmax(q @ k.T + b) @ v, [(3, 2), (4, 2), (3, 4), (4, 5)]),
])
def test_scaled_or_biased_attention_scores_are_a_step_and_max_shifted(spec, reference, shapes):
    """exp(QKᵀ/8 + M): a compound exponent that reads the scores becomes a step ``scores`` of its
    own, so its sums of exponentials are shifted (float32 NaN at scores in the hundreds before)."""
    d = derive(spec)
    assert "scores" in [s.output for s in d.statements]
    op = d.compile()
    check_op(op, reference, [r(*s) for s in shapes])
    big = [rng.normal(0, 40, size=s) for s in shapes]
    results = {}
    for dtype in (np.float64, np.float32):
        ctx = {}
        out = op.forward(ctx, *[b.astype(dtype) for b in big])
        results[dtype] = (out, *op.backward(ctx, np.ones_like(out)))
        assert all(a.dtype == dtype and np.isfinite(a).all() for a in results[dtype])
    for lo, hi in zip(results[np.float32], results[np.float64]):
        assert np.abs(lo - hi).max() <= 1e-4 * max(np.abs(hi).max(), 1.0)


def test_a_max_reduction_read_under_its_own_bound_name_is_renamed_apart():
    """Writing a saved Max(X[i,k], k) out again at index k must rename its bound k first; a
    Max/Min reduction's xreplace leaves bound indices alone, so instance() once gave X[k, k]."""
    from deltagrad.derive.extrema import reduce_extremum
    from deltagrad.derive.forward_values import Reduction, instance

    i, k = index("i"), index("k")
    red = Reduction("row_max", (i,), reduce_extremum("Max", tensor("X")[i, k], k))
    out = instance(red, (k,))
    (bound,) = [lim[0] for lim in out.limits]
    assert bound != k and out.function == tensor("X")[k, bound]
