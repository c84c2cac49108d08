"""The derivation as plain text for the terminal: the forward, then per input its backward in
index notation (optionally every step) and the Python lines it lowers to.

>>> from deltagrad.derive.derivation import derive
>>> print(derivation_text(derive("Y[i,j] = Sum(X[i,k]*W[k,j], k)"), wrt="W", steps=True))
Y[i,j] = Sum_k(W[k,j]*X[i,k])
<BLANKLINE>
dW[a,b] = Sum_i,j(G[i,j]*Sum_k(X[i,k]*delta(a,k)*delta(b,j)))    (chain rule)
        = Sum_i(G[i,b]*X[i,a])    (deltas eliminated; unchanged by simplification and saved values)
    dW = X.T @ goutput
<BLANKLINE>
forward saves: X, W; G is the gradient of Y (goutput in code)
"""

from __future__ import annotations

from deltagrad.codegen.index_printer import index_text, merged_text
from deltagrad.codegen.python_printer import backward_source
from deltagrad.derive.names import NAMES
from deltagrad.derive.size_one import shown_indices

_STEPS = (("chain_rule", "chain rule", "the chain rule"), ("eliminated", "deltas eliminated", "delta elimination"),
          ("simplified", "simplified", "simplification"), ("final", "through saved values", "saved values"))


def step_lines(lhs: str, step) -> list:
    """One line per step that changes the expression; a step that changes nothing is named
    beside the one before it instead of repeating the same line."""
    lines, notes, last = [], [], None
    for field, label, noun in _STEPS:
        text = index_text(getattr(step, field))
        if text == last:
            notes.append(noun)
            continue
        if lines:
            lines[-1] = _with_notes(lines[-1], notes)
        lines.append((f"{lhs} = " if not lines else f"{' ' * len(lhs)} = ") + text)
        notes, last = [label], text
    lines[-1] = _with_notes(lines[-1], notes)
    return lines


def _with_notes(line: str, notes: list) -> str:
    head, rest = notes[0], notes[1:]
    if rest:
        others = rest[0] if len(rest) == 1 else ", ".join(rest[:-1]) + " and " + rest[-1]
        head += f"; unchanged by {others}"
    return f"{line}    ({head})"


def forward_lines(d) -> list:
    """The forward in index notation: one line, or one per step of a program.

    >>> from deltagrad.derive.derivation import derive
    >>> forward_lines(derive("m[i] = Sum(X[i,k], k); Y[i,j] = X[i,j] - m[i]"))
    ['m[i] = Sum_k(X[i,k])', 'Y[i,j] = X[i,j] - m[i]']
    """
    specs = d.statements or (d.spec,)
    lines = [f"{index_text(s.lhs)} = {index_text(s.rhs)}" for s in specs[:-1]]
    return lines + [f"{merged_text(index_text(specs[-1].lhs), d.spec.out_groups)} = {index_text(specs[-1].rhs)}"]


def derivation_text(d, wrt: str | None = None, steps: bool = False) -> str:
    """The text ``deltagrad derive`` prints: the forward, each input's backward and its code."""
    lines = [*forward_lines(d), ""]
    for name, st in d.steps.items():
        if wrt not in (None, name):
            continue
        idx = ",".join(i.name for i in shown_indices(d.spec, name, st.indices))
        lhs = f"{NAMES.gradient(name)}[{idx}]" if idx else NAMES.gradient(name)
        lines += step_lines(lhs, st) if steps else [f"{lhs} = {index_text(st.final)}"]
        lines += [f"    {code}" for code in backward_source(d, name).splitlines()]
        lines.append("")
    saved = ", ".join(d.saved) or "nothing"
    lines.append(f"forward saves: {saved}; G is the gradient of {d.output} ({NAMES.grad_output} in code)")
    return "\n".join(lines)
