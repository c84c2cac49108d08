"""Experiment grids: every combination of the ``--compare`` settings, each with one or more seeds,
each in its own run folder named after its settings; overlay plots, one per metric; and a
summary table (CSV and Markdown) of final and best accuracies and seconds per epoch.

A grid folder holds ``grid.json`` (what was asked, so that ``--resume`` can finish it), one
folder per setting (``activation=relu,hidden=300``; with several seeds, ``seed=0``, ``seed=1``,
... inside it), ``compare_train_loss.png``, ``compare_val_accuracy.png``,
``compare_test_accuracy.png``, ``summary.csv`` and ``summary.md``.

>>> from deltagrad.nn.config import TrainConfig
>>> runs = expand_grid(TrainConfig(), ["activation=sigmoid,relu", "hidden=100,300-100"])
>>> for r in runs: print(r.folder)
activation=sigmoid,hidden=100
activation=sigmoid,hidden=300-100
activation=relu,hidden=100
activation=relu,hidden=300-100
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from deltagrad.files import write_atomic
from deltagrad.nn.config import (ConfigError, TrainConfig, check_config, config_dict, config_from_dict, for_model,
                                 format_value, parse_compare, resolve)
from deltagrad.nn.runs import METRICS, RunFileError, RunResult, load_result, read_metrics

GRID = "grid.json"
SUMMARY_CSV, SUMMARY_MD = "summary.csv", "summary.md"


@dataclass(frozen=True)
class GridRun:
    """One run of a grid: its settings (key, value) pairs, label, seed, config and folder."""

    settings: tuple
    label: str
    seed: int
    config: TrainConfig
    folder: str


def expand_grid(base: TrainConfig, compares=(), seeds: int = 1, keep=()) -> list:
    """The runs of a grid: every combination of the ``KEY=V1,V2`` texts, each with ``seeds`` seeds
    (``base.seed``, ``base.seed + 1``, ...). A run of another model takes that model's defaults
    (:func:`~deltagrad.nn.config.for_model`) but for the settings named in ``keep``. Every run's
    config is checked (memory included); the first bad one is a ConfigError that names it.
    """
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ConfigError(f"--seeds must be an integer of at least 1, got {seeds!r}")
    parsed = [parse_compare(text) for text in compares]
    keys = [k for k, _ in parsed]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise ConfigError(f"--compare {twice[0]} is given twice: give its values in one --compare")
    runs = []
    for combo in itertools.product(*[values for _, values in parsed]):
        settings = tuple(zip(keys, combo))
        changes = dict(settings)
        if "momentum" in changes and "optimizer" not in changes and base.optimizer not in ("sgd", "momentum"):
            changes["optimizer"] = "sgd"  # momentum is a property of SGD: every run uses SGD, from 0 (plain) up
        label = ",".join(f"{k}={format_value(v)}" for k, v in settings)
        for n in range(seeds):
            seed = base.seed + n
            run_base = for_model(base, changes["model"], keep) if "model" in changes else base
            config = resolve(replace(run_base, **{k: v for k, v in changes.items() if k != "model"}, seed=seed))
            try:
                check_config(config)
            except ConfigError as err:
                raise ConfigError(f"run {label or 'seed=' + str(seed)}: {err}") from None
            folder = "/".join(p for p in (label, f"seed={seed}" if seeds > 1 else "") if p)
            runs.append(GridRun(settings, label, seed, config, folder))
    return runs


@dataclass(frozen=True)
class Grid:
    """A planned grid: the base config, the ``--compare`` texts, the seeds, and its runs."""

    base: TrainConfig
    compares: tuple
    seeds: int
    runs: tuple
    keep: tuple = ()  # settings given on the command line, which a run of another model keeps


def plan_grid(base: TrainConfig, compares=(), seeds: int = 1, keep=()) -> Grid:
    """Expand and check every run of a grid (see :func:`expand_grid`)."""
    keep = tuple(sorted(keep))
    return Grid(base, tuple(compares), seeds, tuple(expand_grid(base, compares, seeds, keep)), keep)


def groups_of(runs: list, results: dict) -> list:
    """[(label, [RunResult of each seed that has one])] in the grid's order."""
    out = {}
    for run in runs:
        out.setdefault(run.label, [])
        if run.folder in results:
            out[run.label].append(results[run.folder])
    return list(out.items())


def run_grid(grid: Grid, out_dir, data: dict | None = None, progress: bool = True, resume: bool = False,
             on_run=None) -> dict:
    """Train every run of the grid (a finished run is kept when ``resume``); write the overlay
    plots and the summary. ``{folder: RunResult}``; ``on_run(run, result)`` after each run.

    A run whose loss diverges is recorded as such and the grid goes on; Ctrl-C or SIGTERM, within
    a run or between two, stop the grid after the plots and summary of what has run are written
    (RunInterrupted).
    """
    from deltagrad.nn.signals import StopSignals, signal_name, signal_of
    from deltagrad.nn.train import Diverged, RunInterrupted, load_data, train

    out = Path(out_dir)
    runs = list(grid.runs)
    _write_grid_file(out, grid, "running")
    datasets = {} if data is None else {None: data}
    results = {}
    current = runs[0]
    try:
        with StopSignals():  # a signal between two runs stops the grid as one within a run does
            for current in runs:
                folder = out / current.folder
                cached = _finished(folder, current.config) if resume else None
                if cached is not None:
                    results[current.folder] = cached
                else:
                    config = current.config
                    key = None if data is not None else (config.data, config.seed if config.data == "synthetic" else 0)
                    if key not in datasets:
                        datasets[key] = load_data(config)
                    again = resume and (folder / METRICS).exists()
                    try:
                        results[current.folder] = train(config, folder, progress, datasets[key], resume=again,
                                                        label=current.folder)
                    except Diverged as err:
                        results[current.folder] = err.result
                if on_run is not None:
                    on_run(current, results[current.folder])
    except KeyboardInterrupt as err:
        if isinstance(err, RunInterrupted):
            results[current.folder] = err.result
        with StopSignals() as again, again.deferred(raise_pending=False):
            write_outputs(out, runs, results)
            _write_grid_file(out, grid, "interrupted")
        if isinstance(err, RunInterrupted):
            raise
        signum = signal_of(err)
        stopped = RunResult(current.config, [], status="interrupted", interrupted_by=signal_name(signum),
                            out_dir=out / current.folder)
        raise RunInterrupted(stopped, signum) from None
    write_outputs(out, runs, results)
    _write_grid_file(out, grid, "complete")
    return results


def _finished(folder: Path, config: TrainConfig):
    """The result of a run that needs no more training (complete, or diverged), else None."""
    if not (folder / METRICS).exists():
        return None
    doc = read_metrics(folder)
    if doc["status"] == "diverged" or (doc["status"] == "complete" and len(doc["epochs"]) >= config.epochs):
        return load_result(folder)
    return None


def _write_grid_file(out: Path, grid: Grid, status: str) -> None:
    doc = {"status": status, "base": config_dict(grid.base), "compare": list(grid.compares), "seeds": grid.seeds,
           "keep": list(grid.keep), "runs": [{"folder": r.folder, "label": r.label, "seed": r.seed} for r in grid.runs]}
    write_atomic(out / GRID, json.dumps(doc, indent=2) + "\n")


def read_grid(grid_dir) -> dict:
    """``grid.json`` of a grid folder: ``{"base": TrainConfig, "compare": [...], "seeds": N, "keep": [...],
    "runs": [...]}`` (``keep`` is [] in a file written before it existed)."""
    path = Path(grid_dir) / GRID
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        base = config_from_dict(doc["base"], f"{path}'s base config")
        compares, seeds, keep = list(doc["compare"]), int(doc["seeds"]), list(doc.get("keep", []))
        if not all(isinstance(c, str) for c in compares + keep):
            raise TypeError
    except FileNotFoundError:
        raise RunFileError(f"{path} does not exist") from None
    except ConfigError as err:
        raise RunFileError(str(err)) from None
    except (OSError, ValueError, KeyError, TypeError):
        raise RunFileError(f"{path} is not a grid file that deltagrad wrote") from None
    return {**doc, "base": base, "compare": compares, "seeds": seeds, "keep": keep}


# ---- outputs ---------------------------------------------------------------------------------

def write_outputs(out: Path, runs: list, results: dict) -> list:
    """The overlay plots and the summary table of the runs that have results."""
    from deltagrad.nn.plots import describe, overlay_figures, save_figures

    groups = [(_legend_label(label, runs), rs) for label, rs in groups_of(runs, results) if rs]
    title = describe(runs[0].config) if not runs[0].settings else _fixed_settings(runs)
    paths = save_figures(out, overlay_figures(groups, title))
    rows = summary_rows(runs, results)
    write_atomic(out / SUMMARY_CSV, summary_csv(rows))
    write_atomic(out / SUMMARY_MD, summary_markdown(rows))
    return paths + [out / SUMMARY_CSV, out / SUMMARY_MD]


def _legend_label(label: str, runs: list) -> str:
    """A setting's label, with what follows from it and differs between settings (an optimiser's
    own learning rate, SGD's momentum): ``optimizer=momentum (lr 0.01, momentum 0.9)``."""
    keys = {k for k, _ in runs[0].settings}
    mine = next(r.config for r in runs if r.label == label)
    extras = [f"{k} {format_value(getattr(mine, k))}" for k in ("optimizer", "lr", "momentum")
              if k not in keys and len({getattr(r.config, k) for r in runs}) > 1]
    return f"{label} ({', '.join(extras)})" if extras else label


def _fixed_settings(runs: list) -> str:
    """What the runs share, in a few words (the compared settings left out)."""
    c = runs[0].config
    keys = {k for k, _ in runs[0].settings}
    parts = []
    for k in ("hidden", "activation", "optimizer", "lr", "momentum", "init", "batch_size"):
        values = {getattr(r.config, k) for r in runs}
        if k in keys or (k == "momentum" and values == {0.0}):
            continue
        if len(values) == 1:
            parts.append(f"{k.replace('_', ' ')} {format_value(values.pop())}")
    if c.preset:
        parts.append(f"preset {c.preset}")
    if c.limit:
        parts.append(f"{c.limit} images")
    return ", ".join(parts)


def _stat(values: list):
    return (float(np.mean(values)), float(np.std(values))) if values else (float("nan"), float("nan"))


def summary_rows(runs: list, results: dict) -> list:
    """One row per setting: its settings, seeds, and mean (and s.d. over seeds) of the final and
    best validation and test accuracies and of the seconds per epoch."""
    rows = []
    keys = {k for k, _ in runs[0].settings}
    derived = [k for k in ("optimizer", "lr", "momentum")  # follow from a compared setting, and differ
               if k not in keys and len({getattr(r.config, k) for r in runs}) > 1]
    for label, rs in groups_of(runs, results):
        first = next(r for r in runs if r.label == label)
        done = [r for r in rs if r.metrics]
        row = {"setting": label or "all", **{k: format_value(v) for k, v in first.settings},
               **{k: format_value(getattr(first.config, k)) for k in derived}, "seeds": len(rs)}
        for key in ("val_accuracy", "test_accuracy"):
            row[f"final_{key}"] = _stat([r.metrics[-1][key] for r in done])
            row[f"best_{key}"] = _stat([max(m[key] for m in r.metrics) for r in done])
        row["best_val_epoch"] = (int(np.argmax([m["val_accuracy"] for m in done[0].metrics])) + 1
                                 if len(done) == 1 else None)
        row["seconds_per_epoch"] = _stat([float(np.mean([m["seconds"] for m in r.metrics])) for r in done])
        row["epochs"] = f"{min((r.epochs_done for r in rs), default=0)}/{runs[0].config.epochs}"
        statuses = sorted({r.status for r in rs})
        row["status"] = ",".join(statuses) if statuses else "not run"
        rows.append(row)
    return rows


STAT_COLUMNS = ("final_val_accuracy", "best_val_accuracy", "final_test_accuracy", "best_test_accuracy",
                "seconds_per_epoch")


def summary_csv(rows: list) -> str:
    """The summary as CSV: a column per setting, then means and (with several seeds) s.d."""
    if not rows:
        return ""
    keys = [k for k in rows[0] if k not in STAT_COLUMNS and k not in ("best_val_epoch", "epochs", "status")]
    head = keys + ["epochs"] + [c for s in STAT_COLUMNS for c in (s, s + "_sd")] + ["best_val_epoch", "status"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(head)
    for row in rows:
        several = row["seeds"] > 1
        stats = []
        for s in STAT_COLUMNS:
            mean, sd = row[s]
            stats += [_num(mean, s), _num(sd, s) if several else ""]
        w.writerow([row[k] for k in keys] + [row["epochs"]] + stats +
                   ["" if row["best_val_epoch"] is None else row["best_val_epoch"], row["status"]])
    return buf.getvalue()


def _num(x: float, column: str) -> str:
    if x != x:
        return ""
    return f"{x:.3f}" if column == "seconds_per_epoch" else f"{x:.4f}"


def summary_markdown(rows: list) -> str:
    """The summary as a Markdown table (mean ± s.d. over seeds where there are several)."""
    if not rows:
        return ""
    setting_keys = [k for k in rows[0] if k not in STAT_COLUMNS and k not in ("setting", "seeds", "best_val_epoch",
                                                                                 "epochs", "status")]
    keys = setting_keys or ["setting"]
    show_status = any(r["status"] != "complete" for r in rows)
    head = keys + ["seeds", "epochs", "final val acc", "best val acc", "final test acc", "best test acc", "s/epoch"]
    head += ["status"] if show_status else []
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for row in rows:
        several = row["seeds"] > 1

        def cell(s, row=row, several=several):
            mean, sd = row[s]
            if mean != mean:
                return "–"
            return _num(mean, s) + (f" ± {_num(sd, s)}" if several else "")

        best_val = cell("best_val_accuracy") + (f" (epoch {row['best_val_epoch']})" if row["best_val_epoch"] else "")
        cells = [row[k] for k in keys] + [str(row["seeds"]), row["epochs"], cell("final_val_accuracy"), best_val,
                                           cell("final_test_accuracy"), cell("best_test_accuracy"),
                                           cell("seconds_per_epoch")]
        cells += [row["status"]] if show_status else []
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines) + "\n"
