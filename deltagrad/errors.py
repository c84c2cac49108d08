"""The errors deltagrad raises on purpose: a bad spec, and a shape mismatch at run time.

Both are ``ValueError`` subclasses with a one-line message that says what is wrong and where.
This module imports nothing of deltagrad: every other module, the op base class included, takes
its errors from here.

>>> raise SpecError("unknown function 'foo'", column=8)
Traceback (most recent call last):
...
deltagrad.errors.SpecError: column 8: unknown function 'foo'
"""

from __future__ import annotations


class SpecError(ValueError):
    """A forward spec or a claim that cannot be used, with the column of the problem if known."""

    def __init__(self, message: str, column: int | None = None):
        self.message = message
        self.column = column
        super().__init__(message if column is None else f"column {column}: {message}")


class ShapeError(ValueError):
    """Arrays whose shapes disagree with the op's index notation."""


__all__ = ["SpecError", "ShapeError"]
