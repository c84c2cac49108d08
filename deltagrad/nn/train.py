"""Train an MLP on MNIST (or a synthetic stand-in) with nothing but generated ops.

Per epoch: a progress bar, then train loss, validation and test accuracy and seconds. With a run
folder, each finished epoch's model, optimiser state, metrics are written there (atomically, in a
section that a stop signal does not cut); at the end, or on Ctrl-C or SIGTERM, the plots too, and
the run's status (``complete``, ``interrupted``) in ``metrics.json``. ``train(..., resume=True)``
continues a run from its last finished epoch, with the numbers an uninterrupted run gives.
The same seed gives the same numbers.

The settings, their checks and presets live in :mod:`deltagrad.nn.config`, the run folder's
files in :mod:`deltagrad.nn.runs`, the plots in :mod:`deltagrad.nn.plots` and experiment grids in
:mod:`deltagrad.nn.grid`; the names are imported here too.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path

import numpy as np

from deltagrad.nn import functions as F
from deltagrad.nn.backend import namespace
from deltagrad.nn.config import (  # noqa: F401 - the public names of the training API
    COMPARABLE, DEFAULT_LR, EVAL_BATCH, OPTIMIZERS, PRESETS, ConfigError, TrainConfig, check_config,
    config_dict, make_config, parse_compare, parse_hidden, resolve, split_sizes,
)
from deltagrad.nn.graph import Tensor
from deltagrad.nn.modules import CNN, MLP
from deltagrad.nn.optim import make_optimizer
from deltagrad.nn.plots import plot_run
from deltagrad.nn.runs import (  # noqa: F401
    CHECKPOINT, METRICS, MODEL, PLOTS, RunFileError, RunResult, load_checkpoint, load_model, read_metrics,
    read_model_file, save_checkpoint, save_model, write_metrics,
)
from deltagrad.nn.signals import StopSignals, signal_name, signal_of


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped a run; its last finished epoch was kept (``result``)."""

    def __init__(self, result: RunResult, signum: int):
        super().__init__(signal_name(signum))
        self.result, self.signum = result, signum


class Diverged(RuntimeError):
    """The training loss stopped being a finite number; the last finished epoch was kept."""

    def __init__(self, result: RunResult):
        super().__init__(result.message)
        self.result = result


class _NonFinite(Exception):
    pass


# ---- data ------------------------------------------------------------------------------------

def load_data(config: TrainConfig, splits=("train", "test")) -> dict:
    """The data a config names: MNIST's uint8 pixels, or the synthetic stand-in (floats in [0, 1])."""
    from deltagrad.nn.data import load_mnist, load_synthetic

    if config.data == "synthetic":
        return load_synthetic(seed=config.seed)
    return load_mnist(config.data_dir, raw=True, splits=splits)


def prepare_images(images: np.ndarray, config: TrainConfig) -> np.ndarray:
    """Images as the config wants them: pixels in [0, 1], raw 0-255, or standardised with MNIST's
    mean and standard deviation, in its float dtype.

    >>> prepare_images(np.array([[0, 51, 255]], dtype=np.uint8), TrainConfig()).tolist()
    [[0.0, 0.20000000298023224, 1.0]]
    >>> prepare_images(np.array([[0, 51, 255]], dtype=np.uint8), TrainConfig(pixels="raw", dtype="float64")).tolist()
    [[0.0, 51.0, 255.0]]
    >>> [round(float(v), 3) for v in prepare_images(np.array([[0, 255]], dtype=np.uint8), TrainConfig(pixels="standard"))[0]]
    [-0.424, 2.821]
    """
    dtype = np.dtype(config.dtype)
    if images.dtype == np.uint8:
        unit = images.astype(dtype) if config.pixels == "raw" else (images / dtype.type(255)).astype(dtype)
    else:
        unit = (images * 255 if config.pixels == "raw" else images).astype(dtype)  # synthetic: floats in [0, 1]
    if config.pixels == "standard":
        return ((unit - dtype.type(MNIST_MEAN)) / dtype.type(MNIST_STD)).astype(dtype)
    return unit


#: The mean and standard deviation of MNIST's training pixels in [0, 1] (``--pixels standard``).
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


def shifted(images, k: int, rng, xp, background: float):
    """``images`` (rows of square images, flattened), each moved by its own random offset of
    up to ``k`` pixels along each axis, the uncovered border set to ``background``: one gather,
    no loop over images.

    >>> x = np.arange(1.0, 10.0).reshape(1, 9)  # one 3×3 image
    >>> shifted(x, 1, np.random.default_rng(3), np, 0.0).reshape(3, 3)  # moved one pixel down and left
    array([[0., 0., 0.],
           [2., 3., 0.],
           [5., 6., 0.]])
    """
    b, features = images.shape
    side = math.isqrt(features)
    if side * side != features:
        raise ValueError(f"--shift needs square images; these have {features} pixels")
    p = side + 2 * k
    padded = xp.full((b, p, p), background, dtype=images.dtype)
    padded[:, k:k + side, k:k + side] = xp.reshape(images, (b, side, side))
    offsets = rng.integers(-k, k + 1, size=(b, 2))
    rows = np.arange(side)[None, :] + k - offsets[:, :1]  # output row y reads padded row y - dy + k
    cols = np.arange(side)[None, :] + k - offsets[:, 1:]
    flat = (np.arange(b)[:, None, None] * p * p + rows[:, :, None] * p + cols[:, None, :]).reshape(-1)
    return xp.reshape(xp.take(xp.reshape(padded, (-1,)), xp.asarray(flat), axis=0), (b, features))


def one_hot(labels: np.ndarray, classes: int = 10, dtype=np.float32) -> np.ndarray:
    out = np.zeros((len(labels), classes), dtype=dtype)
    out[np.arange(len(labels)), labels] = 1
    return out


def accuracy(model: MLP, images, labels, xp, batch: int = EVAL_BATCH) -> float:
    """Fraction of ``images`` whose arg-max logit is the label (no graph is recorded)."""
    correct = 0
    n = images.shape[0]
    for s in range(0, n, batch):
        e = min(s + batch, n)  # the array API leaves out-of-range slice ends unspecified
        logits = model(Tensor(images[s:e, ...])).value
        correct += int(xp.sum(xp.astype(xp.argmax(logits, axis=1) == labels[s:e], xp.int32)))
    return correct / n


def build_model(config: TrainConfig, xp, features: int = 784, classes: int = 10) -> MLP:
    rng = np.random.default_rng(config.seed)
    if config.model == "cnn":
        return CNN(config.channels, config.kernel, config.hidden, config.pool, config.activation, config.init, rng, xp,
                   config.dtype, classes=classes)
    return MLP([features, *config.hidden, classes], config.activation, config.init, config.residual, rng, xp,
               config.dtype)


def _splits(data: dict, config: TrainConfig, xp):
    """(x_train, one-hot y_train, x_val, y_val, x_test, y_test) on the device."""
    images, labels = data["train"].images, data["train"].labels
    if config.limit:  # the first N training images; the validation set is taken from them too
        images, labels = images[: config.limit], labels[: config.limit]
    val = min(config.val_size, len(images) // 10)
    if val < 1 or len(images) - val < 1:
        raise ConfigError(f"{len(images)} training images leave none for validation or for training")
    x = prepare_images(images, config)
    return (xp.asarray(x[:-val]), xp.asarray(one_hot(labels[:-val], dtype=config.dtype)),
            xp.asarray(x[-val:]), xp.asarray(labels[-val:]),
            xp.asarray(prepare_images(data["test"].images, config)), xp.asarray(data["test"].labels))


# ---- the run folder --------------------------------------------------------------------------

def _clear_run(out: Path) -> None:
    """A fresh run in a folder replaces the run there: its model, checkpoint and plots go."""
    for name in (MODEL, CHECKPOINT, *PLOTS):
        try:
            (out / name).unlink()
        except FileNotFoundError:
            pass


def _resume_point(out: Path, config: TrainConfig) -> dict | None:
    """What a resumed run starts from: the last finished epoch's weights, optimiser and generator
    states and metrics rows; None when the run stopped before its first epoch finished."""
    doc = read_metrics(out)
    if doc["status"] == "diverged":
        raise RunFileError(f"{out} diverged ({doc.get('message', 'its loss was not finite')}); resuming would "
                           "repeat the same steps: start a new run with other settings")
    if not (out / CHECKPOINT).exists() and not (out / MODEL).exists():
        return None
    ck = load_checkpoint(out / CHECKPOINT)
    arrays, model_config, meta = read_model_file(out / MODEL)
    if meta.get("epoch") != ck["epoch"]:
        raise RunFileError(f"{out}: {MODEL} is from epoch {meta.get('epoch')} but {CHECKPOINT} "
                           f"from epoch {ck['epoch']}")
    ignore = ("epochs", "data_dir", "device")
    a, b = config_dict(model_config), config_dict(config)
    differ = [k for k in a if k not in ignore and a[k] != b[k]]
    if differ:
        raise RunFileError(f"{out}: {MODEL} and config.json disagree on {', '.join(differ)}")
    rows = doc["epochs"]
    if len(rows) < ck["epoch"]:
        raise RunFileError(f"{out}: metrics.json has {len(rows)} epochs but the checkpoint is from epoch {ck['epoch']}")
    if config.shuffle and not ck["rng"]:
        raise RunFileError(f"{out}/{CHECKPOINT} lacks the shuffling generator's state")
    return {"epoch": ck["epoch"], "arrays": arrays, "state": ck["state"], "optimizer": ck["optimizer"],
            "rng": ck["rng"], "rows": rows[: ck["epoch"]]}


def _snapshot(model: MLP, xp) -> list:
    """Copies of the parameters (to put back what an interrupted epoch changed)."""
    try:
        return [xp.asarray(p.value, copy=True) for p in model.parameters()]
    except TypeError:  # pragma: no cover - a namespace whose asarray has no copy argument
        return [p.value.copy() for p in model.parameters()]


def _restore(model: MLP, snapshot: list) -> None:
    for p, v in zip(model.parameters(), snapshot):
        p.value = v


# ---- training --------------------------------------------------------------------------------

def train(config: TrainConfig, out_dir=None, progress: bool = True, data: dict | None = None, *,
          resume: bool = False, label: str = "", on_batch=None, handle_signals: bool = True) -> RunResult:
    """Train one MLP; with ``out_dir``, write its run folder (see :mod:`deltagrad.nn.runs`).

    ``resume=True`` continues the run in ``out_dir`` from its last finished epoch. Ctrl-C or
    SIGTERM (``handle_signals``) raise :class:`RunInterrupted` after the last finished epoch's
    model, metrics and plots are written; a loss that stops being finite raises :class:`Diverged`.
    ``on_batch(epoch, batch)`` is called after every step. A bad setting is a ``ConfigError``,
    raised before any data is read.
    """
    from tqdm import tqdm

    config = resolve(config)
    check_config(config)
    xp = namespace(config.device)
    out = Path(out_dir) if out_dir is not None else None
    start = None
    if resume:
        if out is None:
            raise ValueError("resume=True needs the run's folder")
        start = _resume_point(out, config)
    data = data or load_data(config)
    x_tr, y_tr, x_val, y_val, x_te, y_te = _splits(data, config, xp)
    model = build_model(config, xp, x_tr.shape[1])
    opt = make_optimizer(config.optimizer, model.parameters(), config.lr, config.momentum)
    rng = np.random.default_rng(config.seed + 1) if config.shuffle else None
    result = RunResult(config, [], model, "running", out_dir=out)
    if start is not None:
        if start["optimizer"] != type(opt).__name__:
            raise RunFileError(f"{out}/{CHECKPOINT} holds a {start['optimizer']} state, not {type(opt).__name__}'s")
        for n, layer in enumerate(model.layers):
            layer.W.value = xp.asarray(start["arrays"][f"W{n}"].astype(config.dtype, copy=False))
            layer.b.value = xp.asarray(start["arrays"][f"b{n}"].astype(config.dtype, copy=False))
        try:
            opt.load_state_dict(start["state"], xp)
        except (KeyError, ValueError) as err:
            raise RunFileError(f"{out}/{CHECKPOINT}: {err}") from None
        if rng is not None:
            rng.bit_generator.state = start["rng"]
        result.metrics = list(start["rows"])
        if result.epochs_done >= config.epochs:
            result.status = "complete"
            return result
    elif out is not None:
        _clear_run(out)
    if out is not None:
        write_metrics(out, result)

    n = x_tr.shape[0]
    bs = config.batch_size
    background = float(prepare_images(np.zeros((1, 1), dtype=np.uint8), config)[0, 0])  # a blank pixel
    snapshot = _snapshot(model, xp)
    stop = StopSignals(handle_signals)
    bar = None
    # exp overflowing in a saturated sigmoid is harmless; a loss that is not finite is reported as divergence
    errstate = np.errstate(over="ignore", under="ignore", invalid="ignore") if xp is np else nullcontext()
    try:
        with stop, errstate:
            for epoch in range(result.epochs_done + 1, config.epochs + 1):
                began = time.perf_counter()
                opt.lr = config.lr * config.lr_decay ** (epoch - 1)  # from the epoch's number: --resume keeps it
                order = xp.asarray(rng.permutation(n)) if rng is not None else None
                shifts = np.random.default_rng([config.seed, epoch, 2])  # from the epoch: --resume draws the same
                total, batches = 0.0, 0
                desc = f"{label + ' ' if label else ''}epoch {epoch}/{config.epochs}"
                bar = tqdm(total=n, desc=desc, unit="img", disable=not progress, leave=True)
                for s in range(0, n, bs):
                    e = min(s + bs, n)
                    if order is None:
                        xb, yb = x_tr[s:e, ...], y_tr[s:e, ...]
                    else:
                        idx = order[s:e]
                        xb, yb = xp.take(x_tr, idx, axis=0), xp.take(y_tr, idx, axis=0)
                    if config.shift:
                        xb = shifted(xb, config.shift, shifts, xp, background)
                    if config.loss == "sum":  # the generated mean cross-entropy of targets scaled by the batch size
                        yb = yb * float(e - s)
                    loss = F.softmax_cross_entropy(model(Tensor(xb)), yb)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    value = float(loss.value)
                    if not math.isfinite(value):
                        raise _NonFinite(f"the training loss became {value} in epoch {epoch}, batch {batches + 1}: "
                                         "lower --lr")
                    total += value
                    batches += 1
                    bar.update(e - s)
                    if batches % 50 == 0:
                        bar.set_postfix(loss=f"{total / (e if config.loss == 'sum' else batches):.4f}")
                    if on_batch is not None:
                        on_batch(epoch, batches)
                seconds = time.perf_counter() - began
                row = {"epoch": epoch, "train_loss": total / n if config.loss == "sum" else total / batches,
                       "val_accuracy": accuracy(model, x_val, y_val, xp),
                       "test_accuracy": accuracy(model, x_te, y_te, xp), "seconds": seconds}
                bar.set_postfix(loss=f"{row['train_loss']:.4f}", val=f"{row['val_accuracy']:.4f}")
                bar.close()
                with stop.deferred():
                    result.metrics.append(row)
                    snapshot = _snapshot(model, xp)
                    if epoch == config.epochs:
                        result.status = "complete"
                    if out is not None:
                        save_model(out / MODEL, model, config, epoch)
                        save_checkpoint(out / CHECKPOINT, opt, rng, epoch)
                        write_metrics(out, result)
            result.status = "complete"
            if out is not None:
                with stop.deferred(raise_pending=False):
                    plot_run(out, result)
    except KeyboardInterrupt as err:
        if bar is not None:
            bar.close()  # end the progress bar's line before the messages that follow
        signum = signal_of(err)
        _restore(model, snapshot)
        result.status, result.interrupted_by = "interrupted", signal_name(signum)
        _finish(out, result, handle_signals)
        raise RunInterrupted(result, signum) from None
    except _NonFinite as err:
        if bar is not None:
            bar.close()
        _restore(model, snapshot)
        result.status, result.message = "diverged", str(err)
        _finish(out, result, handle_signals)
        raise Diverged(result) from None
    return result


def _finish(out, result: RunResult, handle_signals: bool) -> None:
    """Write the metrics (with the run's status) and plots of a run that stopped early."""
    if out is None:
        return
    with StopSignals(handle_signals) as again, again.deferred(raise_pending=False):
        write_metrics(out, result)
        plot_run(out, result)


# ---- evaluation ------------------------------------------------------------------------------

def evaluate(path, data_dir=None, device: str | None = None) -> float:
    """Test accuracy of a saved model (only the test images are read)."""
    model, config = load_model(path, device)
    if data_dir:
        config = replace(config, data_dir=str(Path(data_dir).resolve()))
    data = load_data(config, splits=("test",))
    xp = namespace(config.device)
    images = xp.asarray(prepare_images(data["test"].images, config))
    with np.errstate(over="ignore", under="ignore"):
        return accuracy(model, images, xp.asarray(data["test"].labels), xp)


# ---- kept for callers of the earlier API -----------------------------------------------------

def plot_runs(out_dir, runs: dict, prefix: str = "compare") -> list:
    """Overlay plots of ``{label: RunResult}`` (one figure per metric)."""
    from deltagrad.nn.plots import overlay_figures, save_figures

    return save_figures(out_dir, overlay_figures([(label, [r]) for label, r in runs.items()]))
