"""The long fuzz run: random and mutated specs, then claims about the specs that derived.

Specs come from the grammar of ``tests/spec_fuzz.py`` (three in four random, one in four a
mutation of a random one); each is derived under a budget, compiled, run and compared with an
independent evaluation of its text and with central differences; one in four is derived twice to
compare the generated source. Claims are the derived rules of those specs, printed in random
spellings (``tests/test_check_fuzz.py``): correct ones must be judged correct, mutated ones
(sign, factor 2, a term dropped, a transpose) never, and garbled ones must get a verdict or a
one-line SpecError.

    PYTHONPATH=$PWD nice python bench/fuzz.py --specs 5000 --claims 2000 --seed 0 [--out FILE]

Prints the outcome counts, derive-time median/p95/max, and every failure with its spec.
"""

from __future__ import annotations

import argparse
import collections
import faulthandler
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import sympy as sp  # noqa: E402

from spec_fuzz import FAILURES, RandomPick, mutate_spec, random_spec, run_spec  # noqa: E402


def fuzz_specs(n: int, seed: int, budget: float, log) -> tuple:
    counts, seconds, failures, derived_ok = collections.Counter(), [], [], []
    for k in range(n):
        rnd = random.Random(f"{seed}:{k}")
        pick = RandomPick(rnd)
        text = random_spec(pick)
        mutated = rnd.random() < 0.25
        if mutated:
            text = mutate_spec(text, pick)
        outcome = run_spec(text, budget=budget, determinism=rnd.random() < 0.25, seed=k)
        counts[("mutated " if mutated else "") + outcome.kind] += 1
        seconds.append(outcome.seconds)
        if outcome.kind in FAILURES:
            failures.append(outcome)
            log(f"[spec {k}] {outcome.kind}: {text!r}: {outcome.detail[:400]}")
        elif outcome.kind == "ok" and len(derived_ok) < 4000:
            derived_ok.append(text)
        if (k + 1) % 250 == 0:
            log(f"... {k + 1} specs: {dict(sorted(counts.items()))}; derive s median {percentile(seconds, 0.5):.3f} "
                f"p95 {percentile(seconds, 0.95):.3f} max {max(seconds):.3f}")
    return counts, seconds, failures, derived_ok


def fuzz_claims(n: int, seed: int, specs: list, log) -> tuple:
    import test_check_fuzz
    from test_check_fuzz import INSERTS, claim_text, mutate

    test_check_fuzz.FUNCTIONS.update({sp.sin: "sin", sp.cos: "cos"})  # the fuzz grammar's functions too

    from deltagrad import derive
    from deltagrad.check.claims import check_claim
    from deltagrad.codegen.index_printer import index_text
    from deltagrad.derive.budget import BudgetExceeded, time_budget
    from deltagrad.errors import SpecError

    counts, failures, cache = collections.Counter(), [], {}
    for k in range(n):
        rnd = random.Random(f"claims:{seed}:{k}")
        spec = rnd.choice(specs)
        if spec not in cache:
            try:
                cache[spec] = derive(spec, budget=60)
            except SpecError:  # over its budget on a loaded machine this time
                cache[spec] = None
        d = cache[spec]
        if d is None:
            counts["spec over budget when derived again"] += 1
            continue
        name = rnd.choice(sorted(d.steps))
        right = d.steps[name].final if rnd.random() < 0.7 else d.steps[name].simplified
        kind = rnd.choice(("correct", "correct", "sign", "factor", "drop", "transpose", "garbled"))
        if kind == "correct":
            text = claim_text(d, name, right, rnd)
        elif kind == "garbled":
            st_ = d.steps[name]
            idx = ",".join(i.name for i in st_.indices)
            text = (f"d{name}[{idx}]" if idx else f"d{name}") + " = " + index_text(st_.final)
            for _ in range(rnd.randint(1, 3)):
                at = rnd.randint(0, len(text))
                text = text[:at] + rnd.choice(INSERTS) + text[at:] if rnd.random() < 0.5 else \
                    text[:at] + text[at + rnd.randint(1, 4):]
        else:
            wrong = mutate(right, kind, rnd)
            try:
                with time_budget(SAME_SECONDS):
                    same = wrong is None or _same(wrong, right)
            except (BudgetExceeded, Exception):  # noqa: BLE001 - the budget, or SymPy's own failures
                same = True  # the harness cannot tell: the mutant is not used
            if same:
                counts[f"{kind}: not applicable"] += 1
                continue
            text = claim_text(d, name, wrong, rnd)
        # a claim that hangs is a finding: dump the stacks if one runs long, stop it at the budget
        faulthandler.dump_traceback_later(CLAIM_SECONDS / 2, exit=False)
        try:
            with time_budget(CLAIM_SECONDS) as mine:
                v = check_claim(d, text)
        except BudgetExceeded as err:
            if err.budget is not mine:
                raise
            outcome, detail = "slow", f"no verdict within {CLAIM_SECONDS:g} s"
        except SpecError as err:
            if kind == "garbled":
                counts["garbled: refused"] += 1
                continue
            outcome = "refused"
            detail = str(err)
        except Exception as err:  # noqa: BLE001 - the fuzzer's point
            outcome, detail = "crash", f"{type(err).__name__}: {err}"
        else:
            if kind == "garbled":
                counts["garbled: verdict"] += 1
                continue
            outcome = ("judged correct" if v.correct else
                       "undecided (0 on every draw)" if v.method == "never_apart" else "judged incorrect")
            detail = ""
        finally:
            faulthandler.cancel_dump_traceback_later()
        counts[f"{kind}: {outcome}"] += 1
        undecided = outcome.startswith("undecided")  # not vouched for, not judged wrong: counted apart
        bad = outcome in ("crash", "slow") or (not undecided and (kind == "correct") != (outcome == "judged correct"))
        if undecided:
            log(f"[claim {k}] {kind}: {outcome}: {spec!r} | {text!r}")
        if bad:
            failures.append((spec, text, outcome, detail))
            log(f"[claim {k}] {kind}: {outcome}: {spec!r} | {text!r} {detail[:300]}")
        if (k + 1) % 250 == 0:
            log(f"... {k + 1} claims: {dict(counts)}")
    return counts, failures


#: A claim's verdict must come within this many seconds; the harness's own test that a mutant
#: differs from the rule gets this many.
CLAIM_SECONDS, SAME_SECONDS = 60.0, 10.0


def _same(wrong, right) -> bool:
    """True when a mutant equals the rule it came from (a transpose inside a sum over both of its
    indices is a renaming of the summation indices, not a mistake)."""
    from deltagrad.derive.spec import extent

    def canon(e):  # a sum over whole ranges does not depend on the order of its indices
        return e.replace(lambda x: isinstance(x, sp.Sum), lambda x: sp.Sum(x.function, *sorted(x.limits, key=str)))

    if sp.simplify(wrong - right) == 0:
        return True
    for total in sorted(wrong.atoms(sp.Sum), key=str):  # rename two indices of one sum, there only
        bound = [lim[0] for lim in total.limits]
        for n, a in enumerate(bound):
            for b in bound[n + 1:]:
                renamed = total.xreplace({a: b, b: a, extent(a): extent(b), extent(b): extent(a)})
                swapped = canon(wrong.xreplace({total: renamed}))
                if swapped == canon(right) or sp.simplify(swapped - canon(right)) == 0:
                    return True
    return False


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", type=int, default=500)
    parser.add_argument("--claims", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget", type=float, default=5.0, help="derive budget per spec, seconds")
    parser.add_argument("--out", help="write the summary as JSON here")
    args = parser.parse_args(argv)

    def log(line):
        print(line, flush=True)

    start = time.perf_counter()
    counts, seconds, failures, ok = fuzz_specs(args.specs, args.seed, args.budget, log)
    claim_counts, claim_failures = fuzz_claims(args.claims, args.seed, ok, log) if ok and args.claims else ({}, [])
    summary = {
        "specs": args.specs, "claims": args.claims, "seed": args.seed, "budget_s": args.budget,
        "spec_outcomes": dict(sorted(counts.items())), "claim_outcomes": dict(sorted(claim_counts.items())),
        "derive_s": {"median": percentile(seconds, 0.5), "p95": percentile(seconds, 0.95), "max": max(seconds, default=0)},
        "spec_failures": [(f.kind, f.spec, f.detail[:300]) for f in failures],
        "claim_failures": claim_failures,
        "wall_s": time.perf_counter() - start,
    }
    log(json.dumps({k: v for k, v in summary.items() if not k.endswith("failures")}, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(summary, indent=1))
    return 1 if failures or claim_failures else 0


if __name__ == "__main__":
    sys.exit(main())
