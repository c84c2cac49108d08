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

from deltagrad.check.claims import Verdict, _fmt, sign_or_factor
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
        raise UserCodeError(f"importing {path} failed: {_where(err, file)}") from None
    if not hasattr(module, cls):
        raise UserCodeError(f"{path} has no class {cls!r}")
    return getattr(module, cls), file


def _where(err: BaseException, file: Path | None) -> str:
    """``KeyError: 'sigx' (ops.py, line 14: return g * context['sigx'])``"""
    frames = traceback.extract_tb(err.__traceback__)
    mine = [f for f in frames if file is not None and Path(f.filename).resolve() == file.resolve()]
    frame = (mine or frames or [None])[-1]
    text = f"{type(err).__name__}: {err}"
    if frame is not None:
        text += f" ({Path(frame.filename).name}, line {frame.lineno}: {(frame.line or '').strip()})"
    return text


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
        return [Verdict(f"{label}.forward", "", False, "your forward raised an exception", error=_where(err, file))]
    if np.shape(got) != np.shape(want) or not np.allclose(got, want, rtol=1e-7, atol=1e-9):
        return [Verdict(f"{label}.forward", "", False, "compared with the spec on random inputs",
                        diagnosis=_forward_diagnosis(got, want), counterexample=_example(d, arrays, got, want))]
    shape = output_shape(d.spec, sizes)
    g = rng.normal(size=shape) if shape else float(rng.normal())
    grads_want = derived.backward(ref_ctx, g)
    stored = sorted(ctx)
    try:
        grads = op.backward(ctx, np.copy(g) if shape else g)
    except Exception as err:  # noqa: BLE001
        hint = f"; forward stored context keys {stored}" if isinstance(err, KeyError) else ""
        return [Verdict(f"{label}.backward", "", False, "your backward raised an exception",
                        error=_where(err, file) + hint)]
    if not isinstance(grads, (tuple, list)):
        grads = (grads,)
    if len(grads) != len(d.spec.inputs):
        return [Verdict(f"{label}.backward", "", False, "counted the returned gradients",
                        diagnosis=f"backward returned {len(grads)} gradient(s) for {len(d.spec.inputs)} input(s) "
                                  f"({', '.join(d.inputs)})")]
    verdicts = []
    for inp, a, got_g, want_g in zip(d.spec.inputs, arrays, grads, grads_want):
        claim = f"{label}.backward: d{inp.name}"
        if got_g is None:
            verdicts.append(Verdict(claim, inp.name, False, "checked the returned value", diagnosis="it is None"))
            continue
        if np.ndim(got_g) == 2 and np.shape(got_g)[::-1] == np.shape(a) and np.allclose(np.transpose(got_g), want_g):
            verdicts.append(Verdict(claim, inp.name, False, "compared shapes and values",
                                    diagnosis=f"transposed: shape {np.shape(got_g)} is the transpose of {inp.name}'s "
                                              f"{np.shape(a)}, and its transpose is the right gradient"))
            continue
        if np.shape(got_g) != np.shape(a):
            extra = (" (a broadcast input's gradient must be summed back to the input's shape)"
                     if np.ndim(got_g) > np.ndim(a) or np.size(got_g) > np.size(a) else "")
            verdicts.append(Verdict(claim, inp.name, False, "compared shapes",
                                    diagnosis=f"shape {np.shape(got_g)}, but {inp.name} has shape {np.shape(a)}{extra}"))
            continue
        if np.allclose(got_g, want_g, rtol=1e-7, atol=1e-9):
            verdicts.append(Verdict(claim, inp.name, True, "agrees with the derived backward on random inputs"))
            continue
        verdicts.append(Verdict(claim, inp.name, False, "compared with the derived backward on random inputs",
                                diagnosis=_gradient_diagnosis(got_g, want_g, grads_want, d),
                                counterexample=_example(d, arrays, got_g, want_g, g)))
    return verdicts


def _forward_diagnosis(got, want):
    if np.shape(got) != np.shape(want):
        return f"forward returned shape {np.shape(got)}, the spec gives {np.shape(want)}"
    found = sign_or_factor(got, want)
    return f"forward: {found}" if found else "forward does not compute the spec"


def _gradient_diagnosis(got, want, all_wanted, d):
    got, want = np.asarray(got, float), np.asarray(want, float)
    if got.shape == want.shape and got.ndim == 2 and got.shape[0] == got.shape[1] and np.allclose(got, want.T):
        return "transposed"
    for other, w in zip(d.inputs, all_wanted):
        if np.shape(w) == got.shape and np.allclose(got, w) and not np.allclose(w, want):
            return f"this is the gradient of {other}: the wrong variable is returned"
    return sign_or_factor(got, want) or "the values differ from the derived backward"


def _example(d, arrays, got, want, g=None):

    out = {inp.name: _fmt(a) for inp, a in zip(d.spec.inputs, arrays)}
    if g is not None:
        out["G"] = _fmt(g)
    out["yours"] = _fmt(got)
    out["derived"] = _fmt(want)
    return out


__all__ = ["check_code", "load_op", "UserCodeError"]
