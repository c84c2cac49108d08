"""The chain rule in index notation: X∇[a…] = Σ_out G[out] · ∂Y[out]/∂X[a…].

SymPy's ``diff`` writes ∂X[i,k]/∂X[a,b] as KroneckerDelta(a, i)·KroneckerDelta(b, k), but only
when the gradient's indices are fresh names: reusing a summation dummy's name silently gives
a wrong result, so :func:`gradient_indices` never reuses a name of the spec.

>>> from deltagrad.derive.parse import parse_spec
>>> spec = parse_spec("Y[i,j] = X[i,j] / Z[i,j]")
>>> step = chain_rule(spec, 'Z')
>>> step.indices, step.partial
((a, b), -KroneckerDelta(a, i)*KroneckerDelta(b, j)*X[i, j]/Z[i, j]**2)
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from deltagrad.derive.extrema import Extremum, differentiate
from deltagrad.derive.functions import where
from deltagrad.derive.names import NAMES, unique
from deltagrad.derive.spec import Spec, extent, index, scalar, tensor

_NICE = "abcdefghpqrstuvw"


@dataclass(frozen=True)
class ChainRule:
    """One input's gradient before any delta is eliminated.

    ``indices``: the gradient's own index symbols; ``grad_output``: ``G[i, j]`` (or ``G``);
    ``partial``: ∂Y/∂X with Kronecker deltas; ``expr``: Σ_out G·partial as a SymPy ``Sum``.
    """

    input: str
    indices: tuple
    grad_output: sp.Expr
    partial: sp.Expr
    expr: sp.Expr


def grad_output_name(spec: Spec) -> str:
    """The name of the output's gradient: ``G`` unless the spec already uses it.

    >>> from deltagrad.derive.parse import parse_spec
    >>> grad_output_name(parse_spec("Y[i] = G[i] * 2"))
    'G_Y'
    >>> grad_output_name(parse_spec("Y[i] = G[i] * G_Y[i]"))
    'G_Y_2'
    """
    used = {inp.name for inp in spec.inputs} | {spec.output}
    used |= {s.name for s in spec.rhs.atoms(sp.Symbol)} | {e.base.label.name for e in spec.rhs.atoms(sp.Indexed)}
    g = NAMES.grad_symbol
    return g if g not in used else unique(f"{g}_{spec.output}", used)


def gradient_indices(spec: Spec, rank: int) -> tuple:
    """``rank`` fresh index symbols that clash with no name in the spec: a, b, c, … when free.

    >>> from deltagrad.derive.parse import parse_spec
    >>> gradient_indices(parse_spec("Y[a] = Sum(X[a,b], b)"), 2)
    (c, d)
    """
    used = {s.name for s in spec.rhs.free_symbols} | {s.name for s in spec.free_indices}
    used |= {inp.name for inp in spec.inputs} | {spec.output}
    used |= {s.name for s in spec.rhs.atoms(sp.Symbol)}
    for e in spec.rhs.atoms(sp.Sum, Extremum):
        used |= {lim[0].name for lim in e.limits}
    return fresh_indices(rank, used)


def fresh_indices(rank: int, used: set) -> tuple:
    """``rank`` index symbols whose names are not in ``used``: a, b, c, … first.

    >>> fresh_indices(2, {'a', 'c'})
    (b, d)
    """
    names = [c for c in _NICE if c not in used]
    names += [f"a{n}" for n in range(64) if f"a{n}" not in used]
    return tuple(index(n) for n in names[:rank])


def chain_rule(spec: Spec, input_name: str) -> ChainRule:
    """The chain rule for one input, with ∂Y/∂X written through Kronecker deltas."""
    inp = spec.input(input_name)
    idx = gradient_indices(spec, inp.rank)
    wrt = tensor(inp.name)[idx] if inp.rank else scalar(inp.name)
    gname = grad_output_name(spec)
    g = tensor(gname)[spec.out_indices] if spec.out_indices else scalar(gname)
    # Heaviside and sign are flat almost everywhere: their DiracDelta derivative is taken as 0.
    partial = differentiate(spec.rhs, wrt).replace(sp.DiracDelta, lambda *args: sp.S.Zero)
    partial = zero_log_zero(spec.rhs, partial)
    free = spec.free_indices
    body = g * partial
    expr = sp.Sum(body, *[(i, 0, extent(i) - 1) for i in free]) if free else body
    return ChainRule(inp.name, idx, g, partial, expr)


def zero_log_zero(forward: sp.Expr, partial: sp.Expr) -> sp.Expr:
    """``partial`` with the ``log(B)`` that ∂(B**E)/∂E brings in written as
    ``where(Abs(B) > 0, log(B), 0)``, in the terms that hold that power (anywhere in them: SymPy
    writes ``B**E*(E'*log(B) + E*B'/B)``): where ``B = 0``, ``B**E·log(B)`` is 0·(−∞) and the
    derivative's limit is 0 (PyTorch masks base = 0 the same way); a negative base keeps its NaN,
    and a ``log(B)`` of the spec's own stays as it is.

    >>> from deltagrad.derive.spec import index, tensor
    >>> i = index('i'); V, Z = tensor('V'), tensor('Z')
    >>> forward = sp.Max(V[i], 0)**Z[i]
    >>> zero_log_zero(forward, sp.diff(forward, Z[i]))
    where(Max(0, V[i]) > 0, log(Max(0, V[i])), 0)*Max(0, V[i])**Z[i]
    """
    powers = [p for p in forward.atoms(sp.Pow) if p.exp.free_symbols and not p.base.is_positive and p.base.free_symbols]
    if not powers:
        return partial

    def guarded(term):  # the log may sit inside the term: SymPy writes B**E*(E'*log(B) + E*B'/B)
        logs = {sp.log(p.base) for p in powers if p in term.args}
        return term.xreplace({g: where(sp.Abs(g.args[0]) > 0, g, 0) for g in logs if term.has(g)})

    return partial.replace(lambda e: isinstance(e, sp.Mul) and any(p in e.args for p in powers), guarded)
