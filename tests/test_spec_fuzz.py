"""The spec fuzzer in CI: random specs from the grammar and mutations of them, derived, compiled and
run against an independent evaluation of the spec text (tests/spec_fuzz.py) and central
differences. Nothing but a SpecError may come out of derive, the forward must match, gradients
must match wherever they are defined, and the generated source must not change between two
derivations. The budget is small and fixed (derandomized): seconds, not minutes. The long run is
``bench/fuzz.py``.
"""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spec_fuzz import FAILURES, DrawPick, Reference, mutate_spec, random_spec, run_spec

FUZZ = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def specs(draw):
    return random_spec(DrawPick(draw))


@st.composite
def mutated_specs(draw):
    pick = DrawPick(draw)
    return mutate_spec(random_spec(pick), pick)


@FUZZ
@given(specs(), st.booleans())
def test_random_specs_derive_run_and_match_the_reference(spec, twice):
    outcome = run_spec(spec, determinism=twice)
    assert outcome.kind not in FAILURES, f"{outcome.kind}: {spec}: {outcome.detail}"


@settings(FUZZ, max_examples=80)
@given(mutated_specs())
def test_mutated_specs_are_refused_or_correct(spec):
    outcome = run_spec(spec)
    assert outcome.kind not in FAILURES, f"{outcome.kind}: {spec!r}: {outcome.detail}"


def test_the_reference_is_independent_and_can_disagree():
    """The reference evaluates the text itself: a wrong op is caught (the fuzzer can fail)."""
    import numpy as np

    ref = Reference("Y[i] = Sum(X[i,k] * W[k], k) / c")
    x, w = np.arange(6.0).reshape(2, 3), np.array([1.0, -1.0, 2.0])
    assert np.allclose(ref({"X": x, "W": w, "c": 2.0}, {"i": 2, "k": 3}), x @ w / 2)
    assert not np.allclose(ref({"X": x, "W": w, "c": 2.0}, {"i": 2, "k": 3}), x @ w)


def test_a_wrong_gradient_is_found(monkeypatch):
    """The harness reports a gradient that central differences contradict."""
    import deltagrad.api as api

    real = api.DerivedOp.compile

    def broken(self, target="numpy"):
        op = real(self, target)

        class Wrong(op):
            @staticmethod
            def backward(context, goutput):
                return tuple(2 * g for g in op.backward(context, goutput))

        return Wrong

    monkeypatch.setattr(api.DerivedOp, "compile", broken)
    assert run_spec("Y[i] = X[i] * X[i]").kind == "gradient"
