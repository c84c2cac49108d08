"""What the framework targets (PyTorch, JAX) share: which forward values the backward keeps,
which it recomputes for a double backward, and building generated source in memory.

A target prints the same array programs as the NumPy ``Op`` class, with its own printer (a
small :class:`~deltagrad.codegen.python_printer.PythonPrinter` subclass) and its own template;
the plan below is plain data read off the derivation, so that a forward of several statements
(a program with named steps) needs nothing special.

>>> from deltagrad.derive.derivation import derive
>>> plan = framework_plan(derive("Y[i,j] = X[i,j] / Sum(X[i,k], k)"))
>>> plan.saved_arrays, plan.intermediates, plan.kept_inputs
(['row_sum', 'Y'], ['row_sum'], ['X'])
>>> [st.target for st in plan.recompute]
['row_sum']
"""

from __future__ import annotations

import importlib.util
import keyword
import linecache
from dataclasses import dataclass

from deltagrad.codegen.python_printer import render_statements
from deltagrad.derive.array_program import needed, variables
from deltagrad.derive.names import NAMES
from deltagrad.errors import SpecError

#: target → (module to import, how to install it, the framework's name)
FRAMEWORKS = {
    "torch": ("torch", "pip install 'deltagrad[torch]'", "PyTorch"),
    "jax": ("jax", "pip install 'deltagrad[jax]'", "JAX"),
}


class MissingFramework(ImportError):
    """The framework a target needs is not installed (one line that names the extra)."""


def require(target: str) -> None:
    """Raise :class:`MissingFramework` when ``target``'s framework cannot be imported, with one
    line: ``target 'torch' needs PyTorch, which is not installed: pip install 'deltagrad[torch]'``
    (tested in ``tests/test_torch_jax_optional.py``)."""
    module, how, what = FRAMEWORKS[target]
    if importlib.util.find_spec(module) is None:
        raise MissingFramework(f"target {target!r} needs {what}, which is not installed: {how}")


@dataclass(frozen=True)
class FrameworkPlan:
    """What a framework op computes, keeps and recomputes, read off a derivation.

    ``size_statements``: forward statements that only read an input's shape (``n_X_1 =
    X.shape[1]``); ``body``: the rest of the forward; ``saved_arrays``: the arrays the backward
    reads (inputs, the output, forward values), in the derivation's order; ``saved_sizes``: the
    sizes it reads; ``intermediates``: the saved arrays that are neither input nor output;
    ``recompute``: the forward statements that compute them, for a double backward that must
    differentiate through them; ``kept_inputs``: the inputs that the backward reads or that the
    recompute needs; ``recompute_sizes``: sizes the recompute reads.
    """

    inputs: list
    output: str
    size_statements: list
    body: list
    backward: list
    saved_arrays: list
    saved_sizes: list
    intermediates: list
    recompute: list
    kept_inputs: list
    recompute_sizes: list
    results: list


#: names the generated torch and JAX code uses for itself
CODE_NAMES = {"ctx", "torch", "jax", "jnp", "partial", "residuals", "check_shapes"}


def framework_plan(derivation) -> FrameworkPlan:
    """The :class:`FrameworkPlan` of ``derivation``; a name of the spec that the generated code
    uses for itself (``ctx``, ``torch``, ``jnp``…) is refused with a :class:`SpecError`.

    >>> from deltagrad.derive.derivation import derive
    >>> framework_plan(derive("Y[i,j] = 2*ctx[i,j]"))
    Traceback (most recent call last):
    ...
    deltagrad.errors.SpecError: the name 'ctx' is one the generated torch/jax code uses for itself; rename it in the spec
    """
    inputs = list(derivation.inputs)
    used = set(inputs) | {st.target for st in derivation.forward.statements} | {derivation.name}
    clash = sorted(used & CODE_NAMES)
    if clash:
        raise SpecError(f"the name {clash[0]!r} is one the generated torch/jax code uses for itself; rename it in the spec")
    output = derivation.output
    forward = list(derivation.forward.statements)
    size_statements = [st for st in forward if NAMES.is_extent(st.target)]
    body = [st for st in forward if not NAMES.is_extent(st.target)]
    saved_arrays = [n for n in derivation.saved if not NAMES.is_extent(n)]
    saved_sizes = [n for n in derivation.saved if NAMES.is_extent(n)]
    intermediates = [n for n in saved_arrays if n not in inputs and n != output]
    need = set()
    for name in intermediates:
        need |= needed(body, name)
    recompute = [st for st in body if st.target in need]
    assigned = {st.target for st in recompute}
    reads = set().union(*(variables(st.value) for st in recompute)) - assigned if recompute else set()
    kept_inputs = [n for n in inputs if n in saved_arrays or n in reads]
    recompute_sizes = sorted(n for n in reads if NAMES.is_extent(n) and n not in saved_sizes)
    results = list(derivation.backward.results)  # None for an integer input
    return FrameworkPlan(inputs, output, size_statements, body, list(derivation.backward.statements),
                         saved_arrays, saved_sizes, intermediates, recompute, kept_inputs, recompute_sizes, results)


def function_name(derivation) -> str:
    """The public function of an op: its name (``softmax``, or the output's name ``Y``); a
    Python keyword gets a trailing underscore (``lambda_``)."""
    return derivation.name + "_" if keyword.iskeyword(derivation.name) else derivation.name


def shared_context(derivation, op: dict, plan) -> dict:
    """What the torch and JAX templates both render: the docstring parts of the NumPy op
    (``op``, from :func:`~deltagrad.codegen.op_class.op_context`) and the signature."""
    return {
        "summary": op["summary"],
        "forward_doc": op["forward_doc"],
        "backward_doc": op["backward_doc"],
        "grad_symbol": derivation.grad_name,
        "output": plan.output,
        "inputs": plan.inputs,
        "size_kwargs": op["size_kwargs"],
        "shapes": op["shapes"],
        "batch": op["batch"],
        "merge": op["merge"],
    }


def assignments(printer, statements) -> list:
    """One line of source per statement, printed by ``printer``."""
    return render_statements(statements, printer)


def build(source: str, label: str, functions: dict | None = None) -> dict:
    """Execute generated ``source`` (rendered from a checked, parsed spec, never user text) as
    a module of its own and return its namespace; tracebacks show the generated lines.
    ``functions`` (name → implementation of a generic function) are globals of that module."""
    filename = f"<deltagrad {label}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict = {"__name__": "deltagrad.compiled", **(functions or {})}
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102 - our own generated code
    return namespace
