"""Run a user's Op class in a child process: ``python worker.py FOLDER``.

``deltagrad check --code`` judges the user's forward and backward in its own process; this
script only runs them, so that whatever the user's code does (raise, call ``sys.exit``, loop
forever, crash the interpreter) ends at most this process. It imports nothing of deltagrad
(only the standard library and NumPy), so it starts fast and runs as a plain script.

The parent writes ``FOLDER/request.json`` (the file, the class, keyword arguments, the sizes
the forward may take, the seed of the output gradient) and ``FOLDER/request.npz`` (the inputs,
``x0``, ``x1``, ...). This script writes ``FOLDER/phase`` before each step (``import``,
``forward``, ``backward``) and, at the end, ``FOLDER/result.json`` and ``FOLDER/result.npz``
(the forward's output ``forward`` and the gradients ``grad0``, ``grad1``, ...). Every exception
the user's code raises, ``SystemExit`` and ``KeyboardInterrupt`` included, is written as plain
data with the user's file and line.

>>> import numpy as np
>>> float(output_gradient(7, ())) == float(output_gradient(7, ()))
True
>>> output_gradient(7, (2, 3)).shape
(2, 3)
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__" and sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]  # this folder holds code.py: it must not shadow the standard library's `code`

import importlib.util  # noqa: E402
import inspect  # noqa: E402
import json  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

#: The largest array a user's forward may return for its backward to be run (elements).
MAX_ELEMENTS = 10**7


def output_gradient(seed: int, shape: tuple):
    """The output gradient given to backward: standard normal values from ``seed``, a float for
    a scalar output (the parent draws the same one to compare)."""
    rng = np.random.default_rng(seed)
    return float(rng.normal()) if shape == () else rng.normal(size=shape)


def exception_info(err: BaseException, file: Path | None, context_keys: list | None = None,
                   calling: str | None = None) -> dict:
    """An exception as plain data: its type and message, and the line that raised it: the last
    line of ``file`` on the traceback (for a syntax error, the line it points at). When ``file``
    is not on it (the call itself failed, as for a missing keyword argument), no line is named
    but ``calling``, what was being called; without a ``file``, the innermost line.

    >>> try:
    ...     {}["sigx"]
    ... except KeyError as err:
    ...     info = exception_info(err, None, ["sig"])
    >>> info["type"], info["message"], info["context_keys"]
    ('KeyError', "'sigx'", ['sig'])
    """
    where = {"file": None, "line": None, "source": None}
    if isinstance(err, SyntaxError) and err.filename and err.lineno:
        where = {"file": Path(err.filename).name, "line": err.lineno, "source": (err.text or "").strip()}
        message = err.msg
    else:
        frames = traceback.extract_tb(err.__traceback__)
        mine = [f for f in frames if file is not None and _same_file(f.filename, file)]
        frame = (mine or ([] if file is not None else frames) or [None])[-1]
        if frame is not None:
            where = {"file": Path(frame.filename).name, "line": frame.lineno, "source": (frame.line or "").strip()}
        message = str(err)
        if isinstance(err, SystemExit):
            message = f"sys.exit({err.code!r}) was called"
    return {"type": type(err).__name__, "message": message, **where, "context_keys": context_keys,
            "calling": calling if where["file"] is None else None}


def _same_file(name: str, file: Path) -> bool:
    try:
        return Path(name).resolve() == Path(file).resolve()
    except (OSError, ValueError):
        return False


def load_class(file: Path, cls: str):
    """The object ``cls`` of ``file`` (imported as a module, so the file runs) and a problem:
    (object, None), or (None, message) when it is missing or not an Op class. A file inside a
    package (folders with ``__init__.py``, as ``vugrad/ops.py``) is imported as part of it, so
    that its relative imports work."""
    root, dotted = package_module(file)
    if dotted is not None:
        sys.path.insert(0, str(root))
        module = importlib.import_module(dotted)
        if not _same_file(getattr(module, "__file__", "") or "", file):
            return None, f"{file.name}: importing it as {dotted} found another file ({module.__file__})"
    else:
        name = f"deltagrad_user_{abs(hash(str(file.resolve())))}"
        spec = importlib.util.spec_from_file_location(name, file)
        if spec is None or spec.loader is None:
            return None, f"{file.name} cannot be imported as Python"
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    if not hasattr(module, cls):
        return None, f"{file.name} has no class {cls!r}"
    return getattr(module, cls), not_an_op(getattr(module, cls), cls, file.name)


def package_module(file: Path):
    """(the folder to import from, the dotted module name) for a file inside a package; (None,
    None) for a plain file.

    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> (root / "pkg").mkdir(); (root / "pkg" / "__init__.py").write_text("")
    0
    >>> package_module(root / "pkg" / "ops.py") == (root.resolve(), "pkg.ops")
    True
    """
    file = Path(file).resolve()
    parts, folder = [file.stem], file.parent
    while (folder / "__init__.py").is_file() and folder.name.isidentifier():
        parts.insert(0, folder.name)
        folder = folder.parent
    if len(parts) == 1 or not all(p.isidentifier() for p in parts):
        return None, None
    return folder, ".".join(parts)


def not_an_op(obj, cls: str, filename: str) -> str | None:
    """Why ``obj`` is not an Op class (None when it is one: a class with callable forward and
    backward).

    >>> print(not_an_op(5, "NotAClass", "ops.py"))
    ops.py: NotAClass is an int (5), not a class with forward(context, ...) and backward(context, goutput)
    """
    if not inspect.isclass(obj):
        shown = repr(obj)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        what = type(obj).__name__
        article = "an" if what[:1].lower() in "aeiou" else "a"
        return (f"{filename}: {cls} is {article} {what} ({shown}), not a class with forward(context, ...) "
                "and backward(context, goutput)")
    for method in ("forward", "backward"):
        if not callable(getattr(obj, method, None)):
            return (f"{filename}: class {cls} has no {method} method (an Op has forward(context, ...) and "
                    "backward(context, goutput))")
    return None


def accepted(fn, names) -> list:
    """Which of ``names`` the function takes as keyword arguments (all of them for **kwargs, or
    when its signature cannot be read)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return list(names)
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return list(names)
    keywords = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return [n for n in names if n in keywords]


def as_array(value):
    """(array, None) for a numeric array or number, else (None, what it is)."""
    if value is None:
        return None, "None"
    try:
        arr = np.asarray(value)
        if arr.dtype.kind in "biuf":
            return arr.astype(float), None
        if arr.dtype.kind == "c":
            return None, "an array of complex numbers"
    except Exception:  # noqa: BLE001 - an object numpy cannot read is what the user returned
        pass
    return None, f"a {type(value).__name__}"


def decode(value):
    """A keyword value from the request: a list is passed as a NumPy array (vugrad's
    ``indices``), a marked tuple as a tuple.

    >>> decode({"__array__": [0, 2]}), decode({"__tuple__": [1, 2]}), decode(3)
    (array([0, 2]), (1, 2), 3)
    """
    if isinstance(value, dict) and "__array__" in value:
        return np.asarray(value["__array__"])
    if isinstance(value, dict) and "__tuple__" in value:
        return tuple(decode(v) for v in value["__tuple__"])
    return value


def run(folder: Path, op=None) -> dict:
    """Load the class (or take ``op``, a class a forked child inherited), run forward then
    backward, and say what happened (plain data)."""
    request = json.loads((folder / "request.json").read_text())
    with np.load(folder / "request.npz", allow_pickle=False) as data:
        arrays = [data[f"x{n}"] for n in range(request["inputs"])]
    inputs = [np.copy(a) if a.ndim else float(a) for a in arrays]
    file = Path(request["file"]) if request["file"] else None
    phase(folder, "import")
    if op is None:
        try:
            op, problem = load_class(file, request["class"])
        except BaseException as err:  # noqa: BLE001 - SystemExit, KeyboardInterrupt: the user's
            return {"stage": "import", "error": exception_info(err, file)}
        if problem:
            return {"stage": "load", "message": problem}
    sizes = request["sizes"]
    kwargs = {k: decode(v) for k, v in request["kwargs"].items()}
    passed = {k: sizes[k] for k in accepted(op.forward, [k for k in sizes if k not in kwargs])}
    result = {"stage": "forward", "passed_sizes": passed}
    context: dict = {}
    phase(folder, "forward")
    try:
        out = op.forward(context, *inputs, **kwargs, **passed)
    except BaseException as err:  # noqa: BLE001
        return {**result, "error": exception_info(err, file, calling=calling(request["class"], "forward", inputs,
                                                                              {**kwargs, **passed}))}
    arrays_out = {}
    got, what = as_array(out)
    result["forward_type"] = what
    if got is None:
        return result
    arrays_out["forward"] = got
    if got.size > MAX_ELEMENTS:
        result["forward_type"] = f"an array of {got.size} elements"
        return result
    keys = _keys(context)
    g = output_gradient(request["seed"], got.shape)
    result["stage"] = "backward"
    result["context_keys"] = keys
    save(folder, dict(result), dict(arrays_out))  # what forward did stands if backward ends the process
    phase(folder, "backward")
    try:
        grads = op.backward(context, np.copy(g) if np.ndim(g) else g)
    except BaseException as err:  # noqa: BLE001
        result["error"] = exception_info(err, file, keys if isinstance(err, KeyError) else None,
                                         calling=f"{request['class']}.backward(context, goutput)")
        return _with_arrays(result, arrays_out)
    result["tuple"] = isinstance(grads, (tuple, list))
    grads = list(grads) if isinstance(grads, (tuple, list)) else [grads]
    kinds = []
    for n, value in enumerate(grads[:64]):
        arr, what = as_array(value)
        kinds.append(what)
        if arr is not None:
            arrays_out[f"grad{n}"] = arr
    result["grads"] = kinds
    result["returned"] = len(grads)
    result["stage"] = "done"
    return _with_arrays(result, arrays_out)


def calling(cls: str, method: str, inputs, kwargs) -> str:
    """How forward was called, for an error that the call itself raised.

    >>> calling("Expand", "forward", [np.ones((2, 1))], {"j": 3})
    'Expand.forward(context, <array (2, 1)>, j=3)'
    """
    args = ["context"] + [f"<array {tuple(np.shape(a))}>" if np.ndim(a) else f"{a:.3g}" for a in inputs]
    args += [f"{k}={v!r}" if not isinstance(v, np.ndarray) else f"{k}=<array {v.shape}>" for k, v in kwargs.items()]
    return f"{cls}.{method}({', '.join(args)})"


def _keys(context) -> list | None:
    try:
        return sorted(str(k) for k in context)
    except Exception:  # noqa: BLE001 - a context the user replaced by something odd
        return None


def _with_arrays(result: dict, arrays: dict) -> dict:
    result["_arrays"] = arrays
    return result


def phase(folder: Path, name: str) -> None:
    (folder / "phase").write_text(name)


def save(folder: Path, result: dict, arrays: dict) -> None:
    """Write the result (arrays first: result.json, written last, says it is whole)."""
    np.savez(folder / "result.tmp.npz", **arrays)
    os.replace(folder / "result.tmp.npz", folder / "result.npz")
    (folder / "result.tmp.json").write_text(json.dumps(result, default=str))
    os.replace(folder / "result.tmp.json", folder / "result.json")


def main(folder: str, op=None) -> None:
    folder = Path(folder)
    result = run(folder, op)
    arrays = result.pop("_arrays", {})
    save(folder, {**result, "complete": True}, arrays)
    os._exit(0)  # no atexit handler or thread of the user's may change the outcome


if __name__ == "__main__":
    request_file = Path(sys.argv[1]) / "request.json"
    user_file = Path(json.loads(request_file.read_text())["file"])
    sys.path.insert(0, str(user_file.parent))  # as `python user_file.py` would: its folder first
    sys.argv = [str(user_file)]
    main(str(request_file.parent))
