"""deltagrad check: each typical hand-derivation mistake is found (and its fix accepted), as a
claim in index notation and as a hand-written Op class; batches; exit codes."""

import json
import re
import shlex
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from deltagrad import SpecError, derive
from deltagrad.check.claims import check_claim
from deltagrad.check.code import check_code, load_op
from deltagrad.cli import main
from deltagrad.codegen.verdict_text import verdict_dict
from deltagrad.derive.size_one import shown_indices

DIV = "Y[i,j] = X[i,j] / Z[i,j]"
MATMUL = "Y[i,j] = Sum(X[i,k]*W[k,j], k)"
LINEAR = "Y[i,j] = Sum(X[i,k]*W[k,j], k) + B[j]"
NORMALIZE = "Y[i,j] = X[i,j] / Sum(X[i,k], k)"
SIGMOID = "Y[i,j] = 1 / (1 + exp(-X[i,j]))"

# (spec, wrong claim, expected diagnosis, fixed claim)
MISTAKES = [
    ("dropped sum over a reduced index", LINEAR, "dB[a] = G[i,a]", "missing sum over i", "dB[a] = Sum(G[i,a], i)"),
    ("dropped sum inside a quotient rule", NORMALIZE,
     "dX[a,b] = G[a,b]/Sum(X[a,k],k) - G[a,b]*X[a,b]/Sum(X[a,k],k)**2", "missing sum over j",
     "dX[a,b] = G[a,b]/Sum(X[a,k],k) - Sum(G[a,j]*X[a,j],j)/Sum(X[a,k],k)**2"),
    ("sign flipped", DIV, "dZ[a,b] = G[a,b]*X[a,b]/Z[a,b]**2", "the sign is flipped",
     "dZ[a,b] = -G[a,b]*X[a,b]/Z[a,b]**2"),
    ("sign flipped twice (sigmoid)", SIGMOID, "dX[a,b] = -G[a,b]*exp(-X[a,b])/(1+exp(-X[a,b]))**2",
     "the sign is flipped", "dX[a,b] = G[a,b]*exp(-X[a,b])/(1+exp(-X[a,b]))**2"),
    ("transpose on the wrong side", MATMUL, "dW[a,b] = Sum(G[i,a]*X[i,b], i)", "transposed",
     "dW[a,b] = Sum(X[i,a]*G[i,b], i)"),
    ("WX where XW was meant", MATMUL, "dX[a,b] = Sum(W[a,j]*G[b,j], j)", "transposed", "dX[a,b] = Sum(G[a,j]*W[b,j], j)"),
    ("product where a quotient rule was needed", NORMALIZE, "dX[a,b] = G[a,b]/Sum(X[a,k],k)", "a term is missing",
     "dX[a,b] = (G[a,b] - Sum(G[a,j]*X[a,j],j)/Sum(X[a,k],k))/Sum(X[a,k],k)"),
    ("factor off", "L = Sum(X[i,j]**2, i, j)", "dX[a,b] = G*X[a,b]", "off by a factor of 1/2", "dX[a,b] = 2*G*X[a,b]"),
]


@pytest.mark.parametrize("what, spec, wrong, diagnosis, fixed", MISTAKES, ids=[m[0] for m in MISTAKES])
def test_claim_mistake_is_found_and_fix_accepted(what, spec, wrong, diagnosis, fixed):
    d = derive(spec)
    bad = check_claim(d, wrong)
    said = verdict_dict(bad)
    assert not bad.correct and diagnosis in said["diagnosis"]
    if not said["diagnosis"].startswith("missing sum over i:"):  # an unbound index cannot be evaluated
        assert said["counterexample"]["claim gives"] != said["counterexample"]["derived gives"]
        assert said["difference"].startswith("claim - derived = ")
    good = check_claim(d, fixed)
    assert good.correct, good


def test_index_names_and_grad_letter_are_the_users():
    d = derive(DIV)
    assert check_claim(d, "dZ[p,q] = -D[p,q]*X[p,q]/Z[p,q]**2", grad_name="D").correct
    assert check_claim(d, "dX[b,a] = G[b,a]/Z[b,a]").correct


def test_numerical_decision_is_said_when_sympy_cannot_decide():
    d = derive("Y[i,j] = exp(X[i,j]) / Sum(exp(X[i,k]), k)")
    v = check_claim(d, "dX[a,b] = exp(X[a,b])/Sum(exp(X[a,k]),k)*(G[a,b] - Sum(G[a,j]*exp(X[a,j]),j)/Sum(exp(X[a,m]),m))")
    assert v.correct


@pytest.mark.parametrize("claim, message", [
    ("dQ[a,b] = G[a,b]", r"the left side must be d \+ an input \(dX, dZ\)"),
    ("dX[a] = G[a,b]", "dX needs 2 index"),
    ("dX[a,b] = H[a,b]", "unknown name 'H'"),
    ("dX[a,b] = G[a]", "G has 2 index"),
    ("dX[a,b] = __import__('os')", "unknown function '__import__'"),
])
def test_bad_claims_are_errors(claim, message):
    with pytest.raises(SpecError, match=message):
        check_claim(derive(DIV), claim)


STUDENT = '''
import numpy as np

class SigmoidKeyTypo:
    @staticmethod
    def forward(context, x):
        context["sig"] = s = 1 / (1 + np.exp(-x))
        return s
    @staticmethod
    def backward(context, goutput):
        s = context["sigx"]
        return (goutput * s * (1 - s),)

class Sigmoid:
    @staticmethod
    def forward(context, x):
        context["sig"] = s = 1 / (1 + np.exp(-x))
        return s
    @staticmethod
    def backward(context, goutput):
        s = context["sig"]
        return (goutput * s * (1 - s),)

class MatmulWrongVariable:
    @staticmethod
    def forward(context, x, w):
        context["x"], context["w"] = x, w
        return x @ w
    @staticmethod
    def backward(context, g):
        x, w = context["x"], context["w"]
        dx = g @ w.T
        dw = x.T @ g
        return dx, dx

class MatmulTransposed:
    @staticmethod
    def forward(context, x, w):
        context["x"], context["w"] = x, w
        return x @ w
    @staticmethod
    def backward(context, g):
        x, w = context["x"], context["w"]
        return g @ w.T, g.T @ x

class Matmul:
    @staticmethod
    def forward(context, x, w):
        context["x"], context["w"] = x, w
        return x @ w
    @staticmethod
    def backward(context, g):
        x, w = context["x"], context["w"]
        return g @ w.T, x.T @ g

class ExpandNotSummed:
    @staticmethod
    def forward(context, x, j):
        return np.repeat(x[:, None], j, axis=1)
    @staticmethod
    def backward(context, goutput):
        return (goutput,)

class Expand:
    @staticmethod
    def forward(context, x, j):
        return np.repeat(x[:, None], j, axis=1)
    @staticmethod
    def backward(context, goutput):
        return (goutput.sum(axis=1),)

class DivideSignFlip:
    @staticmethod
    def forward(context, x, z):
        context["x"], context["z"] = x, z
        return x / z
    @staticmethod
    def backward(context, g):
        x, z = context["x"], context["z"]
        return g / z, g * x / z**2

class Divide:
    @staticmethod
    def forward(context, x, z):
        context["x"], context["z"] = x, z
        return x / z
    @staticmethod
    def backward(context, g):
        x, z = context["x"], context["z"]
        return g / z, -g * x / z**2

class DivideUndefinedName:
    @staticmethod
    def forward(context, x, z):
        context["x"], context["z"] = x, z
        return x / z
    @staticmethod
    def backward(context, g):
        x, z = context["x"], context["z"]
        return g / z, -g * x / zz**2
'''

# (class, spec, expected text in the first failing verdict, fixed class)
CODE_MISTAKES = [
    ("SigmoidKeyTypo", SIGMOID, "KeyError: 'sigx'", "Sigmoid"),
    ("MatmulWrongVariable", MATMUL, "this is the gradient of X: the wrong variable is returned", "Matmul"),
    ("MatmulTransposed", MATMUL, "transposed", "Matmul"),
    ("ExpandNotSummed", "Y[i,j] = x[i]", "summed back to the input's shape", "Expand"),
    ("DivideSignFlip", DIV, "the sign is flipped", "Divide"),
    ("DivideUndefinedName", DIV, "NameError: name 'zz' is not defined", "Divide"),
]


@pytest.fixture()
def student(tmp_path):
    path = tmp_path / "student_ops.py"
    path.write_text(textwrap.dedent(STUDENT))
    return path


@pytest.mark.parametrize("cls, spec, expected, fixed", CODE_MISTAKES, ids=[m[0] for m in CODE_MISTAKES])
def test_code_mistake_is_found_and_fix_accepted(student, cls, spec, expected, fixed):
    d = derive(spec)
    op, file = load_op(f"{student}:{cls}")
    verdicts = check_code(d, op, file)
    bad = [verdict_dict(v) for v in verdicts if not v.correct]
    assert bad and expected in (bad[0].get("diagnosis", "") + bad[0].get("error", ""))
    if "Error" in expected:
        assert "student_ops.py, line" in bad[0]["error"]
    if fixed:
        op, file = load_op(f"{student}:{fixed}")
        assert all(v.correct for v in check_code(d, op, file))


def test_wrong_variable_with_square_shapes_is_named(tmp_path):
    path = tmp_path / "ops2.py"
    path.write_text(textwrap.dedent('''
        class Mul:
            @staticmethod
            def forward(context, x, z):
                context["x"], context["z"] = x, z
                return x * z
            @staticmethod
            def backward(context, g):
                return g * context["x"], g * context["z"]

        class MulOneWrong(Mul):
            @staticmethod
            def backward(context, g):
                return g * context["z"], g * context["z"]
    '''))
    op, file = load_op(f"{path}:Mul")
    bad = [verdict_dict(v) for v in check_code(derive("Y[i,j] = X[i,j] * Z[i,j]"), op, file) if not v.correct]
    assert bad and "the gradients are in the wrong order: backward returns them as (dZ, dX)" in bad[0]["diagnosis"]
    op, file = load_op(f"{path}:MulOneWrong")
    bad = [verdict_dict(v) for v in check_code(derive("Y[i,j] = X[i,j] * Z[i,j]"), op, file) if not v.correct]
    assert len(bad) == 1 and bad[0]["claim"] == "MulOneWrong.backward: dZ"
    assert "this is the gradient of X: the wrong variable is returned" in bad[0]["diagnosis"]


def test_cli_exit_codes_and_json(student):
    r = CliRunner().invoke(main, ["check", DIV, "--claim", "dX[a,b] = G[a,b]/Z[a,b]"])
    assert r.exit_code == 0 and "correct" in r.output
    r = CliRunner().invoke(main, ["check", DIV, "--claim", "dZ[a,b] = G[a,b]*X[a,b]/Z[a,b]**2", "--format", "json"])
    assert r.exit_code == 1
    out = json.loads(r.output)
    assert out[0]["correct"] is False and out[0]["diagnosis"] == "the sign is flipped"
    r = CliRunner().invoke(main, ["check", DIV, "--claim", "dX[a,b] = Q[a,b]"])
    assert r.exit_code == 2 and r.output.startswith("error: column")
    r = CliRunner().invoke(main, ["check", SIGMOID, "--code", f"{student}:SigmoidKeyTypo"])
    assert r.exit_code == 1 and "KeyError: 'sigx'" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["check", SIGMOID, "--code", f"{student}:Nope"])
    assert r.exit_code == 2 and "has no class 'Nope'" in r.output
    assert "IMPORTS AND RUNS your file" in " ".join(CliRunner().invoke(main, ["check", "--help"]).output.split())


@pytest.mark.parametrize("suffix", [".toml", ".yaml"])
def test_batch_files(tmp_path, student, suffix):
    if suffix == ".toml":
        text = f'''
[[check]]
name = "division"
spec = "{DIV}"
claims = ["dX[a,b] = G[a,b] / Z[a,b]", "dZ[a,b] = G[a,b]*X[a,b]/Z[a,b]**2"]

[[check]]
name = "matmul"
spec = "{MATMUL}"
code = "{student.name}:MatmulTransposed"

[[check]]
name = "broken"
spec = "Y[i] = foo(X[i])"
claims = []
'''
    else:
        text = f'''
check:
  - name: division
    spec: "{DIV}"
    claims: ["dX[a,b] = G[a,b] / Z[a,b]", "dZ[a,b] = G[a,b]*X[a,b]/Z[a,b]**2"]
  - name: matmul
    spec: "{MATMUL}"
    code: "{student.name}:MatmulTransposed"
  - name: broken
    spec: "Y[i] = foo(X[i])"
'''
    batch = student.parent / f"hw{suffix}"
    batch.write_text(text)
    r = CliRunner().invoke(main, ["check", "--batch", str(batch)])
    lines = r.output.strip().splitlines()
    assert r.exit_code == 2  # the broken spec is an error
    assert lines[0] == "division: dX[a,b] = G[a,b] / Z[a,b]: correct"
    assert lines[1].startswith("division: dZ[a,b] = G[a,b]*X[a,b]/Z[a,b]**2: incorrect (the sign is flipped")
    assert any(line.startswith("matmul: MatmulTransposed.backward: dW: incorrect (transposed") for line in lines)
    assert lines[-1] == "5 checks: 2 correct, 2 incorrect, 1 errors"
    r = CliRunner().invoke(main, ["check", "--batch", str(batch), "--format", "json"])
    assert json.loads(r.output)["summary"] == {"correct": 2, "incorrect": 2, "error": 1}


def test_a_wrong_forward_is_reported(tmp_path):
    path = tmp_path / "fwd.py"
    path.write_text(textwrap.dedent('''
        class Divide:
            @staticmethod
            def forward(context, x, z):
                return -x / z
            @staticmethod
            def backward(context, g):
                return g, g
    '''))
    op, file = load_op(f"{path}:Divide")
    (v,) = check_code(derive(DIV), op, file)
    assert not v.correct and v.claim == "Divide.forward"
    assert verdict_dict(v)["diagnosis"] == "forward: the sign is flipped"


def test_verdicts_are_data_and_the_cli_words_them():
    from deltagrad.check.verdict import Diagnosis

    v = check_claim(derive(MATMUL), "dW[a,b] = Sum(G[i,a]*X[i,b], i)")
    assert (v.status, v.method) == ("incorrect", "claim_shapes")  # dW of shape (j, k): decided by its indices
    assert v.diagnosis == Diagnosis("swapped_indices", {"a": "a", "b": "b"})
    assert set(v.counterexample.inputs) == {"X", "W"} and v.counterexample.want.shape == (4, 3)
    assert verdict_dict(v)["diagnosis"].startswith("transposed: the claim is the derived rule with a and b swapped")
    v = check_claim(derive("Y[i,j] = exp(X[i,j]) / Sum(exp(X[i,k]), k)"), "dX[a,b] = G[a,b]")
    assert v.derived is not None and v.difference is not None and v.counterexample is not None


def test_claims_get_the_same_input_guard_as_specs():
    d = derive(DIV)
    with pytest.raises(SpecError, match="the claim cannot be parsed"):
        check_claim(d, "dX[a,b] = " + "-" * 5000 + "G[a,b]")
    with pytest.raises(SpecError, match=r"the claim nests brackets too deeply \(more than 60 levels\)"):
        check_claim(d, "dX[a,b] = " + "(" * 100 + "G[a,b]" + ")" * 100)
    # many brackets side by side are fine (the fuzzer's bracketed printing of a correct claim
    # used to be refused for its count of brackets)
    assert not check_claim(d, "dX[a,b] = " + "+".join(["(G[a,b])/Z[a,b]"] * 70)).correct
    assert check_claim(d, "dX[a,b] = " + "+".join(["(G[a,b])/(70*Z[a,b])"] * 70)).correct
    with pytest.raises(SpecError, match="a claim is a line of text"):
        check_claim(d, 3)


SCALE = "Y[i,j] = X[i,j]*c"

# The most common student mistakes: claims whose indices do not fit the input's shape.
# (spec, wrong claim, expected diagnosis, fixed claim)
SHAPE_MISTAKES = [
    ("missing transpose", MATMUL, "dX[a,b] = Sum(G[a,j]*W[j,b], j)",
     "transposed: W[j,b] should be W[b,j] (with that, the claim is right)", "dX[a,b] = Sum(G[a,j]*W[b,j], j)"),
    ("gradient of the wrong shape", MATMUL, "dW[a,b] = X[a,b]",
     "the claim has shape (i, k) but dW has the shape of W, (k, j)", "dW[a,b] = Sum(X[i,a]*G[i,b], i)"),
    ("Hadamard reading", DIV, "dX[a,b] = G[a,b]/Z[b,a]**2", "transposed: Z[b,a] should be Z[a,b]",
     "dX[a,b] = G[a,b]/Z[a,b]"),
    ("a constant too many", MATMUL, "dX[a,b] = Sum(G[a,j]*W[b,j], j) + 1", "a term is too many: 1",
     "dX[a,b] = Sum(G[a,j]*W[b,j], j)"),
    ("transposed inside a full sum", SCALE, "dc = Sum(G[i,j]*X[j,i], i, j)",
     "transposed: X[j,i] should be X[i,j] (with that, the claim is right)", "dc = Sum(G[i,j]*X[i,j], i, j)"),
    ("whole claim transposed", DIV, "dX[a,b] = G[b,a]/Z[b,a]**2",
     "the claim has shape (j, i) but dX has the shape of X, (i, j) (transposed)", "dX[a,b] = G[a,b]/Z[a,b]"),
    ("one index, two sizes", MATMUL, "dX[a,b] = Sum(G[a,j]*W[b,j]*X[a,j], j)",
     "index j runs over axes of different sizes: axis 2 of G (j) and axis 2 of X (k)",
     "dX[a,b] = Sum(G[a,j]*W[b,j], j)"),
    ("delta of two sizes", DIV, "dX[a,b] = G[a,b]*delta(a,b)/Z[a,b]",
     "delta(a,b) compares indices over axes of different sizes (i and j)", "dX[a,b] = G[a,b]/Z[a,b]"),
    ("transposed entry of a square operand", "Y[i,k] = Sum(X[i,j]*X[j,k], j)",
     "dX[a,b] = Sum(G[a,k]*X[k,b], k) + Sum(G[i,b]*X[i,a], i)",
     "transposed: X[k,b] should be X[b,k] (with that, the claim is right)",
     "dX[a,b] = Sum(G[a,k]*X[b,k], k) + Sum(G[i,b]*X[i,a], i)"),
]


@pytest.mark.parametrize("what, spec, wrong, diagnosis, fixed", SHAPE_MISTAKES, ids=[m[0] for m in SHAPE_MISTAKES])
def test_shape_mistakes_get_a_verdict_never_a_traceback(what, spec, wrong, diagnosis, fixed):
    d = derive(spec)
    bad = check_claim(d, wrong)
    assert not bad.correct and verdict_dict(bad)["diagnosis"] == diagnosis
    assert check_claim(d, fixed).correct
    for fmt in ("text", "json"):
        r = CliRunner().invoke(main, ["check", spec, "--claim", wrong, "--claim", fixed, "--format", fmt])
        assert r.exit_code == 1 and "Traceback" not in r.output
        assert diagnosis in r.output
        if fmt == "json":
            out = json.loads(r.output)
            assert [v["status"] for v in out] == ["incorrect", "correct"]


# What the derived rules print is accepted in claims: (spec, claim), each correct.
PRINTED_FORMS = [
    ("Sum_j(...)", MATMUL, "dX[a,b] = Sum_j(G[a,j]*W[b,j])"),
    ("Sum_i,j(...)", SCALE, "dc = Sum_i,j(G[i,j]*X[i,j])"),
    ("Sum_{i,j}(...)", SCALE, "dc = Sum_{i,j}(X[i,j]*G[i,j])"),
    ("delta(a,b)", "Y[i] = X[i,0]", "dX[a,b] = G[a]*delta(0,b)"),
    ("delta(a,b) summed", DIV, "dX[a,b] = Sum(G[a,j]*delta(j,b), j)/Z[a,b]"),
    ("V**(3/2)", "Y[i,j] = 1/sqrt(X[i,j])", "dX[a,b] = -G[a,b]/(2*X[a,b]**(3/2))"),
    ("Heaviside", "Y[i,j] = Max(X[i,j], 0)", "dX[a,b] = Heaviside(X[a,b])*G[a,b]"),
    ("sign", "Y[i,j] = Abs(X[i,j])", "dX[a,b] = G[a,b]*sign(X[a,b])"),
    ("the output", SIGMOID, "dX[a,b] = G[a,b]*Y[a,b]*(1 - Y[a,b])"),
    ("a saved reduction", NORMALIZE, "dX[a,b] = (G[a,b] - Sum_j(G[a,j]*Y[a,j]))/row_sum[a]"),
    ("a saved reduction, written out", NORMALIZE, "dX[a,b] = (G[a,b] - Sum_j(G[a,j]*X[a,j])/row_sum[a])/row_sum[a]"),
    ("n_k", "Y[i] = Sum(X[i,k], k)/size(k)", "dX[a,b] = G[a]/n_k"),
    ("size(b)", "Y[i] = Sum(X[i,k], k)/size(k)", "dX[a,b] = G[a]/size(b)"),
    ("n_k with an index named k", "Y[i] = Sum(X[i,k], k)/size(k)", "dX[k,b] = G[k]/n_k"),
]


@pytest.mark.parametrize("what, spec, claim", PRINTED_FORMS, ids=[m[0] for m in PRINTED_FORMS])
def test_claims_accept_what_the_derived_rules_print(what, spec, claim):
    v = check_claim(derive(spec), claim)
    assert v.correct, verdict_dict(v)


def test_every_printed_rule_is_a_correct_claim():
    from deltagrad.codegen.index_printer import index_text

    for spec in (MATMUL, LINEAR, NORMALIZE, SIGMOID, DIV, SCALE, "Y[i,j] = exp(X[i,j]) / Sum(exp(X[i,k]), k)",
                 "L = -Sum(T[i,j]*log(P[i,j]), i, j)", "Y[i] = X[i,0]", "Y[i,j] = X[i,j] - Sum(X[i,k],k)/size(k)",
                 "Y[i,j] = X[i,_,j]**2*W[j]", "Y[i,_,j] = X[i,j]"):
        d = derive(spec)
        for name, st in d.steps.items():
            idx = ",".join(i.name for i in shown_indices(d.spec, name, st.indices))
            claim = f"d{name}[{idx}] = {index_text(st.final)}" if idx else f"d{name} = {index_text(st.final)}"
            assert check_claim(d, claim).correct, claim


def test_a_wrong_claim_in_printed_notation_is_still_wrong():
    d = derive("Y[i] = X[i,0]")
    v = check_claim(d, "dX[a,b] = G[a]*delta(1,b)")
    assert not v.correct and v.counterexample is not None
    v = check_claim(derive(NORMALIZE), "dX[a,b] = (G[a,b] + Sum_j(G[a,j]*Y[a,j]))/row_sum[a]")
    assert not v.correct


@pytest.mark.parametrize("claim, message", [
    ("dX[a,b] = Sum_j(G[a,b])", "Sum over j: j appears nowhere in what is summed"),
    ("dX[a,b] = delta(a)", "delta takes two indices"),
    ("dX[a,b] = G[a,b]/Z[a,b] + Sum_j(G[a,j]", "column 32: syntax error in claim: '(' was never closed"),
    ("dX[a,b] = Sum_j(G[a,j]*foo(Z[b,j]))", "column 24: unknown function 'foo'"),
    ("dX[a,b] = row_max[a]", "unknown name 'row_max'"),
])
def test_bad_claims_in_printed_notation_are_errors(claim, message):
    with pytest.raises(SpecError, match=re.escape(message)):
        check_claim(derive(DIV), claim)


README = (Path(__file__).resolve().parents[1] / "README.md").read_text()

VUGRAD_EXPAND = '''
import numpy as np


class Expand:
    @staticmethod
    def forward(context, input, *, dim, repeats):
        context['dim'] = dim
        assert input.shape[dim] == 1, 'Can only expand singleton dimensions'
        return np.repeat(input, repeats, axis=dim)

    @staticmethod
    def backward(context, goutput):
        dim = context['dim']
        return goutput.sum(axis=dim, keepdims=True)
'''

README_SIGMOID = '''import numpy as np

class Sigmoid:
    @staticmethod
    def forward(context, x):
        context['sig'] = 1 / (1 + np.exp(-x))
        return context['sig']

    @staticmethod
    def backward(context, goutput):
        s = context['sigx']
        return goutput * s * (1 - s)
'''


def _readme_console(command_start):
    """The command and the output lines of the README console example that starts so."""
    at = README.index("$ deltagrad check " + command_start)
    block = README[at:README.index("```", at)].strip().splitlines()
    return shlex.split(block[0][2:])[1:], block[1:]


def test_readme_check_examples_are_current(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args, shown = _readme_console('"Y[i,j] = Sum(X[i,k]*W[k,j], k)" --claim')
    out = CliRunner().invoke(main, args).output.splitlines()
    assert [line for line in shown if line.strip() != "..."] == [line for line in out if line in shown]
    (tmp_path / "my_ops.py").write_text(README_SIGMOID)
    args, shown = _readme_console('"Y[i,j] = 1/(1+exp(-X[i,j]))" --code my_ops.py:Sigmoid')
    assert CliRunner().invoke(main, args).output.splitlines() == shown
    (tmp_path / "vugrad").mkdir()
    (tmp_path / "vugrad" / "ops.py").write_text(VUGRAD_EXPAND)
    commands = [line for line in README.splitlines() if line.startswith("deltagrad check") and "Expand" in line]
    assert len(commands) == 2
    for line in commands:
        r = CliRunner().invoke(main, shlex.split(line)[1:])
        assert r.exit_code == 0 and "INCORRECT" not in r.output, r.output


def test_a_verdict_shows_the_steps_the_derived_rule_reads():
    """SiLU's derived rule reads s, a step the engine made; the verdict says what s is."""
    spec = "Y[i,j] = X[i,j]/(1+exp(-X[i,j]))"
    r = CliRunner().invoke(main, ["check", spec, "--claim", "dX[a,b] = G[a,b]"])
    assert r.exit_code == 1
    lines = r.output.splitlines()
    derived = next(n for n, line in enumerate(lines) if line.strip().startswith("derived:"))
    assert "s[a,b]" in lines[derived] and lines[derived + 1].split() == ["where:", "s[i,j]", "=", "1/(1", "+",
                                                                          "exp(-X[i,j]))"]
    v = check_claim(derive(spec), "dX[a,b] = G[a,b]")
    assert verdict_dict(v)["where"] == ["s[i,j] = 1/(1 + exp(-X[i,j]))"]
    plain = check_claim(derive("Y[i,j] = X[i,j]*Z[i,j]"), "dX[a,b] = G[a,b]")
    assert "where" not in verdict_dict(plain)  # no steps, no line



def test_the_where_lines_name_the_saved_reductions_a_rule_reads():
    """A one-line layer norm's rule reads row_sq_sum, which the engine saves: it is named too."""
    d = derive("Y[i,j] = (X[i,j]-Sum(X[i,k],k)/size(k))/sqrt(Sum((X[i,k]-Sum(X[i,l],l)/size(l))**2,k)/size(k)+1e-5)")
    where = verdict_dict(check_claim(d, "dX[a,b] = G[a,b]"))["where"]
    assert [w.split(" = ")[0] for w in where] == ["row_sum[i]", "X_centred[i,k]", "row_sq_sum[i]"]
    assert where[0] == "row_sum[i] = Sum_l(X[i,l])"
