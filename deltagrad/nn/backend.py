"""Choose the array library for a device: NumPy on the CPU, CuPy on an NVIDIA GPU.

The generated ops take their namespace from their inputs, so the only device-specific step is
where the data and the parameters are put. ``array-api-strict`` is accepted as a stand-in
device for tests: it rejects any call outside the array API.

>>> namespace("cpu").__name__
'numpy'
"""

from __future__ import annotations

import numpy as np

DEVICES = ("cpu", "cuda", "array-api-strict")


class DeviceError(RuntimeError):
    """The device asked for is not available here."""


def namespace(device: str):
    """The array namespace for ``device``; ``DeviceError`` with one clear line if unavailable."""
    if device == "cpu":
        return np
    if device == "cuda":
        try:
            import cupy
        except ImportError:
            raise DeviceError("--device cuda needs CuPy: pip install 'deltagrad[cuda]' (and an NVIDIA GPU)") from None
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception as err:  # noqa: BLE001 - CuPy raises several kinds when no driver is present
            raise DeviceError(f"--device cuda: CuPy finds no usable GPU ({type(err).__name__}: {err})") from None
        if count < 1:
            raise DeviceError("--device cuda: CuPy finds no GPU")
        return cupy
    if device == "array-api-strict":
        try:
            import array_api_strict
        except ImportError:
            raise DeviceError("--device array-api-strict needs: pip install array-api-strict") from None
        return array_api_strict
    raise DeviceError(f"unknown device {device!r}: choose one of {', '.join(DEVICES)}")


def to_numpy(a) -> np.ndarray:
    """A host NumPy copy of an array from any of the namespaces above."""
    if isinstance(a, np.ndarray):
        return a
    if hasattr(a, "get"):  # CuPy
        return a.get()
    try:
        return np.from_dlpack(a)
    except (TypeError, RuntimeError, BufferError, AttributeError):
        return np.asarray(a)
