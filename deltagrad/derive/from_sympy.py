"""Take a forward op built in SymPy (IndexedBase, Idx, Sum) into the engine's canonical form.

>>> import sympy as sp
>>> i, j, k = sp.symbols('i j k', cls=sp.Idx)
>>> X, W, Y = sp.IndexedBase('X'), sp.IndexedBase('W'), sp.IndexedBase('Y')
>>> spec = spec_from_sympy(Y[i, j], sp.Sum(X[i, k] * W[k, j], (k, 0, 9)))
>>> spec.rhs, [x.name for x in spec.inputs]
(Sum(W[k, j]*X[i, k], (k, 0, n_k - 1)), ['W', 'X'])
>>> [x.name for x in spec_from_sympy(Y[i, j], X[i, j] * W[i, j], inputs=['X', 'W']).inputs]
['X', 'W']
"""

from __future__ import annotations

import sympy as sp

from deltagrad.derive.functions import Generic, is_comparison
from deltagrad.derive.extrema import elementwise
from deltagrad.derive.names import check_spellings, normal_name
from deltagrad.derive.parse import FUNCTIONS, Equation
from deltagrad.derive.spec import MAX_DEPTH, Spec, check_spec, index, scalar, summed, tensor
from deltagrad.errors import SpecError

_ALLOWED_FUNCS = {make for make, _ in FUNCTIONS.values()}


def spec_from_sympy(lhs, rhs, *, name: str | None = None, inputs=None) -> Spec:
    """Check and canonicalise ``lhs = rhs`` given as SymPy objects.

    ``lhs`` is ``Y[i, j]`` (an ``Indexed``) or a ``Symbol`` for a scalar output. Sums run over
    the whole range of their index: from 0 to the last entry, whose number comes from the
    arrays' shapes (an upper limit given is not used); a sum over part of an axis (a lower
    limit other than 0, or limits other than an ``Idx``'s own range) is refused with a
    :class:`SpecError` by :func:`check_full_range`.
    """
    eq = equation_from_sympy(lhs, rhs)
    order = list(inputs) if inputs is not None else list(eq.names)
    return check_spec(name or eq.name, eq.name, eq.indices, eq.rhs, order, text=f"{lhs} = {rhs}")


def equation_from_sympy(lhs, rhs) -> Equation:
    """One statement ``lhs = rhs`` of SymPy objects as an unchecked :class:`Equation` (the form a
    program's statements take; :func:`deltagrad.derive.derivation.derive` takes a list of pairs).

    >>> i, k = sp.symbols('i k', cls=sp.Idx)
    >>> eq = equation_from_sympy(sp.IndexedBase('m')[i], sp.Sum(sp.IndexedBase('X')[i, k], (k, 0, 3)))
    >>> eq.name, eq.indices, eq.names
    ('m', (i,), ('X',))
    """
    check_spellings(_raw_names(lhs, rhs))
    if isinstance(lhs, sp.Indexed):
        output = normal_name(lhs.base.label.name)
        out_indices = tuple(_index(ix) for ix in lhs.indices)
    elif isinstance(lhs, (sp.Symbol, sp.IndexedBase)):
        output, out_indices = normal_name(str(lhs)), ()
    else:
        raise SpecError(f"the output must be an Indexed such as Y[i, j] or a Symbol, not {lhs!r}")
    canonical = _convert(sp.sympify(rhs, strict=True), 0)
    return Equation(output, out_indices, canonical, {}, tuple(_first_appearance(canonical)))


def _index(ix):
    if isinstance(ix, sp.Integer):
        return ix
    if isinstance(ix, (sp.Idx, sp.Symbol)):
        return index(normal_name(str(ix.label if isinstance(ix, sp.Idx) else ix)))
    raise SpecError(f"an index must be a symbol, an Idx or an integer, not {ix!r}")


def _convert(e, depth):
    if depth > MAX_DEPTH:
        raise SpecError(f"the expression is nested too deeply (more than {MAX_DEPTH} levels)")
    if isinstance(e, sp.Indexed):
        return tensor(normal_name(e.base.label.name))[tuple(_index(ix) for ix in e.indices)]
    if isinstance(e, sp.Idx):
        raise SpecError(f"index {e} is used outside a tensor's brackets")
    if isinstance(e, sp.Symbol):
        return scalar(normal_name(e.name))
    if isinstance(e, sp.Number):
        return e
    if isinstance(e, sp.Sum):
        for lim in e.limits:
            check_full_range(*lim)
        ks = [_index(lim[0]) for lim in e.limits]
        return summed(_convert(e.function, depth + 1), *ks)
    if isinstance(e, (sp.Max, sp.Min)):  # three or more arguments: the k-way tie rule
        return elementwise("Max" if isinstance(e, sp.Max) else "Min", *[_convert(a, depth + 1) for a in e.args])
    if isinstance(e, (sp.Add, sp.Mul, sp.Pow, Generic)) or e.func in _ALLOWED_FUNCS or is_comparison(e):
        return e.func(*[_convert(a, depth + 1) for a in e.args])
    raise SpecError(f"{e.func.__name__} is not supported in a spec")


def check_full_range(k, lower, upper) -> None:
    """A Sum runs over the whole axis of ``k``: from 0 (and to the ``Idx``'s own upper bound when
    it has one); the last entry otherwise comes from the arrays' shapes. A partial range is
    refused (the engine would read it as the whole axis).

    >>> k = sp.Idx('k')
    >>> check_full_range(k, 0, sp.Symbol('n') - 1)
    >>> check_full_range(k, 1, 3)
    Traceback (most recent call last):
    ...
    deltagrad.errors.SpecError: partial summation ranges are not supported: Sum over k from 1 to 3; write the full range (k, 0, n - 1), or Sum(..., k) in a text spec
    """
    bounded = isinstance(k, sp.Idx) and k.lower is not None and k.upper is not None
    if lower != 0 or (bounded and (lower, upper) != (k.lower, k.upper)):
        name = k.label if isinstance(k, sp.Idx) else k
        whole = f"({name}, {k.lower}, {k.upper})" if bounded else f"({name}, 0, n - 1)"
        raise SpecError(f"partial summation ranges are not supported: Sum over {name} from {lower} to {upper}; "
                        f"write the full range {whole}, or Sum(..., {name}) in a text spec")


def _raw_names(*exprs) -> list:
    """Every name in ``exprs`` as given (tensors, scalars, indices), before normalisation."""
    names = []
    for e in exprs:
        e = sp.sympify(e, strict=True)
        names += [str(n.label) if isinstance(n, (sp.Idx, sp.IndexedBase)) else n.name
                  for n in sp.preorder_traversal(e) if isinstance(n, (sp.Symbol, sp.Idx, sp.IndexedBase))]
    return names


def _first_appearance(e):
    """Input names in the order of first appearance in SymPy's printed (canonical) form."""
    names = []
    for node in sp.preorder_traversal(e):
        nm = node.base.label.name if isinstance(node, sp.Indexed) else None
        if isinstance(node, sp.Symbol) and not node.is_integer:
            nm = node.name
        if nm and nm not in names:
            names.append(nm)
    return names
