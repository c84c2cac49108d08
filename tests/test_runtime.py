"""The graph, modules, optimisers, data loading and training on top of the generated ops."""

import gzip
import http.server
import json
import shutil
import threading

import numpy as np
import pytest
from click.testing import CliRunner

from deltagrad.cli import main
from deltagrad.nn import functions as F
from deltagrad.nn.data import MIRRORS, SHA256, DataError, find_file, load_mnist, read_idx
from deltagrad.nn.graph import Tensor, apply, backward
from deltagrad.nn.modules import MLP, Linear
from deltagrad.nn.optim import SGD, Adam
from deltagrad.nn.train import TrainConfig, evaluate, train

rng = np.random.default_rng(3)


def test_gradients_accumulate_where_a_tensor_is_used_twice():
    x = Tensor(rng.normal(size=(3, 4)), requires_grad=True)
    w = Tensor(rng.normal(size=(4, 4)), requires_grad=True)
    y = (x @ w) * (x @ w) + x @ w          # x and w each feed three ops
    loss = F.softmax_cross_entropy(y, np.eye(4)[[0, 1, 2]])
    backward(loss)

    def f(xv, wv):
        z = xv @ wv
        yv = z * z + z
        e = np.exp(yv - yv.max(1, keepdims=True))
        p = e / e.sum(1, keepdims=True)
        return -np.sum(np.eye(4)[[0, 1, 2]] * np.log(p)) / 3

    eps = 1e-6
    for t, idx in ((x, (1, 2)), (w, (3, 0))):
        plus, minus = x.value.copy(), x.value.copy()
        other = w.value
        if t is w:
            plus, minus, other = w.value.copy(), w.value.copy(), x.value
        plus[idx] += eps
        minus[idx] -= eps
        num = (f(plus, other) - f(minus, other)) / (2 * eps) if t is x else (f(other, plus) - f(other, minus)) / (2 * eps)
        assert abs(t.grad[idx] - num) < 1e-6


def test_no_graph_is_recorded_without_parameters():
    y = apply(__import__("deltagrad.generated", fromlist=["Sigmoid"]).Sigmoid, Tensor(np.zeros((2, 2))))
    assert y.source is None and not y.requires_grad


def test_mlp_backward_matches_finite_differences_with_residuals():
    net = MLP([5, 5, 5, 3], activation="tanh", residual=True, rng=np.random.default_rng(0))
    for p in net.parameters():
        p.value = p.value.astype(np.float64)
        p.value += rng.normal(scale=0.1, size=p.value.shape)
    x = rng.normal(size=(4, 5))
    t = np.eye(3)[[0, 2, 1, 0]]

    def loss_value():
        return float(F.softmax_cross_entropy(net(Tensor(x)), t).value)

    loss = F.softmax_cross_entropy(net(Tensor(x)), t)
    loss.backward()
    for p in net.parameters():
        flat = p.value.reshape(-1)
        for n in range(0, flat.size, max(1, flat.size // 4)):
            old = flat[n]
            flat[n] = old + 1e-6
            up = loss_value()
            flat[n] = old - 1e-6
            down = loss_value()
            flat[n] = old
            assert abs(p.grad.reshape(-1)[n] - (up - down) / 2e-6) < 1e-6


@pytest.mark.parametrize("init", ["glorot", "normal", "zeros"])
def test_linear_inits(init):
    layer = Linear(300, 100, init, np.random.default_rng(0))
    w = layer.W.value
    assert w.dtype == np.float32 and w.shape == (300, 100) and not np.any(layer.b.value)
    if init == "glorot":
        assert np.abs(w).max() <= np.sqrt(6 / 400) and abs(w.std() - np.sqrt(2 / 400)) < 0.005
    elif init == "normal":
        assert abs(w.std() - 1) < 0.02
    else:
        assert not np.any(w)

def test_the_torch_init_is_pytorchs_default_for_weights_and_biases():
    """U(±1/sqrt(fan_in)) for Linear's and Conv2d's weights and biases, fan_in = c·k·k for a kernel."""
    from deltagrad.nn.modules import Conv2d

    layer = Linear(300, 100, "torch", np.random.default_rng(0))
    bound = 1 / np.sqrt(300)
    for p in (layer.W.value, layer.b.value):
        assert p.dtype == np.float32 and np.abs(p).max() <= bound and np.abs(p).max() > 0.9 * bound
    conv = Conv2d(6, 16, 5, "torch", np.random.default_rng(0))
    bound = 1 / np.sqrt(6 * 25)
    for p in (conv.W.value, conv.b.value):
        assert np.abs(p).max() <= bound and np.abs(p).max() > 0.8 * bound
    assert not np.any(Linear(3, 2, "glorot", np.random.default_rng(0)).b.value)  # the others keep zero biases


@pytest.mark.parametrize("make", [lambda p: SGD(p, 0.1), lambda p: SGD(p, 0.05, momentum=0.9), lambda p: Adam(p, 0.1)])
def test_optimisers_minimise_a_quadratic(make):
    w = Tensor(np.array([[3.0, -2.0]]), requires_grad=True)
    opt = make([w])
    for _ in range(300):
        loss = apply(__import__("deltagrad.generated", fromlist=["Sum"]).Sum, w * w)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert np.abs(w.value).max() < 1e-2


def test_adam_first_step_moves_each_weight_by_lr():
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    w.grad = np.array([0.3, -5.0])
    Adam([w], lr=0.01).step()
    np.testing.assert_allclose(w.value, [0.99, 2.01], rtol=1e-6)


# ---- data -----------------------------------------------------------------------------------

def test_loader_reads_the_canonical_files_and_checks_them(mnist_dir):
    data = load_mnist(mnist_dir, download=False)
    assert data["train"].images.shape == (60000, 784) and data["test"].images.shape == (10000, 784)
    assert data["train"].images.dtype == np.float32 and 0 <= data["train"].images.min() <= data["train"].images.max() <= 1
    assert data["test"].labels[:5].tolist() == [7, 2, 1, 0, 4]


def test_corrupt_or_truncated_files_are_refused(tmp_path, mnist_dir):
    shutil.copy(mnist_dir / "t10k-labels-idx1-ubyte.gz", tmp_path)
    raw = gzip.decompress((mnist_dir / "t10k-labels-idx1-ubyte.gz").read_bytes())
    (tmp_path / "short-labels").write_bytes(raw[:-10])
    with pytest.raises(DataError, match="truncated"):
        read_idx(tmp_path / "short-labels")
    damaged = bytearray((mnist_dir / "t10k-labels-idx1-ubyte.gz").read_bytes())
    damaged[100] ^= 0xFF
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(bytes(damaged))
    with pytest.raises(DataError, match="corrupt or truncated"):
        find_file("t10k-labels-idx1-ubyte", tmp_path, download=False)


def test_uncompressed_files_are_accepted(tmp_path, mnist_dir):
    raw = gzip.decompress((mnist_dir / "t10k-labels-idx1-ubyte.gz").read_bytes())
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(raw)
    path = find_file("t10k-labels-idx1-ubyte", tmp_path, download=False)
    assert read_idx(path)[:3].tolist() == [7, 2, 1]


def test_missing_files_are_downloaded_verified_and_stored(tmp_path, monkeypatch, mnist_dir):
    served = tmp_path / "mirror"
    served.mkdir()
    shutil.copy(mnist_dir / "t10k-labels-idx1-ubyte.gz", served)
    bad = served / "bad"
    bad.mkdir()
    (bad / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not the file")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(served), **k)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}/"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("DELTAGRAD_DATA", raising=False)
    try:
        path = find_file("t10k-labels-idx1-ubyte", None, download=True, mirrors=(base + "bad/", base))
    finally:
        server.shutdown()
    assert path == tmp_path / "cache" / "deltagrad" / "mnist" / "t10k-labels-idx1-ubyte.gz"
    assert path.read_bytes() == (mnist_dir / "t10k-labels-idx1-ubyte.gz").read_bytes()
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left
    assert len(MIRRORS) >= 2 and len(SHA256) == 8


# ---- training -------------------------------------------------------------------------------

def test_short_mnist_run_learns_and_same_seed_gives_same_numbers(tmp_path, mnist_dir):
    cfg = TrainConfig(epochs=3, hidden=(64,), limit=10000, val_size=1000, data_dir=str(mnist_dir))
    first = train(cfg, tmp_path / "a", progress=False)
    second = train(cfg, None, progress=False)
    losses = [m["train_loss"] for m in first.metrics]
    assert losses[2] < losses[1] < losses[0] < 1.5
    assert first.metrics[-1]["test_accuracy"] > 0.9 and first.metrics[-1]["val_accuracy"] > 0.9
    strip = [{k: v for k, v in m.items() if k != "seconds"} for m in first.metrics]
    assert strip == [{k: v for k, v in m.items() if k != "seconds"} for m in second.metrics]
    for name in ("metrics.json", "metrics.csv", "config.json", "loss.png", "accuracy.png", "model.npz"):
        assert (tmp_path / "a" / name).stat().st_size > 0
    doc = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert doc["status"] == "complete" and doc["epochs"][-1]["epoch"] == 3
    assert evaluate(tmp_path / "a" / "model.npz") == pytest.approx(first.metrics[-1]["test_accuracy"])


def test_training_runs_under_array_api_strict():
    cfg = TrainConfig(epochs=1, hidden=(32,), data="synthetic", device="array-api-strict", batch_size=256)
    strict = train(cfg, None, progress=False)
    plain = train(TrainConfig(**{**cfg.__dict__, "device": "cpu"}), None, progress=False)
    assert strict.metrics[-1]["val_accuracy"] > 0.9
    assert strict.metrics[-1]["train_loss"] == pytest.approx(plain.metrics[-1]["train_loss"], rel=1e-4)


def test_cli_train_compare_and_evaluate(tmp_path):
    out = tmp_path / "cmp"
    r = CliRunner().invoke(main, ["train", "--synthetic", "--epochs", "2", "--hidden", "32", "--quiet",
                                  "--compare", "activation=sigmoid,relu", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "activation=sigmoid" in r.output and "activation=relu" in r.output
    for name in ("compare_train_loss.png", "compare_val_accuracy.png", "compare_test_accuracy.png", "summary.csv",
                 "summary.md"):
        assert (out / name).exists(), name
    r = CliRunner().invoke(main, ["evaluate", str(out / "activation=relu")])
    assert r.exit_code == 0 and r.output.startswith("test accuracy")


def test_cli_cuda_without_cupy_fails_with_one_line():
    pytest.importorskip("numpy")
    try:
        import cupy  # noqa: F401

        pytest.skip("CuPy is installed here")
    except ImportError:
        pass
    r = CliRunner().invoke(main, ["train", "--device", "cuda", "--synthetic", "--quiet"])
    assert r.exit_code == 1
    assert r.output.strip().count("\n") == 0 and "CuPy" in r.output and "Traceback" not in r.output


def test_gradients_that_are_not_needed_are_not_computed():
    from deltagrad.generated import Linear as LinearOp

    x = Tensor(rng.normal(size=(2, 3)))                 # data: no gradient
    w = Tensor(rng.normal(size=(3, 4)), requires_grad=True)
    b = Tensor(np.zeros(4), requires_grad=True)
    y = apply(LinearOp, x, w, b)
    assert y.source.context["needs_input_grad"] == (False, True, True)
    dx, dw, db = LinearOp.backward(y.source.context, np.ones((2, 4)))
    assert dx is None and dw.shape == (3, 4) and db.shape == (4,)
