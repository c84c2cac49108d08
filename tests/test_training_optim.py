"""RMSProp against finite differences of one step; every optimiser's state round trip."""

import numpy as np
import pytest

from deltagrad.nn import functions as F
from deltagrad.nn.graph import Tensor
from deltagrad.nn.modules import MLP
from deltagrad.nn.optim import SGD, Adam, RMSProp, make_optimizer


def small_problem(seed=0):
    rng = np.random.default_rng(seed)
    net = MLP([5, 4, 3], activation="tanh", rng=rng, dtype="float64")
    for p in net.parameters():
        p.value += rng.normal(scale=0.3, size=p.value.shape)
    x = rng.normal(size=(6, 5))
    t = np.eye(3)[[0, 2, 1, 0, 1, 2]]
    return net, x, t


def numeric_gradients(net, x, t, h=1e-6):
    """Central differences of the loss for every parameter entry."""
    def loss():
        return float(F.softmax_cross_entropy(net(Tensor(x)), t).value)

    grads = []
    for p in net.parameters():
        g = np.zeros_like(p.value)
        flat, gflat = p.value.reshape(-1), g.reshape(-1)
        for n in range(flat.size):
            old = flat[n]
            flat[n] = old + h
            up = loss()
            flat[n] = old - h
            down = loss()
            flat[n] = old
            gflat[n] = (up - down) / (2 * h)
        grads.append(g)
    return grads


@pytest.mark.parametrize("eps", [1e-8, 0.05])
def test_one_rmsprop_step_matches_the_step_from_finite_differences(eps):
    net, x, t = small_problem()
    before = [p.value.copy() for p in net.parameters()]
    numeric = numeric_gradients(net, x, t)
    lr, alpha = 0.01, 0.99
    opt = RMSProp(net.parameters(), lr=lr, alpha=alpha, eps=eps)
    opt.zero_grad()
    F.softmax_cross_entropy(net(Tensor(x)), t).backward()
    opt.step()
    for p, p0, g in zip(net.parameters(), before, numeric):
        expected = p0 - lr * g / (np.sqrt((1 - alpha) * g * g) + eps)  # v starts at 0: v = (1 - alpha) g^2
        np.testing.assert_allclose(p.value, expected, rtol=0, atol=1e-8)
    assert any(np.abs(p.value - p0).max() > 1e-3 for p, p0 in zip(net.parameters(), before))


def test_rmsprop_keeps_a_running_mean_of_squared_gradients():
    w = Tensor(np.array([1.0, -1.0]), requires_grad=True)
    opt = RMSProp([w], lr=0.1, alpha=0.9, eps=0.0)
    w.grad = np.array([2.0, 1.0])
    opt.step()
    w.grad = np.array([1.0, 1.0])
    opt.step()
    v = 0.9 * 0.1 * np.array([4.0, 1.0]) + 0.1 * np.array([1.0, 1.0])
    np.testing.assert_allclose(w.value, np.array([1.0, -1.0]) - 0.1 * np.sqrt(10.0) * np.array([1, 1])
                               - 0.1 * np.array([1.0, 1.0]) / np.sqrt(v), rtol=1e-12)


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam", "rmsprop"])
def test_an_optimiser_restored_from_its_state_takes_the_same_steps(name):
    net_a, x, t = small_problem(1)
    net_b, _, _ = small_problem(1)
    a = make_optimizer(name, net_a.parameters(), 0.01)
    for _ in range(3):
        a.zero_grad()
        F.softmax_cross_entropy(net_a(Tensor(x)), t).backward()
        a.step()
    for p, q in zip(net_b.parameters(), net_a.parameters()):
        p.value = q.value.copy()
    b = make_optimizer(name, net_b.parameters(), 0.01)
    state = a.state_dict()
    b.load_state_dict({"arrays": {k: [None if v is None else v.copy() for v in vs] for k, vs in state["arrays"].items()},
                       "numbers": dict(state["numbers"])})
    for net, opt in ((net_a, a), (net_b, b)):
        opt.zero_grad()
        F.softmax_cross_entropy(net(Tensor(x)), t).backward()
        opt.step()
    for p, q in zip(net_a.parameters(), net_b.parameters()):
        np.testing.assert_array_equal(p.value, q.value)


def test_a_state_of_the_wrong_shape_is_refused():
    w = Tensor(np.zeros(3), requires_grad=True)
    with pytest.raises(ValueError, match="shape"):
        Adam([w]).load_state_dict({"arrays": {"m": [np.zeros(2)], "v": [np.zeros(2)]}, "numbers": {"t": 1}})
    with pytest.raises(ValueError, match="entries"):
        SGD([w]).load_state_dict({"arrays": {"velocity": []}, "numbers": {}})


def test_lr_decay_sets_each_epochs_learning_rate(tmp_path, monkeypatch):
    """Epoch e runs at lr * decay**(e - 1); a resumed run picks up at its epoch's rate."""
    from deltagrad.nn import train as train_module
    from deltagrad.nn.config import make_config, resolve

    seen = []
    made = train_module.make_optimizer

    def spy(*args, **kwargs):
        opt = made(*args, **kwargs)
        step = opt.step

        def recorded():
            seen.append(opt.lr)
            step()
        opt.step = recorded
        return opt

    monkeypatch.setattr(train_module, "make_optimizer", spy)
    config = resolve(make_config(data="synthetic", hidden=(8,), epochs=3, lr=0.1, lr_decay=0.5, optimizer="sgd",
                                 limit=200, batch_size=100))
    train_module.train(config, tmp_path, progress=False)
    assert sorted(set(seen), reverse=True) == [0.1, 0.05, 0.025]


def test_shift_moves_each_image_and_fills_the_border():
    """Each image moves by its own offset in [-k, k]² and keeps every pixel that stays inside;
    the uncovered border is the blank pixel's value."""
    from deltagrad.nn.train import shifted

    rng = np.random.default_rng(0)
    images = rng.uniform(1, 2, size=(50, 36))  # 6×6 images, no pixel equal to the background
    out = shifted(images, 2, np.random.default_rng(7), np, -0.5).reshape(50, 6, 6)
    offsets = np.random.default_rng(7).integers(-2, 3, size=(50, 2))
    assert len({tuple(o) for o in offsets}) > 5  # the offsets vary from image to image
    for img, moved, (dy, dx) in zip(images.reshape(50, 6, 6), out, offsets):
        expected = np.full((6, 6), -0.5)
        ys, xs = slice(max(dy, 0), 6 + min(dy, 0)), slice(max(dx, 0), 6 + min(dx, 0))
        expected[ys, xs] = img[max(-dy, 0):6 - max(dy, 0), max(-dx, 0):6 - max(dx, 0)]
        np.testing.assert_array_equal(moved, expected)


def test_training_with_shift_is_reproducible_across_resume(tmp_path):
    """--shift draws its offsets from the seed and the epoch: two epochs in one go and one
    epoch then --resume give the same weights."""
    from deltagrad.nn.config import make_config, resolve
    from deltagrad.nn.train import train

    config = resolve(make_config(data="synthetic", hidden=(8,), epochs=2, limit=300, batch_size=50, shift=2))
    whole = train(config, tmp_path / "whole", progress=False)
    first = train(resolve(make_config(data="synthetic", hidden=(8,), epochs=1, limit=300, batch_size=50, shift=2)),
                  tmp_path / "parts", progress=False)
    assert first.epochs_done == 1
    resumed = train(config, tmp_path / "parts", progress=False, resume=True)
    plain = train(resolve(make_config(data="synthetic", hidden=(8,), epochs=2, limit=300, batch_size=50)),
                  tmp_path / "plain", progress=False)
    for a, b, c in zip(whole.model.parameters(), resumed.model.parameters(), plain.model.parameters()):
        np.testing.assert_array_equal(a.value, b.value)
    assert any(not np.array_equal(a.value, c.value) for a, c in zip(whole.model.parameters(), plain.model.parameters()))
