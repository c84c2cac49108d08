"""What a check finds, as plain data: no text here. The words (and the JSON form) come from
:mod:`deltagrad.codegen.verdict_text`, which the ``deltagrad check`` command calls.

A :class:`Verdict` answers one claim, or one part of a hand-written Op class. Its ``method``
says how it was decided, one of:

* claims: ``'symbolic'`` (SymPy shows the claim equals the derived rule), ``'numeric'``
  (SymPy could not decide; ``draws`` random draws agree), ``'symbolic_and_numeric'`` (SymPy
  finds a difference and the numbers confirm it), ``'claim_shapes'`` (the claim's indices do
  not fit the arrays' shapes, so it cannot equal the rule), ``'no_finite_values'``,
  ``'not_evaluable'``, ``'never_apart'`` (SymPy finds a difference, but both sides are 0 on
  every draw: not judged correct), ``'unbound_index'``;
* code: ``'forward_raised'``, ``'forward_compared'``, ``'backward_raised'``, ``'stopped'``
  (timed out, or the process ended), ``'gradients_counted'``, ``'gradients_compared'``,
  ``'value_checked'``, ``'shapes'``, ``'shapes_and_values'``, ``'random_inputs'`` (compared
  with the derived backward on random inputs).

A :class:`Diagnosis` names a mistake by ``kind``, with the parameters the words need:

==================  ======================================================================
kind                params
==================  ======================================================================
unbound_index       indices: names free on the right of a claim but bound by nothing
sign                (none): the sign is flipped
factor              factor: a SymPy number, claim = factor * derived
swapped_indices     a, b: the claim is the derived rule with these two indices swapped
dropped_sum         index, kept: the claim keeps only the term index = kept of a sum
missing_term        term: a SymPy expression, a term of the derived rule the claim lacks
extra_term          term: a SymPy expression, a term of the claim the rule lacks
transposed_entries  fixes: ((entry, fixed entry), ...) as text; right_when_fixed: bool
claim_shape         shape, gradient, input, input_shape: the claim's axes and the input's
mixed_index         index, axes: ((array, axis number, size name), ...): one index, two sizes
unequal_delta       delta, first, second: a delta of indices over axes of different sizes
zero                (none): the claim is 0 everywhere, the rule is not
differs             (none): no simpler explanation
not_finite          (none): neither claim nor rule is finite on any test values
not_evaluable       (none): the claim could not be evaluated on test values
never_apart         (none): both are 0 on every test value, and SymPy finds a difference
forward             cause: a Diagnosis (sign or factor) or None: forward is not the spec
forward_shape       got, want: the shapes forward returned and the spec gives
gradient_count      returned, expected, inputs: backward returned the wrong number of arrays
none                (none): backward returned None for this input
transposed_shape    shape, input, input_shape: the gradient's transpose is right
shape               shape, input, input_shape, broadcast, other: the gradient has the wrong
                    shape (``other``: the input whose shape it has, if any)
transposed          (none): the values are the transpose of the right ones
wrong_variable      other: the values are the gradient of input ``other``
gradient_order      returned, inputs: backward returned the right gradients in another order
values_differ       (none): no simpler explanation
forward_type        what: forward returned this (None, a str...) instead of an array
not_array           what: backward returned this instead of an array for the input
timeout             seconds, phase: the code ran past its time limit and was killed
ended               code, phase: the code ended the Python process (exit code)
size_one            axes: ((input, axis), ...), written: the input entries with _, squeeze: bool:
                    right only when those axes have size one (the spec should write _ there)
exception           type, message, file, line, source, context_keys, calling, hint: the
                    user's code raised (``SystemExit`` and ``KeyboardInterrupt`` included)
==================  ======================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Diagnosis:
    """A mistake (or an error) found by a check: its ``kind`` and the parameters it needs.

    >>> Diagnosis("dropped_sum", {"index": "j", "kept": "b"}).kind
    'dropped_sum'
    """

    kind: str
    params: dict = field(default_factory=dict)


@dataclass
class Counterexample:
    """Values on which the checked gradient and the derived one differ.

    ``inputs``: input name → the value drawn; ``grad``: the output's gradient drawn (None when
    the comparison needs none, as for a forward), shown as ``grad_name``; ``got``: what the claim or the user's code
    gives; ``want``: what the derived rule gives.
    """

    inputs: dict
    grad: object
    got: object
    want: object
    grad_name: str = "G"  # the letter the claims use for the output's gradient


@dataclass
class Verdict:
    """The answer for one claim (``source='claim'``) or one part of an Op class (``'code'``).

    ``claim`` names what was checked: the claim's text, or ``Op.forward``, ``Op.backward``,
    ``Op.backward: dX``. ``input`` is the input whose gradient it is ('' for a forward).
    ``derived`` is the derived rule for that input (a SymPy expression in ``indices``) where a
    claim was compared with it; ``difference`` is claim - derived, simplified; ``steps`` the
    forward's named steps that ``derived`` reads (a split the user did not write included).
    """

    claim: str
    input: str
    correct: bool
    method: str
    source: str = "claim"
    derived: object = None
    indices: tuple = ()
    difference: object = None
    diagnosis: Diagnosis | None = None
    counterexample: Counterexample | None = None
    error: Diagnosis | None = None
    draws: int = 0  # random draws behind a numeric decision
    steps: tuple = ()  # (lhs, rhs) of the forward's steps that ``derived`` reads (s[i,j] = 1/(1 + exp(-X[i,j])))

    @property
    def status(self) -> str:
        """'correct' or 'incorrect'."""
        return "correct" if self.correct else "incorrect"


@dataclass
class BatchResult:
    """One line of a batch check: a verdict, or the error that stopped the check of ``subject``.

    ``subject`` is what was checked (a claim's text, ``Op.backward: dX``, a spec or a
    ``file.py:Class``); ``status`` is 'correct', 'incorrect' or 'error'; ``message`` is the
    error's text when ``status`` is 'error'.
    """

    entry: str
    subject: str
    status: str
    verdict: Verdict | None = None
    message: str = ""


__all__ = ["BatchResult", "Counterexample", "Diagnosis", "Verdict"]
