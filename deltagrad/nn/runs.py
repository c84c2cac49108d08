"""Run folders: what a run writes (config, metrics, model, checkpoint), atomically, and reading it
back, where a corrupt or foreign file is one :class:`RunFileError` line.

A run folder holds

- ``config.json``: the settings (``data_dir`` stored absolute, so the folder works from anywhere);
- ``metrics.json``: ``{"status": ..., "epochs_planned": N, "epochs_done": k, "epochs": [rows]}``,
  status ``running``, ``complete``, ``interrupted`` (with ``interrupted_by``) or ``diverged``;
  ``metrics.csv``: the rows;
- ``model.npz``: the weights ``W0, b0, W1, ...`` and the config and epoch as JSON strings (no pickle);
- ``checkpoint.npz``: the optimiser's state and the shuffling generator's after the same epoch,
  which ``--resume`` continues from;
- ``loss.png`` and ``accuracy.png``.

>>> import tempfile
>>> from deltagrad.nn.config import TrainConfig
>>> d = Path(tempfile.mkdtemp())
>>> write_metrics(d, RunResult(TrainConfig(), [], status="running"))
>>> read_metrics(d)["status"]
'running'
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deltagrad.files import write_atomic
from deltagrad.nn.backend import to_numpy
from deltagrad.nn.config import ConfigError, TrainConfig, config_dict, config_from_dict

CONFIG, METRICS, METRICS_CSV = "config.json", "metrics.json", "metrics.csv"
MODEL, CHECKPOINT = "model.npz", "checkpoint.npz"
PLOTS = ("loss.png", "accuracy.png")
COLUMNS = ("epoch", "train_loss", "val_accuracy", "test_accuracy", "seconds")
MODEL_FORMAT = "deltagrad-mlp"


class RunFileError(ValueError):
    """A run file that is missing, corrupt, or not one that deltagrad wrote; one line."""


@dataclass
class RunResult:
    """A run: its config, one metrics row per finished epoch, its model, its status."""

    config: TrainConfig
    metrics: list = field(default_factory=list)
    model: object = None
    status: str = "complete"
    interrupted_by: str | None = None
    out_dir: Path | None = None
    message: str | None = None  # why it diverged

    @property
    def epochs_done(self) -> int:
        return len(self.metrics)


# ---- metrics and config ------------------------------------------------------------------------

def write_metrics(out_dir, result: RunResult) -> None:
    """``config.json``, ``metrics.json`` and ``metrics.csv`` of ``result``."""
    out = Path(out_dir)
    write_atomic(out / CONFIG, json.dumps(config_dict(result.config), indent=2) + "\n")
    doc = {"status": result.status, "epochs_planned": result.config.epochs, "epochs_done": result.epochs_done}
    if result.interrupted_by:
        doc["interrupted_by"] = result.interrupted_by
    if result.message:
        doc["message"] = result.message
    doc["epochs"] = result.metrics
    write_atomic(out / METRICS, json.dumps(doc, indent=2) + "\n")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(COLUMNS), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(result.metrics)
    write_atomic(out / METRICS_CSV, buf.getvalue())


def _read_json(path: Path, what: str):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunFileError(f"{path} does not exist: {path.parent} is not a deltagrad run folder") from None
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise RunFileError(f"{path} is not a readable {what} ({type(err).__name__})") from None


def read_metrics(run_dir) -> dict:
    """``metrics.json`` as a dict (a list from an older version counts as a complete run)."""
    path = Path(run_dir) / METRICS
    doc = _read_json(path, "metrics file")
    if isinstance(doc, list):
        doc = {"status": "complete", "epochs": doc}
    rows = doc.get("epochs") if isinstance(doc, dict) else None
    if not isinstance(rows, list) or not all(isinstance(r, dict) and set(COLUMNS) <= set(r) for r in rows):
        raise RunFileError(f"{path} is not a deltagrad metrics file")
    if [r["epoch"] for r in rows] != list(range(1, len(rows) + 1)):
        raise RunFileError(f"{path}: its epochs are not 1, 2, ... in order")
    doc.setdefault("status", "complete")
    return doc


def read_config(run_dir) -> TrainConfig:
    """The checked config of a run folder; a relative ``data_dir`` is taken from the folder."""
    path = Path(run_dir) / CONFIG
    try:
        config = config_from_dict(_read_json(path, "config file"), str(path))
    except ConfigError as err:
        raise RunFileError(str(err)) from None
    return _data_dir_from(config, path.parent)


def _data_dir_from(config: TrainConfig, run_dir: Path) -> TrainConfig:
    from dataclasses import replace

    if config.data_dir is not None and not Path(config.data_dir).is_absolute():
        return replace(config, data_dir=str((run_dir / config.data_dir).resolve()))
    return config


def load_result(run_dir) -> RunResult:
    """A run's config, metrics and status from its folder (no model)."""
    doc = read_metrics(run_dir)
    return RunResult(read_config(run_dir), doc["epochs"], None, doc["status"], doc.get("interrupted_by"),
                     Path(run_dir), doc.get("message"))


# ---- npz files -----------------------------------------------------------------------------------

def _npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _json_array(obj) -> np.ndarray:
    return np.array(json.dumps(obj))


class _Npz:
    """An .npz archive opened without pickle; every failure a RunFileError naming the file."""

    def __init__(self, path, what: str):
        self.path, self.what = Path(path), what
        if not self.path.exists():
            raise RunFileError(f"{self.path} does not exist")
        if self.path.is_dir():
            raise RunFileError(f"{self.path} is a folder, not a {what} file")
        if self.path.stat().st_size == 0:
            raise RunFileError(f"{self.path} is empty: not a {what} file")
        try:
            self.f = np.load(self.path, allow_pickle=False)
        except zipfile.BadZipFile:
            raise RunFileError(f"{self.path} is truncated or damaged: not a readable {what} file") from None
        except (OSError, ValueError, EOFError):
            raise RunFileError(f"{self.path} is not a {what} file that deltagrad wrote (not an .npz archive)") from None
        if not hasattr(self.f, "files"):
            raise RunFileError(f"{self.path} is a single NumPy array, not a {what} file that deltagrad wrote")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()
        return False

    def __contains__(self, name):
        return name in self.f.files

    def array(self, name: str) -> np.ndarray:
        if name not in self.f.files:
            raise RunFileError(f"{self.path} has no {name!r}: not a {self.what} file that deltagrad wrote")
        try:
            return self.f[name]
        except ValueError as err:
            if "pickle" in str(err):
                raise RunFileError(f"{self.path}: {name!r} holds pickled objects, which deltagrad never "
                                   "loads") from None
            raise RunFileError(f"{self.path} is truncated or damaged ({name!r} cannot be read)") from None
        except (OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError):
            raise RunFileError(f"{self.path} is truncated or damaged ({name!r} cannot be read)") from None

    def json(self, name: str):
        a = self.array(name)
        if a.shape != () or a.dtype.kind != "U":
            raise RunFileError(f"{self.path}: {name!r} is not a JSON string: not a {self.what} file "
                               "that deltagrad wrote")
        try:
            return json.loads(str(a))
        except ValueError:
            raise RunFileError(f"{self.path}: {name!r} is not valid JSON") from None


# ---- the model -----------------------------------------------------------------------------------

def save_model(path, model, config: TrainConfig, epoch: int | None = None) -> None:
    """``model.npz``: W0, b0, W1, ..., the config and the epoch as JSON; written atomically."""
    arrays = {}
    for n, layer in enumerate(model.layers):
        arrays[f"W{n}"] = to_numpy(layer.W.value)
        arrays[f"b{n}"] = to_numpy(layer.b.value)
    meta = {"format": MODEL_FORMAT, "version": 1, "epoch": epoch}
    write_atomic(path, _npz_bytes(config=_json_array(config_dict(config)), meta=_json_array(meta), **arrays))


def read_model_file(path) -> tuple[dict, TrainConfig, dict]:
    """(arrays, config, meta) of a ``model.npz``, every shape checked against the config."""
    path = Path(path)
    with _Npz(path, "model") as f:
        try:
            config = config_from_dict(f.json("config"), f"{path}'s config")
        except ConfigError as err:
            raise RunFileError(str(err)) from None
        meta = f.json("meta") if "meta" in f else {}
        if not isinstance(meta, dict):
            raise RunFileError(f"{path}: 'meta' is not a table")
        convs = len(config.channels) if config.model == "cnn" else 0
        layers = convs + len(config.hidden) + 1
        arrays = {}
        for n in range(layers):
            arrays[f"W{n}"], arrays[f"b{n}"] = f.array(f"W{n}"), f.array(f"b{n}")
    if convs:
        _check_cnn_arrays(path, arrays, config)
        return arrays, _data_dir_from(config, path.parent), meta
    for n in range(layers):
        if arrays[f"W{n}"].ndim != 2 or arrays[f"b{n}"].ndim != 1:
            raise RunFileError(f"{path}: W{n} {arrays[f'W{n}'].shape} and b{n} {arrays[f'b{n}'].shape} "
                               "are not a weight matrix and a bias vector")
    sizes = [arrays["W0"].shape[0], *config.hidden, arrays[f"W{layers - 1}"].shape[1]]
    for n in range(layers):
        w, b = arrays[f"W{n}"], arrays[f"b{n}"]
        if w.shape != (sizes[n], sizes[n + 1]) or b.shape != (sizes[n + 1],):
            raise RunFileError(f"{path}: W{n} {w.shape} and b{n} {b.shape} do not fit the network "
                               f"{'-'.join(map(str, sizes))} of its config")
        if w.dtype.kind != "f" or b.dtype.kind != "f":
            raise RunFileError(f"{path}: W{n} or b{n} is not a floating-point array")
    return arrays, _data_dir_from(config, path.parent), meta


def _check_cnn_arrays(path, arrays: dict, config: TrainConfig) -> None:
    """Each array of a CNN's model file has the shape its config gives; RunFileError otherwise."""
    from deltagrad.nn.config import conv_shapes, layer_sizes

    shapes = [(w, (w[0],)) for w, _ in conv_shapes(config)]
    sizes = layer_sizes(config)
    shapes += [((a, b), (b,)) for a, b in zip(sizes[:-1], sizes[1:])]
    for n, (w, b) in enumerate(shapes):
        got_w, got_b = arrays[f"W{n}"], arrays[f"b{n}"]
        if got_w.shape != w or got_b.shape != b or got_w.dtype.kind != "f" or got_b.dtype.kind != "f":
            raise RunFileError(f"{path}: W{n} {got_w.shape} and b{n} {got_b.shape} do not fit the CNN of its config "
                               f"(W{n} {w}, b{n} {b}, floating point)")


def load_model(path, device: str | None = None):
    """(model, config) from a ``model.npz`` that :func:`save_model` wrote; RunFileError otherwise."""
    from dataclasses import replace

    from deltagrad.nn.backend import namespace
    from deltagrad.nn.modules import CNN, MLP

    arrays, config, _ = read_model_file(path)
    if device:
        config = replace(config, device=device)
    xp = namespace(config.device)
    if config.model == "cnn":
        model = CNN(config.channels, config.kernel, config.hidden, config.pool, config.activation, "zeros", None, xp,
                    config.dtype)
    else:
        sizes = [arrays["W0"].shape[0], *config.hidden, arrays[f"W{len(config.hidden)}"].shape[1]]
        model = MLP(sizes, config.activation, "zeros", config.residual, None, xp, config.dtype)
    for n, layer in enumerate(model.layers):
        layer.W.value = xp.asarray(arrays[f"W{n}"].astype(config.dtype, copy=False))
        layer.b.value = xp.asarray(arrays[f"b{n}"].astype(config.dtype, copy=False))
    return model, config


def model_epoch(path) -> int | None:
    """The epoch a ``model.npz`` was saved after (None when it does not say)."""
    with _Npz(path, "model") as f:
        meta = f.json("meta") if "meta" in f else {}
    return meta.get("epoch") if isinstance(meta, dict) else None


# ---- the checkpoint ------------------------------------------------------------------------------

def save_checkpoint(path, optimizer, rng, epoch: int) -> None:
    """``checkpoint.npz``: the optimiser's arrays and numbers, the generator's state and the epoch."""
    state = optimizer.state_dict()
    arrays = {}
    for name, values in state["arrays"].items():
        for i, v in enumerate(values):
            if v is not None:
                arrays[f"opt.{name}.{i}"] = to_numpy(v)
    meta = {"format": "deltagrad-checkpoint", "version": 1, "epoch": epoch,
            "optimizer": type(optimizer).__name__, "numbers": state["numbers"],
            "arrays": {name: len(values) for name, values in state["arrays"].items()},
            "rng": rng.bit_generator.state if rng is not None else None}
    write_atomic(path, _npz_bytes(meta=_json_array(meta), **arrays))


def load_checkpoint(path) -> dict:
    """``{"epoch", "optimizer", "state" (for load_state_dict), "rng"}`` from a checkpoint file."""
    path = Path(path)
    with _Npz(path, "checkpoint") as f:
        meta = f.json("meta")
        if not isinstance(meta, dict) or meta.get("format") != "deltagrad-checkpoint":
            raise RunFileError(f"{path} is not a checkpoint that deltagrad wrote")
        try:
            arrays = {name: [f.array(f"opt.{name}.{i}") if f"opt.{name}.{i}" in f else None for i in range(int(count))]
                      for name, count in meta["arrays"].items()}
            return {"epoch": int(meta["epoch"]), "optimizer": meta["optimizer"], "rng": meta["rng"],
                    "state": {"arrays": arrays, "numbers": dict(meta["numbers"])}}
        except (KeyError, TypeError, ValueError, AttributeError):
            raise RunFileError(f"{path} is not a checkpoint that deltagrad wrote") from None
