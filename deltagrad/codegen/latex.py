"""LaTeX write-ups of derivations: forward, chain rule, deltas, their elimination, the
simplified and matrix forms, and the numpy line, from the templates ``derivation.tex.j2``
(one op) and ``document.tex.j2`` (a standalone amsmath document).

>>> from deltagrad.derive.derivation import derive
>>> tex = render_latex(derive("Y[i,j] = X[i,j] / Z[i,j]", name="divide"), fragment=True)
>>> "X^{\\\\nabla}_{ab} &= Y^{\\\\nabla}_{ab} / Z_{ab}" in tex or "\\\\frac{Y^{\\\\nabla}_{ab}}{Z_{ab}}" in tex
True
"""

from __future__ import annotations

from pathlib import Path

import sympy as sp

from deltagrad.codegen.latex_printer import latex_index, name_latex
from deltagrad.codegen.matrix_form import matrix_form
from deltagrad.codegen.op_class import environment
from deltagrad.codegen.python_printer import backward_source
from deltagrad.files import write_atomic

CONVENTIONS = (
    r"Notation: $X^{\nabla}$ is the gradient of the loss with respect to $X$ (same shape as $X$); "
    r"$\delta_{ai}$ is the Kronecker delta; $\odot$ and $\oslash$ are element-wise product and "
    r"division; $\mathbf{1}$ is a vector of ones, so $X\mathbf{1}$ holds the row sums of $X$ and "
    r"$v\mathbf{1}^{\top}$ repeats the column $v$; $n_k$ is the number of values index $k$ runs over. "
    r"At a kink, $H(0) = \tfrac12$: $\max$ and $\min$ split the gradient between tied arguments."
)


#: Characters of code that fit one line of a verbatim block in \footnotesize on an article page.
CODE_WIDTH = 84


def wrap_code(line: str, width: int = CODE_WIDTH) -> str:
    """A long Python line broken at spaces so that it stays valid Python: inside brackets a
    plain line break, outside them a backslash; continuation lines are indented by four.

    >>> print(wrap_code("dX = goutput * T - xp.sum(T, axis=1)[:, None] / n_i", width=24))
    dX = goutput * T - \\
        xp.sum(T, axis=1)[:,
        None] / n_i
    """
    out, current, depth = [], "", 0
    for word in line.split(" "):
        candidate = f"{current} {word}" if current else word
        if len(candidate) > width and current.strip():
            out.append(current + (" \\" if depth == 0 else ""))
            current = "    " + word
        else:
            current = candidate
        depth += sum(word.count(c) for c in "([{") - sum(word.count(c) for c in ")]}")
    out.append(current)
    return "\n".join(out)


def _escape(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("&", r"\&"), ("%", r"\%"), ("#", r"\#"),
                 ("$", r"\$"), ("{", r"\{"), ("}", r"\}")):
        text = text.replace(a, b)
    return text


def _delta_substitutions(expr) -> str:
    """'$i = a$, $j = b$': what each Kronecker delta in ``expr`` sets a summed index to."""
    bound = {lim[0] for s in expr.atoms(sp.Sum) for lim in s.limits}
    subs = []
    for delta in sorted(expr.atoms(sp.KroneckerDelta), key=str):
        p, q = delta.args
        s, t = (p, q) if p in bound else (q, p)
        text = f"${s} = {t}$"
        if text not in subs:
            subs.append(text)
    return ", ".join(subs)


def op_latex_context(d, summary: str = "", numbered: bool = False) -> dict:
    """The plain data ``derivation.tex.j2`` renders for one derivation."""
    spec = d.spec

    def tex(e):
        return latex_index(e, d.grad_name, d.output)

    out_idx = "".join(str(i) for i in spec.out_indices) if spec.out_indices else ""
    y = f"{name_latex(spec.output)}_{{{out_idx}}}" if out_idx else name_latex(spec.output)
    y_grad = (f"{name_latex(spec.output)}^{{\\nabla}}_{{{out_idx}}}" if out_idx
              else f"{name_latex(spec.output)}^{{\\nabla}}")
    grads = []
    for name, st in d.steps.items():
        idx = "".join(i.name for i in st.indices)
        x = f"{name_latex(name)}_{{{idx}}}" if idx else name_latex(name)
        x_grad = f"{name_latex(name)}^{{\\nabla}}_{{{idx}}}" if idx else f"{name_latex(name)}^{{\\nabla}}"
        free = ",".join(i.name for i in spec.free_indices)
        partial_sym = f"\\frac{{\\partial {y}}}{{\\partial {x}}}"
        sum_prefix = f"\\sum_{{{free}}} " if free else ""
        chain = f"{x_grad} = {sum_prefix}{y_grad} \\, {partial_sym}"
        steps, seen = [], []

        def add(expr, why):
            if any(expr == e for e in seen):
                return
            seen.append(expr)
            steps.append((x_grad if not steps else "", tex(expr), why))

        add(st.chain_rule, "")
        if st.chain_rule.has(sp.KroneckerDelta):
            add(st.eliminated, "each $\\delta$ collapses its sum: " + _delta_substitutions(st.chain_rule))
        add(st.simplified, "simplified")
        add(st.final, "through values the forward saved")
        code = backward_source(d, name)
        grads.append({
            "name": name_latex(name),
            "grad_output": y_grad,
            "chain_rule": chain,
            "partial": f"{partial_sym} = {tex(st.partial)}" if st.partial.has(sp.KroneckerDelta) or idx else "",
            "steps": steps,
            "matrix": matrix_form(d, name, style="latex"),
            "numpy": "\n".join(wrap_code(line) for line in code.splitlines()),
            "numpy_note": "goutput is " + f"${name_latex(spec.output)}^{{\\nabla}}$",
        })
    saved = []
    finals = [st.final for st in d.steps.values()]
    for red in d.values.reductions:
        if any(f.has(sp.IndexedBase(red.name, real=True)) or f.has(sp.Symbol(red.name, real=True)) for f in finals):
            saved.append(f"{tex(red.ref)} = {tex(red.expr)}")
    maxima = []
    for m in d.values.maxima:
        ref = tex(sp.IndexedBase(m.name, real=True)[m.indices]) if m.indices else name_latex(m.name)
        pattern = [str(i) for i in m.indices]
        pattern.insert(m.axis, "k")
        maxima.append(f"{ref} = \\max_{{k}} {name_latex(m.tensor)}_{{{''.join(pattern)}}}")
    return {
        "saved": saved,
        "maxima": maxima,
        "section": "section" if numbered else "section*",
        "subsection": "subsection",
        "title": _escape(spec.name),
        "summary": _escape(summary),
        "forward": f"{y} = {tex(spec.rhs)}",
        "grads": grads,
    }


def render_fragment(d, summary: str = "", numbered: bool = False) -> str:
    """The LaTeX body for one derivation (a section), without preamble."""
    return environment().get_template("derivation.tex.j2").render(op=op_latex_context(d, summary, numbered))


def render_document(bodies, title: str, toc: bool = False) -> str:
    """A standalone amsmath document around one or more fragments."""
    return environment().get_template("document.tex.j2").render(
        bodies=bodies, title=_escape(title), toc=toc, conventions=CONVENTIONS)


def render_latex(d, fragment: bool = False, summary: str = "") -> str:
    """A standalone document for one derivation, or just its fragment."""
    body = render_fragment(d, summary)
    if fragment:
        return body
    return render_document([body], title=f"The backward of {d.spec.name}")


def write_latex_dir(entries, outdir) -> list:
    """One standalone ``NAME.tex`` per op entry plus ``all.tex`` with a table of contents."""
    from deltagrad.codegen.module import derive_entries

    outdir = Path(outdir)
    paths, bodies = [], []
    for e, d in derive_entries(entries):
        path = outdir / f"{e.name}.tex"
        write_atomic(path, render_latex(d, summary=e.summary))
        paths.append(path)
        bodies.append(render_fragment(d, e.summary, numbered=True))
    combined = outdir / "all.tex"
    write_atomic(combined, render_document(bodies, title="Derivations of the ops", toc=True))
    return paths + [combined]


def repr_latex(d) -> str:
    """The Jupyter rendering of a derivation: the forward and each backward (math mode)."""
    ctx = op_latex_context(d)
    lines = [ctx["forward"].replace("=", "&=", 1)]
    for g, st in zip(ctx["grads"], d.steps.values()):
        lines.append(f"{g['steps'][0][0] or g['name']} &= {latex_index(st.final, d.grad_name, d.output)}")
    return "$$\\begin{aligned}" + " \\\\ ".join(lines) + "\\end{aligned}$$"
