"""Many checks at once, from a TOML or YAML file, for teaching assistants; and the one check of
``deltagrad check SPEC --claim ... --code ...``, which is a batch of one entry.

Each entry has a ``spec`` and ``claims`` (a list of claim lines, or one line) and/or ``code``
(``file.py:ClassName``, relative to the batch file); optional ``name``, ``inputs`` (a list of
names or ``"X,W"``), ``grad_name``, ``kwargs`` (a table, or ``"dim=0,repeats=16"``) and
``timeout`` (seconds for the code, 10 by default). TOML::

    [[check]]
    name = "division"
    spec = "Y[i,j] = X[i,j] / Z[i,j]"
    claims = ["dX[a,b] = G[a,b] / Z[a,b]", "dZ[a,b] = -G[a,b]*X[a,b]/Z[a,b]**2"]

Every entry is judged whatever another one does: a bad entry, a bad claim or code that crashes,
exits or loops gives one result of its own and the batch goes on.
"""

from __future__ import annotations

from pathlib import Path

from deltagrad.check.verdict import BatchResult
from deltagrad.derive.budget import BudgetExceeded, time_budget
from deltagrad.errors import SpecError

#: The keys an entry may have, with the types their values may take (for the error words).
KEYS = {
    "name": ((str,), "a string"),
    "spec": ((str,), "a string"),
    "claims": ((str, list), "a list of claim lines (or one line)"),
    "code": ((str,), "a string FILE.py:ClassName"),
    "inputs": ((str, list), "a list of input names (or \"X,W\")"),
    "grad_name": ((str,), "a string"),
    "kwargs": ((dict, str), "a table of keyword arguments (or \"dim=0,repeats=16\")"),
    "timeout": ((int, float), "a number of seconds"),
    "functions": ((str, list), "a list of declared function names (or one name)"),
}
#: Seconds one claim may take to check before it is reported as an error.
CLAIM_SECONDS = 60.0


def load_batch(path) -> list:
    """The entries of a batch file (``.toml``, ``.yaml`` or ``.yml``); an unreadable file, or
    one with no entries, raises :class:`SpecError` (nothing can be checked)."""
    path = Path(path)
    if path.suffix not in (".toml", ".yaml", ".yml"):
        raise SpecError(f"{path}: a batch file is .toml, .yaml or .yml")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError(f"{path}: cannot be read ({err})") from None
    if path.suffix == ".toml":
        try:
            import tomllib
        except ImportError:  # Python 3.10
            import tomli as tomllib
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise SpecError(f"{path}: {err}") from None
        entries = data.get("check", [])
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise SpecError(f"{path}: {str(err).splitlines()[0]}") from None
        entries = data.get("check", data) if isinstance(data, dict) else data
    if entries is None or entries == [] or entries == {}:
        raise SpecError(f"{path}: no entries, so nothing was checked (each entry is a [[check]] table with a "
                        "'spec' and 'claims' and/or 'code')")
    if not isinstance(entries, list):
        raise SpecError(f"{path}: expected a list of entries, each with a 'spec' (and 'claims' and/or 'code')")
    return entries


def entry_problem(entry) -> str | None:
    """What is wrong with an entry's keys or their types; None when nothing is.

    >>> entry_problem({"spec": "Y[i] = X[i]", "inputs": 5})
    'inputs must be a list of input names (or "X,W"), not 5'
    >>> entry_problem({"spec": "Y[i] = X[i]", "claim": "dX[a] = G[a]"})
    "unknown key 'claim' (an entry has name, spec, claims, code, inputs, grad_name, kwargs, timeout, functions)"
    """
    if not isinstance(entry, dict):
        return f"an entry is a table with a 'spec' and 'claims' and/or 'code', not {entry!r:.60}"
    for key, value in entry.items():
        if key not in KEYS:
            return f"unknown key {key!r} (an entry has {', '.join(KEYS)})"
        types, words = KEYS[key]
        if not isinstance(value, types) or isinstance(value, bool):
            return f"{key} must be {words}, not {value!r:.60}"
    if "spec" not in entry:
        return "the entry has no 'spec'"
    if isinstance(entry.get("inputs"), list) and not all(isinstance(x, str) for x in entry["inputs"]):
        return f"inputs must be a list of input names (or \"X,W\"), not {entry['inputs']!r:.60}"
    if "timeout" in entry and not 0 < entry["timeout"] <= 600:
        return f"timeout must be a number of seconds above 0 and at most 600, not {entry['timeout']!r}"
    if not entry.get("claims") and not entry.get("code"):
        return "nothing to check: give 'claims' and/or 'code'"
    return None


def run_entry(entry: dict, label: str, base: Path | None = None, timeout: float | None = None) -> list:
    """The results of one entry: one per claim and per checked part of its code, or one error.
    ``timeout``: seconds for the code when the entry gives none (10 by default)."""
    from deltagrad.api import derive
    from deltagrad.check.claims import check_claim
    from deltagrad.check.code import DEFAULT_TIMEOUT, check_code, parse_kwargs
    from deltagrad.derive.lower import LoweringError

    problem = entry_problem(entry)
    subject = entry.get("spec") if isinstance(entry, dict) and isinstance(entry.get("spec"), str) else label
    if problem:
        return [BatchResult(label, subject, "error", message=problem)]
    inputs = entry.get("inputs")
    if isinstance(inputs, str):
        inputs = [s.strip() for s in inputs.split(",") if s.strip()]
    try:
        functions = entry.get("functions") or ()
        d = derive(entry["spec"], inputs=inputs, functions=[functions] if isinstance(functions, str) else functions)
    except (SpecError, LoweringError) as err:
        return [BatchResult(label, entry["spec"], "error", message=str(err))]
    except Exception as err:  # noqa: BLE001 - never a traceback: the engine's failure is this entry's error
        return [BatchResult(label, entry["spec"], "error", message=_internal(err))]
    results = []
    claims = entry.get("claims") or []
    for claim in [claims] if isinstance(claims, str) else claims:
        shown = claim if isinstance(claim, str) else repr(claim)
        try:
            with time_budget(CLAIM_SECONDS) as mine:
                v = check_claim(d, claim, entry.get("grad_name", "G"))
            results.append(BatchResult(label, v.claim, v.status, v))
        except SpecError as err:
            results.append(BatchResult(label, shown, "error", message=str(err)))
        except BudgetExceeded as err:
            if err.budget is not mine:
                raise
            results.append(BatchResult(label, shown, "error", message=f"checking this claim took longer than "
                                                                       f"{CLAIM_SECONDS:g} s"))
        except Exception as err:  # noqa: BLE001
            results.append(BatchResult(label, shown, "error", message=_internal(err)))
    if entry.get("code"):
        target = entry["code"]
        file, sep, cls = target.rpartition(":")
        if base is not None and sep and file and not Path(file).is_absolute():
            target = f"{base / file}:{cls}"
        try:
            kwargs = entry.get("kwargs") or {}
            kwargs = parse_kwargs(kwargs) if isinstance(kwargs, str) else kwargs
            seconds = entry.get("timeout", timeout or DEFAULT_TIMEOUT)
            for v in check_code(d, target, kwargs=kwargs, timeout=seconds):
                results.append(BatchResult(label, v.claim, v.status, v))
        except SpecError as err:
            results.append(BatchResult(label, entry["code"], "error", message=str(err)))
        except Exception as err:  # noqa: BLE001
            results.append(BatchResult(label, entry["code"], "error", message=_internal(err)))
    return results


def _internal(err: BaseException) -> str:
    return f"deltagrad could not check this ({type(err).__name__}: {err}); please report it"


def run_batch(path, timeout: float | None = None) -> list:
    """One :class:`~deltagrad.check.verdict.BatchResult` per claim (or per checked part of a
    code entry), or per entry or claim that could not be checked. ``timeout``: seconds for an
    entry's code when the entry gives none."""
    base = Path(path).parent
    results = []
    for n, entry in enumerate(load_batch(path), 1):
        name = entry.get("name") if isinstance(entry, dict) else None
        label = name if isinstance(name, str) and name else f"entry {n}"
        results += run_entry(entry, label, base, timeout)
    return results


def count_statuses(results) -> dict:
    """How many results are correct, incorrect and errors.

    >>> count_statuses([BatchResult("e", "dX = G", "correct"), BatchResult("e", "Y = foo", "error")])
    {'correct': 1, 'incorrect': 0, 'error': 1}
    """
    return {k: sum(r.status == k for r in results) for k in ("correct", "incorrect", "error")}


def exit_code(results) -> int:
    """0 when every result is correct, 1 when one is incorrect, 2 for an error or for nothing
    checked at all.

    >>> exit_code([]), exit_code([BatchResult("e", "c", "correct"), BatchResult("e", "c", "incorrect")])
    (2, 1)
    """
    counts = count_statuses(results)
    if counts["error"] or not results:
        return 2
    return 1 if counts["incorrect"] else 0
