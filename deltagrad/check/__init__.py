"""Check a hand derivation: claims in index notation, or an Op class, against the derived rules."""

from deltagrad.check.claims import Verdict, check_claim, parse_claim
from deltagrad.check.code import check_code

__all__ = ["Verdict", "check_claim", "parse_claim", "check_code"]
