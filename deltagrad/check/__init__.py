"""Check a hand derivation: claims in index notation, or an Op class, against the derived rules.

The checks return data (:mod:`deltagrad.check.verdict`); :mod:`deltagrad.codegen.verdict_text`
turns it into the words and JSON that ``deltagrad check`` prints.
"""

from deltagrad.check.claims import check_claim, parse_claim
from deltagrad.check.code import check_code
from deltagrad.check.verdict import BatchResult, Counterexample, Diagnosis, Verdict

__all__ = ["Verdict", "Diagnosis", "Counterexample", "BatchResult", "check_claim", "parse_claim", "check_code"]
