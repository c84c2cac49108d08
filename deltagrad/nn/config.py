"""What a run depends on (``TrainConfig``), presets, and the checks every setting passes before
any data is read or any run starts.

A bad setting is a :class:`ConfigError` (a ``ValueError``) with one line that names the option:

>>> check_config(TrainConfig(lr=-0.01))
Traceback (most recent call last):
...
deltagrad.nn.config.ConfigError: --lr must be a finite number above 0, got -0.01
>>> parse_hidden("300,-100")
Traceback (most recent call last):
...
deltagrad.nn.config.ConfigError: '300,-100': widths must be positive integers, such as 300 or 300,100
>>> resolve(TrainConfig(optimizer="sgd")).lr
0.1
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import MISSING, asdict, dataclass, fields, replace
from pathlib import Path

from deltagrad.nn.backend import DEVICES
from deltagrad.nn.functions import ACTIVATIONS
from deltagrad.nn.modules import INITS, POOLS, cnn_side

OPTIMIZERS = ("sgd", "momentum", "adam", "rmsprop")
#: The learning rate of each optimiser when ``--lr`` is not given (for the mean loss).
DEFAULT_LR = {"sgd": 0.1, "momentum": 0.01, "adam": 1e-3, "rmsprop": 1e-3}
LOSSES = ("mean", "sum")
PIXELS = ("unit", "raw", "standard")
DTYPES = ("float32", "float64")
DATASETS = {"mnist": (60000, 10000), "synthetic": (6000, 1000)}  # training and test images
FEATURES, CLASSES = 784, 10
MODELS = ("mlp", "cnn")
#: The seeds' CNN: conv 1→6 5×5, pool, conv 6→16 5×5, pool, then fully connected 256→120→84→10.
CNN_HIDDEN = (120, 84)
#: The CNN's own defaults, each measured on MNIST over five seeds (Adam 1e-3): the seeds' fully
#: connected widths; standardised pixels (test accuracy after one epoch at batch 64 0.9765 ± 0.003,
#: against 0.9728 ± 0.003 in [0, 1]); batch 64 (the seeds'); the learning rate times 0.7 after each
#: epoch and each training image moved by up to one pixel each epoch. With the last two, one epoch
#: gives 0.9752 to 0.9799 and ten give 0.9911 to 0.9927 on every seed; without them 0.9728 to 0.9799
#: and 0.9886 to 0.9920 (bench/bench_cnn.py and the README's table).
CNN_DEFAULTS = {"hidden": CNN_HIDDEN, "pixels": "standard", "batch_size": 64, "lr_decay": 0.7, "shift": 1}
#: The largest ``--shift``: an MNIST digit sits inside the middle 20×20 pixels.
MAX_SHIFT = 4
#: A tenth of the training images (at most ``val_size``) is held out for validation.
MIN_LIMIT = 10
EVAL_BATCH = 2000


class ConfigError(ValueError):
    """A setting that cannot run; the message is one line that names the option."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run depends on."""

    hidden: tuple = (300,)
    activation: str = "relu"
    optimizer: str = "adam"
    lr: float | None = None  # None: the optimiser's default, DEFAULT_LR
    lr_decay: float = 1.0  # the learning rate of epoch e is lr * lr_decay**(e - 1)
    momentum: float = 0.0  # SGD only; --optimizer momentum means SGD with 0.9 unless given
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
    loss: str = "mean"  # or "sum" over the batch (vugrad)
    pixels: str = "unit"  # [0, 1], or "raw" 0-255 (vugrad)
    dtype: str = "float32"  # or "float64"
    shuffle: bool = True  # a new order of the training images each epoch, or always the file's order
    preset: str | None = None  # the preset the defaults came from (information only)
    model: str = "mlp"  # or "cnn": [conv, activation, 2x2 pool] per --channels, then --hidden, then 10
    channels: tuple = (6, 16)  # the CNN's convolutions' output channels
    kernel: int = 5  # the CNN's k×k kernels
    pool: str = "max"  # the CNN's 2×2 pooling: max (the seeds') or avg
    shift: int = 0  # move each training image by up to this many pixels each way, a new draw each epoch


#: Conventions of other code, as defaults that explicit options override.
PRESETS = {
    # vugrad's experiments/train_mlp.py: 784-3136-10 sigmoid, plain SGD with lr 1e-4 on the loss summed
    # over each batch of 128, raw 0-255 pixels in float64, the file's order, Glorot-normal weights
    # (std sqrt(2/(fan_in+fan_out))) and zero biases, the last 5000 training images for validation.
    "vugrad": dict(hidden=(3136,), activation="sigmoid", optimizer="sgd", lr=1e-4, momentum=0.0, batch_size=128,
                   init="glorot_normal", loss="sum", pixels="raw", dtype="float64", shuffle=False, val_size=5000),
}

FIELDS = {f.name: f for f in fields(TrainConfig)}


def option(name: str) -> str:
    """The command-line spelling of a setting: ``batch_size`` → ``--batch-size``."""
    return {"data": "--synthetic", "compares": "--compare"}.get(name, "--" + name.replace("_", "-"))


def model_defaults(model: str, preset: str | None = None) -> dict:
    """The settings whose default depends on the model (:data:`CNN_DEFAULTS`), under ``preset``:
    a preset's MLP widths do not apply to the CNN, which takes the seeds' 120,84; its other
    settings (vugrad's raw pixels, batch 128) do.

    >>> model_defaults("cnn")
    {'hidden': (120, 84), 'pixels': 'standard', 'batch_size': 64, 'lr_decay': 0.7, 'shift': 1}
    >>> model_defaults("mlp", "vugrad")
    {'hidden': (3136,), 'pixels': 'raw', 'batch_size': 128, 'lr_decay': 1.0, 'shift': 0}
    """
    given = PRESETS.get(preset, {})
    if model == "cnn":
        return {k: v if k == "hidden" else given.get(k, v) for k, v in CNN_DEFAULTS.items()}
    return {k: given.get(k, FIELDS[k].default) for k in CNN_DEFAULTS}


def for_model(config: TrainConfig, model: str, keep=()) -> TrainConfig:
    """``config`` with ``model``: each model-dependent setting still at the old model's default
    (:func:`model_defaults`, under the config's preset) takes the new model's, as
    :func:`make_config` would have given it (a grid's ``--compare model=mlp,cnn`` trains the CNN
    with its own fully connected layers, pixels, batch size and schedule); one set otherwise, or named in ``keep``
    (given on the command line), stays.

    >>> cnn = for_model(TrainConfig(), "cnn")
    >>> cnn.model, cnn.hidden, cnn.pixels, cnn.batch_size, cnn.lr_decay, cnn.shift
    ('cnn', (120, 84), 'standard', 64, 0.7, 1)
    >>> for_model(TrainConfig(hidden=(64,)), "cnn").hidden, for_model(TrainConfig(), "cnn", keep=("pixels",)).pixels
    ((64,), 'unit')
    """
    old, new = model_defaults(config.model, config.preset), model_defaults(model, config.preset)
    changes = {k: v for k, v in new.items() if k not in keep and getattr(config, k) == old[k]}
    return replace(config, model=model, **changes)


def make_config(preset: str | None = None, **given) -> TrainConfig:
    """TrainConfig's defaults, then the preset's, then ``given`` (settings left ``None`` are not given)."""
    if preset is not None and preset not in PRESETS:
        raise ConfigError(f"--preset {preset!r} is unknown: choose one of {', '.join(PRESETS)}")
    values = dict(PRESETS.get(preset, {}))
    values.update({k: v for k, v in given.items() if v is not None})
    if values.get("model") == "cnn":  # a preset's MLP widths do not apply; its other settings do
        for k, v in model_defaults("cnn", preset).items():
            if given.get(k) is None:
                values[k] = v
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
    if isinstance(values.get("data_dir"), (str, Path)):  # absolute, so that the run folder works from anywhere
        values["data_dir"] = str(Path(values["data_dir"]).resolve())
    return TrainConfig(**values, preset=preset)


def resolve(config: TrainConfig) -> TrainConfig:
    """Fill in what depends on other settings: the optimiser's learning rate and momentum, and an
    absolute data folder (so that a run folder works from anywhere)."""
    changes = {}
    if config.lr is None and config.optimizer in DEFAULT_LR:
        changes["lr"] = DEFAULT_LR[config.optimizer]
    if config.optimizer == "momentum" and not config.momentum:
        changes["momentum"] = 0.9
    if config.data_dir is not None and not Path(config.data_dir).is_absolute():
        changes["data_dir"] = str(Path(config.data_dir).resolve())
    if isinstance(config.hidden, list):
        changes["hidden"] = tuple(config.hidden)
    if isinstance(config.channels, list):
        changes["channels"] = tuple(config.channels)
    return replace(config, **changes) if changes else config


# ---- parsing ---------------------------------------------------------------------------------

def parse_hidden(text) -> tuple[int, ...]:
    """Hidden widths from text: positive integers separated by ``,``, ``-`` or ``x``.

    The one grammar of ``--hidden 300,100`` and of ``--compare hidden=100,300-100`` (where the
    comma separates runs, so a run's widths are joined by ``-`` or ``x``). Spaces around a width
    are ignored; an empty part, a sign or anything but digits is a :class:`ConfigError`.

    >>> parse_hidden("300"), parse_hidden("300,100"), parse_hidden("300-100"), parse_hidden("64x64x32")
    ((300,), (300, 100), (300, 100), (64, 64, 32))
    >>> parse_hidden("300,abc")
    Traceback (most recent call last):
    ...
    deltagrad.nn.config.ConfigError: '300,abc': give widths such as 300 or 300,100
    >>> parse_hidden("-5")
    Traceback (most recent call last):
    ...
    deltagrad.nn.config.ConfigError: '-5': widths must be positive integers, such as 300 or 300,100
    >>> parse_hidden("0")
    Traceback (most recent call last):
    ...
    deltagrad.nn.config.ConfigError: '0': widths must be positive integers, such as 300 or 300,100
    """
    if isinstance(text, (tuple, list)):
        check_value("hidden", tuple(text))
        return tuple(text)
    text = str(text)
    shown = text if len(text) <= 40 else text[:37] + "..."
    parts = [p.strip() for p in re.split(r"[,xX-]", text)]
    if any(p == "" for p in parts) and re.search(r"(^|[,xX-])\s*-\s*\d", text):  # -5, 300,-100
        raise ConfigError(f"{shown!r}: widths must be positive integers, such as 300 or 300,100")
    if not all(p.isdigit() and p.isascii() for p in parts):
        raise ConfigError(f"{shown!r}: give widths such as 300 or 300,100")
    try:
        sizes = tuple(int(p) for p in parts)
    except ValueError:  # more digits than Python converts
        raise ConfigError(f"{shown!r}: give widths such as 300 or 300,100") from None
    if min(sizes) < 1:
        raise ConfigError(f"{shown!r}: widths must be positive integers, such as 300 or 300,100")
    return sizes


def _parse_bool(text: str) -> bool:
    t = text.strip().lower()
    if t in ("1", "true", "yes", "on"):
        return True
    if t in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{text!r} is not true or false")


def _parse_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{text!r} is not a number") from None


def _parse_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{text!r} is not an integer") from None


#: The settings ``--compare`` can vary, with the parser of one value.
COMPARABLE = {
    "activation": str.strip, "hidden": parse_hidden, "optimizer": str.strip, "lr": _parse_float,
    "lr_decay": _parse_float,
    "momentum": _parse_float, "init": str.strip, "batch_size": _parse_int, "residual": _parse_bool,
    "loss": str.strip, "pixels": str.strip, "dtype": str.strip, "shuffle": _parse_bool,
    "model": str.strip, "channels": parse_hidden, "kernel": _parse_int, "pool": str.strip, "shift": _parse_int,
}


def parse_compare(text: str) -> tuple[str, list]:
    """``KEY=V1,V2,...`` → (key, [values]), each value parsed and checked.

    >>> parse_compare("hidden=100,300-100")
    ('hidden', [(100,), (300, 100)])
    >>> parse_compare("activation=relu,gelu")
    Traceback (most recent call last):
    ...
    deltagrad.nn.config.ConfigError: --compare activation=relu,gelu: 'gelu' is not available: choose one of sigmoid, relu, tanh
    """
    key, sep, values = text.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or key not in COMPARABLE:
        raise ConfigError(f"--compare {text!r}: give KEY=V1,V2,... with KEY one of {', '.join(COMPARABLE)}")
    raw = [v.strip() for v in values.split(",")]
    if not values.strip() or any(not v for v in raw):
        raise ConfigError(f"--compare {text}: give one or more values separated by commas, none empty")
    out = []
    for v in raw:
        try:
            value = COMPARABLE[key](v)
            check_value(key, value)
        except ConfigError as err:
            raise ConfigError(f"--compare {text}: {err}") from None
        if value in out:
            raise ConfigError(f"--compare {text}: {v!r} is given twice")
        out.append(value)
    return key, out


def format_value(value) -> str:
    """A setting as it appears in folder names and tables: ``(300, 100)`` → ``300-100``."""
    if isinstance(value, tuple):
        return "-".join(map(str, value))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# ---- checks ----------------------------------------------------------------------------------

def _choices(value, allowed, what="") -> None:
    if not isinstance(value, str) or value not in allowed:
        raise ConfigError(f"{value!r} is not available{what}: choose one of {', '.join(allowed)}")


def _integer(value, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"must be an integer of at least {low}, got {value!r}")


def check_value(name: str, value) -> None:
    """Check one setting on its own; a :class:`ConfigError` without the option's name otherwise."""
    if name == "model":
        _choices(value, MODELS)
    elif name == "pool":
        _choices(value, POOLS)
    elif name == "kernel":
        _integer(value, 1)
    elif name == "shift":
        _integer(value, 0)
        if value > MAX_SHIFT:
            raise ConfigError(f"must be at most {MAX_SHIFT} pixels (a 28×28 digit moved further leaves the image), "
                              f"got {value!r}")
    elif name in ("hidden", "channels"):
        if not isinstance(value, tuple) or not value or not all(
                isinstance(w, int) and not isinstance(w, bool) and w >= 1 for w in value):
            raise ConfigError(f"widths must be positive integers, such as 300 or 300,100, got {value!r}")
    elif name == "activation":
        _choices(value, tuple(ACTIVATIONS))
    elif name == "optimizer":
        _choices(value, OPTIMIZERS)
    elif name == "lr":
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value) or value <= 0):
            raise ConfigError(f"must be a finite number above 0, got {value!r}")
    elif name == "lr_decay":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
            raise ConfigError(f"must be a number in (0, 1] (the factor of the learning rate after each epoch), "
                              f"got {value!r}")
    elif name == "momentum":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise ConfigError(f"must be a number in [0, 1), got {value!r}")
    elif name in ("epochs", "batch_size", "val_size"):
        _integer(value, 1)
    elif name == "seed":
        _integer(value, 0)
    elif name == "limit":
        if value is not None:
            _integer(value, 1)
            if value < MIN_LIMIT:
                raise ConfigError(f"{value} is too small: a tenth of the images is held out for validation, "
                                  f"so give {MIN_LIMIT} or more")
    elif name == "init":
        _choices(value, INITS)
    elif name == "device":
        _choices(value, DEVICES)
    elif name == "data":
        _choices(value, tuple(DATASETS))
    elif name == "loss":
        _choices(value, LOSSES)
    elif name == "pixels":
        _choices(value, PIXELS)
    elif name == "dtype":
        _choices(value, DTYPES)
    elif name in ("residual", "shuffle"):
        if not isinstance(value, bool):
            raise ConfigError(f"must be true or false, got {value!r}")
    elif name == "data_dir":
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"must be a folder name, got {value!r}")
    elif name == "preset":
        if value is not None:
            _choices(value, tuple(PRESETS))
    else:
        raise ConfigError(f"unknown setting {name!r}")


def _with_option(name: str, err: ConfigError) -> ConfigError:
    text = str(err)
    return ConfigError(f"{option(name)} {text}" if text.startswith(("must", "is")) or text[0].isdigit()
                       else f"{option(name)}: {text}")


def check_config(config: TrainConfig, memory: bool = True) -> None:
    """Every check a run must pass before any data is read; :class:`ConfigError` otherwise."""
    for f in fields(TrainConfig):
        try:
            check_value(f.name, getattr(config, f.name))
        except ConfigError as err:
            raise _with_option(f.name, err) from None
    if config.model == "cnn":
        try:
            cnn_side(IMAGE_SIDE, config.kernel, len(config.channels))
        except ValueError as err:
            raise ConfigError(f"--kernel {config.kernel}: {err}") from None
    if config.momentum and config.optimizer not in ("sgd", "momentum"):
        raise ConfigError(f"--momentum applies to --optimizer sgd or momentum, not {config.optimizer} "
                          "(which keeps its own running averages)")
    if memory:
        check_memory(config)


def split_sizes(config: TrainConfig) -> tuple[int, int, int]:
    """(training, validation, test) image counts of a run."""
    total, test = DATASETS[config.data]
    if config.limit:
        total = min(total, config.limit)
    val = min(config.val_size, total // 10)
    return total - val, val, test


IMAGE_SIDE = 28


def layer_sizes(config: TrainConfig) -> list:
    """The widths of the fully connected layers (after the CNN's convolutions, for ``--model cnn``)."""
    if config.model == "cnn":
        side = cnn_side(IMAGE_SIDE, config.kernel, len(config.channels))
        return [config.channels[-1] * side * side, *config.hidden, CLASSES]
    return [FEATURES, *config.hidden, CLASSES]


def conv_shapes(config: TrainConfig) -> list:
    """(weight shape, image side after it) of each of the CNN's convolutions ([] for an MLP)."""
    if config.model != "cnn":
        return []
    out, side, chans = [], IMAGE_SIDE, [1, *config.channels]
    for a, b in zip(chans[:-1], chans[1:]):
        side = side - config.kernel + 1
        out.append(((b, a, config.kernel, config.kernel), side))
        side //= 2
    return out


def estimate_memory(config: TrainConfig) -> tuple[int, int]:
    """(bytes a run needs at its peak, roughly; number of parameters)."""
    b = 4 if config.dtype == "float32" else 8
    sizes = layer_sizes(config)
    pairs = list(zip(sizes[:-1], sizes[1:]))
    params = sum(i * o + o for i, o in pairs)
    states = {"sgd": 1 if config.momentum else 0, "momentum": 1, "adam": 2, "rmsprop": 1}.get(config.optimizer, 2)
    # parameters, gradients, optimiser state, the last epoch's snapshot and the copy written to disk
    total = params * b * (4 + states)
    total += max(i * o for i, o in pairs) * 8  # each weight matrix is drawn in float64, then cast
    width = sum(sizes)
    total += config.batch_size * width * b * 4 + min(EVAL_BATCH, 10000) * width * b * 2  # activations
    n_train, n_val, n_test = split_sizes(config)
    total += (n_train + n_val + n_test) * FEATURES * (b + 1) + n_train * CLASSES * b  # images and targets
    for (o, c, k, _), side in conv_shapes(config):  # kernels, and each conv's output, windows and gradients
        params += o * c * k * k + o
        total += (o * c * k * k + o) * b * (4 + states)
        total += (config.batch_size * 6 + min(EVAL_BATCH, 10000)) * (o + c * k * k) * side * side * b
    return total, params


def available_memory(device: str = "cpu") -> int | None:
    """Bytes free for a run on ``device`` (None when unknown): the GPU's free memory for ``cuda``,
    else the smaller of the system's available memory and the cgroup's limit."""
    if device == "cuda":
        try:
            import cupy

            return int(cupy.cuda.Device().mem_info[0])
        except Exception:  # noqa: BLE001 - no CuPy or no GPU: the device check reports that
            return None
    found = []
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = Path("/sys/fs/cgroup/memory.current").read_text().strip()
        if limit.isdigit() and used.isdigit():
            found.append(int(limit) - int(used))
    except OSError:
        pass
    return min(found) if found else None


def format_bytes(n: float) -> str:
    """A size for people.

    >>> format_bytes(584 * 2**30), format_bytes(3.5 * 2**20)
    ('584 GiB', '3.5 MiB')
    """
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit in ("B", "KiB") or n >= 10 else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.0f} TiB"  # pragma: no cover


def check_memory(config: TrainConfig, available: int | None = None) -> None:
    """Refuse, with one line, a run whose estimated memory exceeds what the device has free."""
    need, params = estimate_memory(config)
    free = available if available is not None else available_memory(config.device)
    if free is not None and need > free:
        shape = "-".join(map(str, layer_sizes(config)))
        where = "the GPU has" if config.device == "cuda" else "this machine has"
        raise ConfigError(f"a {shape} network needs about {format_bytes(need)} of memory ({params:,} parameters in "
                          f"{config.dtype}) but {where} {format_bytes(max(free, 0))} free: give smaller --hidden "
                          f"widths, a smaller --batch-size or --limit")


# ---- config files ----------------------------------------------------------------------------

def config_from_dict(raw, source: str = "config") -> TrainConfig:
    """A checked TrainConfig from JSON data (``config.json``, a model file); ConfigError otherwise.

    Unknown keys are refused, missing ones take their defaults; the memory check is left out (the
    run existed already).
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"{source} is not a table of settings")
    unknown = sorted(k for k in raw if k not in FIELDS)
    if unknown:
        raise ConfigError(f"{source} has unknown setting(s) {', '.join(map(repr, unknown))}: "
                          "it was not written by this version of deltagrad")
    values = {}
    for name, f in FIELDS.items():
        if name in raw:
            v = raw[name]
            values[name] = tuple(v) if name in ("hidden", "channels") and isinstance(v, list) else v
        elif f.default is MISSING:  # pragma: no cover - every field has a default
            raise ConfigError(f"{source} lacks {name!r}")
    config = TrainConfig(**values)
    try:
        check_config(config, memory=False)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None
    return config


def config_dict(config: TrainConfig) -> dict:
    """The JSON form of a config (tuples as lists)."""
    d = asdict(config)
    d["hidden"] = list(config.hidden)
    d["channels"] = list(config.channels)
    return d
