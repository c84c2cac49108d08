"""``...`` in index lists: one generated op for every rank (derive/ellipsis.py).

Every derived rule is checked by central finite differences in float64 at ranks 1-4 of the
``...`` part (and rank 0 where ``...`` is the only index), with the same compiled class.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

import deltagrad
from deltagrad.errors import ShapeError, SpecError
from gradcheck import check_op

LEADS = [(), (3,), (2, 3), (2, 1, 3), (1, 2, 2, 2)]  # the '...' shapes: ranks 0-4 of the leading axes


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# name, spec, input shapes after '...' (None: no '...'), reference on whole arrays
CASES = [
    ("divide", "Y[...] = X[...] / Z[...]", [(), ()], lambda x, z: x / z),
    ("sigmoid", "Y[...] = 1 / (1 + exp(-X[...]))", [()], lambda x: 1 / (1 + np.exp(-x))),
    ("row_sum", "y[...,i] = Sum(X[...,i,k], k)", [(2, 3)], lambda x: x.sum(axis=-1)),
    ("last_sum", "y[...] = Sum(X[...,k], k)", [(4,)], lambda x: x.sum(axis=-1)),
    ("softmax", "Y[...,i] = exp(X[...,i]) / Sum(exp(X[...,k]), k)", [(4,)], _softmax),
    ("batched_matmul", "Y[...,i,j] = Sum(X[...,i,k]*W[k,j], k)", [(2, 3), None], lambda x, w: x @ w),
    ("scaled_bias", "Y[...,j] = c * X[...,j] + B[j]", [None, (3,), None], lambda c, x, b: c * x + b),
]
PLAIN = {"batched_matmul": [(3, 4)], "scaled_bias": [(), (3,)]}


def _arrays(name, tails, lead, rng):
    plain = iter(PLAIN.get(name, []))
    out = []
    for tail in tails:
        shape = lead + tail if tail is not None else next(plain)
        out.append(rng.uniform(0.5, 1.5, size=shape) if shape else float(rng.uniform(0.5, 1.5)))
    return out


@pytest.mark.parametrize("name,spec,tails,reference", CASES, ids=[c[0] for c in CASES])
def test_finite_differences_at_every_rank_with_one_class(name, spec, tails, reference):
    op = deltagrad.derive(spec, name=name).compile()
    rng = np.random.default_rng(0)
    for lead in LEADS:
        arrays = _arrays(name, tails, lead, rng)
        check_op(op, reference, arrays)


def test_rank_zero_when_ellipsis_is_the_only_index():
    op = deltagrad.derive("Y[...] = X[...] * Z[...]").compile()
    context = {}
    y = op.forward(context, np.asarray(2.0), np.asarray(3.0))
    assert np.shape(y) == () and float(y) == 6.0
    dx, dz = op.backward(context, np.asarray(1.0))
    assert np.shape(dx) == () and float(dx) == 3.0 and float(dz) == 2.0


def test_printed_rules_and_generated_code_read_with_ellipsis():
    d = deltagrad.derive("Y[...,i,j] = Sum(X[...,i,k]*W[k,j], k)")
    assert d.steps["X"].indices[0].name == "..."
    text = d.numpy()
    assert "tensordot" in text
    source = d.source()
    assert 'flatten_batch("Y", {"X": (X, 2)})' in source
    assert "dX = unflatten_batch(dX, batch_shape)" in source
    assert "dX[...,a,b] = Sum_j(W[b,j]*G[...,a,j])" in source.replace("G[...,a,j]*W[b,j]", "W[b,j]*G[...,a,j]")
    latex = d.latex(fragment=True)
    assert "X^{\\nabla}_{\\ldots,a,b}" in latex and "..." not in latex


def test_shape_errors_name_the_mismatch():
    op = deltagrad.derive("Y[...] = X[...] / Z[...]").compile()
    with pytest.raises(ShapeError, match=r"the '...' axes of Z have shape \(3, 2\) but those of X \(2, 3\)"):
        op.forward({}, np.ones((2, 3)), np.ones((3, 2)))
    with pytest.raises(ShapeError, match="must be equal"):  # no broadcasting between '...' parts
        op.forward({}, np.ones((2, 3)), np.ones((3,)))
    mm = deltagrad.derive("Y[...,i,j] = Sum(X[...,i,k]*W[k,j], k)").compile()
    with pytest.raises(ShapeError, match=r"input X must have at least 2 axes"):
        mm.forward({}, np.ones(3), np.ones((3, 4)))
    with pytest.raises(ShapeError, match="index 'k'"):
        mm.forward({}, np.ones((5, 2, 3)), np.ones((4, 4)))


@pytest.mark.parametrize("spec,message", [
    ("Y[i,...] = X[i,...]", "'...' must come first"),
    ("Y[...,i] = X[i,...]", "'...' must come first"),
    ("Y[...,i] = W[i]", "carries '...' but no input does"),
    ("Y[i] = X[...,i]", "index '...' is free on the right but not on the left"),
    ("y[...] = Sum(X[...,k], ...)", "'...' is never summed"),
    ("Y[...,...] = X[...]", "'...' appears twice"),
    ("Y[...,batch] = X[...,batch]", "the name 'batch' is taken"),
])
def test_spec_errors(spec, message):
    with pytest.raises(SpecError, match=message):
        deltagrad.derive(spec)


def test_claims_accept_ellipsis():

    from click.testing import CliRunner
    from deltagrad.cli import main

    ok = CliRunner().invoke(main, ["check", "y[...,i] = Sum(X[...,i,k], k)", "--claim", "dX[...,a,b] = G[...,a]"])
    assert ok.exit_code == 0 and "correct" in ok.output
    bad = CliRunner().invoke(main, ["check", "y[...,i] = Sum(X[...,i,k], k)", "--claim", "dX[...,a,b] = 2*G[...,a]"])
    assert "INCORRECT" in bad.output


def test_torch_gradcheck_at_several_ranks():
    torch = pytest.importorskip("torch")
    f = deltagrad.derive("Y[...,i,j] = Sum(X[...,i,k]*W[k,j], k)").compile("torch")
    gen = torch.Generator().manual_seed(0)
    for lead in [(), (2,), (2, 3)]:
        x = torch.rand(*lead, 2, 3, dtype=torch.float64, generator=gen, requires_grad=True)
        w = torch.rand(3, 4, dtype=torch.float64, generator=gen, requires_grad=True)
        assert f(x, w).shape == (*lead, 2, 4)
        assert torch.autograd.gradcheck(f, (x, w))
        assert torch.autograd.gradgradcheck(f, (x, w))


def test_jax_check_grads_at_several_ranks():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    from jax.test_util import check_grads

    f = deltagrad.derive("Y[...,i] = exp(X[...,i]) / Sum(exp(X[...,k]), k)").compile("jax")
    rng = np.random.default_rng(1)
    for lead in [(), (2,), (2, 3)]:
        x = jax.numpy.asarray(rng.normal(size=(*lead, 4)))
        np.testing.assert_allclose(f(x), _softmax(np.asarray(x)), rtol=1e-12)
        check_grads(f, (x,), order=2, modes=["rev"])


@pytest.mark.parametrize("target", ["numpy", "torch", "jax"])
def test_codegen_packages_with_ellipsis_import_their_helpers(tmp_path, target, monkeypatch):
    pytest.importorskip({"numpy": "numpy", "torch": "torch", "jax": "jax"}[target])
    from click.testing import CliRunner

    from deltagrad.cli import main

    out = CliRunner().invoke(main, ["codegen", "--target", target, "ex: Y[...] = exp(X[...])", "-o", str(tmp_path)])
    assert out.exit_code == 0, out.output
    assert "flatten_batch" in (tmp_path / "ops.py").read_text()
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    for name in ("ops", "op_base"):
        sys.modules.pop(name, None)
    ops = importlib.import_module("ops")
    x = np.random.default_rng(0).normal(size=(2, 3))
    if target == "numpy":
        y = ops.Ex.forward({}, x)
    else:
        mod = importlib.import_module(target)
        y = np.asarray(ops.ex(mod.asarray(x) if target == "torch" else mod.numpy.asarray(x)))
    np.testing.assert_allclose(y, np.exp(x), rtol=1e-6)
    for name in ("ops", "op_base"):
        sys.modules.pop(name, None)
