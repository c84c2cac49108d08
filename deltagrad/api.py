"""The public face of a derivation: :func:`derive` returns a :class:`DerivedOp`, the plain
:class:`~deltagrad.derive.derivation.Derivation` with its printers and compiler attached.

The engine (``derive/``) returns data and never imports ``codegen/``; this module sits above
both, so that ``d.source()``, ``d.latex()`` and ``d.compile()`` read naturally without the
engine reaching up into the printers.

>>> d = derive("Y[i,j] = 1 / (1 + exp(-X[i,j]))")
>>> print(d.numpy('X'))
dX = goutput * Y * (1 - Y)
>>> d.compile().__name__
'Y'
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from deltagrad.codegen.jax_target import compile_jax
from deltagrad.codegen.latex import render_latex, repr_latex
from deltagrad.codegen.op_class import compile_op, op_source
from deltagrad.codegen.python_printer import backward_source
from deltagrad.codegen.targets import MissingFramework
from deltagrad.codegen.torch_target import compile_torch
from deltagrad.derive.array_program import applied
from deltagrad.derive.derivation import DERIVE_SECONDS, Derivation
from deltagrad.derive.derivation import derive as derive_data

__all__ = ["DerivedOp", "MissingFramework", "MissingFunction", "TARGETS", "derive"]


@dataclass(frozen=True)
class DerivedOp(Derivation):
    """A :class:`~deltagrad.derive.derivation.Derivation` that prints and compiles itself."""

    def numpy(self, input_name: str | None = None) -> str:
        """The backward's Python lines that compute one input's gradient (all when None)."""
        return backward_source(self, input_name)

    def source(self) -> str:
        """The Python source of the op class (a vugrad-style ``Op``)."""
        return op_source(self)

    def latex(self, fragment: bool = False) -> str:
        """The write-up: a standalone LaTeX document, or only its body with ``fragment=True``."""
        return render_latex(self, fragment=fragment)

    def _repr_latex_(self) -> str:
        return repr_latex(self)

    def compile(self, target: str = "numpy", functions: dict | None = None):
        """The op, built once per derivation and target.

        ``"numpy"``: a class with static ``forward(context, *arrays, **sizes)`` and ``backward``
        (NumPy, CuPy or any array-API library); ``"vugrad"``: the same class, also a
        ``vugrad.core.Op``, so ``Op.do_forward(*nodes)`` builds vugrad's graph; ``"torch"``: a
        function ``f(*inputs, **sizes)`` backed by a generated ``torch.autograd.Function``
        (``f.Function``); ``"jax"``: a function built on ``jax.custom_vjp``. A framework that is
        not installed gives one line that names the extra to install (``MissingFramework``).

        ``functions`` implements the generic functions the spec declared, for that target, each
        with its derivatives: ``{"f": np.tanh, "f_prime": lambda x: 1 - np.tanh(x)**2}``; one
        that is missing is one line (``MissingFunction``).
        """
        if target not in TARGETS:
            raise ValueError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
        calls = applied([*self.forward.statements, *self.backward.statements])
        if calls:
            missing = [n for n in calls if not callable((functions or {}).get(n))]
            if missing:
                raise MissingFunction(
                    f"the op calls {', '.join(calls)}; pass an implementation of each: "
                    f"compile(functions={{{', '.join(repr(n) + ': ...' for n in calls)}}}) (missing: {', '.join(missing)})")
            return TARGETS[target](self, functions={n: functions[n] for n in calls})
        key = "_compiled" if target == "numpy" else f"_compiled_{target}"
        cached = self.__dict__.get(key)
        if cached is None:
            cached = TARGETS[target](self)
            object.__setattr__(self, key, cached)
        return cached

    @classmethod
    def of(cls, derivation: Derivation) -> "DerivedOp":
        """The same derivation, with the conveniences."""
        return cls(**{f.name: getattr(derivation, f.name) for f in fields(Derivation)})


class MissingFunction(ValueError):
    """A generic function the op calls has no implementation (one line that names it)."""


def _compile_vugrad(derived: DerivedOp, functions: dict | None = None) -> type:
    """The NumPy op class, also a subclass of ``vugrad.core.Op`` (vugrad must be importable)."""
    try:
        from vugrad.core import Op as VugradOp
    except ImportError:
        raise MissingFramework("target 'vugrad' needs the vugrad package importable (its folder on sys.path)") from None
    base = compile_op(derived, functions) if functions else derived.compile()
    return type(base.__name__, (base, VugradOp), {"__doc__": base.__doc__, "__module__": base.__module__})


#: compile target → builder of the op
TARGETS = {"numpy": compile_op, "vugrad": _compile_vugrad, "torch": compile_torch, "jax": compile_jax}


def derive(spec, *, name: str | None = None, inputs=None, budget: float | None = DERIVE_SECONDS,
           functions=()) -> DerivedOp:
    """Derive the backward of every input of ``spec`` (see :func:`deltagrad.derive.derivation.derive`).

    >>> derive("Y[i,j] = X[i,j] / Z[i,j]").grads
    {'X': G[a, b]/Z[a, b], 'Z': -G[a, b]*Y[a, b]/Z[a, b]}
    """
    return DerivedOp.of(derive_data(spec, name=name, inputs=inputs, budget=budget, functions=functions))
