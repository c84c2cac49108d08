"""deltagrad check --code runs the user's class in a child process: whatever the code does
(raise, sys.exit, loop forever, end the interpreter) is a verdict with the user's file and line,
and one bad entry never ends a batch. Keyword arguments, wrong orders, clean load errors."""

import json

import pytest
from click.testing import CliRunner

from deltagrad import derive
from deltagrad.check.batch import run_batch
from deltagrad.check.code import UserCodeError, check_code, parse_kwargs
from deltagrad.cli import main
from deltagrad.codegen.verdict_text import verdict_dict

MATMUL = "Y[i,j] = Sum(X[i,k]*W[k,j], k)"
DIV = "Y[i,j] = X[i,j] / Z[i,j]"

OPS = '''
import os
import sys

import numpy as np


class Matmul:
    @staticmethod
    def forward(context, x, w):
        context["x"], context["w"] = x, w
        return x @ w

    @staticmethod
    def backward(context, g):
        x, w = context["x"], context["w"]
        return g @ w.T, x.T @ g


class MatmulCrash(Matmul):
    @staticmethod
    def backward(context, g):
        return context["x"].T @ g, context["missing"]


class MatmulExit(Matmul):
    @staticmethod
    def backward(context, g):
        sys.exit(0)


class MatmulInterrupt(Matmul):
    @staticmethod
    def backward(context, g):
        raise KeyboardInterrupt


class MatmulHardExit(Matmul):
    @staticmethod
    def backward(context, g):
        os._exit(0)


class MatmulLoop(Matmul):
    @staticmethod
    def forward(context, x, w):
        while True:
            pass


class MatmulBackwardLoop(Matmul):
    @staticmethod
    def backward(context, g):
        while True:
            pass


class MatmulOrder(Matmul):
    @staticmethod
    def backward(context, g):
        x, w = context["x"], context["w"]
        return x.T @ g, g @ w.T


class MatmulNoTranspose(Matmul):
    @staticmethod
    def backward(context, g):
        x, w = context["x"], context["w"]
        return g @ w, x.T @ g


class MatmulTransposed(Matmul):
    @staticmethod
    def backward(context, g):
        x, w = context["x"], context["w"]
        return g @ w.T, g.T @ x


class MatmulString(Matmul):
    @staticmethod
    def backward(context, g):
        return "dx", None


class Expand:
    """vugrad's Expand."""
    @staticmethod
    def forward(context, input, *, dim, repeats):
        context['dim'] = dim
        assert input.shape[dim] == 1, 'Can only expand singleton dimensions'
        return np.repeat(input, repeats, axis=dim)

    @staticmethod
    def backward(context, goutput):
        dim = context['dim']
        return goutput.sum(axis=dim, keepdims=True)


class Repeat:
    @staticmethod
    def forward(context, x, *, times):
        return np.repeat(x[:, None], times, axis=1)

    @staticmethod
    def backward(context, goutput):
        return goutput.sum(axis=1)


class Scaled:
    @staticmethod
    def forward(context, x, *, scale, indices):
        context["scale"] = scale
        assert indices.shape == (2,)
        return x * scale

    @staticmethod
    def backward(context, goutput):
        return goutput * context["scale"]


class ScaleNotSummed:
    @staticmethod
    def forward(context, x, c):
        context["x"], context["c"] = x, c
        return x * c

    @staticmethod
    def backward(context, g):
        return g * context["c"], g * context["x"]


NotAClass = 5


class NoBackward:
    @staticmethod
    def forward(context, x):
        return x
'''


@pytest.fixture()
def ops(tmp_path):
    path = tmp_path / "ops.py"
    path.write_text(OPS)
    return path


def verdicts(spec, target, **kw):
    return [verdict_dict(v) for v in check_code(derive(spec), target, **kw)]


def bad(spec, target, **kw):
    found = [v for v in verdicts(spec, target, **kw) if not v["correct"]]
    assert found
    return found[0].get("diagnosis", "") + found[0].get("error", "")


@pytest.mark.parametrize("cls, expected", [
    ("MatmulCrash", "KeyError: 'missing' (ops.py, line 23: return context[\"x\"].T @ g, context[\"missing\"]); "
                    "forward stored context keys ['w', 'x']"),
    ("MatmulExit", "SystemExit: sys.exit(0) was called (ops.py, line 29: sys.exit(0))"),
    ("MatmulInterrupt", "KeyboardInterrupt:  (ops.py, line 35: raise KeyboardInterrupt)"),
    ("MatmulHardExit", "it ended the Python process in backward (exit code 0)"),
    ("MatmulOrder", "the gradients are in the wrong order: backward returns them as (dW, dX), but must return "
                    "(dX, dW), in the order forward takes its inputs"),
    ("MatmulNoTranspose", "the shapes do not fit a matrix product: a missing transpose?"),
    ("MatmulTransposed", "transposed: shape (3, 4) is the transpose of W's (4, 3)"),
    ("MatmulString", "it is a str, not an array"),
])
def test_what_the_users_code_does_is_a_verdict(ops, cls, expected):
    assert expected in bad(MATMUL, f"{ops}:{cls}")


def test_wrong_order_is_not_called_a_broadcast(ops):
    said = bad(MATMUL, f"{ops}:MatmulOrder")
    assert "summed back" not in said
    # a scalar's gradient of X's shape is a broadcast not summed back, not X's gradient
    said = bad("Y[i,j] = X[i,j]*c", f"{ops}:ScaleNotSummed")
    assert said == ("shape (2, 3), but c has shape () (a broadcast input's gradient must be summed back to the "
                    "input's shape)")


@pytest.mark.parametrize("cls, phase", [("MatmulLoop", "forward"), ("MatmulBackwardLoop", "backward")])
def test_runaway_code_is_stopped(ops, cls, phase):
    said = bad(MATMUL, f"{ops}:{cls}", timeout=1)
    assert said == f"it did not finish within 1 s and was stopped (in {phase}): an endless loop?"


def test_keyword_arguments_reach_forward(ops):
    # vugrad's Expand: the size of j is read off the output (repeats=16), or mapped (repeats=j)
    for kwargs in ({"dim": 1, "repeats": 16}, {"dim": 1, "repeats": "j"}, parse_kwargs("dim=1,repeats=16")):
        assert all(v["correct"] for v in verdicts("Y[i,j] = X[i,_]", f"{ops}:Expand", kwargs=kwargs))
    assert all(v["correct"] for v in verdicts("Y[j,i] = X[_,i]", f"{ops}:Expand", kwargs={"dim": 0, "repeats": 5}))
    assert all(v["correct"] for v in verdicts("Y[i,j] = x[i]", f"{ops}:Repeat", kwargs={"times": "j", "j": 7}))
    kwargs = parse_kwargs("scale=2.5, indices=[0, 1]")
    assert all(v["correct"] for v in verdicts("Y[i,j] = 2.5*X[i,j]", f"{ops}:Scaled", kwargs=kwargs))
    # without them: the user's call is named, not a line of deltagrad
    said = bad("Y[i,j] = X[i,_]", f"{ops}:Expand")
    assert said.startswith("TypeError: Expand.forward() missing 2 required keyword-only arguments: 'dim' and "
                           "'repeats' (calling Expand.forward(context, <array (2, 1)>))")
    assert "--kwargs" in said and "deltagrad" not in said.split("(calling")[0]


def test_kwargs_on_the_command_line(ops):
    r = CliRunner().invoke(main, ["check", "Y[i,j] = X[i,_]", "--code", f"{ops}:Expand", "--kwargs",
                                  "dim=1,repeats=16"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["check", "Y[i,j] = X[i,_]", "--code", f"{ops}:Expand", "--kwargs", "dim=1,=2"])
    assert r.exit_code == 2 and r.output.startswith("error: --kwargs takes NAME=VALUE")


@pytest.mark.parametrize("target, message", [
    ("NotAClass", "ops.py: NotAClass is an int (5), not a class with forward(context, ...) and backward(context, "
                  "goutput)"),
    ("NoBackward", "ops.py: class NoBackward has no backward method (an Op has forward(context, ...) and "
                   "backward(context, goutput))"),
    ("Nope", "ops.py has no class 'Nope'"),
])
def test_what_is_not_an_op_class_is_a_clean_error(ops, target, message):
    with pytest.raises(UserCodeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_code(derive(DIV), f"{ops}:{target}")
    r = CliRunner().invoke(main, ["check", DIV, "--code", f"{ops}:{target}"])
    assert r.exit_code == 2 and r.output == f"error: {message}\n"


def test_a_syntax_error_names_the_users_line(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text("import numpy as np\n\nclass Op:\n    def forward(context x):\n        return x\n")
    r = CliRunner().invoke(main, ["check", DIV, "--code", f"{path}:Op"])
    assert r.exit_code == 2
    assert r.output.startswith("error: importing ") and "SyntaxError: " in r.output
    assert "(broken.py, line 4: def forward(context x):)" in r.output and "frozen" not in r.output
    path.write_text("import sys\nsys.exit(3)\n")
    r = CliRunner().invoke(main, ["check", DIV, "--code", f"{path}:Op"])
    assert r.exit_code == 2 and "SystemExit: sys.exit(3) was called (broken.py, line 2: sys.exit(3))" in r.output


BATCH = '''
[[check]]
name = "crashing"
spec = "{MATMUL}"
code = "ops.py:MatmulCrash"

[[check]]
name = "exiting"
spec = "{MATMUL}"
code = "ops.py:MatmulExit"
claims = "dX[a,b] = Sum(G[a,j]*W[j,b], j)"

[[check]]
name = "looping"
spec = "{MATMUL}"
code = "ops.py:MatmulLoop"
timeout = 1

[[check]]
name = "correct"
spec = "{MATMUL}"
code = "ops.py:Matmul"
claims = ["dW[a,b] = Sum_i(X[i,a]*G[i,b])"]
'''


def test_a_batch_judges_every_entry_whatever_the_others_do(ops):
    batch = ops.parent / "hw.toml"
    batch.write_text(BATCH.format(MATMUL=MATMUL))
    r = CliRunner().invoke(main, ["check", "--batch", str(batch)])
    lines = r.output.strip().splitlines()
    assert r.exit_code == 1, r.output
    assert lines[0].startswith("crashing: MatmulCrash.backward: incorrect (KeyError: 'missing' (ops.py, line 23")
    assert lines[1].startswith("exiting: dX[a,b] = Sum(G[a,j]*W[j,b], j): incorrect (transposed: W[j,b] should be")
    assert lines[2] == ("exiting: MatmulExit.backward: incorrect (SystemExit: sys.exit(0) was called "
                        "(ops.py, line 29: sys.exit(0)))")
    assert lines[3] == ("looping: MatmulLoop.forward: incorrect (it did not finish within 1 s and was stopped "
                        "(in forward): an endless loop?)")
    assert lines[4:7] == ["correct: dW[a,b] = Sum_i(X[i,a]*G[i,b]): correct", "correct: Matmul.backward: dX: correct",
                          "correct: Matmul.backward: dW: correct"]
    assert lines[-1] == "7 checks: 3 correct, 4 incorrect, 0 errors"
    r = CliRunner().invoke(main, ["check", "--batch", str(batch), "--format", "json"])
    doc = json.loads(r.output)
    assert r.exit_code == 1 and doc["summary"] == {"correct": 3, "incorrect": 4, "error": 0}
    assert [x["entry"] for x in doc["results"]] == ["crashing", "exiting", "exiting", "looping", "correct", "correct",
                                                     "correct"]


@pytest.mark.parametrize("text, message", [
    ("", "no entries, so nothing was checked"),
    ("# nothing yet\n", "no entries, so nothing was checked"),
    ("[[check]]\nspec = 'Y[i] = X[i]'\nclaims = 'dX[a] = G[a]'\ninputs = 5\n",
     'entry 1: Y[i] = X[i]: error (inputs must be a list of input names (or "X,W"), not 5)'),
    ("[[check]]\nspec = 'Y[i] = X[i]'\n",
     "entry 1: Y[i] = X[i]: error (nothing to check: give 'claims' and/or 'code')"),
    ("[[check]]\nspec = 'Y[i] = X[i]'\nclaim = 'dX[a] = G[a]'\n", "error (unknown key 'claim'"),
    ("[[check]]\nspec = 5\nclaims = 'dX[a] = G[a]'\n", "error (spec must be a string, not 5)"),
    ("check = 5\n", "expected a list of entries"),
    ("[[check]\n", "hw.toml: "),
])
def test_bad_batch_files_are_clean_errors(tmp_path, text, message):
    batch = tmp_path / "hw.toml"
    batch.write_text(text)
    for fmt in ("text", "json"):
        r = CliRunner().invoke(main, ["check", "--batch", str(batch), "--format", fmt])
        assert r.exit_code == 2 and "Traceback" not in r.output
        if fmt == "text":
            assert message in r.output
        else:
            doc = json.loads(r.output)
            assert set(doc) >= {"results", "summary"}


def test_a_claim_given_as_a_string_is_one_claim(tmp_path):
    batch = tmp_path / "hw.yaml"
    batch.write_text(f'- spec: "{DIV}"\n  claims: "dX[a,b] = G[a,b]/Z[a,b]"\n  inputs: "X,Z"\n')
    results = run_batch(batch)
    assert [(r.subject, r.status) for r in results] == [("dX[a,b] = G[a,b]/Z[a,b]", "correct")]


def test_json_is_always_a_complete_document(ops):
    for args in (["check", DIV, "--claim", "dX[a,b] = Q[a,b]"], ["check", "Y[i] = foo(X[i])", "--claim", "dX[a] = 1"],
                 ["check", DIV], ["check", DIV, "--code", f"{ops}:Nope", "--claim", "dX[a,b] = G[a,b]/Z[a,b]"],
                 ["check", "--batch", str(ops.parent / "missing.toml")]):
        r = CliRunner().invoke(main, [*args, "--format", "json"])
        assert r.exit_code == 2, r.output
        json.loads(r.output)
    r = CliRunner().invoke(main, ["check", DIV, "--code", f"{ops}:Nope", "--claim", "dX[a,b] = G[a,b]/Z[a,b]",
                                  "--format", "json"])
    assert [x["status"] for x in json.loads(r.output)] == ["correct", "error"]


@pytest.mark.parametrize("bad_args, message", [
    (["--timeout", "abc"], "Invalid value for '--timeout'"),
    (["--no-such-option"], "No such option"),
    (["--timeout"], "requires an argument"),
])
@pytest.mark.parametrize("batch", [False, True])
def test_json_is_a_complete_document_for_bad_options_too(tmp_path, bad_args, message, batch):
    head = ["check", "--batch", str(tmp_path / "hw.toml")] if batch else ["check", DIV, "--claim", "dX[a,b] = G[a,b]"]
    for fmt in (["--format", "json"], ["--format=json"]):
        r = CliRunner().invoke(main, [*head, *fmt, *bad_args])
        assert r.exit_code == 2, r.output
        doc = json.loads(r.output)
        said = doc["error"] if batch else doc[0]["error"]
        assert message in said and (doc["results"] == [] if batch else doc[0]["status"] == "error")
    r = CliRunner().invoke(main, [*head, *bad_args])  # text: click's usage error, still exit 2
    assert r.exit_code == 2 and "Traceback" not in r.output


class LoopingClass:
    def forward(context, x):
        while True:
            pass

    def backward(context, g):
        return g


def test_a_class_object_runs_in_a_child_process_under_the_time_limit():
    import time

    d = derive("Y[i,j] = X[i,j]")
    started = time.monotonic()
    (v,) = check_code(d, LoopingClass, timeout=1)
    assert time.monotonic() - started < 30
    assert not v.correct and "did not finish within 1 s" in verdict_dict(v)["error"]

    class Exits:  # defined here, not importable by name: the child inherits it
        def forward(context, x):
            return x

        def backward(context, g):
            import sys
            sys.exit(0)

    (v,) = check_code(d, Exits, timeout=5)
    assert "SystemExit: sys.exit(0) was called (test_check_code.py, line" in verdict_dict(v)["error"]


def test_the_fixed_class_passes_where_each_mistake_fails(ops):
    """The wrong half of each pair is test_what_the_users_code_does_is_a_verdict; this is the fixed one."""
    assert all(v["correct"] for v in verdicts(MATMUL, f"{ops}:Matmul"))
    r = CliRunner().invoke(main, ["check", MATMUL, "--code", f"{ops}:Matmul"])
    assert r.exit_code == 0 and "INCORRECT" not in r.output


def test_timeout_on_the_command_line_stops_a_loop(ops):
    r = CliRunner().invoke(main, ["check", MATMUL, "--code", f"{ops}:MatmulLoop", "--timeout", "1"])
    assert r.exit_code == 1 and "it did not finish within 1 s and was stopped (in forward)" in r.output
    r = CliRunner().invoke(main, ["check", MATMUL, "--code", f"{ops}:MatmulLoop", "--timeout", "0"])
    assert r.exit_code == 2 and "--timeout is a number of seconds above 0" in r.output
    assert "[default: 10.0]" in CliRunner().invoke(main, ["check", "--help"]).output


def test_a_batch_entry_passes_keyword_arguments(ops):
    batch = ops.parent / "hw.toml"
    batch.write_text('[[check]]\nname = "expand"\nspec = "Y[i,j] = X[i,_]"\ncode = "ops.py:Expand"\n'
                     'kwargs = { dim = 1, repeats = 16 }\n\n'
                     '[[check]]\nname = "expand, no kwargs"\nspec = "Y[i,j] = X[i,_]"\ncode = "ops.py:Expand"\n')
    r = CliRunner().invoke(main, ["check", "--batch", str(batch)])
    lines = r.output.strip().splitlines()
    assert r.exit_code == 1, r.output
    assert lines[0] == "expand: Expand.backward: dX: correct"
    assert lines[1].startswith("expand, no kwargs: Expand.forward: incorrect (TypeError: Expand.forward() missing 2 "
                               "required keyword-only arguments")


class PlainMatmul:
    @staticmethod
    def forward(context, x, w):
        context["x"], context["w"] = x, w
        return x @ w

    @staticmethod
    def backward(context, g):
        return g @ context["w"].T, context["x"].T @ g


def test_with_threads_about_a_class_runs_in_a_fresh_interpreter(monkeypatch):
    """Where forking is unsafe (JAX or PyTorch threads), a top-level class is imported from its
    file by a fresh interpreter, under the same time limit; a local class is still forked."""
    from deltagrad.check import code

    monkeypatch.setattr(code, "_fork_is_safe", lambda: False)
    monkeypatch.setattr(code, "run_forked", lambda *a, **k: pytest.fail("forked a class its file could give"))
    (v,) = check_code(derive("Y[i,j] = X[i,j]"), LoopingClass, timeout=1)
    assert "did not finish within 1 s" in verdict_dict(v)["error"]
    assert all(v.correct for v in check_code(derive(MATMUL), PlainMatmul))
