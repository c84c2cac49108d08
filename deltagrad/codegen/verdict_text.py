"""The words for what ``deltagrad check`` finds: a verdict as text lines or as a JSON-ready
dict, and a batch as one line per result and a summary.

The verdicts are the plain dataclasses of :mod:`deltagrad.check.verdict`; this module reads
their fields and never imports :mod:`deltagrad.check` (printers sit below the checks).

>>> from types import SimpleNamespace as V
>>> print(verdict_text(V(claim="dX[a,b] = G[a,b]/Z[a,b]", correct=True, method="symbolic")))
dX[a,b] = G[a,b]/Z[a,b]
  correct: SymPy shows the claim equals the derived rule
"""

from __future__ import annotations

import numpy as np

from deltagrad.codegen.index_printer import index_text
from deltagrad.derive.names import NAMES

#: How a verdict was decided, by its method; "random_inputs" reads as (incorrect, correct).
METHODS = {
    "unbound_index": "the claim has an index that nothing binds",
    "symbolic": "SymPy shows the claim equals the derived rule",
    "numeric": "SymPy could not decide; random numerical tests ({draws} draws) agree",
    "no_finite_values": "no finite test values found",
    "never_apart": "not shown: SymPy finds a difference, and both are 0 on every test value",
    "not_evaluable": "SymPy could not decide and the claim could not be evaluated",
    "claim_shapes": "the claim's indices do not fit the shapes of the arrays",
    "symbolic_and_numeric": "SymPy finds a difference and numbers confirm it",
    "forward_raised": "your forward raised an exception",
    "forward_compared": "compared with the spec on random inputs",
    "backward_raised": "your backward raised an exception",
    "gradients_counted": "counted the returned gradients",
    "value_checked": "checked the returned value",
    "shapes_and_values": "compared shapes and values",
    "shapes": "compared shapes",
    "gradients_compared": "compared the returned gradients with the derived ones",
    "stopped": "your code was stopped",
    "random_inputs": ("compared with the derived backward on random inputs",
                      "agrees with the derived backward on random inputs"),
}

#: The words of each diagnosis kind, filled from its params (see diagnosis_text for the rest).
DIAGNOSES = {
    "unbound_index": "missing sum over {indices}: index {indices} is free on the right but not on the left "
                     "(write Sum(..., {indices}))",
    "sign": "the sign is flipped",
    "factor": "off by a factor of {factor}",
    "swapped_indices": "transposed: the claim is the derived rule with {a} and {b} swapped "
                       "(a transpose on the wrong side?)",
    "dropped_sum": "missing sum over {index}: the claim keeps only the {index} = {kept} term",
    "transposed_entries": "transposed: {fixes}{right}",
    "claim_shape": "the claim has shape ({shape}) but {gradient} has the shape of {input}, ({input_shape}){hint}",
    "mixed_index": "index {index} runs over axes of different sizes: {axes}",
    "unequal_delta": "{delta} compares indices over axes of different sizes ({first} and {second})",
    "not_evaluable": "the claim could not be evaluated on test values",
    "missing_term": "a term is missing: {term}",
    "extra_term": "a term is too many: {term}",
    "zero": "the claim is 0 everywhere, the derived rule is not",
    "differs": "the claim and the derived rule differ (see the difference and the counterexample)",
    "not_finite": "the claim or the rule is not finite on any test values",
    "never_apart": "no test value makes the claim or the rule non-zero; check the difference by hand",
    "forward_shape": "forward returned shape {got}, the spec gives {want}",
    "gradient_count": "backward returned {returned} gradient(s) for {expected} input(s) ({inputs})",
    "none": "it is None",
    "transposed_shape": "transposed: shape {shape} is the transpose of {input}'s {input_shape}, "
                        "and its transpose is the right gradient",
    "shape": "shape {shape}, but {input} has shape {input_shape}{broadcast}",
    "transposed": "transposed",
    "wrong_variable": "this is the gradient of {other}: the wrong variable is returned",
    "values_differ": "the values differ from the derived backward",
    "gradient_order": "the gradients are in the wrong order: backward returns them as {returned}, "
                      "but must return {expected}, in the order forward takes its inputs",
    "forward_type": "forward returned {what}, not an array",
    "not_array": "it is {what}, not an array",
    "timeout": "it did not finish within {seconds:g} s and was stopped (in {phase}): an endless loop?",
    "ended": "it ended the Python process in {phase}{code}",
}

#: Labels of the compared values in a counterexample, by the verdict's source.
COMPARED = {"claim": ("claim gives", "derived gives"), "code": ("yours", "derived")}


def format_array(a) -> str:
    """An array (or a number) on one line, to four decimals.

    >>> format_array(np.array([[1.0, 2.5], [1/3, 0.0]]))
    '[[1.    , 2.5   ], [0.3333, 0.    ]]'
    >>> format_array(-3.0)
    '-3.'
    """
    return np.array2string(np.asarray(a), precision=4, separator=", ", suppress_small=True).replace("\n", "")


def method_text(v) -> str:
    """How verdict ``v`` was decided, in words.

    >>> from types import SimpleNamespace as V
    >>> method_text(V(method="numeric", correct=True, draws=5))
    'SymPy could not decide; random numerical tests (5 draws) agree'
    """
    words = METHODS[v.method]
    if isinstance(words, tuple):
        return words[bool(v.correct)]
    return words.format(draws=getattr(v, "draws", 0))


def diagnosis_text(diag) -> str:
    """A diagnosis (or an error) in plain words; '' for None.

    >>> from types import SimpleNamespace as Diagnosis
    >>> diagnosis_text(Diagnosis(kind="dropped_sum", params={"index": "j", "kept": "b"}))
    'missing sum over j: the claim keeps only the j = b term'
    >>> diagnosis_text(Diagnosis(kind="forward", params={"cause": Diagnosis(kind="sign", params={})}))
    'forward: the sign is flipped'
    """
    if diag is None:
        return ""
    p = diag.params
    if diag.kind == "exception":
        return exception_text(diag)
    if diag.kind == "forward":
        return f"forward: {diagnosis_text(p['cause'])}" if p.get("cause") else "forward does not compute the spec"
    if diag.kind == "unbound_index":
        return DIAGNOSES["unbound_index"].format(indices=", ".join(p["indices"]))
    if diag.kind == "transposed_entries":
        fixes = "; ".join(f"{was} should be {right}" for was, right in p["fixes"])
        return DIAGNOSES["transposed_entries"].format(
            fixes=fixes, right=" (with that, the claim is right)" if p.get("right_when_fixed") else "")
    if diag.kind == "claim_shape":
        hint = " (transposed)" if len(p["shape"]) == 2 and tuple(p["shape"]) == tuple(p["input_shape"])[::-1] else ""
        return DIAGNOSES["claim_shape"].format(shape=", ".join(p["shape"]), gradient=p["gradient"], input=p["input"],
                                               input_shape=", ".join(p["input_shape"]), hint=hint)
    if diag.kind == "mixed_index":
        axes = " and ".join(f"axis {n} of {name} ({label})" for name, n, label in p["axes"])
        return DIAGNOSES["mixed_index"].format(index=p["index"], axes=axes)
    if diag.kind in ("missing_term", "extra_term"):
        return DIAGNOSES[diag.kind].format(term=index_text(p["term"]))
    if diag.kind == "gradient_count":
        return DIAGNOSES["gradient_count"].format(**{**p, "inputs": ", ".join(p["inputs"])})
    if diag.kind == "shape":
        extra = " (a broadcast input's gradient must be summed back to the input's shape)" if p["broadcast"] else ""
        if p.get("other"):
            extra = f" (that is {p['other']}'s shape: a gradient of the wrong input, or in the wrong order?)"
        return DIAGNOSES["shape"].format(**{**p, "broadcast": extra})
    if diag.kind == "gradient_order":
        names = lambda xs: "(" + ", ".join(NAMES.gradient(x) for x in xs) + ")"  # noqa: E731
        return DIAGNOSES["gradient_order"].format(returned=names(p["returned"]), expected=names(p["inputs"]))
    if diag.kind == "size_one":
        axes = p["axes"]
        which = " and ".join(f"axis {n}" + (f" of {name}" if len({a for a, _ in axes}) > 1 else "") for name, n in axes)
        verb = "has" if len(axes) == 1 else "have"
        use = " for a squeeze" if p.get("squeeze") else " (an axis of size one)"
        return f"correct if {which} {verb} size 1: write {' and '.join(p['written'])}{use}"
    if diag.kind == "ended":
        code = f" (exit code {p['code']})" if p.get("code") is not None else ""
        return DIAGNOSES["ended"].format(phase=p["phase"], code=code)
    return DIAGNOSES[diag.kind].format(**p)


def exception_text(diag) -> str:
    """An exception in the user's code: ``KeyError: 'sigx' (ops.py, line 14: return ...)``.

    >>> from types import SimpleNamespace as Diagnosis
    >>> exception_text(Diagnosis(kind="exception", params={"type": "NameError", "message": "name 'zz' is not defined",
    ...     "file": "ops.py", "line": 9, "source": "return zz", "context_keys": None}))
    "NameError: name 'zz' is not defined (ops.py, line 9: return zz)"
    """
    p = diag.params
    text = f"{p['type']}: {p['message']}"
    if p.get("file") is not None:
        text += f" ({p['file']}, line {p['line']}: {p['source']})"
    elif p.get("calling"):
        text += f" (calling {p['calling']})"
    if p.get("context_keys") is not None:
        text += f"; forward stored context keys {p['context_keys']}"
    if p.get("hint"):
        text += f": {p['hint']}"
    return text


def derived_text(v) -> str:
    """The derived rule a claim was compared with: ``dX[a,b] = ...``; '' when none."""
    if v.derived is None:
        return ""
    lhs = f"{NAMES.gradient(v.input)}[{','.join(i.name for i in v.indices)}]" if v.indices else NAMES.gradient(v.input)
    return f"{lhs} = {index_text(v.derived)}"


def steps_text(v) -> list:
    """The forward steps the derived rule reads, one ``s[i,j] = ...`` each."""
    return [f"{index_text(lhs)} = {index_text(rhs)}" for lhs, rhs in getattr(v, "steps", ())]


def difference_text(v) -> str:
    """``claim - derived = ...``; '' when there is no difference to show."""
    return "" if v.difference is None else f"claim - derived = {index_text(v.difference)}"


def counterexample_text(v) -> dict:
    """The counterexample as label → the value on one line; {} when there is none."""
    c = v.counterexample
    if c is None:
        return {}
    out = {name: format_array(a) for name, a in c.inputs.items()}
    if c.grad is not None:
        out[c.grad_name] = format_array(c.grad)
    got, want = COMPARED[v.source]
    out[got] = format_array(c.got)
    out[want] = format_array(c.want)
    return out


def verdict_dict(v) -> dict:
    """The verdict as the JSON of ``deltagrad check --format json``: empty fields left out."""
    out = {
        "claim": v.claim,
        "input": v.input,
        "correct": v.correct,
        "how": method_text(v),
        "derived": derived_text(v),
        "where": steps_text(v),
        "difference": difference_text(v),
        "diagnosis": diagnosis_text(v.diagnosis),
        "counterexample": counterexample_text(v),
        "error": diagnosis_text(v.error),
    }
    return {k: x for k, x in out.items() if k == "correct" or x not in ("", {}, None, [])}


def verdict_text(v) -> str:
    """The verdict as the lines ``deltagrad check`` prints."""
    lines = [v.claim]
    if v.correct:
        lines.append(f"  correct: {method_text(v)}")
        return "\n".join(lines)
    diagnosis, error = diagnosis_text(v.diagnosis), diagnosis_text(v.error)
    word = "NOT SHOWN" if v.method == "never_apart" else "INCORRECT"  # undecided, not a verdict on the math
    lines.append(f"  {word}: {diagnosis or error or 'incorrect'}")
    if error and diagnosis:
        lines.append(f"  error: {error}")
    derived, difference = derived_text(v), difference_text(v)
    if derived:
        lines.append(f"  derived:        {derived}")
        lines += [f"  {'where:' if n == 0 else '':<16}{step}" for n, step in enumerate(steps_text(v))]
    if difference:
        lines.append(f"  difference:     {difference}")
    items = list(counterexample_text(v).items())
    if items:
        lines.append(f"  counterexample: {items[0][0]} = {items[0][1]}")
        lines += [f"                  {k} = {val}" for k, val in items[1:]]
    return "\n".join(lines)


def batch_result_dict(r) -> dict:
    """One batch result as JSON: the entry, the status, and the verdict or the error message."""
    if r.verdict is None:
        return {"entry": r.entry, "claim": r.subject, "status": r.status, "message": r.message}
    return {"entry": r.entry, "status": r.status, **verdict_dict(r.verdict)}


def result_dict(r) -> dict:
    """One result of ``deltagrad check SPEC ... --format json``: the verdict with its status, or
    the error that kept a claim or the code from being checked."""
    if r.verdict is None:
        return {"claim": r.subject, "status": r.status, "correct": False, "error": r.message}
    return {**verdict_dict(r.verdict), "status": r.status}


def batch_line(r) -> str:
    """One batch result on one line: ``entry: claim: status (what is wrong)``."""
    d = batch_result_dict(r)
    detail = d.get("diagnosis") or d.get("error") or d.get("message") or d.get("how", "")
    return f"{d['entry']}: {d['claim']}: {d['status']}" + (f" ({detail})" if d["status"] != "correct" else "")


def batch_summary_text(counts: dict) -> str:
    """The last line of a batch: ``5 checks: 2 correct, 2 incorrect, 1 errors``.

    >>> batch_summary_text({"correct": 2, "incorrect": 2, "error": 1})
    '5 checks: 2 correct, 2 incorrect, 1 errors'
    """
    total = sum(counts.values())
    return f"{total} checks: {counts['correct']} correct, {counts['incorrect']} incorrect, {counts['error']} errors"


__all__ = ["batch_line", "batch_result_dict", "result_dict", "batch_summary_text", "diagnosis_text", "exception_text",
           "format_array", "method_text", "verdict_dict", "verdict_text"]
