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

from deltagrad.codegen.index_printer import index_text
from deltagrad.codegen.matrix_form import matrix_form
from deltagrad.codegen.python_printer import render, render_statements
from deltagrad.derive.array_program import variables

HEADER = "from deltagrad.op_base import Op, array_namespace, check_shapes\n"


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
    parts = [p for p in name.replace("-", "_").split("_") if p]
    return "".join(p[:1].upper() + p[1:] for p in parts) or "Op"


def op_context(derivation, summary: str | None = None) -> dict:
    """The plain data the op template renders."""
    spec, sig = derivation.spec, derivation.signature
    forward = derivation.forward
    fwd_lines = render_statements(forward.statements)
    used = set(derivation.saved)
    for st in forward.statements:
        used |= variables(st.value)
    sizes_line = ""
    if sig.sizes:
        targets = [f"n_{n}" if f"n_{n}" in used else "_" for n in sig.sizes]
        arrays = ", ".join(f'"{n}": ({n}, {_tuple(p)})' for n, p in sig.patterns.items())
        args = f'"{class_name(spec.name)}", {_tuple(sig.sizes)}, {{{arrays}}}'
        if sig.size_kwargs:
            args += ", {" + ", ".join(f'"{k}": {k}' for k in sig.size_kwargs) + "}"
        lhs = ", ".join(targets) + ("," if len(targets) == 1 else "")
        head = f"{lhs} = check_shapes(" if any(t != "_" for t in targets) else "check_shapes("
        sizes_line = f"{head}{args})"
        if len(sizes_line) > 100 - 8:  # wrap as a formatter would, inside the 8-space method body
            sizes_line = f"{head}\n            {args}\n        )"
            if len(args) > 100 - 12:  # one input per line
                entries = [f'"{n}": ({n}, {_tuple(p)}),' for n, p in sig.patterns.items()]
                given = ("\n            {" + ", ".join(f'"{k}": {k}' for k in sig.size_kwargs) + "},") if sig.size_kwargs else ""
                body = "\n                ".join(entries)
                sizes_line = (f'{head}\n            "{class_name(spec.name)}",\n            {_tuple(sig.sizes)},'
                              f"\n            {{\n                {body}\n            }},{given}\n        )")
    params = ", ".join(i.name for i in spec.inputs)
    if sig.size_kwargs:
        params += ", *, " + ", ".join(f"{k}=None" for k in sig.size_kwargs)
    tensors = [i.name for i in spec.inputs]
    saved_arrays = [n for n in derivation.saved if not n.startswith("n_")]
    results = [f"d{i.name}" for i in spec.inputs]
    backward_doc = []
    for name, step in derivation.steps.items():
        idx = ",".join(i.name for i in step.indices)
        lhs = f"d{name}[{idx}]" if idx else f"d{name}"
        backward_doc.append(f"{lhs} = {index_text(step.final)}")
        backward_doc.append(f"    {matrix_form(derivation, name) or '(no plain matrix form: see the index form)'}")
    backward_lines = _backward_lines(derivation, results)
    scalar_output = not spec.out_indices and any("goutput.dtype" in line for line in backward_lines)
    return {
        "forward_xp": any("xp." in line for line in fwd_lines),
        "backward_xp": scalar_output or any("xp." in line for line in backward_lines),
        "class_name": class_name(spec.name),
        "summary": summary or f"The op {spec.name}: forward from its spec, backward derived by deltagrad.",
        "forward_doc": f"{index_text(spec.lhs)} = {index_text(spec.rhs)}",
        "backward_doc": backward_doc,
        "params": params,
        "namespace_args": ", ".join(tensors),
        "sizes_line": sizes_line,
        "forward_lines": fwd_lines,
        "saved": list(derivation.saved),
        "output": spec.output,
        "backward_namespace_args": ", ".join(["goutput", *saved_arrays]),
        # a Python float stays a weak scalar (float32 stays float32); only dtype look-ups need an array
        "scalar_output": scalar_output,
        "backward_lines": backward_lines,
        "skippable": len(results) > 1,
        "all_true": "(" + ", ".join(["True"] * len(results)) + ")",
        "results": f"({results[0]},)" if len(results) == 1 else ", ".join(results),
    }


def _backward_lines(derivation, results) -> list:
    """The backward's lines; with several inputs, each gradient is computed only if needed."""
    lines = []
    for st in derivation.backward.statements:
        if len(results) > 1 and st.target in results:
            line = f"{st.target} = {render(st.value)} if needs[{results.index(st.target)}] else None"
            if len(line) > 100 - 8:  # too long for one line: the plain if-statement reads better
                line = f"{st.target} = None\nif needs[{results.index(st.target)}]:\n    {st.target} = {render(st.value)}"
            lines.extend(line.splitlines())
        else:
            lines.append(f"{st.target} = {render(st.value)}")
    return lines


def _tuple(items) -> str:
    inner = ", ".join(repr(x) if isinstance(x, int) else f'"{x}"' for x in items)
    return f"({inner},)" if len(items) == 1 else f"({inner})"


def op_source(derivation, summary: str | None = None) -> str:
    """The Python source of the op class for ``derivation``."""
    return environment().get_template("op_class.py.j2").render(op=op_context(derivation, summary))


def compile_op(derivation) -> type:
    """Build the op class in memory from its generated source (no user text is evaluated:
    the source is rendered from the checked, parsed spec)."""
    source = HEADER + "\n\n" + op_source(derivation)
    filename = f"<deltagrad op {class_name(derivation.name)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict = {"__name__": "deltagrad.compiled"}
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102 - our own generated code
    cls = namespace[class_name(derivation.name)]
    cls.source = source
    cls.derivation = derivation
    return cls
