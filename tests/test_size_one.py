"""`_` in an index position is an axis of size one: `Y[i,j] = X[i,_,j]` squeezes, `Y[i,_,j] =
X[i,j]` unsqueezes. A literal integer still selects an entry of an axis of any size. Derived
gradients (checked by finite differences), generated shape checks, printing, and what `check`
says of a squeeze written against the literal spec."""

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from click.testing import CliRunner

from deltagrad import ShapeError, SpecError, derive
from deltagrad.check.claims import check_claim
from deltagrad.check.code import check_code
from deltagrad.cli import main
from deltagrad.codegen.verdict_text import verdict_dict
from gradcheck import check_op

rng = np.random.default_rng(3)
SQUEEZE_HINT = "correct if axis 1 has size 1: write X[i,_,j] for a squeeze"
VUGRAD_OPS = Path(__file__).resolve().parents[2] / "shared" / "vugrad" / "vugrad" / "ops.py"


@pytest.mark.parametrize("spec, reference, shapes, grads, code", [
    ("Y[i,j] = X[i,_,j]", lambda x: x[:, 0, :], [(3, 1, 4)], {"X": "G[a, c]"}, "dX = goutput[:, None, :]"),
    ("Y[i,_,j] = X[i,j]", lambda x: x[:, None, :], [(3, 4)], {"X": "G[a, 0, b]"}, "dX = goutput[:, 0, :]"),
    ("Y[i,j] = X[i,_,j]**2 * W[j]", lambda x, w: x[:, 0, :] ** 2 * w, [(3, 1, 4), (4,)],
     {"X": "2*G[a, c]*W[c]*X[a, _, c]"}, "dX = (2 * goutput * W * X[:, 0, :])[:, None, :]"),
    ("Y = X[_]", lambda x: x[0], [(1,)], {"X": "G"}, "dX = goutput[None]"),
    ("y[i] = Sum(X[_,i,k], k)", lambda x: x[0].sum(axis=1), [(1, 3, 4)], None, None),
])
def test_size_one_axes_derive_verified_gradients(spec, reference, shapes, grads, code):
    d = derive(spec)
    if grads is not None:
        assert {n: str(g) for n, g in d.grads.items() if n in grads} == grads
    if code is not None:
        assert code in d.numpy("X")
    check_op(d.compile(), reference, [rng.uniform(-1.5, 1.5, size=s) for s in shapes])


def test_a_literal_index_still_selects_from_an_axis_of_any_size():
    d = derive("Y[i,j] = X[i,1,j]")
    a, b, c = d.steps["X"].indices
    assert d.grads["X"] == sp.KroneckerDelta(1, b) * sp.IndexedBase("G", real=True)[a, c]
    check_op(d.compile(), lambda x: x[:, 1, :], [rng.normal(size=(2, 3, 4))])


def test_generated_ops_check_size_one_axes_at_run_time():
    message = re.escape("input X axis 1 has size 2, but the spec writes _ there (an axis of size one)")
    with pytest.raises(ShapeError, match=message):
        derive("Y[i,j] = X[i,_,j]", name="squeeze").compile().forward({}, np.ones((3, 2, 4)))
    from deltagrad.generated import Squeeze

    with pytest.raises(ShapeError, match="Squeeze: " + message):
        Squeeze.forward({}, np.ones((3, 2, 4)))
    assert Squeeze.forward({}, np.ones((3, 1, 4))).shape == (3, 4)
    assert '("i", "_", "j")' in derive("Y[i,j] = X[i,_,j]").source()


@pytest.mark.parametrize("target", ["torch", "jax"])
def test_torch_and_jax_ops_check_size_one_axes_too(target):
    if importlib.util.find_spec(target) is None:
        pytest.skip(f"{target} is not installed")
    op = derive("Y[i,j] = X[i,_,j]", name="squeeze").compile(target=target)
    with pytest.raises(ShapeError, match="axis 1 has size 2, but the spec writes _ there"):
        op(np.ones((3, 2, 4)))
    assert tuple(op(np.ones((3, 1, 4))).shape) == (3, 4)


@pytest.mark.parametrize("spec, message", [
    ("Y[i,j] = X[i,_,j] + X[i,0,j]", r"column 10: axis 1 of 'X' is written _ \(an axis of size one\) in one place"),
    ("Y[i,j] = X[i,_,j] + Sum(X[i,k,j], k)", "axis 1 of 'X' is written _"),
    ("Y[i] = X[i] * _", r"column 15: _ \(an axis of size one\) stands only inside a tensor's brackets"),
    ("Y[i] = Sum(X[i,k,_], _)", "stands only inside a tensor's brackets"),
    ("m[i] = X[i,_]; Y[i] = m[i]*2", "an axis of size one .* is not supported in a program of several steps"),
])
def test_bad_uses_of_underscore_are_one_line_errors(spec, message):
    with pytest.raises(SpecError, match=message):
        derive(spec)
    r = CliRunner().invoke(main, ["derive", spec])
    assert r.exit_code == 2 and "Traceback" not in r.output


def test_text_and_latex_print_underscore():
    d = derive("Y[i,j] = X[i,_,j]")
    r = CliRunner().invoke(main, ["derive", "Y[i,j] = X[i,_,j]"])
    assert r.output.startswith("Y[i,j] = X[i,_,j]\n\ndX[a,_,c] = G[a,c]\n    dX = goutput[:, None, :]\n")
    tex = d.latex(fragment=True)
    assert r"Y_{ij} = X_{i,\_,j}" in tex
    assert r"$\delta_{\_,b} = 1$: $b$ runs over an axis of size one" in tex
    assert "dX[a,_,c] = G[a,c]" in d.source()


@pytest.mark.parametrize("claim", ["dX[a,_,c] = G[a,c]", "dX[a,b,c] = G[a,c]"])
def test_a_squeeze_claim_passes_with_underscore_and_is_flagged_with_a_literal_zero(claim):
    assert check_claim(derive("Y[i,j] = X[i,_,j]"), claim).correct
    said = verdict_dict(check_claim(derive("Y[i,j] = X[i,0,j]"), claim))
    assert not said["correct"] and said["diagnosis"] == SQUEEZE_HINT
    # the claim right for the literal spec, and a wrong one that no axis size can fix
    assert check_claim(derive("Y[i,j] = X[i,0,j]"), "dX[a,b,c] = G[a,c]*delta(b,0)").correct
    wrong = verdict_dict(check_claim(derive("Y[i,j] = X[i,0,j]"), "dX[a,_,c] = 2*G[a,c]"))
    assert not wrong["correct"] and "size 1" not in wrong["diagnosis"]
    wrong = verdict_dict(check_claim(derive("Y[i,j] = X[i,_,j]"), "dX[a,_,c] = 2*G[a,c]"))
    assert not wrong["correct"] and wrong["diagnosis"] == "off by a factor of 2"


def test_the_cli_says_so_with_exit_codes():
    r = CliRunner().invoke(main, ["check", "Y[i,j] = X[i,0,j]", "--claim", "dX[a,_,c] = G[a,c]"])
    assert r.exit_code == 1 and f"INCORRECT: {SQUEEZE_HINT}" in r.output
    r = CliRunner().invoke(main, ["check", "Y[i,j] = X[i,_,j]", "--claim", "dX[a,_,c] = G[a,c]", "--format", "json"])
    assert r.exit_code == 0 and json.loads(r.output)[0]["correct"]
    r = CliRunner().invoke(main, ["check", "Y[i,j] = X[i,_,j]", "--claim", "dX[a,_,c] = G[a,c]*delta(_,c)"])
    assert r.exit_code == 2 and "stands only inside a tensor's brackets" in r.output


SQUEEZE_OPS = '''
import numpy as np


class Squeeze:
    @staticmethod
    def forward(context, input, dim=0):
        context['dim'] = dim
        return input.squeeze(dim)

    @staticmethod
    def backward(context, goutput):
        return np.expand_dims(goutput, axis=context['dim'])


class Select:
    @staticmethod
    def forward(context, input):
        context['shape'] = input.shape
        return input[:, 3, :]

    @staticmethod
    def backward(context, goutput):
        out = np.zeros(context['shape'])
        out[:, 3, :] = goutput
        return out
'''


@pytest.fixture()
def squeeze_file(tmp_path):
    """vugrad's own Squeeze where vugrad is checked out beside this project, else a copy of it."""
    if VUGRAD_OPS.is_file():
        return VUGRAD_OPS
    path = tmp_path / "ops.py"
    path.write_text(SQUEEZE_OPS)
    return path


def test_vugrads_squeeze_is_correct_against_the_underscore_spec(squeeze_file):
    r = CliRunner().invoke(main, ["check", "Y[i,j] = X[i,_,j]", "--code", f"{squeeze_file}:Squeeze",
                                  "--kwargs", "dim=1"])
    assert r.exit_code == 0 and "correct" in r.output and "INCORRECT" not in r.output, r.output
    r = CliRunner().invoke(main, ["check", "Y[i,_,j] = X[i,j]", "--code", f"{squeeze_file}:Unsqueeze",
                                  "--kwargs", "dim=1"]) if squeeze_file == VUGRAD_OPS else None
    assert r is None or (r.exit_code == 0 and "INCORRECT" not in r.output), r.output
    # against the literal spec it is flagged, and told how to say what it means
    r = CliRunner().invoke(main, ["check", "Y[i,j] = X[i,0,j]", "--code", f"{squeeze_file}:Squeeze",
                                  "--kwargs", "dim=1"])
    assert r.exit_code == 1 and f"INCORRECT: {SQUEEZE_HINT}" in r.output, r.output


def test_literal_indices_above_zero_never_crash_the_code_check(tmp_path):
    ops = tmp_path / "ops.py"
    ops.write_text(SQUEEZE_OPS)
    assert all(v.correct for v in check_code(derive("Y[i,j] = X[i,3,j]"), f"{ops}:Select"))
    (v,) = check_code(derive("Y[i,j] = X[i,3,j]"), f"{ops}:Squeeze", kwargs={"dim": 1})
    assert not v.correct and "cannot select an axis to squeeze" in verdict_dict(v)["error"]
