"""Many checks at once, from a TOML or YAML file, for teaching assistants.

Each entry has a ``spec`` and ``claims`` (a list of claim lines) and/or ``code``
(``file.py:ClassName``, relative to the batch file); optional ``name``, ``inputs`` and
``grad_name``. TOML::

    [[check]]
    name = "division"
    spec = "Y[i,j] = X[i,j] / Z[i,j]"
    claims = ["dX[a,b] = G[a,b] / Z[a,b]", "dZ[a,b] = -G[a,b]*X[a,b]/Z[a,b]**2"]
"""

from __future__ import annotations

from pathlib import Path

from deltagrad.check.verdict import BatchResult
from deltagrad.errors import SpecError


def load_batch(path) -> list:
    """The entries of a batch file (``.toml``, ``.yaml`` or ``.yml``)."""
    path = Path(path)
    text = path.read_text()
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
    elif path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise SpecError(f"{path}: {str(err).splitlines()[0]}") from None
        entries = data.get("check", data) if isinstance(data, dict) else data
    else:
        raise SpecError(f"{path}: a batch file is .toml, .yaml or .yml")
    if not isinstance(entries, list) or not all(isinstance(e, dict) and "spec" in e for e in entries):
        raise SpecError(f"{path}: expected a list of entries, each with a 'spec' (and 'claims' and/or 'code')")
    return entries


def run_batch(path) -> list:
    """One :class:`~deltagrad.check.verdict.BatchResult` per claim (or per checked part of a
    code entry), or per entry or claim that could not be checked."""
    from deltagrad.api import derive
    from deltagrad.check.claims import check_claim
    from deltagrad.check.code import check_code, load_op

    base = Path(path).parent
    results = []
    for n, entry in enumerate(load_batch(path), 1):
        label = entry.get("name") or f"entry {n}"
        try:
            d = derive(entry["spec"], inputs=entry.get("inputs"))
        except SpecError as err:
            results.append(BatchResult(label, entry["spec"], "error", message=str(err)))
            continue
        for claim in entry.get("claims", []):
            try:
                v = check_claim(d, claim, entry.get("grad_name", "G"))
                results.append(BatchResult(label, v.claim, v.status, v))
            except SpecError as err:
                results.append(BatchResult(label, claim, "error", message=str(err)))
        if entry.get("code"):
            target = entry["code"]
            file, _, cls = target.rpartition(":")
            try:
                op, f = load_op(f"{base / file}:{cls}")
                for v in check_code(d, op, f):
                    results.append(BatchResult(label, v.claim, v.status, v))
            except SpecError as err:
                results.append(BatchResult(label, target, "error", message=str(err)))
    return results


def count_statuses(results) -> dict:
    """How many results are correct, incorrect and errors.

    >>> count_statuses([BatchResult("e", "dX = G", "correct"), BatchResult("e", "Y = foo", "error")])
    {'correct': 1, 'incorrect': 0, 'error': 1}
    """
    return {k: sum(r.status == k for r in results) for k in ("correct", "incorrect", "error")}
