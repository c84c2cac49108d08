"""MNIST in its canonical IDX files (gzipped or not), checked against SHA-256, and a synthetic
stand-in for quick runs.

Files are looked for in ``data_dir``, then ``$DELTAGRAD_DATA``, then the cache folder
(``$XDG_CACHE_HOME/deltagrad/mnist``); missing ones are downloaded from the public mirrors the
usual libraries use, verified, and stored atomically. A corrupt or truncated file is an error
that names it; it is never half-used.

>>> x, y = synthetic(n=6, seed=0)[:2]
>>> x.shape, x.dtype, y.shape
((6, 784), dtype('float32'), (6,))
"""

from __future__ import annotations

import gzip
import hashlib
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deltagrad.files import write_atomic

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
#: SHA-256 of the canonical files, gzipped and raw.
SHA256 = {
    "train-images-idx3-ubyte.gz": "0b367032e93c5d0cea0925647cfdb18614af8ee15f83e6f2fc2ad904a6835971",
    "train-labels-idx1-ubyte.gz": "1787548bbe0bff1ec2ecdc0ef292b02df999e2d1a6002d27500982c652b17203",
    "t10k-images-idx3-ubyte.gz": "1a1a05eab793c14bb050b398624a11b0ffd1a2953baed553b1b9bd079e2a20be",
    "t10k-labels-idx1-ubyte.gz": "b91679a0acfe4ba0e50a2437a903084cba1f5f92592b016a25a7dfd00455798b",
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)


class DataError(RuntimeError):
    """A data file that is missing, corrupt or truncated, and cannot be fetched."""


@dataclass(frozen=True)
class Split:
    """Images as rows (float32 in [0, 1], or uint8 pixels) and integer labels."""

    images: np.ndarray
    labels: np.ndarray


def cache_dir() -> Path:
    """Where downloads are kept."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "deltagrad" / "mnist"


def search_dirs(data_dir=None) -> list:
    """The folders looked in, in order: ``data_dir``, ``$DELTAGRAD_DATA``, the cache."""
    dirs = [Path(d) for d in (data_dir, os.environ.get("DELTAGRAD_DATA")) if d]
    return dirs + [cache_dir()]


def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def find_file(stem: str, data_dir=None, download: bool = True, mirrors=MIRRORS) -> Path:
    """The verified path of one MNIST file (``.gz`` or raw), downloading it if need be."""
    for d in search_dirs(data_dir):
        for name in (stem + ".gz", stem):
            path = d / name
            if path.exists():
                if sha256(path) != SHA256[name]:
                    raise DataError(f"{path} is corrupt or truncated (its SHA-256 does not match); delete it")
                return path
    if not download:
        raise DataError(f"{stem}(.gz) is in none of: {', '.join(map(str, search_dirs(data_dir)))}")
    return fetch(stem + ".gz", cache_dir(), mirrors)


def fetch(name: str, dest: Path, mirrors=MIRRORS) -> Path:
    """Download ``name`` from the first mirror that serves it intact; store it atomically."""
    errors = []
    for mirror in mirrors:
        try:
            with urllib.request.urlopen(mirror + name, timeout=30) as response:
                data = response.read()
        except OSError as err:
            errors.append(f"{mirror}: {err}")
            continue
        if hashlib.sha256(data).hexdigest() != SHA256[name]:
            errors.append(f"{mirror}: wrong SHA-256")
            continue
        write_atomic(dest / name, data)
        return dest / name
    raise DataError(f"could not download {name}: " + "; ".join(errors) + " (or pass --data-dir with the files)")


def read_idx(path: Path) -> np.ndarray:
    """An IDX file's array (uint8 data), with its header checked against its length."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:
        raise DataError(f"{path} cannot be read: {err}") from None
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != 8:
        raise DataError(f"{path} is not an IDX file of unsigned bytes")
    ndim = raw[3]
    header = 4 + 4 * ndim
    dims = tuple(int.from_bytes(raw[4 + 4 * n:8 + 4 * n], "big") for n in range(ndim))
    if len(raw) != header + int(np.prod(dims)):
        raise DataError(f"{path} is truncated: its header promises {dims} but the data has another size")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def load_mnist(data_dir=None, download: bool = True, mirrors=MIRRORS, raw: bool = False,
               splits=("train", "test")) -> dict:
    """``{'train': Split, 'test': Split}`` from verified IDX files (only the ``splits`` asked for).

    Images are float32 rows in [0, 1], or with ``raw=True`` the files' uint8 pixels (0-255).
    """
    out = {}
    for split in splits:
        if split not in ("train", "test"):
            raise ValueError(f"unknown MNIST split {split!r}")
        prefix = "t10k" if split == "test" else "train"
        images = read_idx(find_file(f"{prefix}-images-idx3-ubyte", data_dir, download, mirrors))
        labels = read_idx(find_file(f"{prefix}-labels-idx1-ubyte", data_dir, download, mirrors))
        if len(images) != len(labels):
            raise DataError(f"MNIST {split}: {len(images)} images but {len(labels)} labels")
        flat = images.reshape(len(images), -1)
        out[split] = Split(flat if raw else (flat / np.float32(255)).astype(np.float32), labels.astype(np.int64))
    return out


def synthetic(n: int = 2000, seed: int = 0, classes: int = 10, features: int = 784):
    """A learnable stand-in for MNIST: Gaussian clusters around random class centres.

    Returns (images, labels, centres).
    """
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 1, size=(classes, features)).astype(np.float32)
    labels = rng.integers(0, classes, size=n)
    noise = rng.normal(0, 0.35, size=(n, features)).astype(np.float32)
    images = np.clip(centres[labels] + noise, 0, 1).astype(np.float32)
    return images, labels.astype(np.int64), centres


def load_synthetic(n_train: int = 6000, n_test: int = 1000, seed: int = 0) -> dict:
    """Synthetic train and test splits drawn around the same class centres."""
    x, y, _ = synthetic(n_train + n_test, seed)
    return {"train": Split(x[:n_train], y[:n_train]), "test": Split(x[n_train:], y[n_train:])}
