"""The errors deltagrad raises on purpose: a bad spec, and a shape mismatch at run time.

Both are ``ValueError`` subclasses with a one-line message that says what is wrong and where.

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


# Generated ops raise it at run time, so it lives with their base class.
from deltagrad.generated.op_base import ShapeError  # noqa: E402

__all__ = ["SpecError", "ShapeError"]
