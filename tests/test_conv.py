"""Index arithmetic: convolutions and pooling derived through windows, checked by finite differences."""

from __future__ import annotations

import time

import numpy as np
import pytest

from deltagrad import derive
from deltagrad.errors import ShapeError, SpecError
from gradcheck import check_op


def r(*shape, seed=0):
    return np.random.default_rng(seed + len(shape)).uniform(-1.5, 1.5, size=shape)


def conv1d_ref(X, W, stride=1):
    """Valid 1-D correlation by explicit loops (the independent reference)."""
    n = (len(X) - len(W)) // stride + 1
    return np.array([sum(X[stride * i + k] * W[k] for k in range(len(W))) for i in range(n)])


def conv2d_ref(X, W, B, stride=1):
    """Valid 2-D multi-channel correlation with bias, by loops over output positions."""
    nb, nc, h, w = X.shape
    no, _, kp, kq = W.shape
    ni, nj = (h - kp) // stride + 1, (w - kq) // stride + 1
    Y = np.zeros((nb, no, ni, nj))
    for i in range(ni):
        for j in range(nj):
            patch = X[:, :, stride * i:stride * i + kp, stride * j:stride * j + kq]
            Y[:, :, i, j] = np.einsum("bcpq,ocpq->bo", patch, W) + B
    return Y


def pool_ref(X, k=2, stride=2):
    nb, nc, h, w = X.shape
    ni, nj = (h - k) // stride + 1, (w - k) // stride + 1
    Y = np.zeros((nb, nc, ni, nj))
    for i in range(ni):
        for j in range(nj):
            Y[:, :, i, j] = X[:, :, stride * i:stride * i + k, stride * j:stride * j + k].mean(axis=(2, 3))
    return Y


@pytest.mark.parametrize("stride", [1, 2])
def test_conv1d_matches_finite_differences(stride):
    spec = "Y[i] = Sum(X[i+k]*W[k], k)" if stride == 1 else "Y[i] = Sum(X[2*i+k]*W[k], k)"
    op = derive(spec, name="conv1d").compile()
    check_op(op, lambda X, W: conv1d_ref(X, W, stride), [r(11), r(3, seed=1)])


def test_conv1d_with_channels_and_dilation():
    op = derive("Y[b,o,i] = Sum(X[b,c,i+2*k]*W[o,c,k], c, k)", name="dilated").compile()

    def ref(X, W):
        n = X.shape[2] - 2 * (W.shape[2] - 1)
        return np.stack([np.einsum("bck,ock->bo", X[:, :, i:i + 2 * W.shape[2] - 1:2], W) for i in range(n)], axis=2)

    check_op(op, ref, [r(2, 3, 9), r(4, 3, 3, seed=2)])


@pytest.mark.parametrize("stride", [1, 2])
def test_conv2d_with_bias_and_channels(stride):
    s = "" if stride == 1 else f"{stride}*"
    op = derive(f"Y[b,o,i,j] = Sum(X[b,c,{s}i+p,{s}j+q]*W[o,c,p,q], c, p, q) + B[o]", name="conv2d").compile()
    check_op(op, lambda X, W, B: conv2d_ref(X, W, B, stride), [r(2, 3, 7, 8), r(4, 3, 3, 2, seed=3), r(4, seed=4)])


def test_average_pooling_takes_its_window_as_keywords():
    op = derive("Y[b,c,i,j] = Sum(X[b,c,2*i+p,2*j+q], p, q)/4", name="avg_pool").compile()
    check_op(op, pool_ref, [r(2, 3, 6, 7)], sizes={"p": 2, "q": 2})
    with pytest.raises(ShapeError, match="pass p=N"):
        op.forward({}, r(2, 3, 6, 7), q=2)


def max_pool_ref(X):
    n, c, h, w = X.shape
    return X[:, :, :h // 2 * 2, :w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def test_max_pooling_routes_the_gradient_to_each_windows_maximum():
    op = derive("Y[b,c,i,j] = Max(X[b,c,2*i+p,2*j+q], p, q)", name="max_pool").compile()
    x = np.random.default_rng(5).permutation(2 * 3 * 6 * 7).reshape(2, 3, 6, 7) / 10.0  # no ties
    check_op(op, max_pool_ref, [x], sizes={"p": 2, "q": 2})
    # ties split equally: a window of four equal values gives each a quarter
    ctx = {}
    op.forward(ctx, np.ones((1, 1, 2, 2)), p=2, q=2)
    (dx,) = op.backward(ctx, np.ones((1, 1, 1, 1)))
    np.testing.assert_allclose(dx, np.full((1, 1, 2, 2), 0.25))
    # overlapping windows (stride 1) add up where one entry is the maximum of several
    op1 = derive("Y[i] = Max(X[i+p], p)", name="max1").compile()
    check_op(op1, lambda X: np.stack([X[i:i + 3].max() for i in range(len(X) - 2)]), [np.array([0.1, 0.9, 0.3, 0.2, 0.5])],
             sizes={"p": 3})


def test_a_tensor_read_at_two_shifts():
    op = derive("Y[i] = X[i+1] - X[i]", name="diff").compile()
    check_op(op, lambda X: X[1:] - X[:-1], [r(6)])


def test_too_small_input_is_a_shape_error():
    op = derive("Y[i] = Sum(X[i+k]*W[k], k)", name="conv1d").compile()
    with pytest.raises(ShapeError, match="too small for a window of 5"):
        op.forward({}, r(3), r(5))
    op2 = derive("Y[i] = Sum(X[i+k]*W[k], k) + Z[i]", name="conv_plus").compile()
    with pytest.raises(ShapeError, match="has room for 3 positions"):
        op2.forward({}, r(5), r(3), r(4))
    check_op(op2, lambda X, W, Z: conv1d_ref(X, W) + Z, [r(6), r(3), r(4)])


@pytest.mark.parametrize("text, message", [
    ("Y[i] = X[i-1]", "negative offset"),
    ("Y[i] = X[i*j]", "integer literal only"),
    ("Y[i+1] = X[i]", "an index must be a name"),
    ("Y[i,k] = X[i+k]", "cannot tell which"),
    ("Y[i] = X[i+j+k]", "at most 2"),
])
def test_bad_index_arithmetic_is_one_line_spec_error(text, message):
    with pytest.raises(SpecError, match=message):
        derive(text)


def test_the_write_up_keeps_the_delta_and_its_range_condition():
    d = derive("Y[i] = Sum(X[i+k]*W[k], k)")
    step = d.steps["X"]
    assert "KroneckerDelta(a, i + k)" in str(step.chain_rule)
    assert str(step.final) == "Sum(InRange(a - i, n_k)*G[i]*W[a - i], (i, 0, n_i - 1))"
    assert str(d.steps["W"].final) == "Sum(G[i]*X[a + i], (i, 0, n_i - 1))"


def test_derive_and_compile_conv_and_pool_under_two_seconds():
    for spec in ["Y[b,o,i,j] = Sum(X[b,c,i+p,j+q]*W[o,c,p,q], c, p, q) + B[o]",
                 "Y[b,c,i,j] = Sum(X[b,c,2*i+p,2*j+q], p, q)/4", "Y[b,c,i,j] = Max(X[b,c,2*i+p,2*j+q], p, q)"]:
        start = time.perf_counter()
        derive(spec, name="timed").compile()
        assert time.perf_counter() - start < 2.0, spec


def test_the_cnn_learns_a_slice_of_mnist(mnist_dir, tmp_path):
    from deltagrad.nn.config import make_config, resolve
    from deltagrad.nn.runs import load_model
    from deltagrad.nn.train import evaluate, train

    config = resolve(make_config(model="cnn", channels=(4, 8), data_dir=str(mnist_dir), limit=1500, epochs=1,
                                 batch_size=32, val_size=300))
    assert config.hidden == (120, 84)
    result = train(config, tmp_path, progress=False)
    row = result.metrics[-1]
    assert row["val_accuracy"] > 0.5 and row["test_accuracy"] > 0.5  # chance is 0.1
    model, saved = load_model(tmp_path / "model.npz")
    assert [p.shape for p in model.parameters()][:2] == [(4, 1, 5, 5), (4,)]
    assert abs(evaluate(tmp_path / "model.npz") - row["test_accuracy"]) < 1e-9


def test_cnn_options_are_checked_first():
    from deltagrad.nn.config import ConfigError, check_config, make_config

    check_config(make_config(model="cnn", pool="max"))
    with pytest.raises(ConfigError, match="max, avg"):
        check_config(make_config(model="cnn", pool="min"))
    with pytest.raises(ConfigError, match="--kernel 13"):
        check_config(make_config(model="cnn", kernel=13))
    with pytest.raises(ConfigError, match="--model"):
        check_config(make_config(model="rnn"))


def test_the_latex_write_up_solves_the_affine_delta_with_its_range():
    text = derive("Y[i] = Sum(X[i+k]*W[k], k)").latex(fragment=True)
    assert r"$\delta_{a,i + k}$ sets $k = a - i$ where $0 \le a - i < n_{k}$" in text
    assert r"\sum_{i} Y^{\nabla}_{i} W_{a - i}" in text
    pool = derive("Y[b,c,i,j] = Sum(X[b,c,2*i+p,2*j+q], p, q)/4").latex(fragment=True)
    assert "2 i + p" in pool and "2*i" not in pool.split("verbatim")[0]


def test_torch_and_jax_targets_run_the_windows():
    torch = pytest.importorskip("torch")
    d = derive("Y[b,o,i,j] = Sum(X[b,c,2*i+p,2*j+q]*W[o,c,p,q], c, p, q)", name="strided")
    x = torch.randn(2, 2, 7, 6, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 2, 3, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(d.compile("torch"), (x, w))
    want = torch.nn.functional.conv2d(x, w, stride=2)
    assert torch.allclose(d.compile("torch")(x, w), want)


def test_padding_is_a_runtime_op_before_a_valid_convolution():
    from deltagrad.nn import functions as F
    from deltagrad.nn.graph import Tensor
    from gradcheck import numeric_grads

    X, W, B = r(2, 2, 5, 4), r(3, 2, 3, 3, seed=5), r(3, seed=6)

    def reference(x):
        return conv2d_ref(np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))), W, B)

    x = Tensor(X.copy(), requires_grad=True)
    y = F.conv2d(F.pad2d(x, 1), Tensor(W), Tensor(B))
    np.testing.assert_allclose(y.value, reference(X), rtol=1e-10)
    assert y.shape == (2, 3, 5, 4)  # a "same" convolution
    g = np.random.default_rng(3).normal(size=y.shape)
    y.grad = g
    y.backward()
    np.testing.assert_allclose(x.grad, numeric_grads(reference, [X], g)[0], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_the_cnn_max_pools_before_its_activation_and_computes_the_seeds_network(activation):
    """Max-pooling first is an optimisation, not another network: outputs and every parameter's
    gradient equal those of the seeds' order (conv, activation, pool), ties in flat regions included.
    (They may differ only where a convolution's output is exactly 0, ReLU's kink, where the two
    orders pick different subgradients; standardised images have no zero pixels.)"""
    from deltagrad.nn import functions as F
    from deltagrad.nn.graph import Tensor
    from deltagrad.nn.modules import CNN

    rng = np.random.default_rng(3)
    x = rng.normal(size=(5, 784)).astype(np.float32)
    x[0, :400] = -0.4242  # a flat region, as MNIST's standardised background: tied windows
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 5)]
    net = CNN(channels=(3, 4), activation=activation, rng=np.random.default_rng(0))

    def seeds_order(images):
        act, h = F.ACTIVATIONS[activation], Tensor(images.reshape(5, 1, 28, 28))
        for conv in net.convs:
            h = F.max_pool2d(act(conv(h)), 2)
        h = F.flatten(h)
        for fc in net.fcs[:-1]:
            h = act(fc(h))
        return net.fcs[-1](h)

    grads = []
    for forward in (net, seeds_order):
        for p in net.parameters():
            p.grad = None
        out = forward(Tensor(x) if forward is net else x)
        F.softmax_cross_entropy(out, y).backward()
        grads.append((out.value.copy(), [p.grad.copy() for p in net.parameters()]))
    (out_a, grads_a), (out_b, grads_b) = grads
    np.testing.assert_allclose(out_a, out_b, rtol=1e-6, atol=1e-6)
    for ga, gb in zip(grads_a, grads_b):
        np.testing.assert_allclose(ga, gb, rtol=1e-5, atol=1e-6)
    assert any(np.abs(g).max() > 0 for g in grads_a)
