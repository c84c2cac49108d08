"""The derivation engine: parse → chain rule → delta elimination → simplify → saved values → lower."""
