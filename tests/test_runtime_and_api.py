"""Run-time shape checks, the SymPy entry point, and the CLI's output."""

import numpy as np
import pytest
import sympy as sp
from click.testing import CliRunner

from deltagrad import ShapeError, derive
from deltagrad.cli import main
from gradcheck import check_op


def test_mismatched_index_sizes_name_the_index_and_sizes():
    op = derive("Y[i,j] = Sum(X[i,k]*W[k,j], k)", name="matmul").compile()
    with pytest.raises(ShapeError, match=r"Matmul: index 'k' has size 3 in X \(axis 1\) but 4 in W \(axis 0\)"):
        op.forward({}, np.ones((2, 3)), np.ones((4, 5)))


def test_wrong_rank_is_reported():
    op = derive("Y[i,j] = X[i,j] / Z[i,j]").compile()
    with pytest.raises(ShapeError, match=r"input Z must be rank 2 \(i, j\), got shape \(3,\)"):
        op.forward({}, np.ones((2, 3)), np.ones(3))


def test_repeated_index_requires_a_square_axis_pair():
    op = derive("y[i] = X[i,i]").compile()
    with pytest.raises(ShapeError, match="index 'i' has size 2"):
        op.forward({}, np.ones((2, 3)))


def test_sizes_of_broadcast_indices_are_keyword_arguments():
    op = derive("Y[i,j] = x[i]").compile()
    with pytest.raises(ShapeError, match="pass j=N"):
        op.forward({}, np.ones(3))
    assert op.forward({}, np.ones(3), j=16).shape == (3, 16)


def test_sympy_objects_are_accepted():
    i, j, k = sp.symbols("i j k", cls=sp.Idx)
    X, W, Y = sp.IndexedBase("X"), sp.IndexedBase("W"), sp.IndexedBase("Y")
    d = derive((Y[i, j], sp.Sum(X[i, k] * W[k, j], (k, 0, 4))), inputs=["X", "W"], name="mm")
    assert d.inputs == ("X", "W")
    rng = np.random.default_rng(0)
    check_op(d.compile(), lambda x, w: x @ w, [rng.normal(size=(2, 5)), rng.normal(size=(5, 3))])
    s = sp.Symbol("s")
    d = derive((sp.Symbol("L"), s * sp.Sum(sp.exp(X[i, j]), (i, 0, 2), (j, 0, 2))), inputs=["s", "X"])
    check_op(d.compile(), lambda s_, x: s_ * np.exp(x).sum(), [0.7, rng.normal(size=(3, 3))])


def test_default_input_order_is_first_appearance_in_the_text():
    assert derive("L = -Sum(T[i,j]*log(P[i,j]), i, j)").inputs == ("T", "P")
    assert derive("Y[i,j] = W[j,i] + X[i,j]").inputs == ("W", "X")


def test_cli_text_output_shows_index_form_and_numpy():
    result = CliRunner().invoke(main, ["derive", "Y[i,j] = Sum(X[i,k]*W[k,j], k)"])
    assert result.exit_code == 0
    assert "dX[a,b] = Sum_j(G[a,j]*W[b,j])" in result.output
    assert "dX = goutput @ W.T" in result.output and "dW = X.T @ goutput" in result.output


def test_cli_numpy_output_is_an_importable_op_class(tmp_path):
    result = CliRunner().invoke(main, ["derive", "Y[i,j] = X[i,j] / Z[i,j]", "--format", "numpy", "--name", "divide"])
    assert result.exit_code == 0
    path = tmp_path / "divide_op.py"
    path.write_text(result.output)
    import importlib.util

    spec = importlib.util.spec_from_file_location("divide_op", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rng = np.random.default_rng(2)
    check_op(mod.Divide, lambda x, z: x / z, [rng.normal(size=(2, 3)), rng.uniform(1, 2, size=(2, 3))])


def test_cli_wrt_and_steps():
    result = CliRunner().invoke(main, ["derive", "Y[i,j] = X[i,j] / Z[i,j]", "--wrt", "Z", "--steps"])
    assert result.exit_code == 0
    assert "dX" not in result.output
    assert "(chain rule)" in result.output and "delta(a,i)*delta(b,j)" in result.output
    assert "dZ = -goutput * Y / Z" in result.output


def test_cli_help_shows_examples():
    result = CliRunner().invoke(main, ["derive", "--help"])
    assert result.exit_code == 0 and 'deltagrad derive "Y[i,j] = X[i,j] / Z[i,j]"' in result.output


def test_names_from_sympy_objects_must_be_identifiers():
    from deltagrad import SpecError

    i = sp.Idx("i")
    bad = sp.IndexedBase('X]; __import__("os")')
    with pytest.raises(SpecError, match="is not a valid name"):
        derive((sp.IndexedBase("Y")[i], bad[i]))
    with pytest.raises(SpecError, match="must be a Python identifier"):
        derive("Y[i] = X[i]", name="my op")


def test_sympy_sums_over_part_of_an_axis_are_refused():
    from deltagrad import SpecError

    i, k = sp.symbols("i k", cls=sp.Idx)
    X, Y = sp.IndexedBase("X"), sp.IndexedBase("Y")
    with pytest.raises(SpecError, match=r"partial summation ranges are not supported: Sum over k from 1 to 3; "
                                        r"write the full range \(k, 0, n - 1\)"):
        derive((Y[i], sp.Sum(X[i, k], (k, 1, 3))))
    bounded = sp.Idx("k", 5)
    with pytest.raises(SpecError, match=r"Sum over k from 0 to 2; write the full range \(k, 0, 4\)"):
        derive((Y[i], sp.Sum(X[i, bounded], (bounded, 0, 2))))
    with pytest.raises(SpecError, match="partial summation"):  # a step of a program too
        derive([(sp.IndexedBase("m")[i], sp.Sum(X[i, k], (k, 2, 5))), (Y[i], sp.IndexedBase("m")[i] * 2)])
    # the whole axis, however written, is accepted and sums every entry
    n = sp.Symbol("n", integer=True)
    x = np.arange(12.0).reshape(3, 4)
    for limits in ((k, 0, n - 1), (k, 0, 3), (bounded, 0, 4)):
        d = derive((Y[i], sp.Sum(X[i, limits[0]], limits)))
        assert np.allclose(d.compile().forward({}, x), x.sum(axis=1))
