"""The PyTorch target: derived ops as torch.autograd.Functions, proven with gradcheck and
gradgradcheck (float64) on every standard op and a broad set of further specs and programs.

Skipped, with the reason, where PyTorch is not installed (`pip install -e '.[torch]'`); CI
installs it."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

if os.environ.get("CI"):  # CI installs PyTorch (.ci/run): there a missing torch is an error, not a skip
    import torch
else:
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: pip install -e '.[torch]'")

from click.testing import CliRunner  # noqa: E402

from deltagrad import ShapeError, derive  # noqa: E402
from deltagrad.cli import main  # noqa: E402
from framework_cases import CASES, IDS, case, integer_inputs  # noqa: E402


def tensors(arrays, requires_grad=True, dtype=torch.float64, integers=()):
    """Float tensors of ``arrays``, but int64 ones (no gradient) at the positions ``integers``."""
    return [torch.tensor(np.asarray(a)) if n in integers else
            torch.tensor(np.asarray(a), dtype=dtype, requires_grad=requires_grad) for n, a in enumerate(arrays)]


@pytest.mark.parametrize("kind, name, spec, inputs, arrays, sizes", CASES, ids=IDS)
def test_gradcheck_and_gradgradcheck(kind, name, spec, inputs, arrays, sizes):
    d, arrays, sizes = case(kind, name, spec, inputs, arrays, sizes)
    f = d.compile(target="torch")
    ints = integer_inputs(d)
    xs = tensors(arrays, integers=ints)
    # the same forward and the same backward as the NumPy op
    op = d.compile()
    ctx = {}
    expected = op.forward(ctx, *arrays, **sizes)
    got = f(*xs, **sizes)
    np.testing.assert_allclose(got.detach().numpy(), expected, rtol=1e-12, atol=1e-12)
    g = np.random.default_rng(1).normal(size=np.shape(expected))
    floats = [x for n, x in enumerate(xs) if n not in ints]
    grads = torch.autograd.grad(got, floats, torch.tensor(g))
    theirs = [t for n, t in enumerate(op.backward(ctx, g)) if n not in ints]
    assert all(t is None for n, t in enumerate(op.backward(ctx, g)) if n in ints)
    for mine, want in zip(grads, theirs):
        np.testing.assert_allclose(mine.numpy(), want, rtol=1e-10, atol=1e-12)
    # and both agree with finite differences, to first and second order
    fn = lambda *a: f(*a, **sizes)  # noqa: E731
    assert torch.autograd.gradcheck(fn, xs)
    assert torch.autograd.gradgradcheck(fn, xs)


def test_generated_function_reads_like_the_numpy_op():
    d = derive("Y[i,j] = exp(X[i,j]) / Sum(exp(X[i,k]), k)", name="softmax")
    src = d.compile(target="torch").source
    assert "class SoftmaxFunction(torch.autograd.Function):" in src
    assert "ctx.save_for_backward(Y)" in src
    assert "dX = Y * (goutput - torch.sum(goutput * Y, dim=1)[:, None])" in src
    assert "def softmax(X):" in src
    from deltagrad.codegen.op_class import op_context

    for line in op_context(d)["backward_doc"]:  # the NumPy op's docstring: index form, matrix form
        assert line in src
    assert "xp." not in src.replace("xp.sign", "")  # (a Heaviside note may name the NumPy code)


def test_forward_saves_what_backward_reads_and_the_inputs_a_double_backward_needs():
    f = derive("Y[i,j] = X[i,j] / Sum(X[i,k], k)", name="normalize").compile(target="torch")
    assert "ctx.save_for_backward(X, row_sum, Y)" in f.source
    assert "if torch.is_grad_enabled():" in f.source  # row_sum recomputed with a graph
    f = derive("Y[i,j] = X[i,j] / Z[i,j]").compile(target="torch")
    assert "ctx.save_for_backward(Z, Y)" in f.source and "is_grad_enabled" not in f.source


class Ctx:
    """A stand-in for torch's ctx, to call a backward directly."""

    def __init__(self, saved, needs):
        self.saved_tensors, self.needs_input_grad = saved, needs


def test_backward_honours_needs_input_grad():
    f = derive("Y[i,j] = X[i,j] / Z[i,j]").compile(target="torch")
    x, z = torch.ones(2, 3), torch.full((2, 3), 2.0)
    g = torch.ones(2, 3)
    dx, dz = f.Function.backward(Ctx((z, x / z), (True, False)), g)
    assert dz is None and torch.equal(dx, g / z)
    dx, dz = f.Function.backward(Ctx((z, x / z), (False, True)), g)
    assert dx is None and dz is not None
    # through autograd: only the gradient asked for
    x.requires_grad_()
    (gx,) = torch.autograd.grad(f(x, z).sum(), [x])
    assert torch.equal(gx, 1 / z)


def test_integer_inputs_get_no_gradient():
    d = derive("L = -Sum(T[i,j]*(X[i,j] - log(Sum(exp(X[i,k]), k))), i, j) / size(i)", inputs=["X", "T"])
    f = d.compile(target="torch")
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    t = torch.nn.functional.one_hot(torch.tensor([0, 2, 1, 1]), 3)  # int64
    loss = f(x, t)
    loss.backward()
    expected = (torch.softmax(x, 1) - t) / 4
    torch.testing.assert_close(x.grad, expected.detach())
    assert t.grad is None


def test_float32_stays_float32():
    for spec in ("Y[i,j] = X[i,j] / Sum(X[i,k], k)", "y[i] = X[i,i]", "m = Sum(X[i,j], i, j) / (size(i) * size(j))"):
        f = derive(spec).compile(target="torch")
        x = (torch.rand(3, 3) + 0.5).requires_grad_()
        y = f(x)
        (gx,) = torch.autograd.grad(y, [x], torch.ones_like(y))
        assert y.dtype == gx.dtype == torch.float32, spec


def test_devices_are_kept():
    """Meta tensors carry no data but a device: every array the op makes follows its inputs."""
    for spec in ("y[i] = X[i,i]", "Y[i,j] = X[i,1,j]", "Y[i,j] = c*X[i,j]", "t = Sum(X[i,i], i)"):
        d = derive(spec)
        f = d.compile(target="torch")
        shape = {"Y[i,j] = X[i,1,j]": (3, 2, 3)}.get(spec, (3, 3))
        x = torch.empty(shape, device="meta", requires_grad=True)
        args = [2.0, x] if "c*" in spec else [x]
        y = f(*args)
        (gx,) = torch.autograd.grad(y, [x], torch.ones_like(y))
        assert y.device.type == gx.device.type == "meta", spec


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_in_cuda_out():  # pragma: no cover - needs a GPU
    for kind, name, spec, inputs, arrays, sizes in CASES:
        d, arrays, sizes = case(kind, name, spec, inputs, arrays, sizes)
        ints = integer_inputs(d)
        xs = [t.cuda() if n in ints else t.cuda().detach().requires_grad_()
              for n, t in enumerate(tensors(arrays, requires_grad=False, integers=ints))]
        y = d.compile(target="torch")(*xs, **sizes)
        floats = [x for n, x in enumerate(xs) if n not in ints]
        grads = torch.autograd.grad(y, floats, torch.ones_like(y))
        assert y.is_cuda and all(gr.is_cuda for gr in grads), name


def test_shapes_are_checked_with_the_messages_of_the_numpy_ops():
    d = derive("Y[i,j] = Sum(X[i,k]*W[k,j], k)", name="matmul")
    with pytest.raises(ShapeError) as numpy_error:
        d.compile().forward({}, np.ones((2, 3)), np.ones((4, 5)))
    with pytest.raises(ShapeError) as torch_error:
        d.compile(target="torch")(torch.ones(2, 3), torch.ones(4, 5))
    assert str(torch_error.value) == str(numpy_error.value) == \
        "Matmul: index 'k' has size 3 in X (axis 1) but 4 in W (axis 0)"


def test_size_keywords_and_python_number_scalars():
    expand = derive("Y[i,j] = x[i]", name="expand").compile(target="torch")
    x = torch.arange(3.0, requires_grad=True)
    y = expand(x, j=5)
    assert y.shape == (3, 5)
    y.sum().backward()
    assert torch.equal(x.grad, torch.full((3,), 5.0))
    scale = derive("Y[i,j] = c*X[i,j]", name="scale").compile(target="torch")
    x = torch.ones(2, 2, dtype=torch.float64, requires_grad=True)
    y = scale(1.5, x)
    assert y.dtype == torch.float64
    y.sum().backward()
    assert torch.equal(x.grad, torch.full((2, 2), 1.5, dtype=torch.float64))


def test_hessian_vector_product_through_the_derived_backward():
    f = derive("Y[i,j] = 1 / (1 + exp(-X[i,j]))").compile(target="torch")
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    v = torch.randn(3, 4, dtype=torch.float64)
    (g,) = torch.autograd.grad(f(x).sum(), [x], create_graph=True)
    (hv,) = torch.autograd.grad(g, [x], v)
    s = torch.sigmoid(x)
    torch.testing.assert_close(hv, (s * (1 - s) * (1 - 2 * s) * v).detach())


def test_a_derived_gelu_trains_in_a_small_model():
    gelu = derive(  # the README's example: GELU in its tanh form, in named steps
        "u[i,j] = 0.7978845608028654*(X[i,j] + 0.044715*X[i,j]**3); t[i,j] = tanh(u[i,j]); "
        "Y[i,j] = 0.5*X[i,j]*(1 + t[i,j])", name="gelu",
    ).compile(target="torch")

    class MLP(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = torch.nn.Linear(4, 16), torch.nn.Linear(16, 1)

        def forward(self, x):
            return self.fc2(gelu(self.fc1(x)))

    torch.manual_seed(0)
    model = MLP()
    x = torch.randn(64, 4)
    target = x[:, :1] * x[:, 1:2]
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    losses = []
    for _ in range(100):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]
    h = torch.randn(5, 7, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(gelu(h), torch.nn.functional.gelu(h, approximate="tanh"))
    assert torch.autograd.gradgradcheck(gelu, [h])
    one_line = derive("Y[i,j] = 0.5*X[i,j]*(1 + tanh(0.7978845608028654*(X[i,j] + 0.044715*X[i,j]**3)))")
    torch.testing.assert_close(torch.autograd.grad(gelu(h).sum(), [h])[0],
                               torch.autograd.grad(one_line.compile(target="torch")(h).sum(), [h])[0])


def test_cli_prints_and_writes_torch_ops(tmp_path):
    out = CliRunner().invoke(main, ["derive", "Y[i,j] = X[i,j] / Z[i,j]", "--name", "divide", "--format", "torch"])
    assert out.exit_code == 0 and out.output.startswith("import torch\n")
    assert "class DivideFunction(torch.autograd.Function):" in out.output
    out = CliRunner().invoke(main, ["derive", "Y[i,j] = Sum(X[i,k]*W[k,j], k)", "--format", "torch", "--wrt", "W"])
    assert out.output.strip() == "dW = X.T @ goutput"
    out = CliRunner().invoke(main, ["codegen", "--target", "torch", "-o", str(tmp_path / "tops")])
    assert out.exit_code == 0, out.output
    out = CliRunner().invoke(main, ["codegen", "--target", "torch", "gelu: Y[i,j] = X[i,j]/(1 + exp(-1.702*X[i,j]))",
                                    "-o", str(tmp_path / "mine")])
    assert out.exit_code == 0, out.output
    code = ("import torch, tops, mine; x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True); "
            "assert torch.autograd.gradgradcheck(tops.softmax, [x]); assert torch.autograd.gradcheck(mine.gelu, [x]); "
            "print(tops.softmax.__doc__)")
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "Row-wise softmax." in run.stdout and "Backward (index form, then matrix form" in run.stdout


def test_readme_shows_the_torch_code_that_is_generated_today():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    src = derive("Y[i,j] = 1 / (1 + exp(-X[i,j]))", name="sigmoid").compile(target="torch").source
    start = src.index("class SigmoidFunction")
    end = src.index("\n", src.index('"""The op sigmoid')) + 1
    assert src[start:end] in readme, "README's torch snippet is stale:\n" + src[start:end]
