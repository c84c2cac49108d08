"""Render a derivation as a vugrad-style ``Op`` class (Jinja template), and build it in memory.

>>> from deltagrad.derive.derivation import derive
>>> print(op_source(derive("Y[i,j] = X[i,j] / Z[i,j]", name="divide")))  # doctest: +ELLIPSIS
class Divide(Op):
    \"\"\"The op divide: forward from its spec, backward derived by deltagrad.
...
    @staticmethod
    def backward(context, goutput):
        Z = context["Z"]
        Y = context["Y"]
        needs = context.get("needs_input_grad", (True, True))
        dX = goutput / Z if needs[0] else None
        dZ = -goutput * Y / Z if needs[1] else None
        return dX, dZ
<BLANKLINE>
"""

from __future__ import annotations

import linecache
from functools import lru_cache

import jinja2
import sympy as sp

from deltagrad.codegen.index_printer import index_text, merged_text
from deltagrad.codegen.matrix_form import matrix_form, no_matrix_form_reason
from deltagrad.codegen.python_printer import render, render_statements
from deltagrad.derive.array_program import (Runtime, Subscript, Var, applied, helpers, nodes, reads_attribute,
                                           uses_namespace, variables)
from deltagrad.derive.ellipsis import carriers, flat_rank, has_ellipsis
from deltagrad.derive.functions import where
from deltagrad.derive.names import NAMES, op_class_name
from deltagrad.derive.size_one import shown_indices
from deltagrad.derive.spec import tensor

HEADER = "from deltagrad.op_base import Op, array_namespace, check_shapes\n"
#: what every generated NumPy op imports from ``op_base``
BASE_IMPORTS = ("Op", "array_namespace", "check_shapes")
#: what an op with ``...`` imports besides (its leading axes flattened and restored)
BATCH_IMPORTS = ", flat_batch, flatten_batch, unflatten_batch"


def op_base_names(derivations, sources=()) -> str:
    """What generated ops import from ``op_base``: ``Op, array_namespace, check_shapes``, the
    helpers their code calls (``scatter_add``), the batch helpers of specs with ``...`` and
    ``special`` where a ``source`` calls erf or sigmoid.

    >>> from deltagrad.derive.derivation import derive
    >>> op_base_names([derive("Y[...] = exp(X[...])")])
    'Op, array_namespace, check_shapes, flat_batch, flatten_batch, unflatten_batch'
    """
    used = set().union(*(helpers(d.forward.statements) | helpers(d.backward.statements) for d in derivations))
    if any(has_ellipsis(d.spec) for d in derivations):
        used |= set(BATCH_IMPORTS.strip(", ").split(", "))
    if any("special(xp)." in s for s in sources):
        used.add("special")
    if any(d.spec.out_groups for d in derivations):
        used |= {"merge_axes", "split_axes"}
    return ", ".join([*BASE_IMPORTS, *sorted(used)])


def runtime_names(derivations) -> list:
    """The run-time helpers (``windows``, ``unwindow``, ``window_count``) that the derivations'
    code calls on every target (the framework modules import them too), sorted.

    >>> from deltagrad.derive.derivation import derive
    >>> runtime_names([derive("Y[i] = X[2*i]")])
    ['unwindow', 'window_count', 'windows']
    """
    code = [s for d in derivations for s in (*d.forward.statements, *d.backward.statements)]
    merged = {"merge_axes"} if any(d.spec.out_groups for d in derivations) else set()
    return sorted({n.fn for n in nodes(code) if isinstance(n, Runtime)} | merged)


def header(derivation, source: str = "", text: str = HEADER, extra: str | None = None) -> str:
    """``text`` (the imports of a module of one op) with what its deltagrad import line needs
    besides: all the ``op_base`` names a NumPy op's ``source`` uses, or, for the framework
    modules, ``extra`` where the spec has ``...`` and the run-time helpers it calls.

    >>> from deltagrad.derive.derivation import derive
    >>> header(derive("Y[i] = erf(X[i])"), "Y = special(xp).erf(X)").strip()
    'from deltagrad.op_base import Op, array_namespace, check_shapes, special'
    """
    if extra is not None:
        names = (extra if has_ellipsis(derivation.spec) else "") + "".join(f", {n}" for n in runtime_names([derivation]))
    else:
        names = op_base_names([derivation], [source])[len(", ".join(BASE_IMPORTS)):]
    if not names:
        return text
    head, sep, tail = text.rpartition("\n")
    return head + names + sep + tail


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The Jinja environment over ``deltagrad/templates`` (whitespace-exact, strict)."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("deltagrad", "templates"),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
    )


def class_name(name: str) -> str:
    """CamelCase class name for an op name.

    >>> class_name("log_softmax"), class_name("Y")
    ('LogSoftmax', 'Y')
    """
    return op_class_name(name)


def op_context(derivation, summary: str | None = None) -> dict:
    """The plain data the op template renders: names, rendered expressions and flags that are
    questions asked of the array programs; the template decides the layout."""
    spec, sig = derivation.spec, derivation.signature
    forward, backward = derivation.forward, derivation.backward
    used = set(derivation.saved)
    for st in forward.statements:
        used |= variables(st.value)
    shapes = None
    if sig.sizes:
        targets = [NAMES.extent(n) if NAMES.extent(n) in used else "_" for n in sig.sizes]
        shapes = {
            "targets": targets if any(t != "_" for t in targets) else [],
            "name": f'"{class_name(spec.name)}"',
            "sizes": _tuple(sig.sizes),
            "arrays": [f'"{n}": ({n}, {_tuple(p)})' for n, p in sig.patterns.items()],
            "given": [f'"{k}": {k}' for k in sig.size_kwargs],
        }
    saved_arrays = [n for n in derivation.saved if not NAMES.is_extent(n)]
    results = list(backward.results)  # dX, and None for an integer input
    order = [i.name for i in spec.inputs]
    grad = derivation.grad_name

    def text(e):
        return index_text(e, order=order, grad_name=grad, output=spec.output)

    backward_doc = []
    for name, step in derivation.steps.items():
        idx = ",".join(i.name for i in shown_indices(spec, name, step.indices))
        lhs = f"{NAMES.gradient(name)}[{idx}]" if idx else NAMES.gradient(name)
        backward_doc.append(f"{lhs} = {text(step.final)}")
        form = matrix_form(derivation, name)
        if form is None:
            form = f"(no matrix form: {no_matrix_form_reason(derivation, name, style='unicode')})"
        backward_doc.append(f"    {form}")
    calls = applied([*forward.statements, *backward.statements])
    if calls:
        backward_doc.append(f"{', '.join(calls)}: the user's functions, globals of this module "
                            "(compile(functions={...}) passes them).")
    if any(st.final.has(where) for st in derivation.steps.values()):
        backward_doc.append("where(c, a, b): the gradient goes to the branch the forward chose (b where c is false).")
    if any(st.final.has(sp.Heaviside) for st in derivation.steps.values()):
        backward_doc.append("Heaviside(0) = 1/2, so the code's (xp.sign(x) + 1) / 2 is 0, 1/2 or 1.")
    first = next((i.name for i in spec.inputs if i.rank), spec.inputs[0].name)
    specs = derivation.statements or (spec,)
    forward_doc = [f"{merged_text(text(s.lhs), spec.out_groups if s is specs[-1] else ())} = {text(s.rhs)}"
                   for s in specs]
    if spec.out_groups:
        backward_doc.append(f"{grad} reads the merged axes of {spec.output} apart, as the derivation does "
                            f"({text(tensor(grad)[spec.out_indices])}).")
    # a Python float stays a weak scalar (float32 stays float32); only dtype look-ups need an array
    # a scalar output's gradient may come as a Python float: made an array where the code reads
    # its dtype or indexes it (goutput[None] for L = X[_])
    gout = Var(NAMES.grad_output)
    scalar_output = not spec.out_indices and (reads_attribute(backward.statements, NAMES.grad_output, "dtype") or any(
        isinstance(n, Subscript) and n.value == gout for n in nodes(backward.statements)))
    skippable = len(results) > 1
    return {
        "batch": batch_context(derivation),
        "merge": merge_groups(spec),
        "out_shape": NAMES.out_shape,
        "forward_xp": uses_namespace(forward.statements),
        "backward_xp": scalar_output or uses_namespace(backward.statements),
        "class_name": class_name(spec.name),
        "summary": summary or f"The op {spec.name}: forward from its spec, backward derived by deltagrad.",
        "forward_doc": "\n        ".join(forward_doc),
        "backward_doc": backward_doc,
        "grad_symbol": grad,
        "first_input": first,
        "inputs": [i.name for i in spec.inputs],
        "size_kwargs": list(sig.size_kwargs),
        "shapes": shapes,
        "forward_lines": render_statements(forward.statements),
        "saved": list(derivation.saved),
        "output": spec.output,
        "backward_namespace_args": [NAMES.grad_output, *saved_arrays],
        "scalar_output": scalar_output,
        # each backward statement; "need": which needs[] flag guards a gradient that may be skipped
        "backward": [{"target": st.target, "value": render(st.value),
                      "need": results.index(st.target) if skippable and st.target in results else None}
                     for st in backward.statements],
        "skippable": skippable,
        "results": results,
    }


def batch_context(derivation) -> dict | None:
    """For a spec with ``...``: the inputs that carry it with their number of named axes after
    it, the line that flattens them and the gradients to restore; None otherwise."""
    spec = derivation.spec
    if not has_ellipsis(spec):
        return None
    names = carriers(spec)
    arrays = ", ".join(f'"{n}": ({n}, {flat_rank(derivation.signature.patterns[n])})' for n in names)
    unpack = names[0] + "," if len(names) == 1 else ", ".join(names)
    return {
        "var": NAMES.batch_shape,
        "inputs": list(names),
        "flatten": f'{NAMES.batch_shape}, ({unpack}) = flatten_batch("{class_name(spec.name)}", {{{arrays}}})',
        "gradients": [NAMES.gradient(n) for n in names if n in derivation.steps],  # not an integer input's
    }


def merge_groups(spec) -> str | None:
    """For a spec with merged output axes (``Y[b,(c,i,j)]``): every output axis's group, as the
    source of a tuple (``((0,), (1, 2, 3))``); None otherwise.

    >>> from deltagrad.derive.parse import parse_spec
    >>> merge_groups(parse_spec("Y[b,(c,i,j)] = X[b,c,i,j]")), merge_groups(parse_spec("Y[i] = X[i]"))
    ('((0,), (1, 2, 3))', None)
    """
    if not spec.out_groups:
        return None
    grouped = {p: g for g in spec.out_groups for p in g}
    groups = list(dict.fromkeys(grouped.get(p, (p,)) for p in range(len(spec.out_indices))))
    inner = ", ".join("(" + ", ".join(map(str, g)) + ("," if len(g) == 1 else "") + ")" for g in groups)
    return f"({inner},)" if len(groups) == 1 else f"({inner})"


def _tuple(items) -> str:
    inner = ", ".join(repr(x) if isinstance(x, int) else f'"{x}"' for x in items)
    return f"({inner},)" if len(items) == 1 else f"({inner})"


def op_source(derivation, summary: str | None = None) -> str:
    """The Python source of the op class for ``derivation``."""
    return environment().get_template("op_class.py.j2").render(op=op_context(derivation, summary))


def compile_op(derivation, functions: dict | None = None) -> type:
    """Build the op class in memory from its generated source (no user text is evaluated:
    the source is rendered from the checked, parsed spec); ``functions`` are the implementations
    of the generic functions it calls (``{"f": ..., "f_prime": ...}``), globals of its module."""
    body = op_source(derivation)
    source = header(derivation, body) + "\n\n" + body
    filename = f"<deltagrad op {class_name(derivation.name)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict = {"__name__": "deltagrad.compiled", **(functions or {})}
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102 - our own generated code
    cls = namespace[class_name(derivation.name)]
    cls.source = source
    cls.derivation = derivation
    return cls
