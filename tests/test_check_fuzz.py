"""Fuzzing deltagrad check: a correct claim is never judged wrong, a wrong one never right, and
nothing but a verdict or a one-line error ever comes out.

Correct claims are the derived rules as deltagrad prints them, with their indices renamed, terms
reordered, factors commuted and sums written either way; the wrong ones are the same with the
sign flipped, an entry transposed, a term dropped or a factor of 2. Garbled claims (characters
inserted, deleted, tokens swapped) must give a verdict or a SpecError, and the command line must
answer them with exit 0, 1 or 2 and, for --format json, a JSON document. The budget is small and
fixed (derandomized), so the test takes seconds.
"""

import json
import random
from functools import lru_cache

import pytest
import sympy as sp
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deltagrad import SpecError, derive
from deltagrad.check.claims import check_claim
from deltagrad.cli import main
from deltagrad.codegen.index_printer import index_text
from deltagrad.codegen.verdict_text import verdict_dict, verdict_text
from deltagrad.derive.extrema import Iverson
from deltagrad.derive.functions import where
from deltagrad.derive.size_one import shown_indices
from deltagrad.derive.spec import is_index

SPECS = [
    "Y[i,j] = Sum(X[i,k]*W[k,j], k) + B[j]",
    "Y[i,j] = X[i,j] / Sum(X[i,k], k)",
    "Y[i,j] = exp(X[i,j]) / Sum(exp(X[i,k]), k)",
    "Y[i,j] = 1 / (1 + exp(-X[i,j]))",
    "Y[i,j] = tanh(X[i,j])",
    "Y[i,j] = Max(X[i,j], 0)",
    "Y[i,j] = Abs(X[i,j])",
    "Y[i,j] = X[i,j] / Z[i,j]",
    "Y[i,j] = 1/sqrt(X[i,j])",
    "Y[i,j] = X[i,j] - log(Sum(exp(X[i,k]), k))",
    "L = -Sum(T[i,j]*log(P[i,j]), i, j)",
    "Y[i,j] = x[i]",
    "Y[i] = X[i,0]",
    "Y[i,j] = X[i,_,j]**2*W[j]",
    "Y[i,_,j] = X[i,j]*W[j]",
    "Y[i,j] = X[i,j]*c",
    "L = Sum(X[i,j]**2, i, j)",
    "Y[i] = Sum(X[i,k], k)/size(k)",
    "Y[i,j] = X[j,i]",
    "Y[i,k] = Sum(X[i,j]*X[j,k], j)",
    "Y[i,j] = X[i,j] - Sum(X[i,k],k)/size(k)",
    "Y[i,j] = X[i,j]/sqrt(Sum(X[i,k]**2, k))",
    "P[i,j] = exp(X[i,j])/Sum(exp(X[i,k]), k); L = -Sum(T[i,j]*log(P[i,j]), i, j)/size(i)",
]
NAMES = "pqrstuvmnkjiabcdefgh"
FUNCTIONS = {sp.exp: "exp", sp.log: "log", sp.tanh: "tanh", sp.Abs: "Abs", sp.sign: "sign", sp.Max: "Max",
             sp.Min: "Min"}
FUZZ = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@lru_cache(maxsize=None)
def derived(spec):
    return derive(spec)


def show(e, rnd, names):
    """Claim text for ``e``: terms and factors in a random order, indices renamed by ``names``."""
    def idx(i):
        return names.get(i, i.name) if isinstance(i, sp.Symbol) else str(i)

    def go(e):
        if isinstance(e, (sp.Add, sp.Mul)):
            args = list(e.args)
            rnd.shuffle(args)
            return (" + " if isinstance(e, sp.Add) else "*").join(f"({go(a)})" for a in args)
        if isinstance(e, sp.Pow):
            ex = e.exp
            power = f"({ex.p}/{ex.q})" if isinstance(ex, sp.Rational) and ex.q != 1 else (
                f"({int(ex)})" if isinstance(ex, sp.Integer) else f"({go(ex)})")
            return f"({go(e.base)})**{power}"
        if isinstance(e, sp.Sum):
            ks = [idx(lim[0]) for lim in e.limits]
            return f"Sum_{','.join(ks)}({go(e.function)})" if rnd.random() < 0.5 else \
                f"Sum({go(e.function)}, {', '.join(ks)})"
        if isinstance(e, sp.Indexed):
            return f"{e.base.label.name}[{','.join(idx(i) for i in e.indices)}]"
        if isinstance(e, sp.KroneckerDelta):
            a, b = e.args if rnd.random() < 0.5 else e.args[::-1]
            return f"delta({idx(a)},{idx(b)})"
        if isinstance(e, sp.Heaviside):
            return f"Heaviside({go(e.args[0])})"
        if isinstance(e, Iverson):  # deltagrad prints [A == B]
            a, b = e.args if rnd.random() < 0.5 else e.args[::-1]
            return f"[{go(a)} == {go(b)}]"
        if isinstance(e, sp.core.relational.Relational):
            return f"{go(e.lhs)} {e.rel_op} {go(e.rhs)}"
        if isinstance(e, where):
            return f"where({', '.join(go(a) for a in e.args)})"
        if isinstance(e, sp.Rational):
            return f"({e.p}/{e.q})" if e.q != 1 else f"({e.p})"
        if isinstance(e, sp.Float):
            return f"({float(e)!r})"
        if isinstance(e, sp.Symbol):
            return e.name
        if e is sp.pi:
            return "pi"
        if e is sp.E:
            return "exp(1)"
        for f, name in FUNCTIONS.items():
            if isinstance(e, f):
                return f"{name}({', '.join(go(a) for a in e.args)})"
        raise AssertionError(f"the fuzz printer cannot print {type(e).__name__}")

    return go(e)


def claim_text(d, name, expr, rnd):
    """``d{name}[...] = expr`` with every index (the left's and the bound ones) renamed."""
    st_ = d.steps[name]
    taken = {i.name for i in d.spec.inputs} | {d.spec.output, d.grad_name} | {r.name for r in d.values.reductions}
    bound = sorted({lim[0] for s in expr.atoms(sp.Sum) for lim in s.limits}, key=str)
    pool = [c for c in NAMES if c not in taken]
    rnd.shuffle(pool)
    names = {sym: pool[n] for n, sym in enumerate([*st_.indices, *bound])}
    shown = shown_indices(d.spec, name, st_.indices) if rnd.random() < 0.5 else st_.indices  # dX[a,_,c] or dX[a,b,c]
    lhs = f"d{name}[{','.join(names.get(i, '_') for i in shown)}]" if st_.indices else f"d{name}"
    return f"{lhs} = {show(expr, rnd, names)}"


def mutate(expr, kind, rnd):
    """A wrong rule from a right one; None when this kind of mistake does not apply."""
    if kind == "sign":
        return -expr
    if kind == "factor":
        return 2 * expr
    if kind == "drop":
        terms = sp.Add.make_args(expr)
        if len(terms) < 2:
            return None
        drop = rnd.randrange(len(terms))
        return sp.Add(*[t for n, t in enumerate(terms) if n != drop])
    nodes = sorted([e for e in expr.atoms(sp.Indexed) if len({i for i in e.indices if is_index(i)}) >= 2], key=str)
    if not nodes:
        return None
    node = rnd.choice(nodes)
    ix = list(node.indices)
    a, b = rnd.sample([n for n, i in enumerate(ix) if is_index(i)], 2)
    if ix[a] == ix[b]:
        return None
    ix[a], ix[b] = ix[b], ix[a]
    return expr.xreplace({node: node.base[tuple(ix)]})


cases = st.tuples(st.sampled_from(SPECS), st.integers(0, 3), st.integers(0, 10**6))


@FUZZ
@given(cases)
def test_correct_claims_in_any_spelling_are_judged_correct(case):
    spec, which, seed = case
    d = derived(spec)
    name = list(d.steps)[which % len(d.steps)]
    rnd = random.Random(seed)
    expr = d.steps[name].final if rnd.random() < 0.7 else d.steps[name].simplified
    text = claim_text(d, name, expr, rnd)
    v = check_claim(d, text)
    assert v.correct, (text, verdict_dict(v))


@FUZZ
@given(cases, st.sampled_from(["sign", "factor", "drop", "transpose"]))
def test_mutated_claims_are_judged_incorrect(case, kind):
    spec, which, seed = case
    d = derived(spec)
    name = list(d.steps)[which % len(d.steps)]
    rnd = random.Random(seed)
    wrong = mutate(d.steps[name].final, kind, rnd)
    if wrong is None:
        return
    text = claim_text(d, name, wrong, rnd)
    v = check_claim(d, text)
    assert not v.correct, (text, verdict_dict(v))
    assert verdict_text(v).splitlines()[1].startswith("  INCORRECT: ")


INSERTS = ["a", "b", "j", "0", "9", "[", "]", "(", ")", ",", "+", "-", "*", "/", "**", "_", " ", "=", "Sum_j(",
           "Sum(", "delta(", "sign(", "**(3/2)", "n_j", "size(", "Y[a,b]", "X[b,a]", "G[a]", "1e400", "X[a,b,c]",
           "row_sum[a]", "Sum_q,j(", "@", "'", "lambda", "__import__("]


@st.composite
def garbled(draw):
    spec = draw(st.sampled_from(SPECS))
    d = derived(spec)
    name = draw(st.sampled_from(sorted(d.steps)))
    st_ = d.steps[name]
    idx = ",".join(i.name for i in st_.indices)
    text = (f"d{name}[{idx}]" if idx else f"d{name}") + " = " + index_text(st_.final)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        if draw(st.booleans()):
            text = text[:at] + draw(st.sampled_from(INSERTS)) + text[at:]
        else:
            text = text[:at] + text[at + draw(st.integers(1, 4)):]
    return spec, text


@FUZZ
@given(garbled())
def test_garbled_claims_give_a_verdict_or_a_one_line_error(case):
    spec, text = case
    try:
        v = check_claim(derived(spec), text)
    except SpecError as err:
        assert "\n" not in str(err)
        return
    verdict_text(v)
    json.dumps(verdict_dict(v))


@settings(max_examples=8, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(garbled(), st.sampled_from(["text", "json"]))
def test_the_command_never_prints_a_traceback(case, fmt):
    spec, text = case
    r = CliRunner().invoke(main, ["check", spec, "--claim", text, "--format", fmt])
    assert r.exit_code in (0, 1, 2) and "Traceback" not in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
    if fmt == "json":
        json.loads(r.output)


@pytest.mark.parametrize("spec", SPECS)
def test_each_printed_rule_and_its_mutants(spec):
    """Every input of every spec once: the printed rule is correct, each mutant incorrect."""
    d = derived(spec)
    for name, st_ in d.steps.items():
        rnd = random.Random(0)
        assert check_claim(d, claim_text(d, name, st_.final, rnd)).correct
        for kind in ("sign", "transpose"):
            wrong = mutate(st_.final, kind, rnd)
            if wrong is not None:
                assert not check_claim(d, claim_text(d, name, wrong, rnd)).correct
