"""Plots of runs: one run's loss and accuracy, and a grid's overlays, one figure per metric.

Every line is in the legend (with several seeds: the mean, and a band of ± one standard
deviation that shares its legend entry), the axis labels say what is drawn, and the epoch axis
has integer ticks only. matplotlib is imported when a figure is made, not with this module.
"""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import numpy as np

from deltagrad.files import write_atomic
from deltagrad.nn.config import format_value, layer_sizes, split_sizes

#: The overlay plots: metric → (file name, y-axis label).
OVERLAYS = {
    "train_loss": ("compare_train_loss.png", "training loss (cross-entropy per image)"),
    "val_accuracy": ("compare_val_accuracy.png", "validation accuracy (fraction correct)"),
    "test_accuracy": ("compare_test_accuracy.png", "test accuracy (fraction correct)"),
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def describe(config) -> str:
    """A run's settings in a few words, for titles: ``784-300-10 relu, adam lr 0.001, batch 128``."""
    shape = "-".join(map(str, layer_sizes(config)))
    text = f"{shape} {config.activation}, {config.optimizer} lr {format_value(config.lr)}"
    if config.momentum:
        text += f" momentum {format_value(config.momentum)}"
    if config.lr_decay != 1.0:
        text += f" decay {format_value(config.lr_decay)}/epoch"
    text += f", batch {config.batch_size}"
    if config.shift:
        text += f", shifts ±{config.shift} px"
    if config.preset:
        text += f", preset {config.preset}"
    return text


def epoch_axis(ax, last_epoch: int) -> None:
    """Label the x axis 'epoch', with integer ticks from 1 to ``last_epoch`` only."""
    from matplotlib.ticker import MaxNLocator

    last = max(1, int(last_epoch))
    ax.set_xlim(0.5, last + 0.5)
    if last <= 15:
        ax.set_xticks(range(1, last + 1))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    ax.set_xlabel("epoch")


def _status_note(result) -> str:
    if result.status == "interrupted":
        return f" (interrupted after epoch {result.epochs_done} of {result.config.epochs})"
    if result.status == "diverged":
        return f" (diverged in epoch {result.epochs_done + 1})"
    return ""


def run_figures(result) -> dict:
    """``{"loss.png": figure, "accuracy.png": figure}`` of one run."""
    plt = _pyplot()
    epochs = [m["epoch"] for m in result.metrics]
    title = describe(result.config) + _status_note(result)
    _, n_val, n_test = split_sizes(result.config)
    figs = {}
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=100)
    ax.plot(epochs, [m["train_loss"] for m in result.metrics], marker="o", label="training loss")
    ax.set_ylabel("training loss (cross-entropy per image)")
    figs["loss.png"] = fig
    fig, ax2 = plt.subplots(figsize=(6.4, 4.2), dpi=100)
    ax2.plot(epochs, [m["val_accuracy"] for m in result.metrics], marker="o", label=f"validation ({n_val} images)")
    ax2.plot(epochs, [m["test_accuracy"] for m in result.metrics], marker="s", label=f"test ({n_test} images)")
    ax2.set_ylabel("accuracy (fraction correct)")
    figs["accuracy.png"] = fig
    for a in (ax, ax2):
        epoch_axis(a, len(epochs))
        a.set_title("\n".join(textwrap.wrap(title, 90)), fontsize=9)
        a.grid(alpha=0.3)
        a.legend()
    for f in figs.values():
        f.tight_layout()
    return figs


def mean_and_spread(runs, key: str):
    """(epochs, mean, standard deviation) of ``key`` over the runs that reached each epoch."""
    last = max((len(r.metrics) for r in runs), default=0)
    epochs, mean, sd = [], [], []
    for e in range(1, last + 1):
        values = [r.metrics[e - 1][key] for r in runs if len(r.metrics) >= e]
        epochs.append(e)
        mean.append(float(np.mean(values)))
        sd.append(float(np.std(values)))
    return epochs, np.array(mean), np.array(sd)


def overlay_figures(groups, title: str = "") -> dict:
    """One figure per metric (``OVERLAYS``), one legend entry per setting.

    ``groups`` is a list of (label, [RunResult, ...]); with several runs (seeds) a setting is
    drawn as its mean with a band of ± one standard deviation.
    """
    plt = _pyplot()
    seeds = max((len(runs) for _, runs in groups), default=1)
    last = max((len(r.metrics) for _, runs in groups for r in runs), default=1)
    figs = {}
    for key, (name, ylabel) in OVERLAYS.items():
        fig, ax = plt.subplots(figsize=(7.0, 4.4), dpi=100)
        handles, labels = [], []
        for label, runs in groups:
            epochs, mean, sd = mean_and_spread(runs, key)
            if not epochs:
                continue
            (line,) = ax.plot(epochs, mean, marker="o", markersize=4)
            handle = line
            if len(runs) > 1:
                band = ax.fill_between(epochs, mean - sd, mean + sd, color=line.get_color(), alpha=0.2, linewidth=0)
                handle = (line, band)
            handles.append(handle)
            labels.append(label or "all runs")
        epoch_axis(ax, last)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        note = f"mean ± 1 s.d. over {seeds} seeds" if seeds > 1 else ""
        if key == "train_loss":
            note = "; ".join(t for t in ("mean over each epoch", note) if t)
        ax.set_title("\n".join(textwrap.wrap(title, 90) + ([note] if note else [])), fontsize=9)
        if handles:
            ax.legend(handles, labels, fontsize=8)
        fig.tight_layout()
        figs[name] = fig
    return figs


def save_figures(out_dir, figs: dict) -> list:
    """Write each figure as PNG (atomically) and close it; the paths written."""
    plt = _pyplot()
    paths = []
    for name, fig in figs.items():
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        plt.close(fig)
        path = Path(out_dir) / name
        write_atomic(path, buf.getvalue())
        paths.append(path)
    return paths


def plot_run(out_dir, result) -> list:
    """``loss.png`` and ``accuracy.png`` of a run (nothing before its first epoch)."""
    return save_figures(out_dir, run_figures(result)) if result.metrics else []
