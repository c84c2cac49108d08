"""The PyTorch and JAX targets are optional: rendering their code needs neither framework,
`import deltagrad` imports neither, and compiling without one is a one-line error naming the
extra to install. These tests run with or without the frameworks."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from deltagrad import derive
from deltagrad.cli import main


def test_printing_framework_code_needs_no_framework():
    code = ("import sys; sys.modules['torch'] = None; sys.modules['jax'] = None; "  # any import of them fails
            "from click.testing import CliRunner; from deltagrad.cli import main; "
            "a = CliRunner().invoke(main, ['derive', 'Y[i,j] = tanh(X[i,j])', '--format', 'torch']); "
            "b = CliRunner().invoke(main, ['derive', 'Y[i,j] = tanh(X[i,j])', '--format', 'jax']); "
            "assert a.exit_code == b.exit_code == 0, (a.output, b.output); print(a.output + b.output)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "dX = goutput * (1 - Y**2)" in run.stdout and "class YFunction(torch.autograd.Function):" in run.stdout


def test_codegen_refuses_an_unknown_target():
    out = CliRunner().invoke(main, ["codegen", "--target", "tf", "-o", "x"])
    assert out.exit_code == 2 and "tf" in out.output


def test_a_missing_framework_is_one_line_naming_the_extra(monkeypatch):
    import importlib.util

    from deltagrad.codegen.targets import MissingFramework

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n in ("torch", "jax") else real(n, *a))
    d = derive("Y[i,j] = tanh(X[i,j])")
    for target, extra in (("torch", "deltagrad[torch]"), ("jax", "deltagrad[jax]")):
        with pytest.raises(MissingFramework) as err:
            d.compile(target=target)
        assert extra in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ValueError, match="unknown target 'tf'"):
        d.compile(target="tf")


def test_import_deltagrad_imports_no_framework():
    code = ("import deltagrad, deltagrad.codegen.torch_target, deltagrad.codegen.jax_target, sys; "
            "deltagrad.derive('Y[i,j] = X[i,j]').compile(); print(sorted(m for m in ('torch', 'jax') if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"


VUGRAD = __import__("pathlib").Path(__file__).resolve().parents[2] / "shared" / "vugrad"


@pytest.mark.skipif(not (VUGRAD / "vugrad" / "core.py").exists(), reason="vugrad is not in ../shared/vugrad")
def test_the_vugrad_target_is_a_vugrad_op(monkeypatch):
    import numpy as np

    monkeypatch.syspath_prepend(str(VUGRAD))
    from vugrad.core import Op, TensorNode

    Normalize = derive("Y[i,j] = X[i,j] / Sum(X[i,k], k)", name="normalize").compile(target="vugrad")
    assert issubclass(Normalize, Op) and Normalize.__name__ == "Normalize"
    x = TensorNode(np.array([[1.0, 3.0], [2.0, 2.0]]))
    y = Normalize.do_forward(x)
    y.grad = np.array([[1.0, 0.0], [0.0, 0.0]])
    y.source.backward()
    np.testing.assert_allclose(x.grad, [[0.75 / 4, -0.25 / 4], [0.0, 0.0]])


def test_names_the_framework_code_uses_are_refused_with_one_line():
    out = CliRunner().invoke(main, ["derive", "Y[i,j] = 2*ctx[i,j]", "--format", "torch"])
    assert out.exit_code == 2 and "the name 'ctx' is one the generated torch/jax code uses" in out.output
    from deltagrad.codegen.torch_target import torch_source

    assert "def lambda_(X):" in torch_source(derive("Y[i,j] = X[i,j]", name="lambda"))
