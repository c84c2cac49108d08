"""Check a hand-written Op class (vugrad style) against the derived op: run its forward and
backward on random inputs and compare. Whatever the user's code does is a finding about that
code, never a crash of deltagrad: an exception (``SystemExit`` and ``KeyboardInterrupt``
included) is reported with the user's file and line.

``check_code(d, "ops.py:Sigmoid")`` runs the user's code in a child process
(:mod:`deltagrad.check.worker`) under a time limit: code that loops forever is killed, code that
ends the interpreter ends only the child. ``check_code(d, op_class, file)`` runs an
already-imported class here, for the Python API.

Keyword arguments: ``kwargs`` maps a keyword of the user's forward to a value, or to the name
of one of the spec's indices, which passes that index's size (vugrad's
``Expand.forward(context, input, *, dim, repeats)`` for ``Y[i,j] = X[i,_]`` takes
``{"dim": 1, "repeats": "j"}``); an index name with a number (``{"j": 16}``) sets that index's
size. A size the derived op takes as a keyword (an output index no input carries) and that no
keyword maps is passed under its own name when the user's forward takes it, else read off the
shape the user's forward returns (so ``{"dim": 1, "repeats": 16}`` works too).
"""

from __future__ import annotations

import inspect
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import sympy as sp

from deltagrad.check import worker
from deltagrad.check.claims import sign_or_factor
from deltagrad.check.size_one import size_one_derivation
from deltagrad.check.verdict import Counterexample, Diagnosis, Verdict
from deltagrad.codegen.verdict_text import exception_text
from deltagrad.derive.numeric import GATHER_SIZE, gather_range, index_sizes
from deltagrad.derive.spec import UNIT, extent, index, index_aliases, input_pattern, is_gather
from deltagrad.errors import SpecError

#: Seconds the user's code may run (import, forward and backward together) by default.
DEFAULT_TIMEOUT = 10.0


class UserCodeError(SpecError):
    """The file or class named with --code cannot be loaded."""


def parse_target(target: str):
    """(file, class name) from ``path/to/file.py:ClassName``; the file must exist."""
    if not isinstance(target, str):
        raise UserCodeError(f"--code takes FILE.py:ClassName, not {target!r}")
    path, sep, cls = target.rpartition(":")
    if not sep or not path or not cls:
        raise UserCodeError(f"--code takes FILE.py:ClassName, not {target!r}")
    file = Path(path)
    if not file.is_file():
        raise UserCodeError(f"--code: no such file {path}")
    if not cls.isidentifier():
        raise UserCodeError(f"--code: {cls!r} is not a class name")
    return file, cls


def load_op(target: str):
    """The class ``ClassName`` from ``path/to/file.py:ClassName``, imported here (runs that file)."""
    file, cls = parse_target(target)
    try:
        op, problem = worker.load_class(file, cls)
    except (Exception, SystemExit) as err:  # noqa: BLE001 - the user's file may raise anything
        raise UserCodeError(f"importing {file} failed: {exception_text(exception_diagnosis(err, file))}") from None
    if problem:
        raise UserCodeError(problem)
    return op, file


def exception_diagnosis(err: BaseException, file: Path | None, context_keys: list | None = None,
                        calling: str | None = None) -> Diagnosis:
    """An 'exception' diagnosis: the exception and the line that raised it, in ``file`` if
    that file is on the traceback, else the innermost line.

    >>> try:
    ...     {}["sigx"]
    ... except KeyError as err:
    ...     diag = exception_diagnosis(err, None, ["sig"])
    >>> diag.params["type"], diag.params["message"], diag.params["context_keys"]
    ('KeyError', "'sigx'", ['sig'])
    """
    return _exception(worker.exception_info(err, file, context_keys, calling))


def _exception(info: dict) -> Diagnosis:
    message = str(info.get("message") or "")
    hint = None
    if info.get("type") == "ValueError" and ("matmul" in message or "not aligned" in message):
        hint = "the shapes do not fit a matrix product: a missing transpose?"
    if info.get("type") == "TypeError" and "keyword" in message and info.get("calling"):
        hint = "give forward's keyword arguments with --kwargs NAME=VALUE,... (NAME=INDEX passes a size)"
    return Diagnosis("exception", {**info, "hint": hint})


@dataclass
class OpRun:
    """What the user's op did. ``stage``: how far it got ('import', 'load', 'forward',
    'backward', 'done'); ``error``: the exception that stopped it; ``stopped``: 'timeout' or
    'ended' (the process ended) with ``phase`` the step it was in."""

    stage: str
    error: Diagnosis | None = None
    message: str = ""
    forward: object = None
    forward_type: str | None = None
    passed_sizes: dict = field(default_factory=dict)
    context_keys: list | None = None
    grads: list = field(default_factory=list)  # arrays, None, or what was returned instead (a str)
    returned: int = 0
    stopped: str | None = None
    phase: str = ""
    exit_code: int | None = None


def run_here(op, file, inputs, kwargs, sizes, seed) -> OpRun:
    """Run ``op`` in this process (the API's path; exceptions and ``SystemExit`` are caught)."""
    passed = {k: sizes[k] for k in worker.accepted(op.forward, [k for k in sizes if k not in kwargs])}
    kwargs = {k: worker.decode(v) for k, v in _encode(kwargs).items()}
    label = getattr(op, "__name__", "op")
    ctx: dict = {}
    try:
        out = op.forward(ctx, *[np.copy(a) if np.ndim(a) else a for a in inputs], **kwargs, **passed)
    except (Exception, SystemExit) as err:  # noqa: BLE001
        how = worker.calling(label, "forward", inputs, {**kwargs, **passed})
        return OpRun("forward", exception_diagnosis(err, file, calling=how), passed_sizes=passed)
    got, what = worker.as_array(out)
    run = OpRun("forward", forward=got, forward_type=what, passed_sizes=passed)
    if got is None:
        return run
    g = worker.output_gradient(seed, got.shape)
    run.stage, run.context_keys = "backward", sorted(str(k) for k in ctx)
    try:
        grads = op.backward(ctx, np.copy(g) if np.ndim(g) else g)
    except (Exception, SystemExit) as err:  # noqa: BLE001
        run.error = exception_diagnosis(err, file, run.context_keys if isinstance(err, KeyError) else None,
                                        f"{label}.backward(context, goutput)")
        return run
    grads = list(grads) if isinstance(grads, (tuple, list)) else [grads]
    run.grads = [_array_or_what(x) for x in grads]
    run.returned, run.stage = len(grads), "done"
    return run


def _array_or_what(value):
    arr, what = worker.as_array(value)
    return arr if arr is not None else (None if what == "None" else what)


def run_isolated(file: Path, cls: str, inputs, kwargs, sizes, seed, timeout: float, clock_from: str = "import") -> OpRun:
    """Run ``file:cls`` in a child process, killed after ``timeout`` seconds from the start of
    phase ``clock_from`` ('import', or 'forward' when the file is not the user's to time)."""
    with tempfile.TemporaryDirectory(prefix="deltagrad-check-") as tmp:
        folder = Path(tmp)
        _write_request(folder, str(file.resolve()), cls, inputs, kwargs, sizes, seed)
        command = [sys.executable, worker.__file__, str(folder)]
        try:
            proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, start_new_session=True)
        except OSError as err:
            raise UserCodeError(f"cannot start Python to run {file.name}: {err}") from None
        return _collect(proc, folder, timeout, clock_from)


def run_forked(op, file: Path | None, inputs, kwargs, sizes, seed, timeout: float) -> OpRun:
    """Run the class object ``op`` in a forked child process (which inherits it, wherever it
    was defined), killed after ``timeout`` seconds, like :func:`run_isolated`."""
    with tempfile.TemporaryDirectory(prefix="deltagrad-check-") as tmp:
        folder = Path(tmp)
        label = getattr(op, "__name__", "op")
        _write_request(folder, str(file.resolve()) if file else "", label, inputs, kwargs, sizes, seed)
        try:
            with warnings.catch_warnings():  # a framework's at-fork warning: the child runs only NumPy
                warnings.simplefilter("ignore")
                pid = os.fork()
        except OSError as err:
            raise UserCodeError(f"cannot start a process to run {label}: {err}") from None
        if pid == 0:  # the child: nothing of it may reach the caller's output or return here
            try:
                os.setsid()
                quiet = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(quiet, fd)
                sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115
                worker.main(str(folder), op)
            finally:
                os._exit(1)
        run = _collect(_Forked(pid), folder, timeout)
        if run.stage == "import":  # nothing to import: stopped before forward got going
            run.stage = "forward"
        return run


class _Forked:
    """A forked child with the part of :class:`subprocess.Popen` that :func:`_collect` uses."""

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode = None

    def wait(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.returncode = -1
                break
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
                break
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout)
            time.sleep(0.002)
        return self.returncode


def _write_request(folder: Path, file: str, cls: str, inputs, kwargs, sizes, seed) -> None:
    request = {"file": file, "class": cls, "kwargs": _encode(kwargs), "sizes": sizes,
               "seed": seed, "inputs": len(inputs)}
    (folder / "request.json").write_text(json.dumps(request))
    np.savez(folder / "request.npz", **{f"x{n}": _as_sent(a) for n, a in enumerate(inputs)})


def _collect(proc, folder: Path, timeout: float, clock_from: str = "import") -> OpRun:
    """Wait for the child (killed after ``timeout`` seconds) and read what it did."""
    try:
        code, stopped = _wait(proc, folder / "phase", timeout, clock_from)
    finally:
        _kill_group(proc)
    phase = _read(folder / "phase") or "import"
    result = _read_json(folder / "result.json")
    if stopped is None and not (result or {}).get("complete"):
        stopped = "ended"
    if not stopped:
        return _decode(folder, result)
    if phase == "backward" and result:  # forward's output was saved before backward began
        run = _decode(folder, result)
    else:
        run = OpRun(phase if phase in ("import", "forward") else "import")
    run.stopped, run.phase, run.exit_code = stopped, phase, code
    return run


#: Seconds the child may take to start Python and NumPy, before the user's time limit begins.
STARTUP_SECONDS = 60.0


def _wait(proc, phase: Path, timeout: float, clock_from: str = "import"):
    """(exit code, None) when the child ends in time; (None, 'timeout') when it is killed. The
    user's time starts when the child writes its first phase (Python and NumPy are loaded), or
    with ``clock_from='forward'`` when forward begins."""
    timed = ("import", "forward", "backward")[("import", "forward", "backward").index(clock_from):]
    started = time.monotonic()
    user_started = None
    poll = 0.005
    while True:
        try:
            return proc.wait(timeout=poll), None
        except subprocess.TimeoutExpired:
            pass
        now = time.monotonic()
        if user_started is None and phase.exists() and _read(phase) in timed:
            user_started = now
        limit = timeout if user_started is not None else timeout + STARTUP_SECONDS
        if now - (user_started if user_started is not None else started) > limit:
            _kill(proc)
            return None, "timeout"
        poll = min(poll * 2, 0.05)


def _encode(kwargs: dict) -> dict:
    """Keyword values as JSON (a tuple marked as one; a list becomes a NumPy array there)."""
    def enc(v):
        if isinstance(v, tuple):
            return {"__tuple__": [enc(x) for x in v]}
        if isinstance(v, list):
            return {"__array__": v}
        return v
    return {k: enc(v) for k, v in kwargs.items()}


def _kill(proc) -> None:
    try:
        if hasattr(os, "killpg"):
            os.killpg(proc.pid, signal.SIGKILL)
        else:  # pragma: no cover - Windows
            proc.kill()
    except (ProcessLookupError, PermissionError, OSError):
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:  # pragma: no cover
        pass


def _kill_group(proc) -> None:
    """Whatever the user's code started in the child's process group goes too."""
    if hasattr(os, "killpg"):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError, OSError):
            pass


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _read_json(path: Path):
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _decode(folder: Path, result: dict | None) -> OpRun:
    try:
        if result is None:
            raise ValueError("no result")
        with np.load(folder / "result.npz", allow_pickle=False) as data:
            arrays = {k: np.asarray(data[k], dtype=float) for k in data.files}
    except (OSError, ValueError, TypeError, KeyError) as err:
        return OpRun("import", stopped="ended", phase="import", message=f"its answer could not be read ({err})")
    stage = result.get("stage", "import")
    if stage == "load":
        return OpRun("load", message=str(result.get("message", "")))
    run = OpRun(stage, passed_sizes=dict(result.get("passed_sizes") or {}),
                context_keys=result.get("context_keys"), forward=arrays.get("forward"),
                forward_type=result.get("forward_type"), returned=int(result.get("returned") or 0))
    if result.get("error"):
        run.error = _exception(result["error"])
    kinds = result.get("grads") or []
    run.grads = [arrays.get(f"grad{n}") if kinds[n] is None else (None if kinds[n] == "None" else str(kinds[n]))
                 for n in range(len(kinds))]
    return run


def resolve_kwargs(d, kwargs: dict | None):
    """(keywords to pass, fixed sizes by class representative, keywords that carry a size):
    a value naming one of the spec's indices passes that index's size; an index name given a
    number sets that index's size."""
    aliases = index_aliases(d.spec)
    passed, fixed, mapped = {}, {}, {}
    for name, value in (kwargs or {}).items():
        if not isinstance(name, str) or not name.isidentifier():
            raise UserCodeError(f"keyword {name!r} is not a Python name")
        if name in aliases and isinstance(value, int) and not isinstance(value, bool):
            if not 1 <= value <= 10_000:
                raise UserCodeError(f"{name}={value}: a size is a whole number from 1 to 10000")
            fixed[aliases[name]] = value  # a size keyword of the op is still offered to forward under its name
            continue
        if isinstance(value, str) and value in aliases:
            mapped[name] = value
            continue
        passed[name] = value
    return passed, fixed, mapped


def literal_axis_sizes(spec) -> dict:
    """(input, axis) → the size of an axis that the spec reads at integer indices or as ``_``:
    two more than the largest integer (``X[i,0]`` selects entry 0 of an axis of any size, so
    it is drawn with more than one), 1 for ``_`` (an axis of size one: ``X[i,_]``)."""
    out = {}
    for e in sp.preorder_traversal(spec.rhs):
        if isinstance(e, sp.Indexed):
            for axis, ix in enumerate(e.indices):
                key = (e.base.label.name, axis)
                if ix == UNIT:
                    out[key] = 1
                elif isinstance(ix, sp.Integer):
                    out[key] = max(out.get(key, 1), int(ix) + 2)
    return out


def _as_sent(a):
    """An input as the child process gets it: integer arrays (indices) stay integer, the rest float."""
    arr = np.asarray(a)
    return arr if arr.dtype.kind in "iu" else np.asarray(a, dtype=float)


def draw_inputs(d, sizes: dict, rng, low: float, high: float) -> list:
    """Random inputs of the spec's shapes (uniform floats; a scalar input is a float)."""
    literal = literal_axis_sizes(d.spec)
    arrays = []
    shapes = {inp.name: tuple(literal[(inp.name, axis)] if (inp.name, axis) in literal
                              else GATHER_SIZE if is_gather(ix) else sizes[extent(ix)]
                              for axis, ix in enumerate(input_pattern(d.spec, inp.name))) for inp in d.spec.inputs}
    for inp in d.spec.inputs:
        shape = shapes[inp.name]
        if inp.integer:  # valid positions of the axes it selects from
            arrays.append(rng.integers(0, gather_range(d.spec, inp.name, shapes), size=shape))
            continue
        vals = rng.uniform(low, high, size=shape)
        arrays.append(vals if shape else float(vals))
    return arrays


def check_code(d, op, file: Path | None = None, seed: int = 0, kwargs: dict | None = None,
               timeout: float | None = DEFAULT_TIMEOUT, isolate: bool = True) -> list:
    """One :class:`Verdict` per input gradient (or one for the forward or the backward); code
    that is right only where the spec's literal 0 reads an axis of size one says so (write _).

    ``op`` is ``"file.py:ClassName"`` (run in a child process, killed after ``timeout``
    seconds) or a class object: that runs in a forked child process under the same time limit
    (where the system can fork; ``isolate=False``, or a system without fork, runs it here, with
    no time limit). ``file`` names the class's file for the lines of errors (by default, the file
    it was defined in). A file or class that cannot be loaded raises :class:`UserCodeError`.

    >>> from deltagrad import derive
    >>> class Double:
    ...     def forward(context, x):
    ...         return 2 * x
    ...     def backward(context, g):
    ...         return 2 * g
    >>> [v.correct for v in check_code(derive("Y[i] = 2*X[i]"), Double)]
    [True]
    """
    verdicts = _check_code(d, op, file, seed, kwargs, timeout, isolate)
    if all(v.correct for v in verdicts) or any(v.method == "stopped" for v in verdicts):
        return verdicts
    d1, diagnosis = size_one_derivation(d)
    if d1 is None:
        return verdicts
    try:
        right = all(v.correct for v in _check_code(d1, op, file, seed, kwargs, timeout, isolate))
    except UserCodeError:
        right = False
    if not right:
        return verdicts
    return [v if v.correct else replace(v, diagnosis=diagnosis) for v in verdicts]


def _check_code(d, op, file, seed, kwargs, timeout, isolate) -> list:
    timeout = timeout or DEFAULT_TIMEOUT
    passed, fixed, mapped = resolve_kwargs(d, kwargs)
    aliases = index_aliases(d.spec)
    first = next(iter(d.steps))
    sizes = index_sizes(d.spec, first, d.steps[first].indices)
    for n, rep in aliases.items():
        if rep in fixed:
            sizes[extent(index(n))] = fixed[rep]
    derived = d.compile()
    rng = np.random.default_rng(seed)
    for low, high in ((-1.5, 1.5), (0.5, 2.0)):
        arrays = draw_inputs(d, sizes, rng, low, high)
        try:
            with np.errstate(all="ignore"):
                trial = derived.forward({}, *arrays, **_size_kwargs(d, sizes))
            if np.all(np.isfinite(trial)):
                break
        except Exception:  # noqa: BLE001 - the reference's own trouble shows again below
            break
    for name, ix in mapped.items():
        passed[name] = sizes[extent(index(ix))]
    offered = {ix.name: sizes[extent(ix)] for ix in d.spec.size_indices
               if ix.name not in passed and ix.name not in mapped.values()}
    g_seed = seed + 1
    if isinstance(op, str):
        file, cls = parse_target(op)
        label = cls
        run = run_isolated(file, cls, arrays, passed, offered, g_seed, timeout)
    else:
        label = getattr(op, "__name__", "op")
        problem = worker.not_an_op(op, label, Path(file).name if file else "the code")
        if problem:
            raise UserCodeError(problem)
        file = Path(file) if file else _source_file(op)
        by_name = _importable_name(op, file)
        if isolate and hasattr(os, "fork") and (_fork_is_safe() or by_name is None):
            run = run_forked(op, file, arrays, passed, offered, g_seed, timeout)
        elif isolate and by_name is not None:  # threads about: a fresh interpreter imports the class's file
            run = run_isolated(file, by_name, arrays, passed, offered, g_seed, timeout, clock_from="forward")
            if run.stage in ("import", "load"):  # the file does not import on its own: fork after all
                run = run_forked(op, file, arrays, passed, offered, g_seed, timeout)
        else:
            run = run_here(op, file, arrays, passed, offered, g_seed)
    if run.stage == "load":
        raise UserCodeError(run.message)
    if run.stage == "import":
        if run.stopped == "timeout":
            raise UserCodeError(f"importing {file.name} did not finish within {timeout:g} s")
        if run.stopped == "ended":
            raise UserCodeError(f"importing {file.name} ended the process (exit code {run.exit_code})")
        raise UserCodeError(f"importing {file.name} failed: {exception_text(run.error)}")
    return judge(d, run, label, arrays, sizes, offered, mapped, g_seed, timeout)


def _fork_is_safe() -> bool:
    """A fork copies only the calling thread: safe while no other thread (of Python, or of a
    framework such as JAX or PyTorch) may hold a lock the child needs."""
    import threading

    return threading.active_count() == 1 and not any(m in sys.modules for m in ("jax", "torch", "tensorflow"))


def _importable_name(op, file: Path | None) -> str | None:
    """The class's name when a fresh interpreter can find it by importing ``file``: a class
    defined at the top of that file (not inside a function or another class)."""
    name = getattr(op, "__qualname__", "")
    module = sys.modules.get(getattr(op, "__module__", ""))
    if file is None or not name.isidentifier() or getattr(module, name, None) is not op:
        return None
    return name


def _source_file(op) -> Path | None:
    """The file a class was defined in, when it has one."""
    try:
        name = inspect.getsourcefile(op)
    except (TypeError, OSError):
        return None
    return Path(name) if name and Path(name).is_file() else None


def _size_kwargs(d, sizes) -> dict:
    return {ix.name: sizes[extent(ix)] for ix in d.spec.size_indices}


def _stopped(run: OpRun, timeout) -> Diagnosis:
    if run.stopped == "timeout":
        return Diagnosis("timeout", {"seconds": timeout or DEFAULT_TIMEOUT, "phase": run.phase})
    return Diagnosis("ended", {"code": run.exit_code, "phase": run.phase})


def judge(d, run: OpRun, label: str, arrays, sizes, offered, mapped, g_seed, timeout=None) -> list:
    """The verdicts on what the user's op did, against the derived op."""
    fwd = f"{label}.forward"
    if run.stage == "forward" and run.stopped:
        return [Verdict(fwd, "", False, "stopped", "code", error=_stopped(run, timeout))]
    if run.stage == "forward" and run.error is not None:
        return [Verdict(fwd, "", False, "forward_raised", "code", error=run.error)]
    if run.forward is None:
        return [Verdict(fwd, "", False, "forward_compared", "code",
                        diagnosis=Diagnosis("forward_type", {"what": run.forward_type or "None"}))]
    got = run.forward
    aliases = index_aliases(d.spec)
    sizes = dict(sizes)
    for ix in d.spec.size_indices:  # a size the user's forward chose itself (repeats=16)
        if ix.name in offered and ix.name not in run.passed_sizes and ix.name not in mapped.values():
            axis = list(d.spec.out_indices).index(ix)
            if got.ndim == len(d.spec.out_indices) and got.shape[axis] > 0:
                for n, rep in aliases.items():
                    if rep == aliases.get(ix.name, ix.name):
                        sizes[extent(index(n))] = int(got.shape[axis])
    derived = d.compile()
    ref_ctx: dict = {}
    with np.errstate(all="ignore"):
        want = np.asarray(derived.forward(ref_ctx, *arrays, **_size_kwargs(d, sizes)), dtype=float)
    if got.shape != want.shape or not np.allclose(got, want, rtol=1e-7, atol=1e-9, equal_nan=True):
        return [Verdict(fwd, "", False, "forward_compared", "code",
                        diagnosis=_forward_diagnosis(got, want), counterexample=_example(d, arrays, got, want))]
    bwd = f"{label}.backward"
    if run.stopped:
        return [Verdict(bwd, "", False, "stopped", "code", error=_stopped(run, timeout))]
    if run.error is not None:
        return [Verdict(bwd, "", False, "backward_raised", "code", error=run.error)]
    g = worker.output_gradient(g_seed, want.shape)
    with np.errstate(all="ignore"):
        grads_want = [None if w is None else np.asarray(w, dtype=float) for w in derived.backward(ref_ctx, g)]
    grads = run.grads
    names = [inp.name for inp in d.spec.inputs]
    if len(grads) != len(names):
        return [Verdict(bwd, "", False, "gradients_counted", "code",
                        diagnosis=Diagnosis("gradient_count", {"returned": len(grads), "expected": len(names),
                                                               "inputs": tuple(d.inputs)}))]
    order = _wrong_order(grads, grads_want)
    if order is not None:
        return [Verdict(bwd, "", False, "gradients_compared", "code",
                        diagnosis=Diagnosis("gradient_order", {"returned": tuple(names[k] for k in order),
                                                               "inputs": tuple(names)}))]
    verdicts = []
    for n, (inp, a, got_g, want_g) in enumerate(zip(d.spec.inputs, arrays, grads, grads_want)):
        claim = f"{bwd}: d{inp.name}"
        if inp.integer:  # an integer input gets no gradient: whatever comes back is not judged
            continue
        if got_g is None:
            verdicts.append(Verdict(claim, inp.name, False, "value_checked", "code", diagnosis=Diagnosis("none")))
            continue
        if isinstance(got_g, str):
            verdicts.append(Verdict(claim, inp.name, False, "value_checked", "code",
                                    diagnosis=Diagnosis("not_array", {"what": got_g})))
            continue
        shapes = {"shape": np.shape(got_g), "input": inp.name, "input_shape": np.shape(a)}
        if np.shape(got_g) != np.shape(a):
            verdicts.append(Verdict(claim, inp.name, False, "shapes", "code",
                                    diagnosis=_shape_diagnosis(got_g, a, n, grads_want, names, shapes, want)))
            continue
        if np.allclose(got_g, want_g, rtol=1e-7, atol=1e-9, equal_nan=True):
            verdicts.append(Verdict(claim, inp.name, True, "random_inputs", "code"))
            continue
        verdicts.append(Verdict(claim, inp.name, False, "random_inputs", "code",
                                diagnosis=_gradient_diagnosis(got_g, want_g, grads_want, n, names),
                                counterexample=_example(d, arrays, got_g, want_g, g)))
    return verdicts


def _wrong_order(grads, wanted):
    """The input each returned gradient belongs to, when backward returned the right gradients
    in another order than forward takes its inputs; None otherwise."""
    import itertools

    n = len(wanted)
    if n < 2 or n > 6 or any(not isinstance(g, np.ndarray) for g in grads):
        return None

    def same(g, w):
        return g.shape == w.shape and np.allclose(g, w, rtol=1e-7, atol=1e-9)

    if all(same(g, w) for g, w in zip(grads, wanted)):
        return None
    for perm in itertools.permutations(range(n)):
        if perm != tuple(range(n)) and all(same(grads[k], wanted[perm[k]]) for k in range(n)):
            if not all(same(wanted[perm[k]], wanted[k]) for k in range(n)):
                return perm
    return None


def _shape_diagnosis(got_g, a, n, grads_want, names, shapes, out) -> Diagnosis:
    """Why a gradient has the wrong shape: transposed, another input's gradient, or not summed
    back over the axes its input was broadcast along."""
    got_g = np.asarray(got_g)
    want = grads_want[n]
    if got_g.ndim == 2 and got_g.shape[::-1] == np.shape(a) and np.allclose(got_g.T, want):
        return Diagnosis("transposed_shape", shapes)
    for m, w in enumerate(grads_want):
        if m != n and w.shape == got_g.shape and np.allclose(got_g, w):
            return Diagnosis("wrong_variable", {"other": names[m]})
    if _sums_back_to(got_g, want):
        return Diagnosis("shape", {**shapes, "broadcast": True, "other": None})
    other = [names[m] for m, w in enumerate(grads_want) if m != n and w.shape == got_g.shape]
    broadcast = not other and bool(got_g.shape == np.shape(out) or got_g.ndim > np.ndim(a) or got_g.size > np.size(a))
    return Diagnosis("shape", {**shapes, "broadcast": broadcast, "other": other[0] if other else None})


def _sums_back_to(got, want) -> bool:
    """True when summing ``got`` over some of its axes gives ``want`` (a broadcast gradient that
    was not summed back)."""
    import itertools

    got, want = np.asarray(got, float), np.asarray(want, float)
    extra = got.ndim - want.ndim
    if extra < 0 or got.ndim > 6:
        return False
    if extra == 0:  # singleton axes summed with keepdims (vugrad's Expand)
        axes = tuple(ax for ax in range(got.ndim) if want.shape[ax] == 1 and got.shape[ax] != 1)
        candidates = [got.sum(axis=axes, keepdims=True)] if axes else []
    else:
        candidates = [got.sum(axis=axes) for axes in itertools.combinations(range(got.ndim), extra)]
    return any(c.shape == want.shape and np.allclose(c, want, rtol=1e-7, atol=1e-9) for c in candidates)


def _forward_diagnosis(got, want) -> Diagnosis:
    if np.shape(got) != np.shape(want):
        return Diagnosis("forward_shape", {"got": np.shape(got), "want": np.shape(want)})
    return Diagnosis("forward", {"cause": sign_or_factor(got, want)})


def _gradient_diagnosis(got, want, all_wanted, n, names) -> Diagnosis:
    got, want = np.asarray(got, float), np.asarray(want, float)
    if got.shape == want.shape and got.ndim == 2 and got.shape[0] == got.shape[1] and np.allclose(got, want.T):
        return Diagnosis("transposed")
    for m, (other, w) in enumerate(zip(names, all_wanted)):
        if m != n and np.shape(w) == got.shape and np.allclose(got, w) and not np.allclose(w, want):
            return Diagnosis("wrong_variable", {"other": other})
    return sign_or_factor(got, want) or Diagnosis("values_differ")


def _example(d, arrays, got, want, g=None) -> Counterexample:
    return Counterexample({inp.name: a for inp, a in zip(d.spec.inputs, arrays)}, g, got, want)


def parse_kwargs(text: str | None) -> dict:
    """``dim=0,repeats=16`` (the ``--kwargs`` option) as a dict: each value a Python literal
    (number, True/False/None, 'string', [list], (tuple)) or a bare name (an index of the spec).

    >>> parse_kwargs("dim=0, repeats=j, indices=[0, 2], scale=0.5")
    {'dim': 0, 'repeats': 'j', 'indices': [0, 2], 'scale': 0.5}
    """
    import ast

    out: dict = {}
    if not text or not text.strip():
        return out
    for item in _split_top(text):
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name.isidentifier() or not value:
            raise UserCodeError(f"--kwargs takes NAME=VALUE,... (such as dim=0,repeats=16), not {item.strip()!r}")
        if value.isidentifier() and value not in ("True", "False", "None"):
            out[name] = value
            continue
        try:
            out[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            raise UserCodeError(f"--kwargs: {name}={value} is not a number, a string, a list or an index "
                                "name") from None
    return out


def _split_top(text: str) -> list:
    """Split at commas outside brackets and quotes."""
    parts, depth, quote, start = [], 0, None, 0
    for n, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:n])
            start = n + 1
    parts.append(text[start:])
    return [p for p in parts if p.strip()]


__all__ = ["DEFAULT_TIMEOUT", "UserCodeError", "check_code", "exception_diagnosis", "load_op", "parse_kwargs",
           "parse_target"]
