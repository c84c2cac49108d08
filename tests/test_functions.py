"""The spec language's functions: erf, erfc, asin, acos, atan, sinh, cosh, asinh, acosh, atanh,
log1p, expm1, sigmoid, softplus, sign, where(COND, A, B) and generic functions the user declares.

Every rule is checked against central finite differences in float64 (tests/gradcheck.py) on
inputs inside the function's domain; then overflow (softplus and sigmoid at ±1000), dtypes
(float32 stays float32), the time to derive and compile, the PyTorch and JAX targets, the
LaTeX write-ups and claims (``deltagrad check``).
"""

from __future__ import annotations

import shutil
import subprocess
import time
import warnings

import numpy as np
import pytest
import scipy.special
from click.testing import CliRunner

from deltagrad import SpecError, derive
from deltagrad.api import MissingFunction
from deltagrad.check.claims import check_claim
from deltagrad.cli import main
from gradcheck import check_op


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def normal(rng, shape):
    return rng.normal(size=shape)


def inside(low, high):
    return lambda rng, shape: rng.uniform(low, high, size=shape)


def away_from_zero(rng, shape):
    x = rng.uniform(0.2, 2.0, size=shape)
    return x * rng.choice([-1.0, 1.0], size=shape)


#: name → (spec, reference, how to draw X, where each input is drawn from)
ELEMENTWISE = {
    "erf": ("Y[i,j] = erf(X[i,j])", scipy.special.erf, normal),
    "erfc": ("Y[i,j] = erfc(X[i,j])", scipy.special.erfc, normal),
    "asin": ("Y[i,j] = asin(X[i,j])", np.arcsin, inside(-0.9, 0.9)),
    "acos": ("Y[i,j] = acos(X[i,j])", np.arccos, inside(-0.9, 0.9)),
    "atan": ("Y[i,j] = atan(X[i,j])", np.arctan, normal),
    "sinh": ("Y[i,j] = sinh(X[i,j])", np.sinh, normal),
    "cosh": ("Y[i,j] = cosh(X[i,j])", np.cosh, normal),
    "asinh": ("Y[i,j] = asinh(X[i,j])", np.arcsinh, normal),
    "acosh": ("Y[i,j] = acosh(X[i,j])", np.arccosh, inside(1.2, 3.0)),
    "atanh": ("Y[i,j] = atanh(X[i,j])", np.arctanh, inside(-0.9, 0.9)),
    "log1p": ("Y[i,j] = log1p(X[i,j])", np.log1p, inside(-0.5, 2.0)),
    "expm1": ("Y[i,j] = expm1(X[i,j])", np.expm1, normal),
    "sigmoid": ("Y[i,j] = sigmoid(X[i,j])", sigmoid, normal),
    "softplus": ("Y[i,j] = softplus(X[i,j])", lambda x: np.logaddexp(0, x), normal),
    "sign": ("Y[i,j] = sign(X[i,j])", np.sign, away_from_zero),
}

#: two-input specs and compositions: (spec, reference, draws per input)
COMPOSED = {
    "erf_times": ("Y[i,j] = erf(X[i,j])*Z[i,j]", lambda x, z: scipy.special.erf(x) * z, [normal, normal]),
    "sign_times": ("Y[i,j] = sign(X[i,j])*Z[i,j]", lambda x, z: np.sign(x) * z, [away_from_zero, normal]),
    "swish": ("Y[i,j] = X[i,j]*sigmoid(X[i,j])", lambda x: x * sigmoid(x), [normal]),
    "gelu_erf": ("Y[i,j] = X[i,j]*(1 + erf(X[i,j]/sqrt(2)))/2",
                 lambda x: x * (1 + scipy.special.erf(x / np.sqrt(2))) / 2, [normal]),
    "sigmoid_layer": ("Y[i,j] = sigmoid(Sum(X[i,k]*W[k,j], k))", lambda x, w: sigmoid(x @ w), [normal, normal]),
    "asinh_rows": ("y[i] = Sum(asinh(X[i,k])*w[k], k)", lambda x, w: np.arcsinh(x) @ w, [normal, normal]),
    "atan2_like": ("Y[i,j] = atan(X[i,j]/Z[i,j])", lambda x, z: np.arctan(x / z), [normal, inside(0.5, 2)]),
    "log1p_softplus": ("Y[i,j] = log1p(softplus(X[i,j]))", lambda x: np.log1p(np.logaddexp(0, x)), [normal]),
    "leaky_relu": ("Y[i,j] = where(X[i,j] > 0, X[i,j], 0.01*X[i,j])",
                   lambda x: np.where(x > 0, x, 0.01 * x), [away_from_zero]),
    "where_two_inputs": ("Y[i,j] = where(X[i,j] >= Z[i,j], X[i,j]*Z[i,j], exp(X[i,j]))",
                         lambda x, z: np.where(x >= z, x * z, np.exp(x)), [normal, normal]),
    "where_less": ("Y[i,j] = where(X[i,j] < 1, X[i,j]**2, 2*X[i,j] - 1)",
                   lambda x: np.where(x < 1, x**2, 2 * x - 1), [normal]),
    "where_nested_clamp": ("Y[i,j] = where(X[i,j] > 0, where(X[i,j] > 1, 1, X[i,j]), 0)",
                           lambda x: np.clip(x, 0, 1), [lambda rng, s: away_from_zero(rng, s) * 1.7]),
    "where_zero_first": ("Y[i,j] = where(X[i,j] < 0, 0, X[i,j]*Z[i,j])",
                         lambda x, z: np.where(x < 0, 0, x * z), [away_from_zero, normal]),
    "where_scalar": ("Y[i] = where(X[i] > c, X[i]*c, 0)", lambda x, c: np.where(x > c, x * c, 0), [normal, normal]),
    "where_summed": ("L = Sum(where(X[i] > 0, X[i]**2, -X[i]), i)",
                     lambda x: np.sum(np.where(x > 0, x**2, -x)), [away_from_zero]),
    "where_program": ("H[i,j] = where(X[i,j] > 0, X[i,j], 0); y[i] = Sum(H[i,j]*W[j], j)",
                      lambda x, w: np.where(x > 0, x, 0) @ w, [away_from_zero, normal]),
    "where_le_row": ("Y[i,j] = where(X[i,j] <= Sum(X[i,k], k)/size(k), X[i,j], 0)",
                     lambda x: np.where(x <= x.mean(axis=1, keepdims=True), x, 0), [normal]),
}


def draw(draws, shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [d(rng, s) for d, s in zip(draws, shapes)]


def shapes_of(d, sizes=None):
    sizes = {"i": 3, "j": 4, "k": 5, **(sizes or {})}
    return [tuple(sizes[ix] for ix in d.signature.patterns[name]) for name in d.inputs]


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_each_function_matches_finite_differences(name):
    spec, reference, how = ELEMENTWISE[name]
    d = derive(spec)
    (x,) = draw([how], shapes_of(d))
    check_op(d.compile(), reference, [x], rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", sorted(COMPOSED))
def test_compositions_and_where_match_finite_differences(name):
    spec, reference, draws = COMPOSED[name]
    d = derive(spec)
    arrays = draw(draws, shapes_of(d), seed=1)
    check_op(d.compile(), reference, arrays, rtol=1e-6, atol=1e-8)


def test_where_routes_the_gradient_to_the_chosen_branch_and_the_boundary_takes_the_false_branch():
    op = derive("Y[i] = where(X[i] > 0, X[i], 0)").compile()
    ctx = {}
    x = np.array([-1.0, 0.0, 2.0])
    np.testing.assert_array_equal(op.forward(ctx, x), [0.0, 0.0, 2.0])
    (dx,) = op.backward(ctx, np.array([5.0, 6.0, 7.0]))
    np.testing.assert_array_equal(dx, [0.0, 0.0, 7.0])  # at X = 0 the condition is false: the branch 0 was chosen


def test_where_guards_a_branch_that_is_undefined_where_it_is_not_chosen():
    op = derive("Y[i] = where(X[i] > 0, log(X[i]), 0)").compile()
    ctx = {}
    x = np.array([-1.0, 0.5, 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # log(-1) is computed, then not chosen
        y = op.forward(ctx, x)
        (dx,) = op.backward(ctx, np.ones(3))
    np.testing.assert_allclose(y, [0.0, np.log(0.5), np.log(2.0)])
    np.testing.assert_allclose(dx, [0.0, 2.0, 0.5])


def test_derived_rules_read_the_output_where_an_identity_allows():
    assert "Y" in str(derive("Y[i,j] = sigmoid(X[i,j])").grads["X"])
    assert derive("Y[i,j] = sigmoid(X[i,j])").numpy("X") == "dX = goutput * Y * (1 - Y)"
    assert derive("Y[i,j] = expm1(X[i,j])").numpy("X") == "dX = goutput * (1 + Y)"
    assert derive("Y[i,j] = where(X[i,j] > 0, X[i,j], 0.01*X[i,j])").numpy("X") == \
        "dX = xp.where(X > 0, goutput, goutput / 100)"


def test_softplus_and_sigmoid_are_finite_at_1000_without_warnings():
    x = np.array([1000.0, -1000.0, 0.0, 30.0])
    for spec, want_y, want_dx in [
        ("Y[i] = softplus(X[i])", [1000.0, 0.0, np.log(2), 30.0], [1.0, 0.0, 0.5, sigmoid(30.0)]),
        ("Y[i] = sigmoid(X[i])", [1.0, 0.0, 0.5, sigmoid(30.0)], [0.0, 0.0, 0.25, sigmoid(30) * (1 - sigmoid(30))]),
    ]:
        op = derive(spec).compile()
        ctx = {}
        with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
            y = op.forward(ctx, x)
            (dx,) = op.backward(ctx, np.ones(4))
        np.testing.assert_allclose(y, want_y, rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(dx, want_dx, rtol=1e-12, atol=1e-15)  # Y (1 - Y) near Y = 1: absolute


@pytest.mark.parametrize("name", sorted(ELEMENTWISE) + ["leaky_relu", "where_two_inputs", "swish"])
def test_float32_in_float32_out(name):
    spec, _, draws = ELEMENTWISE[name] if name in ELEMENTWISE else COMPOSED[name]
    draws = [draws] if callable(draws) else draws
    d = derive(spec)
    arrays = [a.astype(np.float32) for a in draw(draws, shapes_of(d))]
    op = d.compile()
    ctx = {}
    y = op.forward(ctx, *arrays)
    grads = op.backward(ctx, np.ones_like(y))
    assert y.dtype == np.float32, name
    assert all(g.dtype == np.float32 for g in grads), (name, [g.dtype for g in grads])


def test_each_function_derives_and_compiles_in_well_under_a_second():
    slowest = 0.0
    for n, (spec, _, _) in enumerate([*ELEMENTWISE.values(), *COMPOSED.values()]):
        start = time.perf_counter()
        derive(spec, name=f"timing_{n}").compile()
        slowest = max(slowest, time.perf_counter() - start)
    assert slowest < 3.0, slowest  # about 0.1 to 0.5 s each here; generous for a loaded machine


# -- generic functions -------------------------------------------------------------------------

TANH = {"f": np.tanh, "f_prime": lambda x: 1 - np.tanh(x) ** 2, "f_prime2": lambda x: -2 * np.tanh(x) * (1 - np.tanh(x) ** 2)}


def test_a_generic_function_derives_to_its_named_derivative_and_compiles_with_the_users_implementations():
    d = derive("Y[i,j] = f(X[i,j])*Z[i,j]", functions=["f"])
    assert str(d.grads["X"]) == "f_prime(X[a, b])*G[a, b]*Z[a, b]"
    assert d.numpy("X") == "dX = goutput * Z * f_prime(X)"
    op = d.compile(functions=TANH)
    x, z = draw([normal, normal], shapes_of(d))
    check_op(op, lambda x, z: np.tanh(x) * z, [x, z])


def test_generic_functions_compose_and_reach_a_second_derivative():
    d = derive("Y[i] = f(f(X[i]))", functions=["f"])
    (x,) = draw([normal], shapes_of(d))
    check_op(d.compile(functions=TANH), lambda x: np.tanh(np.tanh(x)), [x])
    d = derive("Y[i] = f_prime(X[i])", functions="f")
    assert d.numpy("X") == "dX = goutput * f_prime2(X)"
    check_op(d.compile(functions=TANH), TANH["f_prime"], [x])


def test_a_missing_implementation_is_one_line():
    d = derive("Y[i,j] = f(X[i,j])", functions=["f"])
    with pytest.raises(MissingFunction) as err:
        d.compile(functions={"f": np.tanh})
    assert "\n" not in str(err.value) and "missing: f_prime" in str(err.value)
    with pytest.raises(MissingFunction, match="missing: f, f_prime"):
        d.compile()


def test_undeclared_and_bad_function_names_are_refused():
    with pytest.raises(SpecError, match=r"column 10: unknown function 'f' \(allowed: Abs"):
        derive("Y[i,j] = f(X[i,j])")
    with pytest.raises(SpecError, match="built-in function"):
        derive("Y[i] = exp(X[i])", functions=["exp"])
    with pytest.raises(SpecError, match="names a derivative"):
        derive("Y[i] = X[i]", functions=["g_prime"])
    with pytest.raises(SpecError, match="f takes 1 argument, not 2"):
        derive("Y[i] = f(X[i], X[i])", functions=["f"])


def test_the_cli_declares_functions_for_derive_and_check():
    runner = CliRunner()
    out = runner.invoke(main, ["derive", "Y[i,j] = f(X[i,j])", "--function", "f"])
    assert out.exit_code == 0 and "dX = goutput * f_prime(X)" in out.output
    out = runner.invoke(main, ["derive", "Y[i,j] = f(X[i,j])"])
    assert out.exit_code == 2 and "unknown function 'f'" in out.output
    out = runner.invoke(main, ["check", "Y[i,j] = f(X[i,j])", "--function", "f",
                               "--claim", "dX[a,b] = G[a,b]*f_prime(X[a,b])"])
    assert out.exit_code == 0 and "correct" in out.output
    out = runner.invoke(main, ["check", "Y[i,j] = f(X[i,j])", "--function", "f",
                               "--claim", "dX[a,b] = G[a,b]*f(X[a,b])"])
    assert out.exit_code == 1 and "INCORRECT" in out.output


# -- errors of the language ----------------------------------------------------------------------

@pytest.mark.parametrize("spec, message", [
    ("Y[i] = where(X[i], 1, 0)", "where's first argument is a comparison"),
    ("Y[i] = X[i] > 0", "a comparison is allowed only as the condition of where"),
    ("Y[i] = where(0 < X[i] < 1, 1, 0)", "compares two values once"),
    ("Y[i] = where(X[i] == 1, 1, 0)", "<, <=, > or >="),
    ("Y[i] = where(X[i] > 0, 1)", "where takes 3 arguments"),
    ("Y[i] = erf(X[i], X[i])", "erf takes 1 argument, not 2"),
])
def test_bad_uses_are_one_line_errors(spec, message):
    with pytest.raises(SpecError, match=message) as err:
        derive(spec)
    assert "\n" not in str(err.value)


# -- claims --------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, claim, correct", [
    ("Y[i,j] = erf(X[i,j])", "dX[a,b] = 2*G[a,b]*exp(-X[a,b]**2)/sqrt(pi)", True),
    ("Y[i,j] = erf(X[i,j])", "dX[a,b] = G[a,b]*exp(-X[a,b]**2)", False),
    ("Y[i,j] = erfc(X[i,j])", "dX[a,b] = -2*G[a,b]*exp(-X[a,b]**2)/sqrt(pi)", True),
    ("Y[i,j] = Abs(X[i,j])", "dX[a,b] = G[a,b]*sign(X[a,b])", True),
    ("Y[i,j] = sign(X[i,j])*Z[i,j]", "dZ[a,b] = G[a,b]*sign(X[a,b])", True),
    ("Y[i,j] = where(X[i,j] > 0, X[i,j], 0)", "dX[a,b] = G[a,b]*where(X[a,b] > 0,1,0)", True),
    ("Y[i,j] = where(X[i,j] > 0, X[i,j], 0)", "dX[a,b] = where(X[a,b] > 0, G[a,b], 0)", True),
    ("Y[i,j] = where(X[i,j] > 0, X[i,j], 0)", "dX[a,b] = where(X[a,b] < 0, G[a,b], 0)", False),
    ("Y[i,j] = where(X[i,j] > 0, X[i,j], 0)", "dX[a,b] = G[a,b]", False),
    ("Y[i,j] = sigmoid(X[i,j])", "dX[a,b] = G[a,b]*Y[a,b]*(1 - Y[a,b])", True),
    ("Y[i,j] = sigmoid(X[i,j])", "dX[a,b] = G[a,b]*sigmoid(X[a,b])*(1 - sigmoid(X[a,b]))", True),
    ("Y[i,j] = sigmoid(X[i,j])", "dX[a,b] = G[a,b]*Y[a,b]", False),
    ("Y[i,j] = softplus(X[i,j])", "dX[a,b] = G[a,b]*sigmoid(X[a,b])", True),
    ("Y[i,j] = asinh(X[i,j])", "dX[a,b] = G[a,b]/sqrt(X[a,b]**2 + 1)", True),
    ("Y[i,j] = atanh(X[i,j])", "dX[a,b] = G[a,b]/(1 + X[a,b]**2)", False),
    ("Y[i,j] = expm1(X[i,j])", "dX[a,b] = G[a,b]*exp(X[a,b])", True),
    ("Y[i,j] = log1p(X[i,j])", "dX[a,b] = G[a,b]/X[a,b]", False),
])
def test_claims_with_the_new_functions_are_judged(spec, claim, correct):
    verdict = check_claim(derive(spec), claim)
    assert verdict.correct is correct, (claim, verdict)


def test_every_derived_rule_is_accepted_back_as_a_claim():
    from deltagrad.codegen.index_printer import index_text

    for spec, _, _ in [*ELEMENTWISE.values(), *COMPOSED.values()]:
        d = derive(spec)
        for name, step in d.steps.items():
            lhs = f"d{name}[{','.join(i.name for i in step.indices)}]" if step.indices else f"d{name}"
            claim = f"{lhs} = {index_text(step.final)}"
            assert check_claim(d, claim).correct, (spec, claim)


def test_claims_on_a_generic_function_use_its_derivative():
    d = derive("Y[i,j] = f(X[i,j])*Z[i,j]", functions=["f"])
    assert check_claim(d, "dX[a,b] = G[a,b]*Z[a,b]*f_prime(X[a,b])").correct
    assert check_claim(d, "dZ[a,b] = G[a,b]*f(X[a,b])").correct
    assert not check_claim(d, "dX[a,b] = G[a,b]*f(X[a,b])").correct
    assert not check_claim(d, "dX[a,b] = G[a,b]*Z[a,b]*f_prime2(X[a,b])").correct


# -- write-ups -----------------------------------------------------------------------------------

def test_latex_names_the_functions_as_a_reader_writes_them():
    frag = derive("Y[i,j] = where(X[i,j] > 0, asin(X[i,j]), sigmoid(X[i,j]))").latex(fragment=True)
    assert "\\begin{cases}" in frag and "\\arcsin" in frag and "\\sigma" in frag
    assert "derivative is 0" in frag  # the convention for the comparison
    assert "\\operatorname{erf}" in derive("Y[i] = erf(X[i])").latex(fragment=True)
    assert "f'(X_{" in derive("Y[i] = f(X[i])", functions=["f"]).latex(fragment=True)


@pytest.mark.skipif(not shutil.which("pdflatex"), reason="pdflatex is not installed")
def test_writeups_of_a_generic_function_and_of_where_compile(tmp_path):
    for n, (spec, functions) in enumerate([("Y[i,j] = f(X[i,j])*Z[i,j]", ["f"]),
                                           ("Y[i,j] = where(X[i,j] > 0, erf(X[i,j]), softplus(X[i,j]))", [])]):
        (tmp_path / f"w{n}.tex").write_text(derive(spec, functions=functions).latex())
        proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", f"w{n}.tex"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout[-2000:]


def test_the_readme_table_of_functions_shows_the_derived_rules():
    import re
    from pathlib import Path

    from deltagrad.codegen.index_printer import index_text

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = readme[readme.index("### Functions"):readme.index("### Programs")]
    rows = re.findall(r"^\| `[^|]*` \| `(Y\[i\] = [^`]*)` \| (`d.*`) \|$", table, re.M)
    assert len(rows) == 9
    for spec, rules in rows:
        d = derive(spec)
        shown = ", ".join(f"`d{n}[a] = {index_text(st.final)}`" for n, st in d.steps.items())
        assert shown == rules, (spec, shown)


def test_a_generic_function_in_a_program_and_in_printed_source():
    d = derive("H[i] = f(X[i]); L = Sum(H[i]*H[i], i)", functions=["f"])
    assert d.numpy() == "dX = 2 * goutput * H * f_prime(X)"
    (x,) = draw([normal], [(4,)])
    check_op(d.compile(functions=TANH), lambda x: np.sum(np.tanh(x) ** 2), [x])
    assert check_claim(d, "dX[a] = 2*G*H[a]*f_prime(X[a])").correct
    assert not check_claim(d, "dX[a] = G*H[a]*f_prime(X[a])").correct
    # the printed module runs where f and f_prime are defined beside it
    out = CliRunner().invoke(main, ["derive", "Y[i] = f(X[i])", "--function", "f", "--format", "numpy"])
    assert out.exit_code == 0 and "f, f_prime: the user's functions" in out.output
    namespace = dict(TANH)
    exec(compile(out.output, "<printed op>", "exec"), namespace)  # noqa: S102 - deltagrad's own output
    check_op(namespace["Y"], np.tanh, [x])
