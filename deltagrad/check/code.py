"""Check a hand-written Op class (vugrad style) against the derived op: import it, run its
forward and backward on random inputs, and compare. Exceptions in the user's code are reported
with their line, as a finding about that code, never as a crash of deltagrad.

Importing the class runs the user's file: ``deltagrad check --code`` says so in its help.
"""

from __future__ import annotations

import importlib.util
import sys
import traceback
from pathlib import Path

import numpy as np

from deltagrad.check.claims import sign_or_factor
from deltagrad.check.verdict import Counterexample, Diagnosis, Verdict
from deltagrad.codegen.verdict_text import exception_text
from deltagrad.derive.numeric import index_sizes, output_shape, random_inputs
from deltagrad.derive.spec import extent
from deltagrad.errors import SpecError


class UserCodeError(SpecError):
    """The file or class named with --code cannot be loaded."""


def load_op(target: str):
    """The class ``ClassName`` from ``path/to/file.py:ClassName`` (runs that file)."""
    path, sep, cls = target.rpartition(":")
    if not sep or not path or not cls:
        raise UserCodeError(f"--code takes FILE.py:ClassName, not {target!r}")
    file = Path(path)
    if not file.is_file():
        raise UserCodeError(f"--code: no such file {path}")
    name = f"deltagrad_user_{abs(hash(str(file.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # noqa: BLE001 - the user's file may raise anything
        raise UserCodeError(f"importing {path} failed: {exception_text(exception_diagnosis(err, file))}") from None
    if not hasattr(module, cls):
        raise UserCodeError(f"{path} has no class {cls!r}")
    return getattr(module, cls), file


def exception_diagnosis(err: BaseException, file: Path | None, context_keys: list | None = None) -> Diagnosis:
    """An 'exception' diagnosis: the exception and the line that raised it, in ``file`` if
    that file is on the traceback, else the innermost line.

    >>> try:
    ...     {}["sigx"]
    ... except KeyError as err:
    ...     diag = exception_diagnosis(err, None, ["sig"])
    >>> diag.params["type"], diag.params["message"], diag.params["context_keys"]
    ('KeyError', "'sigx'", ['sig'])
    """
    frames = traceback.extract_tb(err.__traceback__)
    mine = [f for f in frames if file is not None and Path(f.filename).resolve() == file.resolve()]
    frame = (mine or frames or [None])[-1]
    where = {"file": None, "line": None, "source": None}
    if frame is not None:
        where = {"file": Path(frame.filename).name, "line": frame.lineno, "source": (frame.line or "").strip()}
    return Diagnosis("exception", {"type": type(err).__name__, "message": str(err), **where,
                                   "context_keys": context_keys})


def check_code(d, op, file: Path | None = None, seed: int = 0) -> list:
    """One :class:`Verdict` per input gradient (or one for the forward or an exception)."""

    rng = np.random.default_rng(seed)
    first = d.spec.inputs[0].name
    sizes = index_sizes(d.spec, first, d.steps[first].indices)
    kwargs = {ix.name: sizes[extent(ix)] for ix in d.spec.size_indices}
    derived = d.compile()
    for low, high in ((-1.5, 1.5), (0.5, 2.0)):
        drawn = random_inputs(d.spec, sizes, rng, low, high)
        arrays = [drawn[inp.name] for inp in d.spec.inputs]
        ref_ctx = {}
        with np.errstate(all="ignore"):
            want = derived.forward(ref_ctx, *arrays, **kwargs)
        if np.all(np.isfinite(want)):
            break
    label = f"{getattr(op, '__name__', 'op')}"
    ctx: dict = {}
    try:
        got = op.forward(ctx, *[np.copy(a) if np.ndim(a) else a for a in arrays], **kwargs)
    except Exception as err:  # noqa: BLE001
        return [Verdict(f"{label}.forward", "", False, "forward_raised", "code", error=exception_diagnosis(err, file))]
    if np.shape(got) != np.shape(want) or not np.allclose(got, want, rtol=1e-7, atol=1e-9):
        return [Verdict(f"{label}.forward", "", False, "forward_compared", "code",
                        diagnosis=_forward_diagnosis(got, want), counterexample=_example(d, arrays, got, want))]
    shape = output_shape(d.spec, sizes)
    g = rng.normal(size=shape) if shape else float(rng.normal())
    grads_want = derived.backward(ref_ctx, g)
    stored = sorted(ctx)
    try:
        grads = op.backward(ctx, np.copy(g) if shape else g)
    except Exception as err:  # noqa: BLE001
        keys = stored if isinstance(err, KeyError) else None
        return [Verdict(f"{label}.backward", "", False, "backward_raised", "code",
                        error=exception_diagnosis(err, file, keys))]
    if not isinstance(grads, (tuple, list)):
        grads = (grads,)
    if len(grads) != len(d.spec.inputs):
        return [Verdict(f"{label}.backward", "", False, "gradients_counted", "code",
                        diagnosis=Diagnosis("gradient_count", {"returned": len(grads), "expected": len(d.spec.inputs),
                                                               "inputs": tuple(d.inputs)}))]
    verdicts = []
    for inp, a, got_g, want_g in zip(d.spec.inputs, arrays, grads, grads_want):
        claim = f"{label}.backward: d{inp.name}"
        if got_g is None:
            verdicts.append(Verdict(claim, inp.name, False, "value_checked", "code", diagnosis=Diagnosis("none")))
            continue
        shapes = {"shape": np.shape(got_g), "input": inp.name, "input_shape": np.shape(a)}
        if np.ndim(got_g) == 2 and np.shape(got_g)[::-1] == np.shape(a) and np.allclose(np.transpose(got_g), want_g):
            verdicts.append(Verdict(claim, inp.name, False, "shapes_and_values", "code",
                                    diagnosis=Diagnosis("transposed_shape", shapes)))
            continue
        if np.shape(got_g) != np.shape(a):
            broadcast = bool(np.ndim(got_g) > np.ndim(a) or np.size(got_g) > np.size(a))
            verdicts.append(Verdict(claim, inp.name, False, "shapes", "code",
                                    diagnosis=Diagnosis("shape", {**shapes, "broadcast": broadcast})))
            continue
        if np.allclose(got_g, want_g, rtol=1e-7, atol=1e-9):
            verdicts.append(Verdict(claim, inp.name, True, "random_inputs", "code"))
            continue
        verdicts.append(Verdict(claim, inp.name, False, "random_inputs", "code",
                                diagnosis=_gradient_diagnosis(got_g, want_g, grads_want, d),
                                counterexample=_example(d, arrays, got_g, want_g, g)))
    return verdicts


def _forward_diagnosis(got, want) -> Diagnosis:
    if np.shape(got) != np.shape(want):
        return Diagnosis("forward_shape", {"got": np.shape(got), "want": np.shape(want)})
    return Diagnosis("forward", {"cause": sign_or_factor(got, want)})


def _gradient_diagnosis(got, want, all_wanted, d) -> Diagnosis:
    got, want = np.asarray(got, float), np.asarray(want, float)
    if got.shape == want.shape and got.ndim == 2 and got.shape[0] == got.shape[1] and np.allclose(got, want.T):
        return Diagnosis("transposed")
    for other, w in zip(d.inputs, all_wanted):
        if np.shape(w) == got.shape and np.allclose(got, w) and not np.allclose(w, want):
            return Diagnosis("wrong_variable", {"other": other})
    return sign_or_factor(got, want) or Diagnosis("values_differ")


def _example(d, arrays, got, want, g=None) -> Counterexample:
    return Counterexample({inp.name: a for inp, a in zip(d.spec.inputs, arrays)}, g, got, want)


__all__ = ["check_code", "exception_diagnosis", "load_op", "UserCodeError"]
