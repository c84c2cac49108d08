"""Merged output axes, ``Y[b,(c,i,j)] = X[b,c,i,j]``: a flatten, and any op that returns some of
its axes as one. The derivation reads the output with them apart; the op returns them merged,
row-major, and takes its gradient merged. Checked by finite differences and against NumPy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from deltagrad import SpecError, derive
from deltagrad.cli import main
from gradcheck import check_op

rng = np.random.default_rng(7)


@pytest.mark.parametrize("spec, reference, shapes", [
    ("Y[b,(c,i,j)] = X[b,c,i,j]", lambda x: x.reshape(x.shape[0], -1), [(2, 3, 4, 5)]),
    ("Y[i,(j,k)] = X[i,j]*W[j,k]", lambda x, w: (x[:, :, None] * w).reshape(x.shape[0], -1), [(2, 3), (3, 4)]),
    ("Y[(i,j)] = exp(X[i,j])", lambda x: np.exp(x).ravel(), [(3, 4)]),  # the backward reads the saved Y, unmerged
    ("Y[(i,j),k] = tanh(X[i,j] + Z[j,k])", lambda x, z: np.tanh(x[:, :, None] + z).reshape(-1, z.shape[1]),
     [(2, 3), (3, 4)]),
    ("Y[(a,b),(c,d)] = X[a,b,c,d]", lambda x: x.reshape(x.shape[0] * x.shape[1], -1), [(2, 3, 4, 5)]),
    ("Y[(a,b),c,(d,e)] = X[a,b,c,d,e]", lambda x: x.reshape(6, 2, 20), [(2, 3, 2, 4, 5)]),
    ("Y[(i,j),_] = X[i,j]", lambda x: x.reshape(-1, 1), [(2, 3)]),
    ("Y[_,(i,j)] = X[i,j]", lambda x: x.reshape(1, -1), [(2, 3)]),
    ("Y[(i),(j)] = X[i,j]", lambda x: x, [(2, 3)]),  # parentheses around one name merge nothing
])
def test_a_merged_output_matches_numpy_and_finite_differences(spec, reference, shapes):
    op = derive(spec).compile()
    arrays = [rng.normal(size=s) for s in shapes]
    y = op.forward({}, *arrays)
    np.testing.assert_allclose(y, reference(*arrays), rtol=1e-12)
    check_op(op, reference, arrays)


def test_flatten_is_a_generated_op_and_the_cnn_flattens_through_it():
    from deltagrad import generated as G
    from deltagrad.nn import functions as F
    from deltagrad.nn.graph import Tensor

    assert "Y[b,(c,i,j)] = X[b,c,i,j]" in G.Flatten.__doc__
    x = Tensor(rng.normal(size=(2, 3, 4, 4)).astype(np.float32), requires_grad=True)
    y = F.flatten(x)
    assert y.source.op is G.Flatten and y.shape == (2, 48) and y.value.dtype == np.float32
    y.grad = np.arange(96, dtype=np.float32).reshape(2, 48)
    y.backward()
    np.testing.assert_array_equal(x.grad, y.grad.reshape(2, 3, 4, 4))


def test_the_write_ups_show_the_merged_axes():
    d = derive("Y[b,(c,i,j)] = X[b,c,i,j]")
    result = CliRunner().invoke(main, ["derive", "Y[b,(c,i,j)] = X[b,c,i,j]"])
    assert result.exit_code == 0 and result.output.splitlines()[0] == "Y[b,(c,i,j)] = X[b,c,i,j]"
    assert "Y[b,(c,i,j)] = X[b,c,i,j]" in d.source() and "merge_axes(Y, ((0,), (1, 2, 3)))" in d.source()
    latex = CliRunner().invoke(main, ["latex", "Y[b,(c,i,j)] = X[b,c,i,j]"])
    assert "with the axes of $c$, $i$ and $j$ merged into one" in latex.output


@pytest.mark.parametrize("spec, message", [
    ("Y[b,(c,0)] = X[b,c]", "two or more index names in parentheses"),
    ("Y[(c,)] = X[c]", "two or more index names in parentheses"),
    ("Y[...,(i,j)] = X[...,i,j]", "'...' cannot go together"),
    ("P[i,j] = X[i,j]**2; Y[(i,j)] = P[i,j]", "one-line specs"),
])
def test_bad_merged_axes_are_one_line_spec_errors(spec, message):
    with pytest.raises(SpecError, match=message):
        derive(spec)
    result = CliRunner().invoke(main, ["derive", spec])
    assert result.exit_code == 2 and "Traceback" not in result.output and message in result.output


VUGRAD = Path(__file__).resolve().parents[2] / "shared" / "vugrad"


@pytest.mark.skipif(not (VUGRAD / "vugrad" / "ops.py").exists(), reason="vugrad is not in ../shared/vugrad")
def test_a_merged_output_is_a_vugrad_drop_in(monkeypatch):
    monkeypatch.syspath_prepend(str(VUGRAD))
    from vugrad.core import TensorNode

    Flat = derive("Y[b,(c,i,j)] = X[b,c,i,j]", name="flat").compile(target="vugrad")
    x = TensorNode(rng.normal(size=(2, 3, 2, 2)))
    y = Flat.do_forward(x)
    y.grad = np.ones((2, 12))
    y.source.backward()
    assert y.value.shape == (2, 12) and x.grad.shape == (2, 3, 2, 2)
