"""deltagrad: a tensor op's forward definition in, a verified backward rule and readable code out.

>>> import deltagrad
>>> d = deltagrad.derive("Y[i,j] = X[i,j] / Z[i,j]")
>>> d.grads['X']
G[a, b]/Z[a, b]
"""

from deltagrad.api import DerivedOp, derive
from deltagrad.derive.derivation import Derivation
from deltagrad.errors import ShapeError, SpecError

__all__ = ["derive", "Derivation", "DerivedOp", "SpecError", "ShapeError"]
__version__ = "0.1.0"
