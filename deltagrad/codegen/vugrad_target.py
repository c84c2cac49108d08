"""``deltagrad codegen --target vugrad``: vugrad's ``ops.py``, regenerated from
:data:`deltagrad.vugrad_table.VUGRAD_OPS`, every backward derived.

The file is one module that drops into ``vugrad/ops.py``: it imports ``Op`` and ``TensorNode``
from ``.core`` and NumPy as ``np`` (as vugrad's own does, and as the vugrad modules that
star-import it expect), carries the few run-time helpers of ``op_base.py`` that derived ops call
(copied from that file), then one class per row: the derived op itself (rendered by the same
``op_class.py.j2`` as every NumPy op) under vugrad's name, or that op under a private name plus
a small generated adapter with vugrad's signature (:data:`~deltagrad.vugrad_table.ADAPTERS`).

>>> files = render_vugrad_package()
>>> text = files["ops.py"]
>>> "class Log(Op):" in text and "def forward(context, input, *, dim, repeats):" in text
True
"""

from __future__ import annotations

import ast
import textwrap

import sympy as sp

from deltagrad.codegen.module import op_base_source
from deltagrad.codegen.op_class import environment, op_context
from deltagrad.derive.derivation import derive
from deltagrad.derive.ellipsis import ELLIPSIS

#: the run-time helpers of op_base.py that a derived op calls, copied into the vugrad file
HELPERS = ("ShapeError", "array_namespace", "check_shapes", "flatten_batch", "unflatten_batch", "flat_batch",
           "_product", "put_along", "scatter_add")
REGENERATE = "run `deltagrad codegen --target vugrad -o DIR` and copy DIR/ops.py over vugrad/ops.py."


def helper_source() -> str:
    """The source of :data:`HELPERS`, cut from ``op_base.py`` (the ``ShapeError`` of a copy
    that imports nothing of deltagrad).

    >>> "def check_shapes(" in helper_source() and "class Op" not in helper_source()
    True
    """
    text = op_base_source()
    lines = text.splitlines()
    found = {}
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in HELPERS and node.name not in found:
            segment = "\n".join(lines[node.lineno - 1: node.end_lineno])
            found[node.name] = textwrap.dedent(segment)
    return "\n\n\n".join(found[n] for n in HELPERS)


def _axis_after_ellipsis(indices) -> bool:
    """True when an index list has an axis after its leading ``...`` (the axis an adapter moves)."""
    return len(indices) > 1 and indices[0] == ELLIPSIS


def entry_context(entry) -> dict:
    """The plain data the template renders for one row of the vugrad table."""
    base = {"name": entry.name, "params": entry.params, "summary": entry.summary, "spec": entry.spec,
            "adapter": entry.adapter}
    d = derive(entry.spec, name=entry.name, inputs=entry.inputs)
    inner = entry.name if entry.adapter == "plain" else "_" + entry.name
    op = op_context(d, entry.summary)
    op["class_name"] = inner
    source = environment().get_template("op_class.py.j2").render(op=op)
    context = {**base, "inner": inner, "source": source}
    if entry.adapter == "flatten":
        context["array"] = d.inputs[0]
    elif entry.adapter == "last_axis":
        spec = d.spec
        pattern = next(e.indices for e in spec.rhs.atoms(sp.Indexed))
        context.update(array=d.inputs[0], moves_in=_axis_after_ellipsis(pattern),
                       moves_out=_axis_after_ellipsis(spec.out_indices),
                       size_one=_axis_after_ellipsis(pattern) and pattern[-1] == 0,
                       sizes=[f"{size}={kw}" for kw, size in entry.keywords.items()])
    elif entry.adapter == "keyword_inputs":
        context.update(arguments=", ".join(d.inputs),
                       returned=", ".join(f"grads[{n}]" for n, i in enumerate(d.inputs) if i not in entry.keywords))
    return context


def render_vugrad_package(entries=None) -> dict:
    """File name → text: ``ops.py``, the drop-in for vugrad's ``vugrad/ops.py``."""
    from deltagrad.vugrad_table import ADAPTERS, VUGRAD_OPS

    entries = VUGRAD_OPS if entries is None else entries
    ops = [entry_context(e) for e in entries]
    text = environment().get_template("vugrad_ops.py.j2").render(
        ops=ops, helpers=helper_source(), adapters=ADAPTERS, how_to_regenerate=REGENERATE)
    return {"ops.py": text}
