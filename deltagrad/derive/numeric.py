"""Evaluate index expressions on concrete arrays: random inputs, the forward's saved values,
and a gradient expression lowered and run with NumPy. Used to confirm rewrites and to find
counterexamples to claimed gradients.

>>> from deltagrad.derive.parse import parse_spec
>>> from deltagrad.derive.forward_values import forward_values
>>> from deltagrad.derive.spec import index, tensor
>>> spec = parse_spec("Y[i,j] = X[i,j] * 2")
>>> sizes = index_sizes(spec, "X", (index('a'), index('b')))
>>> env = forward_env(spec, forward_values(spec), {"X": np.ones((2, 3))}, sizes, "G")
>>> env["Y"].tolist()
[[2.0, 2.0, 2.0], [2.0, 2.0, 2.0]]
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import sympy as sp

from deltagrad.derive.array_program import Assign
from deltagrad.derive.evaluate import run
from deltagrad.derive.forward_values import Maximum, computation_order, max_node
from deltagrad.derive.lower import Lowering
from deltagrad.derive.spec import UNIT, Spec, extent, index, index_aliases, input_pattern, is_gather, is_index


def index_sizes(spec: Spec, input_name: str, grad_indices, first: int = 2) -> dict:
    """A size per extent symbol: indices of one class share a size, classes get different sizes
    (so that a transpose cannot hide), and each gradient index takes its input axis' size."""
    aliases = index_aliases(spec)
    classes = sorted(set(aliases.values()))
    # a class is larger than every literal that stands at one of its axes (X[j,1] beside X[1,k])
    least = {}
    for e in spec.rhs.atoms(sp.Indexed):
        for axis, ix in enumerate(e.indices):
            for other in spec.rhs.atoms(sp.Indexed):
                if other.base == e.base and isinstance(ix, sp.Integer) and is_index(other.indices[axis]):
                    rep = aliases.get(other.indices[axis].name)
                    least[rep] = max(least.get(rep, 0), int(ix) + 1)
    sizes = {extent(index(n)): max(first + classes.index(rep) % 4, least.get(rep, 0)) for n, rep in aliases.items()}
    for idx, size in zip(grad_indices, input_shape(spec, input_name, sizes)):
        sizes[extent(idx)] = size
    return sizes


def input_shape(spec: Spec, name: str, sizes: dict) -> tuple:
    """The shape of input ``name``: an axis that an index runs over has its size; one that only
    literals select from is two longer than the largest literal; ``_`` has size 1, and an axis an
    integer input selects from (``X[i, t[i]]``) GATHER_SIZE."""
    entries = [e for e in spec.rhs.atoms(sp.Indexed) if e.base.label.name == name]
    shape = []
    for axis, ix in enumerate(input_pattern(spec, name)):
        if ix == UNIT:
            shape.append(1)
            continue
        if is_gather(ix):
            shape.append(GATHER_SIZE)
            continue
        named = sorted((e.indices[axis] for e in entries if is_index(e.indices[axis])), key=str)
        if named and extent(named[0]) in sizes:
            shape.append(sizes[extent(named[0])])
        else:
            shape.append(max(int(e.indices[axis]) for e in entries if isinstance(e.indices[axis], sp.Integer)) + 2)
    return tuple(shape)


def input_shapes(spec: Spec, sizes: dict) -> dict:
    """Every input's shape (:func:`input_shape`), by name."""
    return {inp.name: input_shape(spec, inp.name, sizes) for inp in spec.inputs}


def gather_range(spec: Spec, name: str, shapes: dict) -> int:
    """How many positions the integer input ``name`` may hold: the size of the smallest axis it
    selects from (``X[i, t[i]]``: X's axis 1), given the inputs' ``shapes``."""
    found = [shapes[e.base.label.name][axis] for e in spec.rhs.atoms(sp.Indexed) if e.base.label.name in shapes
             for axis, ix in enumerate(e.indices) if is_gather(ix) and ix.base.label.name == name]
    return min(found, default=GATHER_SIZE)


#: The size of an axis that an integer input selects from (``X[i, t[i]]``): t is drawn below it.
GATHER_SIZE = 4


def output_shape(spec: Spec, sizes: dict) -> tuple:
    return tuple(sizes[extent(i)] if isinstance(i, sp.Symbol) else 1 for i in spec.out_indices)


def random_inputs(spec: Spec, sizes: dict, rng, low: float, high: float, integers: bool = False,
                  shapes: dict | None = None) -> dict:
    """Random values for every input: uniform floats, small integers without zero
    (``integers=True``), or magnitudes log-uniform from ``low`` to ``high`` with random signs
    (``integers="wide"``). ``shapes`` (:func:`input_shapes`) saves working them out again."""
    out = {}
    shapes = shapes or input_shapes(spec, sizes)
    for inp in spec.inputs:
        shape = shapes[inp.name]
        if inp.integer:  # valid positions of the axes it selects from
            vals = rng.integers(0, gather_range(spec, inp.name, shapes), size=shape)
            out[inp.name] = vals if shape else int(vals)
            continue
        if integers == "wide":  # magnitudes spread over low..high, either sign
            vals = rng.choice([-1.0, 1.0], size=shape) * 10 ** rng.uniform(np.log10(low), np.log10(high), size=shape)
        elif integers:
            vals = rng.integers(int(low), int(high) + 1, size=shape).astype(float)
            vals[vals == 0] = 1.0
        else:
            vals = rng.uniform(low, high, size=shape)
        out[inp.name] = vals if shape else np.float64(vals)
    return out


def forward_env(spec: Spec, values, inputs: dict, sizes: dict, grad_name: str) -> dict:
    """The inputs, sizes and the forward's values (maxima, reductions, output) by name."""
    env = {s.name: v for s, v in sizes.items()}
    env.update(inputs)
    statements = forward_statements(values, spec.output, tuple(spec.out_indices), tuple(sizes), grad_name)
    with np.errstate(all="ignore"):
        return run(statements, env, np)


@lru_cache(maxsize=64)
def forward_statements(values, output: str, out_indices: tuple, sizes: tuple, grad_name: str) -> list:
    """The forward's statements (maxima, reductions, output), lowered once for every draw."""
    low = Lowering(sizes={s: s.name for s in sizes}, dtype_of=grad_name, count_in=[values.rhs])
    for item in computation_order(values, values.maxima, values.reductions):
        if isinstance(item, Maximum):
            low.assign(item.name, max_node(item))
        else:
            low.assign(item.name, low.lower(item.expr, item.indices))
    low.assign(output, low.lower_output(values.rhs, out_indices))
    return low.statements


def evaluate_gradient(expr, env: dict, sizes: dict, grad_indices, grad_name: str) -> np.ndarray:
    """The array of ``expr`` over ``grad_indices`` with variables from ``env``."""
    statements = lowered(expr, tuple(sizes), tuple(grad_indices), grad_name, tuple(sorted(env)))
    with np.errstate(all="ignore"):
        return np.asarray(run(statements, env, np)["_result"], dtype=float)


@lru_cache(maxsize=256)
def lowered(expr, sizes: tuple, grad_indices: tuple, grad_name: str, names: tuple) -> list:
    """The statements that compute ``expr`` as ``_result``: lowered once, run on every draw."""
    low = Lowering(sizes={s: s.name for s in sizes}, dtype_of=grad_name, reserved=names, count_in=[expr])
    node = low.lower(expr, grad_indices)
    return low.statements + [Assign("_result", node)]


#: Draws for confirming a rewrite: inputs uniform in a positive range and in one of both signs.
FLOAT_DRAWS = ((0.5, 1.5, False), (-1.5, 1.5, False))


def random_environments(spec: Spec, values, sizes: dict, grad_name: str, draws, seed: int = 0):
    """One environment per ``(low, high, integers)`` draw: random inputs, the forward's values
    and a random output gradient (small non-zero integers when ``integers``)."""
    rng = np.random.default_rng(seed)
    shape = output_shape(spec, sizes)
    shapes = input_shapes(spec, sizes)
    for low, high, integers in draws:
        env = forward_env(spec, values, random_inputs(spec, sizes, rng, low, high, integers, shapes), sizes, grad_name)
        if integers:
            g = rng.integers(-3, 4, size=shape).astype(float)
            g[g == 0] = 1.0
        else:
            g = rng.normal(size=shape)
        env[grad_name] = g if shape else np.float64(g)  # has a dtype, as goutput in generated code
        yield env


def compare_gradients(first, second, spec: Spec, values, grad_indices, grad_name: str, sizes: dict, draws,
                      seed: int = 0, rtol: float = 1e-9, atol: float = 1e-10):
    """(agree, env, first_value, second_value) over the draws.

    Draws where either side is not finite are skipped; ``agree`` is None when none is finite,
    False with the first draw where the two differ, else True with the last draw. When every
    draw gave (nearly) 0 on both sides (a product of steps that the draws never switch on), up to
    :data:`EXTRA_DRAWS` more draws of mixed signs look for one that does not, so that
    ``2·H(−x)·H(x − v)`` is not taken for ``H(−x)·H(x − v)``.
    """
    witness, informative = None, False
    extra = [((-3, 3, True), (-2.0, 2.0, False), (1e-3, 1e3, "wide"), (1e-2, 1e1, "wide"))] * EXTRA_DRAWS
    for n, batch in enumerate([draws, *extra]):
        if n and (witness is None or informative):
            break
        for env in random_environments(spec, values, sizes, grad_name, batch, seed + n):
            a = evaluate_gradient(first, env, sizes, grad_indices, grad_name)
            b = evaluate_gradient(second, env, sizes, grad_indices, grad_name)
            if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
                continue
            if a.shape != b.shape or not np.allclose(a, b, rtol=rtol, atol=atol):
                return False, env, a, b
            if telling(a, b, atol) or witness is None:
                witness = (env, a, b)
            informative = informative or telling(a, b, atol)
    if witness is None:
        return None, None, None, None
    return True, *witness


def telling(a, b, atol: float = 1e-10) -> bool:
    """True when ``a`` or ``b`` has an entry well above the comparison's absolute tolerance: a draw
    on which 2·x and x, both 1e-11, would look equal tells nothing.

    >>> telling(np.array([2e-11]), np.array([1e-11])), telling(np.array([0.0, 3.0]), np.array([0.0, 3.0]))
    (False, True)
    """
    return bool(np.any(np.abs(a) > 100 * atol) or np.any(np.abs(b) > 100 * atol))


#: Batches of four more draws (two with magnitudes spread over 1e-3..1e3 and 1e-2..10, which reach a
#: ``Min(Abs(Z)**W, 1e-3)``) tried when every draw gave 0 on both sides.
EXTRA_DRAWS = 16
