"""Specs with affine indices (convolutions, pooling), derived through windowed views of their inputs.

An access such as ``X[b,c,2*i+p,2*j+q]`` reads a *window* of ``X``: for each output position
``(i, j)`` the ``n_p × n_q`` patch that starts at ``(2i, 2j)``. This module rewrites the spec
over a view that holds every window as its own axes, ``X_windows[b,c,i,j,p,q]`` (built at run
time by ``windows()`` of ``op_base``: NumPy's ``sliding_window_view``, a strided view, no copy),
derives that plain spec with the ordinary engine, and writes the gradient of ``X`` as the
gradient of the view scattered back through the same windows (``unwindow()``: one strided add
per position in the window, never a loop over elements).

The sizes follow a "valid" convolution: an index that only starts windows (``i`` above) runs
over the positions where every access is in range, ``n_i = (n_X - offset - d·(n_p - 1) - 1)//s + 1``
(stride ``s``, dilation ``d``); a window index that no tensor carries (pooling's ``p``) is a
keyword argument of ``forward``; a size that leaves no position is a ``ShapeError`` at run time.

The write-up keeps the delta form: ``∂X[s·i+p]/∂X[a] = δ(a, s·i+p)``; the delta is eliminated
by solving for the summed index of coefficient 1 (``p = a - s·i``), which leaves the range
condition ``InRange(a - s·i, n_p)`` (1 when ``0 ≤ a - s·i < n_p``, else 0) in the sum.

>>> from deltagrad.derive.parse import parse_spec
>>> w = windowing(parse_spec("Y[i] = Sum(X[i+k]*W[k], k)"))
>>> w.inner.rhs, [v.name for v in w.views], w.deduced
(Sum(W[k]*X_windows[i, k], (k, 0, n_k - 1)), ['X_windows'], (i,))
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import sympy as sp

from deltagrad.derive.affine import decompose, is_affine
from deltagrad.derive.chain_rule import chain_rule
from deltagrad.derive.eliminate import eliminate_deltas, expand_products, pull_out
from deltagrad.derive.array_program import Assign, Program, Runtime, Var, variables
from deltagrad.derive.names import NAMES, unique
from deltagrad.derive.spec import Spec, check_spec, extent, tensor
from deltagrad.errors import SpecError


class InRange(sp.Function):
    """``InRange(x, n)``: 1 when ``0 <= x < n``, else 0 (the range condition left by solving a delta).

    >>> InRange(2, 3), InRange(3, 3), InRange(sp.Symbol('x'), 3)
    (1, 0, InRange(x, 3))
    """

    is_integer = True

    @classmethod
    def eval(cls, x, n):
        if x.is_Integer and n.is_Integer:
            return sp.S.One if 0 <= x < n else sp.S.Zero
        return None


@dataclass(frozen=True)
class WindowAxis:
    """One axis of an input read through windows: position ``stride*outer + dilation*window + offset``
    (``window`` None: a strided or shifted axis with no window)."""

    axis: int
    outer: sp.Symbol
    stride: int
    window: sp.Symbol | None
    dilation: int
    offset: int


@dataclass(frozen=True)
class View:
    """A windowed view of one input: ``name[pattern]`` stands for ``access`` (e.g.
    ``X_windows[b,c,i,j,p,q]`` for ``X[b,c,i+p,j+q]``)."""

    name: str
    tensor: str
    access: sp.Indexed
    axes: tuple
    pattern: tuple
    #: the view's axes as a permutation of the windows' own layout (the input's axes, windowed
    #: ones cut to their starts, then the window axes): summed plain axes next to the windows, so
    #: that the contraction reads one contiguous im2col matrix (None: that layout as it is)
    order: tuple | None = None


@dataclass(frozen=True)
class Windowing:
    """A spec with affine indices rewritten over views: ``inner`` is a plain spec."""

    spec: Spec
    inner: Spec
    views: tuple
    windowed: dict  # tensor name -> its affine axes (ints)
    deduced: tuple  # outer indices whose sizes are computed from the windows
    kwargs: tuple  # window indices whose sizes are keyword arguments of forward


def has_affine(spec: Spec) -> bool:
    """True when some tensor on the right-hand side has an affine index.

    >>> from deltagrad.derive.parse import parse_spec
    >>> has_affine(parse_spec("Y[i] = X[2*i]")), has_affine(parse_spec("Y[i] = X[i]"))
    (True, False)
    """
    return any(is_affine(ix) for e in spec.rhs.atoms(sp.Indexed) for ix in e.indices)


def _accesses(rhs) -> list:
    return sorted({e for e in rhs.atoms(sp.Indexed)}, key=sp.default_sort_key)


def windowing(spec: Spec) -> Windowing:
    """Rewrite ``spec`` over windowed views of the inputs it reads with affine indices."""
    accesses = _accesses(spec.rhs)
    windowed_names = sorted({e.base.label.name for e in accesses if any(is_affine(ix) for ix in e.indices)})
    summed = {lim[0] for s in spec.rhs.atoms(sp.Sum) for lim in s.limits}
    # affine axes of each windowed tensor: those that are not the same bare name in every access
    summed |= {lim[0] for e in sp.preorder_traversal(spec.rhs) for lim in getattr(e, "limits", ())
               if isinstance(e, sp.concrete.expr_with_limits.ExprWithLimits)}  # a Max over named indices too
    windowed = {}
    for nm in windowed_names:
        mine = [e for e in accesses if e.base.label.name == nm]
        for e in mine:
            if any(isinstance(ix, sp.Integer) for ix in e.indices):
                raise SpecError(f"tensor {nm!r} is read with index arithmetic, so its indices must all be names "
                                f"or sums of names (not the integer in {e})")
        axes = tuple(k for k in range(len(mine[0].indices))
                     if len({e.indices[k] for e in mine}) > 1 or is_affine(mine[0].indices[k]))
        windowed[nm] = axes
    known = set()
    for e in accesses:
        nm = e.base.label.name
        for k, ix in enumerate(e.indices):
            if isinstance(ix, sp.Symbol) and (nm not in windowed or k not in windowed[nm]):
                known.add(ix)
    used_names = {s.name for s in spec.rhs.free_symbols} | {i.name for i in spec.inputs} | {spec.output}
    used_names |= {s.name for s in spec.rhs.atoms(sp.Symbol)} | {s.name for s in summed}
    views, outers, windows_ = [], [], []
    for e in accesses:
        nm = e.base.label.name
        if nm not in windowed:
            continue
        axes, pattern, tail, kinds = [], [], [], []
        for k, ix in enumerate(e.indices):
            if k not in windowed[nm]:
                pattern.append(ix)
                kinds.append(1 if ix in summed else 0)
                continue
            ax = _window_axis(k, ix, known, summed, e)
            axes.append(ax)
            pattern.append(ax.outer)
            kinds.append(0)
            outers.append(ax.outer)
            if ax.window is not None:
                tail.append(ax.window)
                windows_.append(ax.window)
        base = pattern + tail
        kinds += [2] * len(tail)
        if 1 in kinds:  # a contraction over a plain axis too (a convolution's channels): window
            # starts last, [b, c, p, q, i, j], so that it is one batched matmul whose result is
            # already laid out [b, o, i, j] (and the im2col copy reads whole rows)
            kinds = [3 if ix in {a.outer for a in axes} else kind for ix, kind in zip(base, kinds)]
        order = tuple(sorted(range(len(base)), key=lambda n: (kinds[n], n)))
        order = None if order == tuple(range(len(base))) else order
        name = unique(f"{nm}_windows", used_names)
        views.append(View(name, nm, e, tuple(axes), tuple(base[n] for n in order) if order else tuple(base), order))
    kwargs = tuple(dict.fromkeys(w for w in windows_ if w not in known))
    deduced = tuple(dict.fromkeys(o for o in outers if o not in known and o not in kwargs))
    by_access = {v.access: tensor(v.name)[v.pattern] for v in views}
    inner_rhs = spec.rhs.xreplace(by_access)
    order = []
    for inp in spec.inputs:
        order += [v.name for v in views if v.tensor == inp.name] if inp.name in windowed else [inp.name]
    inner = check_spec(spec.name, spec.output, spec.out_indices, inner_rhs, order, {}, spec.text)
    return Windowing(spec, inner, tuple(views), windowed, deduced, kwargs)


def _window_axis(axis: int, ix, known: set, summed: set, access) -> WindowAxis:
    """Which name of ``ix`` starts the window (the outer index) and which runs inside it."""
    coeffs, offset = decompose(sp.expand(ix))
    names = list(coeffs)
    if len(names) == 1:
        return WindowAxis(axis, names[0], coeffs[names[0]], None, 1, offset)
    u, v = names

    def pick(test):
        hits = [n for n in (u, v) if test(n)]
        return hits[0] if len(hits) == 1 else None

    window = pick(lambda n: n in known) or pick(lambda n: n in summed)
    if window is None and coeffs[u] != coeffs[v]:
        window = u if coeffs[u] < coeffs[v] else v
    if window is None:
        raise SpecError(f"in {access}, index {ix}: cannot tell which of {u}, {v} runs inside the window; "
                        "let a tensor carry the window's index (as W[k] in Sum(X[i+k]*W[k], k)) or sum over it")
    outer = v if window == u else u
    return WindowAxis(axis, outer, coeffs[outer], window, coeffs[window], offset)


# -- the derivation of a windowed spec ------------------------------------------------------------


def _unview(expr, views):
    """``expr`` with each view ``X_windows[...]`` written back as the access it stands for."""
    table = {v.name: v for v in views}

    def back(e):
        v = table[e.base.label.name]
        sub = {}
        for p, actual in zip(v.pattern, e.indices):
            sub.setdefault(p, actual)
        return v.access.xreplace(sub)

    return expr.replace(lambda e: isinstance(e, sp.Indexed) and e.base.label.name in table, back)


def solve_affine_deltas(expr, guarded=frozenset()):
    """Eliminate deltas ``δ(x, s·i + p)`` against a summed index of coefficient 1 inside a Sum,
    leaving the range condition ``InRange(x - s·i, n_p)``; so too a plain delta ``δ(a, i)`` on a
    ``guarded`` index ``a`` (an axis read through windows, where ``i`` may run over fewer values
    than the axis has); other deltas as ``eliminate_deltas``.

    >>> from deltagrad.derive.spec import index, summed
    >>> i, k, a = index('i'), index('k'), index('a')
    >>> G, W = tensor('G'), tensor('W')
    >>> solve_affine_deltas(summed(G[i] * summed(W[k] * sp.KroneckerDelta(a, i + k), k), i))
    Sum(InRange(a - i, n_k)*G[i]*W[a - i], (i, 0, n_i - 1))
    >>> solve_affine_deltas(summed(G[i] * sp.KroneckerDelta(a, i), i), {a})
    InRange(a, n_i)*G[a]
    """
    if not isinstance(expr, sp.Sum):
        if not expr.args or isinstance(expr, sp.Indexed):
            return expr
        return expr.func(*[solve_affine_deltas(a, guarded) for a in expr.args])
    body = solve_affine_deltas(expr.function, guarded)
    indices = [lim[0] for lim in expr.limits]
    out = []
    for term in sp.Add.make_args(expand_products(body)):
        remaining = list(indices)
        progress = True
        while progress:
            progress = False
            for f in sp.Mul.make_args(term):
                if not isinstance(f, sp.KroneckerDelta) or not (
                        any(is_affine(a) for a in f.args) or f.free_symbols & set(guarded)):
                    continue
                x, y = f.args
                for lhs, rhs in ((x, y), (y, x)):
                    coeffs, _ = decompose(sp.expand(rhs)) if rhs.free_symbols else ({}, 0)
                    s = next((k for k in remaining if coeffs.get(k) == 1 and not lhs.has(k)), None)
                    if s is None:
                        continue
                    value = sp.expand(lhs - (rhs - s))
                    term = (term / f).xreplace({s: value}) * InRange(value, extent(s))
                    remaining.remove(s)
                    progress = True
                    break
                if progress:
                    break
        rest = sp.Sum(term, *[(k, 0, extent(k) - 1) for k in remaining]) if remaining else term
        out.append(eliminate_deltas(rest))
    return sp.Add(*out)


def derive_windowed(spec: Spec, derive_plain):
    """The :class:`~deltagrad.derive.derivation.Derivation` of a spec with affine indices;
    ``derive_plain(spec)`` derives the plain spec over the views."""
    w = windowing(spec)
    d = derive_plain(w.inner)
    aliases = dict(d.signature.aliases)

    def rep(s):
        return aliases.get(s.name, s.name)

    def size(s):
        return Var(NAMES.extent(rep(s)))

    # the outer signature: windowed axes get a name of their own (their size n_X_2)
    taken = set(aliases) | {i.name for i in spec.inputs} | {spec.output}
    axis_names = {}
    patterns = {}
    for inp in spec.inputs:
        if inp.name not in w.windowed:
            patterns[inp.name] = d.signature.patterns[inp.name]
            continue
        first = next(v for v in w.views if v.tensor == inp.name).access
        pat = []
        for k, ix in enumerate(first.indices):
            if k in w.windowed[inp.name]:
                axis_names[(inp.name, k)] = unique(f"{inp.name}_{k}", taken)
                pat.append(axis_names[(inp.name, k)])
            else:
                pat.append(rep(ix))
        patterns[inp.name] = tuple(pat)
    kwargs = tuple(dict.fromkeys([*(s.name for s in spec.size_indices), *(rep(s) for s in w.kwargs)]))
    deduced = {rep(s) for s in w.deduced}
    order = []
    for pat in patterns.values():
        order += [n for n in pat if isinstance(n, str) and n not in order]
    order += [n for n in kwargs if n not in order]
    order += [rep(s) for s in spec.free_indices if rep(s) not in order and rep(s) not in deduced]
    order = [n for n in order if n not in axis_names.values()] + [n for n in order if n in axis_names.values()]
    all_aliases = {**aliases, **{n: n for n in axis_names.values()}}
    signature = replace(d.signature, patterns=patterns, size_kwargs=kwargs, sizes=tuple(order), aliases=all_aliases)

    # forward: the sizes of the outer indices, the views, then the plain forward
    reads = {}
    for v in w.views:
        for ax in v.axes:
            window = size(ax.window) if ax.window is not None else None
            reads.setdefault(rep(ax.outer), []).append(
                (v.tensor, ax.axis, Var(NAMES.extent(axis_names[(v.tensor, ax.axis)])), window,
                 ax.stride, ax.dilation, ax.offset))
    op = _class_name(spec.name)
    forward = []
    for outer, rd in reads.items():
        args = (op, outer, tuple(rd))
        if outer not in deduced:
            args += (Var(NAMES.extent(outer)),)
        forward.append(Assign(NAMES.extent(outer), Runtime("window_count", args)))
    for v in w.views:
        args = (Var(v.tensor), _axes_node(v, size)) + ((v.order,) if v.order else ())
        forward.append(Assign(v.name, Runtime("windows", args)))
    forward += list(d.forward.statements)

    # backward: each windowed input's gradient scattered back from its views' gradients
    view_grads = {NAMES.gradient(v.name): v for v in w.views}
    grads_of = {}
    backward = []
    for st in d.backward.statements:
        v = view_grads.get(st.target)
        if v is None:
            backward.append(st)
            continue
        grads_of.setdefault(v.tensor, []).append((st.value, _axes_node(v, size), v.order))
    for nm in w.windowed:
        shape = tuple(Var(NAMES.extent(axis_names[(nm, k)] if (nm, k) in axis_names else patterns[nm][k]))
                      for k in range(len(patterns[nm])))
        args = (shape,)
        for value, axes, layout in grads_of[nm]:
            args += (value, axes, layout)
        backward.append(Assign(NAMES.gradient(nm), Runtime("unwindow", args)))
    results = tuple(NAMES.gradient(i.name) for i in spec.inputs)
    backward = _in_result_order(backward, results)
    ranks = dict(d.forward.ranks)
    ranks.update(d.backward.ranks)
    ranks.update({NAMES.gradient(i.name): i.rank for i in spec.inputs})
    ranks.update({i.name: i.rank for i in spec.inputs})
    ranks.update({NAMES.extent(n): 0 for n in axis_names.values()})
    forward_program = Program(tuple(forward), d.forward.results, ranks)
    backward_program = Program(tuple(backward), results, ranks)

    read = set()
    for st in backward:
        read |= variables(st.value)
    assigned = [st.target for st in forward]
    sizes = [NAMES.extent(n) for n in (*order, *sorted(deduced))]
    candidates = [*(i.name for i in spec.inputs), *assigned, *d.saved, *sizes]
    candidates = [c for c in candidates if not NAMES.is_extent(c)] + [c for c in candidates if NAMES.is_extent(c)]
    saved = tuple(n for n in dict.fromkeys(candidates) if n in read)

    # the steps, written back through the original accesses; a windowed input's through its deltas
    steps = {}
    for inp in spec.inputs:
        if inp.name not in w.windowed:
            st = d.steps[inp.name]
            steps[inp.name] = replace(st, **{f: _unview(getattr(st, f), w.views) for f in
                                             ("partial", "chain_rule", "eliminated", "simplified", "final")})
            continue
        some = d.steps[next(v.name for v in w.views if v.tensor == inp.name)]
        try:
            rule = chain_rule(spec, inp.name)
            guarded = {rule.indices[k] for k in w.windowed[inp.name]}
            eliminated = solve_affine_deltas(rule.expr, guarded)
        except (TypeError, ValueError, AttributeError, NotImplementedError):
            # a forward SymPy cannot differentiate symbolically (a reduction of another kind):
            # the write-up shows the view's own steps, written back through the windows
            steps[inp.name] = replace(some, **{f: _unview(getattr(some, f), w.views) for f in
                                               ("partial", "chain_rule", "eliminated", "simplified", "final")})
            continue
        final = _through_output(eliminated, d, w)
        steps[inp.name] = replace(some, input=inp.name, indices=rule.indices, partial=rule.partial,
                                  chain_rule=rule.expr, eliminated=eliminated, simplified=eliminated, final=final)
    return replace(d, spec=spec, steps=steps, signature=signature, forward=forward_program,
                   backward=backward_program, saved=saved)


def _through_output(expr, d, w):
    """The eliminated form, with the output's name for the forward values the plain derivation saved."""
    return expr


def _in_result_order(statements, results):
    """Gradient statements last, in the order of the inputs (temporaries stay in place)."""
    by_target = {st.target: st for st in statements if st.target in results}
    rest = [st for st in statements if st.target not in results]
    return rest + [by_target[r] for r in results if r in by_target]


def _axes_node(view: View, size) -> tuple:
    """``((axis, count, window, stride, dilation, offset), ...)`` for ``windows``/``unwindow``."""
    out = []
    for ax in view.axes:
        window = size(ax.window) if ax.window is not None else None
        out.append((ax.axis, size(ax.outer), window, ax.stride, ax.dilation, ax.offset))
    return tuple(out)


def _class_name(name: str) -> str:
    parts = [p for p in name.replace("-", "_").split("_") if p]
    return "".join(p[:1].upper() + p[1:] for p in parts) or "Op"
