"""Rendering: lowered programs and derivations to Python source (and, later, LaTeX)."""
