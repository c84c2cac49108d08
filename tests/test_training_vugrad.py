"""`--preset vugrad`: vugrad's conventions (loss summed over the batch, raw 0-255 pixels, float64,
no shuffling, Glorot-normal init, the last 5000 training images for validation), checked on a
small slice of MNIST against vugrad's own training loop, step for step."""

import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from deltagrad.cli import main
from deltagrad.nn import train as T
from deltagrad.nn.config import make_config, split_sizes
from deltagrad.nn.data import load_mnist

VUGRAD = Path(__file__).resolve().parents[2] / "shared" / "vugrad"


def test_the_preset_sets_vugrads_conventions_and_options_override_it():
    c = make_config("vugrad")
    assert (c.hidden, c.activation, c.optimizer, c.lr, c.batch_size) == ((3136,), "sigmoid", "sgd", 1e-4, 128)
    assert (c.loss, c.pixels, c.dtype, c.shuffle, c.init, c.preset) == ("sum", "raw", "float64", False, "glorot_normal",
                                                                        "vugrad")
    assert split_sizes(c) == (55000, 5000, 10000)
    assert make_config("vugrad", hidden=(100,), lr=1e-3).hidden == (100,)


def test_glorot_normal_is_vugrads_init():
    from deltagrad.nn.modules import Linear

    layer = Linear(784, 3136, "glorot_normal", np.random.default_rng(0), dtype="float64")
    assert layer.W.value.dtype == np.float64 and layer.b.value.dtype == np.float64 and not np.any(layer.b.value)
    assert abs(layer.W.value.std() - np.sqrt(2 / (784 + 3136))) < 2e-4 and abs(layer.W.value.mean()) < 2e-4


@pytest.mark.skipif(not (VUGRAD / "vugrad").is_dir(), reason="vugrad is not beside the checkout")
def test_the_preset_trains_as_vugrad_does_on_a_small_slice(mnist_dir, monkeypatch):
    sys.path.insert(0, str(VUGRAD))
    try:
        import vugrad as vg
    finally:
        sys.path.remove(str(VUGRAD))
    config = make_config("vugrad", hidden=(32,), epochs=2, limit=1000, data_dir=str(mnist_dir))
    start = {}
    real_build = T.build_model

    def build(config, xp, features=784, classes=10):
        model = real_build(config, xp, features, classes)
        start["params"] = [p.value.copy() for p in model.parameters()]
        return model

    monkeypatch.setattr(T, "build_model", build)
    ours = T.train(config, None, progress=False)
    assert all(p.dtype == np.float64 for p in start["params"])

    # vugrad's experiments/train_mlp.py on the same slice, from the same weights
    train = load_mnist(mnist_dir, raw=True, splits=("train",))["train"]
    x, y = train.images[:1000], train.labels[:1000]
    xtrain, ytrain, xval, yval = x[:-100], y[:-100], x[-100:], y[-100:]
    W0, b0, W1, b1 = start["params"]
    layer1, layer2 = vg.Linear(784, 32), vg.Linear(32, 10)
    layer1.w.value, layer1.b.value = W0.T.copy(), b0[None, :].copy()
    layer2.w.value, layer2.b.value = W1.T.copy(), b1[None, :].copy()
    params = layer1.parameters() + layer2.parameters()

    def forward(batch):
        return vg.logsoftmax(layer2(vg.sigmoid(layer1(vg.TensorNode(batch)))))

    with np.errstate(over="ignore"):
        for epoch in range(2):
            cl = 0.0
            for fr in range(0, 900, 128):
                to = min(fr + 128, 900)
                loss = vg.logceloss(forward(xtrain[fr:to, :]), ytrain[fr:to])
                cl += loss.value
                loss.backward()
                for parm in params:
                    parm.value -= 1e-4 * parm.grad
                loss.zero_grad()
                loss.clear()
            o = forward(xval)
            acc = (np.argmax(o.value, axis=1) == yval).sum() / yval.shape[0]
            assert ours.metrics[epoch]["train_loss"] == pytest.approx(cl / 900, rel=1e-9)
            assert ours.metrics[epoch]["val_accuracy"] == acc


def test_the_preset_from_the_command_line_learns_on_a_small_slice(mnist_dir, tmp_path):
    r = CliRunner().invoke(main, ["train", "--preset", "vugrad", "--epochs", "1", "--limit", "6000",
                                  "--data-dir", str(mnist_dir), "--quiet", "--out", str(tmp_path / "run")])
    assert r.exit_code == 0, r.output
    from deltagrad.nn.runs import read_metrics

    m = read_metrics(tmp_path / "run")["epochs"][0]
    assert m["val_accuracy"] > 0.8 and m["test_accuracy"] > 0.8
