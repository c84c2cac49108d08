"""The specs the PyTorch and JAX targets are proven on: every op of the standard table, every op
of tests/test_ops_numeric.py and every program of tests/test_programs.py (one case per distinct
spec), each with float64 inputs in a domain where it is smooth."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import sympy as sp

from deltagrad import derive
from deltagrad.derive.spec import is_gather
from deltagrad.op_table import STANDARD_OPS

#: standard ops whose inputs must stay away from 0 (a log, a division)
POSITIVE = {"divide", "log", "normalize", "nll_loss"}
#: the size of an axis that an integer input selects from
GATHERED = 4


def table_inputs(d, name: str, seed: int = 0):
    """Inputs for a standard op, shaped by its signature: index sizes 3, 4, 5, …; a literal index
    n selects from an axis of size n + 1, _ is an axis of size one; size keywords get their index's size."""
    rng = np.random.default_rng(seed)
    sig = d.signature
    sizes = {ix: 3 + n for n, ix in enumerate(dict.fromkeys(sig.sizes))}
    low, high = (0.5, 2.0) if name in POSITIVE else (-1.5, 1.5)
    # an axis that an integer input selects from has GATHERED entries; the integers are below that
    gathered = {(e.base.label.name, axis) for e in d.spec.rhs.atoms(sp.Indexed)
                for axis, ix in enumerate(e.indices) if is_gather(ix)}
    arrays = []
    for inp, pattern in zip(d.spec.inputs, sig.patterns.values()):
        shape = tuple(GATHERED if (inp.name, axis) in gathered else 1 if ix == "_" else sizes[ix] if isinstance(ix, str) else ix + 1
                      for axis, ix in enumerate(pattern))
        if inp.integer:
            arrays.append(rng.integers(0, GATHERED, size=shape))
            continue
        arrays.append(rng.uniform(low, high, size=shape) if shape else float(rng.uniform(low, high)))
    return arrays, {k: sizes[k] for k in sig.size_kwargs}


def _cases():
    from test_ops_numeric import CASES
    from test_programs import PROGRAMS

    seen, cases = set(), []
    for e in STANDARD_OPS:
        cases.append(("table", e.name, e.spec, e.inputs, None, None))
        seen.add(e.spec)
    for name, spec, _, arrays, sizes in CASES:
        if spec not in seen:
            seen.add(spec)
            cases.append(("case", name, spec, None, arrays, sizes))
    for name, spec, _, arrays in PROGRAMS:
        if spec not in seen:
            seen.add(spec)
            cases.append(("program", name, spec, None, arrays, {}))
    return cases


CASES = _cases()
IDS = [f"{kind}-{name}" for kind, name, *_ in CASES]


@lru_cache(maxsize=None)
def derived(name: str, spec: str, inputs):
    """The derivation of one case (shared by the torch and the jax tests)."""
    return derive(spec, name=name, inputs=inputs)


def integer_inputs(d) -> set:
    """The positions of the integer inputs (indices for a gather), which get no gradient."""
    return {n for n, inp in enumerate(d.spec.inputs) if inp.integer}


def case(kind, name, spec, inputs, arrays, sizes):
    """(derivation, float64 inputs, size keywords) of one case."""
    d = derived(name, spec, inputs)
    if arrays is None:
        arrays, sizes = table_inputs(d, name)
    return d, arrays, dict(sizes)
