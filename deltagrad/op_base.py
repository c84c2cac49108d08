"""The base class and helpers of every op: re-exported from the generated ``op_base`` module.

The generated package ships its own copy (``deltagrad/generated/op_base.py``, rendered from
``templates/op_base.py.j2``), so that generated code needs nothing else of deltagrad; ops built
in memory by ``Derivation.compile()`` import the very same classes from here.
"""

from deltagrad.generated.op_base import Op, ShapeError, array_namespace, check_shapes

__all__ = ["Op", "ShapeError", "array_namespace", "check_shapes"]
