"""The fast NumPy layouts of the window helpers (pooling windows copied window-axes-outermost;
one im2col gradient scattered back window-positions-outermost) give what the general paths give."""

import itertools

import numpy as np
import pytest

from deltagrad.op_base import _windows, unwindow, windows

CASES = [((3, 2, 9, 8), 3, 1), ((2, 3, 10, 11), 2, 2), ((2, 1, 7, 7), 3, 2), ((2, 2, 9, 9), 2, 3)]


def _axes(shape, k, s):
    return tuple((a, (shape[a] - k) // s + 1, k, s, 1, 0) for a in (2, 3))


@pytest.mark.parametrize("shape,k,s", CASES)
def test_windows_values_match_the_strided_view(shape, k, s):
    x = np.random.default_rng(0).standard_normal(shape)
    axes = _axes(shape, k, s)
    got, view = windows(x, axes), _windows(x, axes)
    assert got.shape == view.shape and (got == view).all()
    assert (np.max(got, axis=(4, 5)) == np.max(view, axis=(4, 5))).all()


def _scatter_by_element(shape, grad, axes):
    """The adjoint of windows written out one element at a time (reference only)."""
    out = np.zeros(shape)
    (_, n, k, s, _, _), (_, m, l, t, _, _) = axes
    for b, c, i, j, p, q in itertools.product(*map(range, (shape[0], shape[1], n, m, k, l))):
        out[b, c, s * i + p, t * j + q] += grad[b, c, i, j, p, q]
    return out


@pytest.mark.parametrize("shape,k,s", CASES)
def test_unwindow_of_an_im2col_gradient_matches_the_general_path(shape, k, s):
    rng = np.random.default_rng(1)
    axes = _axes(shape, k, s)
    order = (0, 2, 3, 1, 4, 5)
    grad = rng.standard_normal((shape[0], axes[0][1], axes[1][1], shape[1], k, k))
    fast = unwindow(shape, grad, axes, order)
    general = unwindow(shape, grad.transpose(0, 3, 1, 2, 4, 5), axes, None)
    reference = _scatter_by_element(shape, grad.transpose(0, 3, 1, 2, 4, 5), axes)
    assert fast.shape == shape and (fast == general).all()
    assert np.allclose(fast, reference)


@pytest.mark.parametrize("shape, axes", [
    ((3, 4, 9, 7), ((2, 4, 2, 2, 1, 0), (3, 3, 2, 2, 1, 0))),  # 2×2 pooling, odd sizes: a tail stays 0
    ((2, 5, 8, 8), ((2, 4, 2, 2, 1, 0), (3, 4, 2, 2, 1, 0))),
    ((2, 3, 9, 9), ((2, 3, 3, 3, 1, 0),)),  # one axis only
    ((7,), ((0, 2, 3, 3, 1, 0),)),
])
def test_tiled_windows_scatter_back_as_the_general_path_adds(shape, axes):
    """Windows as long as their stride never overlap: unwindow assigns each position into an
    uninitialised array instead of adding into zeros, and must give the general path's result."""
    rng = np.random.default_rng(0)
    gshape = list(shape)
    for a, c, *_ in axes:
        gshape[a] = c
    grad = rng.normal(size=gshape + [w for _, _, w, *_ in axes]).astype(np.float32)
    fast = unwindow(shape, grad, axes, None)
    general = unwindow(shape, grad, axes, None, np.zeros_like(grad), axes, None)  # two pairs: the loop
    assert fast.dtype == np.float32 and fast.shape == shape
    np.testing.assert_array_equal(fast, general)
