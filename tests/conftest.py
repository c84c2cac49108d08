"""Shared test fixtures."""

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The canonical MNIST files: ../shared/data/mnist beside the checkout, or $DELTAGRAD_DATA.

    Missing data skips the tests that need it, except in CI, where it is an error.
    """
    for candidate in (Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist",
                      Path(os.environ.get("DELTAGRAD_DATA", "/nonexistent"))):
        if (candidate / "train-images-idx3-ubyte.gz").exists() or (candidate / "train-images-idx3-ubyte").exists():
            return candidate
    if os.environ.get("CI"):
        pytest.fail("CI needs the MNIST files in ../shared/data/mnist")
    pytest.skip("MNIST files not found (set DELTAGRAD_DATA)")
