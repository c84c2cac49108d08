"""LaTeX write-ups of derivations, meant to be handed out as they are: the forward (or its
named steps), and per input the chain rule, the partial derivative with its Kronecker deltas,
the sums they collapse (term by term, saying which sum survives), the simplified form, the form
through saved values with the identity behind it, the bridge from index sums to matrix
products, the matrix form (or why there is none) and the numpy line.

Every display is laid out for a plain ``article`` page (:mod:`deltagrad.codegen.latex_layout`):
long expressions are broken before an operator, notes go under an equation when they do not
fit beside it. A fragment carries its own notation paragraph (only the symbols it uses) and
compiles inside ``\\documentclass{article}`` with only ``amsmath`` and ``amssymb``.

>>> from deltagrad.derive.derivation import derive
>>> tex = render_latex(derive("Y[i,j] = X[i,j] / Z[i,j]", name="divide"), fragment=True)
>>> "X^{\\\\nabla} = Y^{\\\\nabla} \\\\oslash Z" in tex and tex.startswith("\\\\section*{Divide}")
True
"""

from __future__ import annotations

import re
from pathlib import Path

import sympy as sp

from deltagrad.codegen.latex_layout import LINE_EM, fit, fits, shorten, text_width, width
from deltagrad.codegen.latex_printer import IndexLatexPrinter, index_latex, name_latex
from deltagrad.codegen.latex_steps import (abbreviate, definitions_used, delta_note, delta_terms,
                                           elementwise_identity, is_softmax, pull_deltas, row_sum_of_input,
                                           softmax_ratio, sum_bridges)
from deltagrad.codegen.matrix_form import matrix_form, no_matrix_form_reason
from deltagrad.codegen.op_class import environment
from deltagrad.codegen.python_printer import backward_source
from deltagrad.derive.array_program import BinOp, Call, Subscript, nodes
from deltagrad.derive.extrema import Extremum, Iverson
from deltagrad.derive.names import NAMES
from deltagrad.files import write_atomic

#: Characters of code that fit one line of a verbatim block in \footnotesize on a plain
#: article page (82 at 10 pt), with a margin.
CODE_WIDTH = 76

#: Width in em that a note beside an equation keeps from it.
_NOTE_GAP = 2.0


def wrap_code(line: str, width: int = CODE_WIDTH) -> str:
    """A long Python line broken at spaces so that it stays valid Python: inside brackets a
    plain line break, outside them a backslash; continuation lines are indented by four.

    >>> print(wrap_code("dX = goutput * T - xp.sum(T, axis=1)[:, None] / n_i", width=24))
    dX = goutput * T - \\
        xp.sum(T, axis=1)[:,
        None] / n_i
    """
    indent = len(line) - len(line.lstrip(" "))
    out, current, depth = [], "", 0
    for word in line.split(" "):
        candidate = f"{current} {word}" if current.strip() else current + word
        if len(candidate) > width and current.strip():
            out.append(current + (" \\" if depth == 0 else ""))
            current = " " * (indent + 4) + word
        else:
            current = candidate
        depth += sum(word.count(c) for c in "([{") - sum(word.count(c) for c in ")]}")
    out.append(current)
    return "\n".join(out)


def escape(text: str) -> str:
    """Plain text made safe for LaTeX."""
    for a, b in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("&", r"\&"), ("%", r"\%"), ("#", r"\#"),
                 ("$", r"\$"), ("{", r"\{"), ("}", r"\}"), ("^", r"\^{}"), ("~", r"\~{}")):
        text = text.replace(a, b)
    return text


def texttt(code: str) -> str:
    return "\\texttt{" + escape(code) + "}"


# -- displays ------------------------------------------------------------------------------------
def display(lhs: str, rhs: str, line: float = LINE_EM) -> str:
    """``lhs = rhs`` as a display, broken over lines (``split``) when it is too wide, and with
    its widest bracketed groups named (``M_{1}``, defined below it) when even that is not
    enough."""
    taken = set(re.findall(r"\\b([A-Z])_\\{\\d", lhs + rhs))
    letter = next(c for c in "MNUV" if c not in taken)
    names = (f"{letter}_{{{k}}}" for k in range(1, 100))
    eqs = [(lhs, rhs)]
    k = 0
    while k < len(eqs) and len(eqs) < 8:
        l, r = eqs[k]
        head = width(l) + 1.4
        for _ in range(6):
            r, defs = shorten(r, line - head, line - head - 1.0, names)
            if not defs:
                break
            eqs += defs
        eqs[k] = (l, r)
        k += 1
    rows = []
    for n, (l, r) in enumerate(eqs):
        head = width(l) + 1.4
        lines = fit(r, line - head, line - head - 1.0)
        rows.append((l if n == 0 else f"\\text{{with }} {l}", lines))
    if len(rows) == 1 and len(rows[0][1]) == 1:
        return f"\\begin{{equation*}}\n  {lhs} = {rows[0][1][0]}\n\\end{{equation*}}"
    body = []
    for l, lines in rows:
        body.append(f"  {l} &= {lines[0]}")
        body += [f"  &\\quad {cont}" for cont in lines[1:]]
    return "\\begin{equation*}\n\\begin{split}\n" + " \\\\\n".join(body) + "\n\\end{split}\n\\end{equation*}"


def align(rows, line: float = LINE_EM) -> str:
    """Rows ``(lhs, rhs, note)`` as one ``align*``: every rhs broken to fit, each note beside
    its row when it fits there and in a small paragraph under it otherwise. A row with an
    empty lhs continues the one before (``= …``)."""
    if not rows:
        return ""
    lhs_w = max(width(lhs) for lhs, _, _ in rows) if rows else 0.0
    head = lhs_w + 1.4
    laid = []
    for lhs, rhs, note in rows:
        lines = fit(rhs, line - head, line - head - 1.0)
        laid.append((lhs, lines, note))
    widest = max(width(ln) + (1.0 if k else 0.0) for _, lines, _ in laid for k, ln in enumerate(lines))
    notes = [note for _, _, note in laid if note]
    # every note goes beside its row when all fit there; otherwise every note goes under its row
    beside_all = all(head + widest + _NOTE_GAP + text_width(n) * 0.92 <= line for n in notes)
    under = set() if beside_all else set(notes)
    box = line - head - 1.2
    out = []
    for lhs, lines, note in laid:
        beside = bool(note) and note not in under
        for k, ln in enumerate(lines):
            cell = f"  {lhs} &= {ln}" if k == 0 else f"  &\\quad {ln}"
            if k == 0 and beside:
                cell += f" && \\text{{{note}}}"
            out.append(cell)
        if note and not beside:
            out.append(f"  &\\quad \\parbox[t]{{{box:.1f}em}}{{\\small\\raggedright {note}}}")
    # a page may break between steps, never inside one (its continuation lines and its note)
    text = out[0]
    for cell in out[1:]:
        text += (" \\\\*\n" if cell.startswith("  &\\quad") else " \\\\\n") + cell
    return "\\begin{align*}\n" + text + "\n\\end{align*}"


# -- the pieces of one write-up ------------------------------------------------------------------
def _entry(name: str, indices) -> sp.Expr:
    return sp.IndexedBase(name, real=True)[tuple(indices)] if indices else sp.Symbol(name, real=True)


def _idx(indices) -> str:
    parts = [index_latex(i) if str(i) == "..." else r"\_" if str(i) == "_" else str(i) for i in indices]
    return "".join(parts) if all(len(p) == 1 for p in parts) else ",".join(parts)


def _heading(d) -> str:
    spec = d.spec
    if spec.name != spec.output:
        words = spec.name.replace("_", " ")
        return escape(words[:1].upper() + words[1:])
    p = _printer(d)
    forward = f"{p.doprint(spec.lhs)} = {p.doprint(spec.rhs)}"
    if not d.statements and width(forward) <= 18:
        return f"The backward of ${forward}$"
    return f"The backward of ${name_latex(spec.output)}$"


def reading_order(d) -> list:
    """Tensor names in the order the spec's text first mentions them (then the inputs and steps
    it does not mention): the order factors of a product are printed in."""
    known = {i.name for i in d.spec.inputs} | {st.output for st in d.statements}
    order = [w for w in dict.fromkeys(re.findall(r"[A-Za-z_][A-Za-z_0-9]*", d.spec.text or "")) if w in known]
    for name in [i.name for i in d.spec.inputs] + [st.output for st in d.statements]:
        if name not in order:
            order.append(name)
    return order


def _printer(d, rename=None) -> IndexLatexPrinter:
    return IndexLatexPrinter(d.grad_name, d.output, reading_order(d), rename)


def _forward(d, p) -> dict:
    spec = d.spec
    rows = []
    if d.statements:
        for st in d.statements:
            rows.append((p.doprint(st.lhs), p.doprint(st.rhs), ""))
        split = ";" not in spec.text and "\n" not in spec.text.strip()
        if split:
            intro = (f"The forward, in index notation:\n{display(p.doprint(spec.lhs), p.doprint(spec.rhs))}\n"
                     "deltagrad computes it in named steps, and the backward reads them:")
        else:
            intro = "The forward, as named steps (each may read the steps before it):"
        return {"intro": intro, "display": align(rows)}
    free = ", ".join(f"${index_latex(i) if str(i) == '...' else i}$" for i in spec.out_indices if isinstance(i, sp.Symbol))
    every = f", for every {free.replace(', ', ' and ')}" if free else ""
    return {"intro": f"The forward, in index notation{every}:", "display": display(p.doprint(spec.lhs), p.doprint(spec.rhs))}


def _merged(d) -> str:
    """A sentence on the output's merged axes (``Y[b,(c,i,j)]``, a flatten); '' without any."""
    spec = d.spec
    parts = []
    for g in spec.out_groups:
        names = [f"${spec.out_indices[p]}$" for p in g]
        parts.append(", ".join(names[:-1]) + " and " + names[-1])
    if not parts:
        return ""
    return (f"\\noindent The op returns ${name_latex(spec.output)}$ with the axes of {'; of '.join(parts)} merged "
            "into one (row-major, a flatten); the derivation reads it, and its gradient, with them apart.\n")


def _sizes(d) -> str:
    spec = d.spec
    if not spec.size_indices:
        return ""
    names = [i.name for i in spec.size_indices]
    idx = ", ".join(f"${n}$" for n in names)
    ext = ", ".join(f"${name_latex(NAMES.extent(n))}$" for n in names)
    args = ", ".join(d.inputs)
    call = ", ".join(f"{n}=16" for n in names)
    one = len(names) == 1
    return (f"The index {idx} appears only on the output, so no input fixes its size: "
            f"{ext} {'is' if one else 'are'} set when the op is called, as in "
            f"{texttt(f'forward(context, {args}, {call})')}, which gives {ext} $= 16$.")


def _saved(d, p, finals) -> tuple:
    """(maxima sentence, saved-values display) for what the backward reads."""
    maxima_lines = []
    for m in d.values.maxima:
        ref = p.doprint(_entry(m.name, m.indices))
        pattern = [str(i) for i in m.indices]
        pattern.insert(m.axis, "k")
        maxima_lines.append((ref, f"\\max_{{k}} {name_latex(m.tensor)}_{{{''.join(pattern)}}}", ""))
    statements = {st.output for st in d.statements}
    saved_rows = []
    for red in d.values.reductions:
        if red.name in statements:
            continue
        if any(f.has(sp.IndexedBase(red.name, real=True)) or f.has(sp.Symbol(red.name, real=True)) for f in finals):
            saved_rows.append((p.doprint(_entry(red.name, red.indices)), p.doprint(red.expr), ""))
    maxima = ""
    if maxima_lines:
        maxima = ("So that no exponential overflows, the forward subtracts the largest entry of each row "
                  "before it exponentiates (the shift cancels in every result):\n" + align(maxima_lines))
    saved = ""
    if saved_rows:
        saved = "The backward reads these values, which the forward computes and saves:\n" + align(saved_rows)
    return maxima, saved


_KINKS = (sp.Max, sp.Min, sp.Abs, sp.Heaviside, sp.sign, Extremum, Iverson)


def _kinks(d) -> str:
    exprs = [d.spec.rhs, *(st.final for st in d.steps.values()), *(s.rhs for s in d.statements)]
    kinds = {k for e in exprs for a in sp.preorder_traversal(e) for k in _KINKS if isinstance(a, k)}
    if not kinds:
        return ""
    parts = []
    if Iverson in kinds:
        parts.append("the gradient of a $\\max$ or $\\min$ goes to the entries that attain it and is split equally "
                     "between tied entries: $[u = v]$ is 1 where $u = v$ and 0 otherwise, and the sum of such brackets "
                     "in a denominator counts the tied entries (at least one)")
    if kinds & {sp.Heaviside} or (kinds & {sp.Max, sp.Min} and Iverson not in kinds):
        parts.append("at a tie the derivative of $\\max$ or $\\min$ is split equally between the tied arguments, "
                     "so $H(0) = \\tfrac12$ (in code $H(x)$ is \\texttt{(xp.sign(x) + 1) / 2}, which is 0, "
                     "$\\tfrac12$ or 1)")
    if sp.Abs in kinds or sp.sign in kinds:
        parts.append("$\\lvert x \\rvert$ has derivative $\\operatorname{sign}(x)$, and $\\operatorname{sign}(0) = 0$")
    if sp.Heaviside in {type(a) for a in sp.preorder_traversal(d.spec.rhs)}:
        parts.append("the derivative of $H$ itself is taken as 0")
    text = "; ".join(parts)
    return f"\\paragraph{{At a kink.}} This op is not differentiable everywhere; deltagrad's convention: {text}."


def _partial_lhs(d, name, idx, y) -> str:
    x = f"{name_latex(name)}_{{{idx}}}" if idx else name_latex(name)
    return f"\\frac{{\\partial {y}}}{{\\partial {x}}}"


def _gradient(d, name, st, p, y, y_grad) -> dict:
    spec = d.spec
    idx = _idx(st.indices)
    nm = name_latex(name)
    x_grad = f"{nm}^{{\\nabla}}_{{{idx}}}" if idx else f"{nm}^{{\\nabla}}"
    x_entry = f"{nm}_{{{idx}}}" if idx else nm
    free = ",".join(i.name for i in spec.free_indices)
    partial = _partial_lhs(d, name, idx, y)
    out = {"name": nm, "lhs": x_grad}
    program = bool(d.statements)
    if program:
        out["chain_intro"] = ("By the chain rule, taken through the steps in reverse (the last step first): each "
                              "step's own derivative, written through its output, is substituted into the steps "
                              "before it. This gives")
        out["chain"] = ""
        out["partial"] = ""
    else:
        sum_prefix = f"\\sum_{{{','.join(index_latex(i) for i in spec.free_indices)}}} " if free else ""
        out["chain_intro"] = (f"By the chain rule, with ${y_grad}$ the gradient of the loss with respect to "
                              f"${y}$,")
        out["chain"] = display(x_grad, f"{sum_prefix}{y_grad} \\, {partial}")
        out["partial_intro"] = "The partial derivative:"
        out["partial"] = display(partial, p.doprint(pull_deltas(st.partial)))
        if idx and st.partial.has(sp.KroneckerDelta):
            same = _dummies(st.indices, spec, name)
            deltas = " ".join(p.doprint(sp.KroneckerDelta(a, b)) for a, b in zip(st.indices, same))
            out["partial_intro"] = (f"The partial derivative, written with Kronecker deltas: the entries of ${nm}$ "
                                    f"are independent of each other, so "
                                    f"$\\partial {nm}_{{{_idx(same)}}} / \\partial {x_entry} = {deltas}$, and")

    # the rows of the derivation: (an expression, or a list of terms printed one by one; note)
    rows, seen = [], []

    def add(payload, note):
        key = sp.Add(*payload) if isinstance(payload, list) else payload
        if any(key == e for e in seen):
            return False
        seen.append(key)
        rows.append([payload, note])
        return True

    chain = pull_deltas(st.chain_rule)
    add(chain, "")
    terms = delta_terms(chain)
    if terms:
        if len(terms) > 1:
            rows.append([[t.expr for t in terms], ""])
        note = delta_note(terms, p, spec.output, spec.out_indices if not program else (), name, st.indices)
        if not add([t.result for t in terms], note):
            rows[-1][1] = note
    elif chain.has(sp.Sum) and not program and not idx and spec.free_indices:
        who = p.doprint(_entry(spec.output, spec.free_indices))
        rows[-1][1] = f"no $\\delta$: ${nm}$ enters every ${who}$, so the whole $\\sum_{{{free}}}$ stays"
    if not terms:
        add(st.eliminated, "the sums collapsed")
    add(st.simplified, "simplified")
    identity = ""
    final_note = "through values the forward saved"
    ident = elementwise_identity(d, name, p)
    if ident is not None:
        f_def, f_prime, through = ident
        final_note = f"through ${name_latex(spec.output)}$ and the identity above"
        identity = ("The forward is element-wise, $" + p.doprint(_entry(spec.output, spec.out_indices)) +
                    " = " + f_def.split(" = ")[0].replace("(x)", f"({p.doprint(_entry(name, spec.out_indices))})") +
                    "$ with $" + f_def + "$, and its derivative can be written through its output:\n" +
                    display(f_prime.split(" = ")[0], f"{f_prime.split(' = ', 1)[1]} = {through}"))
    else:
        defs = definitions_used(d, st, p)
        if defs:
            final_note = "through saved values: " + ", ".join(f"${x}$" for x in defs)
    add(st.final, final_note)
    for expr, note in _softmax_rows(d, st, p, seen):
        add(expr, note)

    # names for long repeated subexpressions, where a row does not fit even broken
    head = width(x_grad) + 1.4
    partial_expr = None if program else pull_deltas(st.partial)

    def too_wide(e):
        return not fits(p.doprint(e), LINE_EM - head, LINE_EM - head - 1.0)

    flat = [e for payload, _ in rows for e in (payload if isinstance(payload, list) else [payload])]
    if partial_expr is not None:
        flat.append(partial_expr)
    taken = {x.base.label.name for e in flat for x in e.atoms(sp.Indexed)} | {x.name for e in flat for x in e.atoms(sp.Symbol)}
    new, defs = abbreviate(flat, too_wide, p, taken)
    out["names"] = ""
    if defs:
        k = 0
        for row in rows:
            if isinstance(row[0], list):
                row[0] = new[k:k + len(row[0])]
                k += len(row[0])
            else:
                row[0] = new[k]
                k += 1
        if partial_expr is not None:
            out["partial"] = display(partial, p.doprint(new[k]))
        out["names"] = ("To keep the lines short, write\n" +
                        align([(p.doprint(entry), p.doprint(sub), "") for entry, sub in defs]))
    lines = []
    for n, (payload, note) in enumerate(rows):
        text = _join_terms(payload, p) if isinstance(payload, list) else p.doprint(payload)
        lines.append((x_grad if n == 0 else "", text, note))
    out["steps"] = align(lines)
    out["identity"] = identity

    mf = matrix_form(d, name, style="latex")
    out["matrix"] = ""
    out["bridge"] = ""
    out["no_matrix"] = ""
    if mf is not None:
        lhs, rhs = mf.split(" = ", 1)
        out["matrix"] = display(lhs, rhs)
        bridges = sum_bridges(st.final, p)
        if bridges:
            body = ", \\qquad ".join(bridges)
            if width(body) > LINE_EM:
                out["bridge"] = "\\begin{gather*}\n  " + " \\\\\n  ".join(bridges) + "\n\\end{gather*}"
            else:
                out["bridge"] = f"\\begin{{equation*}}\n  {body}\n\\end{{equation*}}"
    else:
        out["no_matrix"] = no_matrix_form_reason(d, name, style="latex") or "it needs more than two axes"
    code = backward_source(d, name)
    out["numpy"] = "\n".join(wrap_code(line) for line in code.splitlines())
    out["numpy_note"] = (f"{texttt(NAMES.grad_output)} is ${y_grad.split('_{')[0]}$ and "
                         f"{texttt(NAMES.gradient(name))} is ${nm}^{{\\nabla}}$")
    return out


def _dummies(indices, spec, name):
    """The forward's own index names for an input's axes where they exist (i, j for X_ij)."""
    pattern = None
    for e in sorted(spec.rhs.atoms(sp.Indexed), key=lambda e: (tuple(e.indices) != tuple(spec.out_indices), str(e))):
        if e.base.label.name == name and len(e.indices) == len(indices):
            pattern = e.indices
            break
    letters = [s for s in "ijklmnpqrs" if s not in {str(i) for i in indices}]
    if pattern is not None and all(isinstance(i, sp.Symbol) for i in pattern) and len(set(pattern)) == len(pattern):
        return list(pattern)
    from deltagrad.derive.spec import index

    return [index(letters[n]) for n in range(len(indices))]


def _join_terms(terms, p) -> str:
    out = ""
    for n, t in enumerate(terms):
        negative = t.could_extract_minus_sign()
        text = p.doprint(-t if negative else t)
        if isinstance(-t if negative else t, sp.Add) and len(terms) > 1:
            text = f"\\left({text}\\right)" if "\\frac" in text or "\\sum" in text else f"({text})"
        if n == 0:
            out = ("-" if negative else "") + text
        else:
            out += (" - " if negative else " + ") + text
    return out


def _softmax_rows(d, st, p, seen) -> list:
    """Rows (expression, note) that name softmax where the gradient holds it, and, where a row
    sum of an input remains (a cross-entropy's Σ_j T_aj), the form for rows that sum to one."""
    rows = []
    found = softmax_ratio(st.final, d)
    expr = st.final
    if found is not None:
        ratio, tensor, entries = found
        taken = {x.base.label.name for x in expr.atoms(sp.Indexed)} | set(d.inputs)
        named = next((c for c in ("P", "S", "Q") if c not in taken), None)
        if named is None:
            return rows
        ent = sorted((e for e in ratio.atoms(sp.Indexed) if e.base.label.name == tensor), key=str)[0]
        P = sp.IndexedBase(named, real=True)[ent.indices]
        expr = sp.factor_terms(expr.subs(ratio, P))
        if expr.has(ratio) or not expr.has(P):
            return rows
        rows.append((expr, f"with ${named} = \\operatorname{{softmax}}({name_latex(tensor)})$ row by row: "
                           f"${p.doprint(P)} = {p.doprint(ratio)}$"))
    elif not any(is_softmax(s.rhs) for s in d.statements):
        return rows
    rs = row_sum_of_input(expr, d)
    if rs is None:
        return rows
    one = sp.simplify(expr.xreplace({rs: 1}))
    t = rs.function.base.label.name
    rows.append((one, f"when every row of ${name_latex(t)}$ sums to one (one-hot or probability "
                      f"targets), ${p.doprint(rs)} = 1$"))
    return rows


# -- notation ------------------------------------------------------------------------------------
def notation(d, body: str, grads=()) -> str:
    """The notation paragraph of one write-up: only the symbols its body uses."""
    spec = d.spec
    x = next((i.name for i in spec.inputs if i.rank), d.inputs[0])
    nx, ny = name_latex(x), name_latex(spec.output)
    parts = [f"${nx}^{{\\nabla}}$ is the gradient of the loss with respect to ${nx}$, an array of the shape of "
             f"${nx}$ (in code and in deltagrad's text output {texttt(NAMES.gradient(x))}; the output's gradient "
             f"${ny}^{{\\nabla}}$ is {texttt(NAMES.grad_output)} in code and {texttt(NAMES.grad_symbol)} in text)"]
    if "\\delta" in body:
        parts.append("$\\delta_{ai}$ is the Kronecker delta, 1 when $a = i$ and 0 otherwise")
    if "\\sum" in body and "n_{" in body:
        parts.append("a sum $\\sum_{k}$ runs over every value of $k$, and $n_{k}$ is the number of those values")
    elif "\\sum" in body:
        parts.append("a sum $\\sum_{k}$ runs over every value of $k$")
    elif "n_{" in body:
        parts.append("$n_{k}$ is the number of values index $k$ takes")
    axis_sizes = sorted({n for n in d.saved if NAMES.is_extent(n) and NAMES.index_of_extent(n).count("_")})
    for n in axis_sizes:
        tensor, axis = NAMES.index_of_extent(n).rsplit("_", 1)
        parts.append(f"${name_latex(n)}$ is the size of axis {axis} of ${name_latex(tensor)}$")
    matrix = []
    if "\\odot" in body or "\\oslash" in body:
        matrix.append("$\\odot$ and $\\oslash$ are the element-wise product and division")
    if "^{\\top}" in body or any(m in body for m in ("W^{\\top}", "X^{\\top}")):
        matrix.append("$A^{\\top}$ is the transpose")
    if "\\mathbf{1}" in body:
        matrix.append("$\\mathbf{1}$ is a column of ones, so $A\\mathbf{1}$ holds the row sums of $A$, "
                      "$A^{\\top}\\mathbf{1}$ its column sums and $v\\mathbf{1}^{\\top}$ repeats the column $v$ "
                      "in every column")
    if "\\circ" in body:
        matrix.append("$A^{\\circ p}$ is the element-wise power")
    forms = " ".join(g["matrix"] for g in grads)
    if re.search(r"(\}|\s)I(\s|$)", forms):
        matrix.append("$I$ is the identity matrix")
    if "\\operatorname{diag}" in body:
        matrix.append("$\\operatorname{diag}(v)$ is the diagonal matrix with $v$ on its diagonal")
    text = "; ".join(parts) + "."
    products = any(isinstance(n, BinOp) and n.op == "@" or isinstance(n, Call) and n.fn in ("sum", "broadcast_to")
                   or isinstance(n, Subscript) for n in nodes(d.backward))
    if products:
        matrix.insert(0, "a product written without a sign is the matrix product, and brackets are kept "
                         "wherever a matrix product meets $\\odot$ or $\\oslash$")
    if any(f"\\{fn}(" in body for fn in ("exp", "log", "tanh", "sin", "cos", "sigma", "operatorname")) or "\\sqrt" in body or "H(" in body:
        matrix.append("a function of a matrix acts on each entry")
    if matrix:
        text += " In matrix forms " + "; ".join(matrix) + "."
    if "\\sigma(" in body:
        text += " $\\sigma(x) = 1/(1 + e^{-x})$ is the logistic sigmoid."
    if "\\begin{cases}" in body:
        text += (" A comparison is flat: its derivative is 0, so the gradient flows to the branch the forward chose"
                 " (at a boundary, such as $x = 0$ in $x > 0$, to the branch of the false condition).")
    if "H(" in body:
        text += (" $H$ is the Heaviside step: $H(x) = 1$ for $x > 0$, $0$ for $x < 0$ and $H(0) = \\tfrac12$.")
    return "\\paragraph{Notation.} " + text


def op_latex_context(d, summary: str = "", numbered: bool = False) -> dict:
    """The plain data ``derivation.tex.j2`` renders for one derivation."""
    spec = d.spec
    p = _printer(d)
    out_idx = _idx(spec.out_indices) if spec.out_indices else ""
    y = f"{name_latex(spec.output)}_{{{out_idx}}}" if out_idx else name_latex(spec.output)
    y_grad = (f"{name_latex(spec.output)}^{{\\nabla}}_{{{out_idx}}}" if out_idx
              else f"{name_latex(spec.output)}^{{\\nabla}}")
    grads = [_gradient(d, name, st, p, y, y_grad) for name, st in d.steps.items()]
    maxima, saved = _saved(d, p, [st.final for st in d.steps.values()])
    forward = _forward(d, p)
    ctx = {
        "section": "section" if numbered else "section*",
        "subsection": "subsection*",
        "title": _heading(d),
        "summary": escape(summary),
        "forward_intro": forward["intro"],
        "forward": forward["display"],
        "sizes": "\n".join(filter(None, [_sizes(d), _merged(d)])),
        "maxima": maxima,
        "saved": saved,
        "kinks": _kinks(d),
        "grads": grads,
        "notation": "",
    }
    body = environment().get_template("derivation.tex.j2").render(op=ctx)
    ctx["notation"] = notation(d, body, grads)
    return ctx


def render_fragment(d, summary: str = "", numbered: bool = False) -> str:
    """The LaTeX body for one derivation (a section), without preamble."""
    return environment().get_template("derivation.tex.j2").render(op=op_latex_context(d, summary, numbered))


def render_document(bodies, title: str | None = None, toc: bool = False) -> str:
    """A standalone amsmath document around one or more fragments."""
    return environment().get_template("document.tex.j2").render(
        bodies=bodies, title=escape(title) if title else "", toc=toc)


def render_latex(d, fragment: bool = False, summary: str = "") -> str:
    """A standalone document for one derivation, or just its fragment."""
    body = render_fragment(d, summary)
    if fragment:
        return body
    return render_document([body])


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
    """The Jupyter rendering of a derivation (MathJax and KaTeX): the forward, then for each
    input in argument order its backward in index form and in matrix form, and the saved values
    it reads, so that it stands on its own."""
    p = _printer(d)
    spec = d.spec
    lines = []
    for st in (d.statements or (spec,)):
        lines.append(f"{p.doprint(st.lhs)} &= {p.doprint(st.rhs)}")
    for name in d.inputs:
        st = d.steps[name]
        idx = _idx(st.indices)
        nm = name_latex(name)
        lhs = f"{nm}^{{\\nabla}}_{{{idx}}}" if idx else f"{nm}^{{\\nabla}}"
        lines.append(f"{lhs} &= {p.doprint(st.final)}")
        mf = matrix_form(d, name, style="latex")
        if mf is not None:
            mlhs, mrhs = mf.split(" = ", 1)
            lines.append(f"{mlhs} &= {mrhs}")
    statements = {s.output for s in d.statements}
    finals = [st.final for st in d.steps.values()]
    where = []
    for m in d.values.maxima:
        if any(f.has(sp.IndexedBase(m.name, real=True)) for f in finals):
            pattern = [str(i) for i in m.indices]
            pattern.insert(m.axis, "k")
            where.append(f"{p.doprint(_entry(m.name, m.indices))} &= \\max_{{k}} {name_latex(m.tensor)}_{{{''.join(pattern)}}}")
    for red in d.values.reductions:
        if red.name in statements:
            continue
        if any(f.has(sp.IndexedBase(red.name, real=True)) or f.has(sp.Symbol(red.name, real=True)) for f in finals):
            where.append(f"{p.doprint(_entry(red.name, red.indices))} &= {p.doprint(red.expr)}")
    if where:
        lines.append("&\\text{where}")
        lines += where
    y = name_latex(spec.output)
    lines.append(f"&{y}^{{\\nabla}} \\text{{ is the gradient of the loss with respect to }} {y}")
    if any("\\odot" in ln or "\\oslash" in ln for ln in lines):
        lines.append("&\\odot, \\oslash \\text{ are the element-wise product and division}")
    if any("\\mathbf{1}" in ln for ln in lines):
        lines.append("&\\mathbf{1} \\text{ is a column of ones}")
    if any("H(" in ln for ln in lines):
        lines.append("&H \\text{ is the Heaviside step, } H(0) = \\tfrac12")
    return "$$\\begin{aligned}" + " \\\\ ".join(lines) + "\\end{aligned}$$"
