"""Train an MLP on MNIST (or a synthetic stand-in) with nothing but generated ops.

Per epoch: a progress bar, then train loss, validation and test accuracy and seconds, written
to ``metrics.json`` and ``metrics.csv``; at the end PNG plots and ``model.npz`` (atomic writes).
The same seed gives the same numbers.
"""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from deltagrad.nn import functions as F
from deltagrad.nn.backend import namespace, to_numpy
from deltagrad.files import write_atomic
from deltagrad.nn.graph import Tensor
from deltagrad.nn.modules import MLP
from deltagrad.nn.optim import make_optimizer


def parse_hidden(text: str) -> tuple[int, ...]:
    """Hidden widths from text: positive integers separated by ``,``, ``-`` or ``x``.

    The one grammar of ``--hidden 300,100`` and of ``--compare hidden=100,300-100`` (where the
    comma separates runs, so a run's widths are joined by ``-`` or ``x``). Spaces around a width
    and empty parts between separators are ignored; anything else is a ``ValueError``.

    >>> parse_hidden("300"), parse_hidden("300,100"), parse_hidden("300-100"), parse_hidden("64x64x32")
    ((300,), (300, 100), (300, 100), (64, 64, 32))
    >>> parse_hidden("300,abc")
    Traceback (most recent call last):
    ...
    ValueError: '300,abc': give widths such as 300 or 300,100
    >>> parse_hidden("0")
    Traceback (most recent call last):
    ...
    ValueError: '0': give at least one positive width
    """
    parts = text.replace("x", ",").replace("-", ",").split(",")
    try:
        sizes = tuple(int(p) for p in parts if p.strip())
    except ValueError:
        raise ValueError(f"{text!r}: give widths such as 300 or 300,100") from None
    if not sizes or min(sizes) < 1:
        raise ValueError(f"{text!r}: give at least one positive width")
    return sizes


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run depends on."""

    hidden: tuple = (300,)
    activation: str = "relu"
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.0
    epochs: int = 5
    batch_size: int = 128
    init: str = "glorot"
    residual: bool = False
    device: str = "cpu"
    seed: int = 0
    data: str = "mnist"  # or "synthetic"
    data_dir: str | None = None
    val_size: int = 5000
    limit: int | None = None  # use only the first N training images, validation included (quick runs)


@dataclass
class RunResult:
    config: TrainConfig
    metrics: list = field(default_factory=list)
    model: MLP | None = None


def load_data(config: TrainConfig) -> dict:
    from deltagrad.nn.data import load_mnist, load_synthetic

    if config.data == "synthetic":
        return load_synthetic(seed=config.seed)
    return load_mnist(config.data_dir)


def one_hot(labels: np.ndarray, classes: int = 10) -> np.ndarray:
    out = np.zeros((len(labels), classes), dtype=np.float32)
    out[np.arange(len(labels)), labels] = 1
    return out


def accuracy(model: MLP, images, labels, xp, batch: int = 2000) -> float:
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
    return MLP([features, *config.hidden, classes], config.activation, config.init, config.residual, rng, xp)


def train(config: TrainConfig, out_dir=None, progress: bool = True, data: dict | None = None) -> RunResult:
    """Train one MLP; write metrics, plots and the model into ``out_dir`` when given."""
    from tqdm import tqdm

    xp = namespace(config.device)
    data = data or load_data(config)
    train_x, train_y = data["train"].images, data["train"].labels
    if config.limit:  # the first N training images; the validation set is taken from them too
        train_x, train_y = train_x[: config.limit], train_y[: config.limit]
    val = min(config.val_size, len(train_x) // 10)
    x_tr, y_tr = xp.asarray(train_x[:-val]), xp.asarray(one_hot(train_y[:-val]))
    x_val, y_val = xp.asarray(train_x[-val:]), xp.asarray(train_y[-val:])
    x_te, y_te = xp.asarray(data["test"].images), xp.asarray(data["test"].labels)
    model = build_model(config, xp, train_x.shape[1])
    opt = make_optimizer(config.optimizer, model.parameters(), config.lr, config.momentum)
    rng = np.random.default_rng(config.seed + 1)
    result = RunResult(config, [], model)
    n = x_tr.shape[0]
    for epoch in range(1, config.epochs + 1):
        start = time.perf_counter()
        order = xp.asarray(rng.permutation(n))
        total, batches = 0.0, 0
        bar = tqdm(total=n, desc=f"epoch {epoch}/{config.epochs}", unit="img", disable=not progress, leave=True)
        for s in range(0, n, config.batch_size):
            idx = order[s:min(s + config.batch_size, n)]
            xb, yb = xp.take(x_tr, idx, axis=0), xp.take(y_tr, idx, axis=0)
            loss = F.softmax_cross_entropy(model(Tensor(xb)), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.value)
            batches += 1
            bar.update(int(idx.shape[0]))
            if batches % 50 == 0:
                bar.set_postfix(loss=f"{total / batches:.4f}")
        seconds = time.perf_counter() - start
        row = {"epoch": epoch, "train_loss": total / batches,
               "val_accuracy": accuracy(model, x_val, y_val, xp), "test_accuracy": accuracy(model, x_te, y_te, xp),
               "seconds": seconds}
        bar.set_postfix(loss=f"{row['train_loss']:.4f}", val=f"{row['val_accuracy']:.4f}")
        bar.close()
        result.metrics.append(row)
        if out_dir:
            write_metrics(out_dir, result)
    if out_dir:
        save_model(Path(out_dir) / "model.npz", model, config)
        plot_run(out_dir, result)
    return result


def write_metrics(out_dir, result: RunResult) -> None:
    out = Path(out_dir)
    write_atomic(out / "config.json", json.dumps(asdict(result.config), indent=2) + "\n")
    write_atomic(out / "metrics.json", json.dumps(result.metrics, indent=2) + "\n")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(result.metrics[0]))
    writer.writeheader()
    writer.writerows(result.metrics)
    write_atomic(out / "metrics.csv", buf.getvalue())


def save_model(path, model: MLP, config: TrainConfig) -> None:
    """``model.npz``: the parameters W0, b0, W1, ... and the config as JSON; written atomically."""
    arrays = {}
    for n, layer in enumerate(model.layers):
        arrays[f"W{n}"] = to_numpy(layer.W.value)
        arrays[f"b{n}"] = to_numpy(layer.b.value)
    buf = io.BytesIO()
    np.savez(buf, config=np.array(json.dumps(asdict(config))), **arrays)
    write_atomic(path, buf.getvalue())


def load_model(path, device: str | None = None):
    """(model, config) from a ``model.npz`` that :func:`save_model` wrote."""
    with np.load(path, allow_pickle=False) as f:
        raw = json.loads(str(f["config"]))
        raw["hidden"] = tuple(raw["hidden"])
        config = TrainConfig(**raw)
        if device:
            config = replace(config, device=device)
        xp = namespace(config.device)
        model = build_model(config, xp, f["W0"].shape[0], f[f"W{len(config.hidden)}"].shape[1])
        for n, layer in enumerate(model.layers):
            layer.W.value = xp.asarray(f[f"W{n}"])
            layer.b.value = xp.asarray(f[f"b{n}"])
    return model, config


def evaluate(path, data_dir=None, device: str | None = None) -> float:
    """Test accuracy of a saved model."""
    model, config = load_model(path, device)
    if data_dir:
        config = replace(config, data_dir=data_dir)
    data = load_data(config)
    xp = namespace(config.device)
    return accuracy(model, xp.asarray(data["test"].images), xp.asarray(data["test"].labels), xp)


def plot_run(out_dir, result: RunResult) -> None:
    plot_runs(Path(out_dir), {"": result}, prefix="")


def plot_runs(out_dir: Path, runs: dict, prefix: str = "compare") -> list:
    """Loss and accuracy plots; one line per run (an overlay when there are several)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    paths = []
    for key, ylabel, name in (("train_loss", "train loss", "loss"), ("val_accuracy", "validation accuracy", "accuracy")):
        fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
        for label, res in runs.items():
            epochs = [m["epoch"] for m in res.metrics]
            ax.plot(epochs, [m[key] for m in res.metrics], marker="o", label=label or None)
            if key == "val_accuracy" and not prefix:
                ax.plot(epochs, [m["test_accuracy"] for m in res.metrics], marker="s", label="test accuracy")
                ax.legend()
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if prefix:
            ax.legend()
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        plt.close(fig)
        path = out_dir / (f"{prefix}_{name}.png" if prefix else f"{name}.png")
        write_atomic(path, buf.getvalue())
        paths.append(path)
    return paths


COMPARABLE = {
    "activation": str, "hidden": parse_hidden,
    "momentum": float, "init": str, "lr": float, "optimizer": str, "batch_size": int, "residual": lambda v: v in ("1", "true", "yes"),
}


def parse_compare(text: str):
    """``key=v1,v2`` → (key, [values]); e.g. ``hidden=100,300,300-100``."""
    key, sep, values = text.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or key not in COMPARABLE:
        raise ValueError(f"--compare takes KEY=V1,V2,... with KEY one of {', '.join(COMPARABLE)}")
    return key, [COMPARABLE[key](v.strip()) for v in values.split(",") if v.strip()]


def compare(config: TrainConfig, key: str, values: list, out_dir, progress: bool = True) -> dict:
    """One run per value of ``key`` (same seed), each in its own folder, and overlay plots."""
    out = Path(out_dir)
    runs = {}
    data = load_data(config)
    for v in values:
        cfg = replace(config, **{key: v})
        if key == "momentum":  # momentum is a property of SGD: every run uses SGD, from 0 (plain) up
            cfg = replace(cfg, optimizer="sgd")
        label = f"{key}={'-'.join(map(str, v)) if isinstance(v, tuple) else v}"
        runs[label] = train(cfg, out / label, progress, data)
    plot_runs(out, runs)
    summary = {label: r.metrics[-1] for label, r in runs.items()}
    write_atomic(out / "compare.json", json.dumps(summary, indent=2) + "\n")
    return runs
