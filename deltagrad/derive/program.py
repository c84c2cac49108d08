"""Programs: a forward written as named steps, derived by reverse mode over the steps.

``mu[i] = Sum(X[i,k], k)/size(k); D[i,j] = X[i,j] - mu[i]; ...; Y[i,j] = D[i,j]/sqrt(v[i] + 0.00001)``
has intermediates (``mu``, ``D``, ``v``) that any later step may read; the inputs are the names
never assigned, and the last step is the output. Each step is a small spec of its own: its local
backward is derived by the chain rule with Kronecker deltas and written through its own output
(a sigmoid step's derivative reads ``s*(1 - s)``) exactly as for a one-line spec. Reverse mode
then runs over the steps, last first: the gradient of a step's output (``G`` for the last) is
substituted into the local rules of the step, and the contributions to each name are summed.
The result reads the user's own names, and a normalisation stays centred (``D``), because
nothing is ever inlined into the forward.

>>> from deltagrad.derive.parse import parse_statements
>>> prog = build_program(parse_statements("m[i] = Sum(X[i,k], k)/size(k); Y[i,j] = X[i,j] - m[i]"))
>>> [s.output for s in prog.steps], [i.name for i in prog.composite.inputs]
(['m', 'Y'], ['X'])
>>> prog.composite.rhs
X[i, j] - Sum(X[i, k], (k, 0, n_k - 1))/n_k
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import sympy as sp

from deltagrad.derive.chain_rule import chain_rule, fresh_indices, grad_output_name
from deltagrad.derive.eliminate import eliminate_deltas
from deltagrad.derive.forward_values import (ForwardValues, Reduction, forward_values, fresh_name, freshen_bound,
                                            inline_reductions)
from deltagrad.derive.functions import one_plus_exp
from deltagrad.derive.names import NAMES, unique
from deltagrad.derive.saved_values import rewrite_through_forward
from deltagrad.derive.simplify import simplify_index_expr
from deltagrad.derive.spec import Spec, check_spec, extent, index, index_aliases, is_index, scalar, tensor
from deltagrad.derive.stabilize import stabilize
from deltagrad.errors import SpecError


@dataclass(frozen=True)
class ProgramSpec:
    """A checked program: each step as a :class:`Spec` of its own (its inputs are the names it
    reads), and ``composite``, the whole forward as one expression, which fixes the op's inputs,
    output, signature and sizes and serves the numerical checks."""

    steps: tuple
    composite: Spec

    @property
    def intermediates(self) -> tuple:
        return tuple(s.output for s in self.steps[:-1])


def build_program(equations, *, name: str | None = None, inputs=None, text: str = "") -> ProgramSpec:
    """Check the parsed statements of a program and build its steps and composite spec."""
    _check_assignments(equations)
    equations = _rename_apart(equations)
    assigned = {e.name: e for e in equations}
    program_indices = {i.name for eq in equations for e in eq.rhs.atoms(sp.Indexed) for i in e.indices
                       if isinstance(i, sp.Symbol)} | {i.name for eq in equations for i in eq.indices if isinstance(i, sp.Symbol)}
    steps = []
    for n, eq in enumerate(equations, 1):
        if eq.name != equations[-1].name and any(isinstance(i, sp.Integer) for i in eq.indices):
            raise SpecError(f"statement {n}: an intermediate's indices must be names, as in {eq.name}[i,j]")
        try:
            spec = check_spec(eq.name, eq.name, eq.indices, eq.rhs, eq.names, eq.where, text, program_indices)
        except SpecError as err:
            raise SpecError(f"statement {n} ({eq.name}): {err.message}", err.column) from None
        for inp in spec.inputs:
            if inp.name in assigned and inp.rank != len(assigned[inp.name].indices):
                raise SpecError(f"statement {n} ({eq.name}): {inp.name} has {len(assigned[inp.name].indices)} "
                                f"indices where it is assigned but {inp.rank} here")
        steps.append(spec)
    composite_rhs = _inline(equations)
    last = equations[-1]
    order = inputs
    if order is None:
        order = []
        for eq in equations:
            order += [n for n in eq.names if n not in assigned and n not in order]
    try:
        composite = check_spec(name or last.name, last.name, last.indices, composite_rhs, order, {}, text)
    except SpecError as err:
        raise SpecError(f"the program as a whole: {err.message}") from None
    aliases = _axis_aliases(equations) + list(composite.extra_aliases)
    composite = replace(composite, extra_aliases=tuple(aliases))
    return ProgramSpec(tuple(steps), composite)


def _check_assignments(equations) -> None:
    seen = {}
    for n, eq in enumerate(equations, 1):
        for used in eq.names:
            if used in seen or used == eq.name:
                continue
            later = next((m for m, e in enumerate(equations[n:], n + 1) if e.name == used), None)
            if later is not None:
                raise SpecError(f"statement {n} ({eq.name}) reads {used!r} before statement {later} assigns it")
        if eq.name in seen:
            raise SpecError(f"{eq.name!r} is assigned twice (statements {seen[eq.name]} and {n}); give each step its own name")
        seen[eq.name] = n
    for n, eq in enumerate(equations[:-1], 1):
        if not any(eq.name in later.names for later in equations[n:]):
            raise SpecError(f"statement {n} assigns {eq.name!r}, which no later statement reads "
                            f"(the last statement is the output)")


def _accesses(eq):
    """(tensor name, axis, index) for every indexed access of a statement, left side included."""
    out = [(eq.name, p, ix) for p, ix in enumerate(eq.indices)]
    for node in sp.preorder_traversal(eq.rhs):
        if isinstance(node, sp.Indexed):
            out += [(node.base.label.name, p, ix) for p, ix in enumerate(node.indices)]
    return [(t, p, ix) for t, p, ix in out if isinstance(ix, sp.Symbol)]


def _union_find():
    parent = {}

    def find(x):
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    def union(a, b):
        parent[find(a)] = find(b)

    return find, union


def _classes(equations):
    """find(), over (statement number, index name) and (tensor, axis): which indices share an axis."""
    find, union = _union_find()
    for n, eq in enumerate(equations):
        for t, p, ix in _accesses(eq):
            union((n, ix.name), ("axis", t, p))
    return find


def _rename_apart(equations):
    """Give an index name used in several statements for different axes a new name in the later
    ones, so that one name means one axis across the program."""
    find = _classes(equations)
    taken = {s.name for eq in equations for s in eq.rhs.free_symbols | set(eq.indices) if isinstance(s, sp.Symbol)}
    taken |= {lim[0].name for eq in equations for s in eq.rhs.atoms(sp.Sum) for lim in s.limits}
    first = {}
    out = []
    for n, eq in enumerate(equations):
        names = {s.name for s in eq.rhs.atoms(sp.Symbol) | set(eq.indices) if isinstance(s, sp.Symbol) and s.is_integer}
        names |= {lim[0].name for s in eq.rhs.atoms(sp.Sum) for lim in s.limits}
        mapping = {}
        for nm in sorted(names):
            if NAMES.is_extent(nm):
                continue
            cls = find((n, nm))
            if first.setdefault(nm, cls) != cls:
                new = fresh_name(nm, taken)
                first[new] = cls
                mapping[nm] = new
        if mapping:
            subs = {index(a): index(b) for a, b in mapping.items()}
            subs.update({extent(index(a)): extent(index(b)) for a, b in mapping.items()})
            eq = replace(eq, indices=tuple(subs.get(i, i) for i in eq.indices), rhs=eq.rhs.xreplace(subs))
        out.append(eq)
    return out


def _axis_aliases(equations) -> list:
    """(index, index) pairs that run over one axis, across the statements."""
    find = _classes(equations)
    by_class = {}
    for n, eq in enumerate(equations):
        for _, _, ix in _accesses(eq):
            by_class.setdefault(find((n, ix.name)), [])
            if ix.name not in by_class[find((n, ix.name))]:
                by_class[find((n, ix.name))].append(ix.name)
    return [(m, names[0]) for names in by_class.values() for m in names[1:]]


def _symbol_names(expr) -> set:
    names = {s.name for s in expr.atoms(sp.Symbol)}
    names |= {lim[0].name for s in expr.atoms(sp.Sum) for lim in s.limits}
    return names


def substitute(expr, name: str, indices: tuple, body, taken: set, aliases: list):
    """Every ``name[t]`` in ``expr`` (or the scalar ``name``) replaced by ``body`` with its free
    ``indices`` set to ``t``; ``body``'s summation indices are renamed where they would clash.

    >>> i, j, k = index('i'), index('j'), index('k')
    >>> from deltagrad.derive.spec import summed
    >>> substitute(tensor('m')[i] * 2, 'm', (j,), summed(tensor('X')[j, k], k), set(), [])
    2*Sum(X[i, k], (k, 0, n_k - 1))
    """
    avoid = _symbol_names(expr)
    if not indices:
        target = scalar(name)
        if not expr.has(target):
            return expr
        return expr.xreplace({target: freshen_bound(body, avoid, taken, aliases)})
    subs = {}
    for occ in expr.atoms(sp.Indexed):
        if occ.base.label.name == name:
            fresh = freshen_bound(body, avoid | {s.name for s in occ.indices if isinstance(s, sp.Symbol)}, taken, aliases)
            subs[occ] = fresh.xreplace(dict(zip(indices, occ.indices)))
    return expr.xreplace(subs)


def _inline(equations):
    """The last statement's right-hand side with every intermediate written out."""
    taken = set()
    for eq in equations:
        taken |= _symbol_names(eq.rhs)
    defs = {}
    for eq in equations:
        rhs = eq.rhs
        for name, (idx, body) in defs.items():
            rhs = substitute(rhs, name, idx, body, taken, [])
        defs[eq.name] = (eq.indices, rhs)
    return defs[equations[-1].name][1]


def program_values(prog: ProgramSpec) -> tuple:
    """(forward values of the whole program, each step's own values before stabilisation).

    The steps become named values that the forward always computes, in order, each after its
    own maxima and reductions (sums of exponentials shifted by their maximum). A step's local
    backward is rewritten through its unshifted values, as for a one-line spec.
    """
    taken = {s.output for s in prog.steps} | {i.name for i in prog.composite.inputs}
    reductions, maxima, sequence, per_step, shifts = [], [], [], [], []
    for spec in prog.steps:
        plain = forward_values(spec, taken)
        values, _ = stabilize(spec, plain, {}, taken)
        per_step.append(plain)
        maxima += values.maxima
        shifts += values.shifts
        reductions += values.reductions
        sequence += [m.name for m in values.maxima] + [r.name for r in values.reductions]
        if spec is not prog.steps[-1]:
            reductions.append(Reduction(spec.output, spec.out_indices, values.rhs))
            sequence.append(spec.output)
    whole = ForwardValues(values.rhs, tuple(reductions), values.output, tuple(maxima),
                          statements=prog.intermediates, sequence=tuple(sequence), shifts=tuple(shifts))
    return whole, per_step


def reverse_mode(prog: ProgramSpec, per_step_values, grad_name: str) -> tuple:
    """(input name → (gradient indices, the gradient before simplification, a local partial),
    the (new index, old index) pairs of the summation indices it renamed), by reverse mode over
    the steps with each step's local rule written through its own output."""
    taken = set()
    for spec in prog.steps:
        taken |= _symbol_names(spec.rhs) | {i.name for i in spec.out_indices if isinstance(i, sp.Symbol)}
        taken |= {i.name for i in spec.inputs} | {spec.output}
    taken |= {grad_name}
    aliases: list = []
    ranks = {i.name: i.rank for s in prog.steps for i in s.inputs}
    canon = {n: fresh_indices(r, taken) for n, r in ranks.items()}
    # the gradient of each step's output, as (indices, expression); the last one's is G itself
    grads = {}
    partials = {}
    for k in range(len(prog.steps) - 1, -1, -1):
        spec, values = prog.steps[k], per_step_values[k]
        if k == len(prog.steps) - 1:
            out_grad = None
        elif spec.output in grads:
            out_grad = grads[spec.output]
        else:
            continue  # an intermediate that nothing reads: no gradient flows through it
        local_g = grad_output_name(spec)
        for inp in spec.inputs:
            if inp.integer:  # an integer input selects positions: no gradient
                continue
            rule = chain_rule(spec, inp.name)
            local = simplify_index_expr(eliminate_deltas(rule.expr))
            local = rewrite_through_forward(local, spec, values, inp.name, rule.indices, local_g)
            partials.setdefault(inp.name, rule.partial)
            if out_grad is None:
                contribution = local.xreplace({tensor(local_g): tensor(grad_name), scalar(local_g): scalar(grad_name)})
            else:
                contribution = substitute(local, local_g, out_grad[0], out_grad[1], taken, aliases)
            target = canon[inp.name]
            contribution = freshen_bound(contribution, {t.name for t in target}, taken, aliases)
            contribution = contribution.xreplace(dict(zip(rule.indices, target)))
            previous = grads.get(inp.name, (target, sp.S.Zero))[1]
            grads[inp.name] = (target, previous + contribution)
    out = {}
    for inp in prog.composite.inputs:
        idx, expr = grads.get(inp.name, (canon.get(inp.name, ()), sp.S.Zero))
        out[inp.name] = (idx, expr, partials.get(inp.name, sp.S.Zero))
    return out, aliases


def split_nested(spec: Spec):
    """A one-line spec with nested reductions (a variance, a layer norm) as a program, or None.

    Each reduction read inside another becomes a step under its readable name (so a sum of
    exponentials of a reduction, as in attention scores, is max-shifted in the output's
    statement like any softmax), and each centred quantity inside a reduction (an input minus a reduction of it, ``X[i,m] - row_sum[i]/n_m``) becomes a step
    ``X_centred`` that every later copy reads, so that the backward, too, works with the centred
    values and float32 keeps its accuracy at large means.

    >>> from deltagrad.derive.parse import parse_spec
    >>> eqs = split_nested(parse_spec("y[i] = Sum((X[i,k] - Sum(X[i,m], m)/size(m))**2, k)/size(k)"))
    >>> [(e.name, e.rhs) for e in eqs]  # doctest: +NORMALIZE_WHITESPACE
    [('row_sum', Sum(X[i, m], (m, 0, n_m - 1))), ('X_centred', X[i, k] - row_sum[i]/n_k),
     ('y', Sum(X_centred[i, k]**2, (k, 0, n_k - 1))/n_k)]
    """
    from deltagrad.derive.parse import Equation
    from deltagrad.derive.saved_values import replace_pattern

    values = forward_values(spec)
    names = {r.name for r in values.reductions}
    inputs = {i.name for i in spec.inputs}
    sources = {r.name: {e.base.label.name for e in r.expr.atoms(sp.Indexed)} & inputs for r in values.reductions}
    if not any(_centred_parts(r.expr.function, names - {r.name}, inputs, sources) or _exp_of_reduction(r.expr.function, names)
               for r in values.reductions):
        return None
    used = {i.name for i in spec.inputs} | names | {spec.output}
    # reductions read inside another reduction become steps; the outermost stay in the output's
    # statement (a softmax keeps its sum of exponentials, and is max-shifted there)
    inner = {r.name for r in values.reductions
             if any(o is not r and _reads(o.expr.function, {r.name}) for o in values.reductions)}
    steps = []  # (name, indices, expr), in order
    centred = []  # (name, pattern, indices)
    made = []  # (name, pattern, indices) of the reductions that became steps

    def use_steps(e):
        for name, pattern, idx in centred + made:
            e = replace_pattern(e, pattern, idx, lambda t, n=name: tensor(n)[t] if t else scalar(n))
        return e

    for red in values.reductions:
        body = use_steps(red.expr.function)
        for sub in sorted(_centred_parts(body, names, inputs, sources), key=sp.default_sort_key):
            idx = tuple(_ordered_indices(sub))
            base = next(e.base.label.name for e in sp.preorder_traversal(sub)
                        if isinstance(e, sp.Indexed) and e.base.label.name in inputs)
            name = unique(f"{base}_centred", used)
            steps.append((name, idx, sub))
            centred.append((name, sub, idx))
            body = use_steps(body)
        if red.name in inner:
            steps.append((red.name, red.indices, sp.Sum(body, *red.expr.limits)))
            made.append((red.name, red.expr, red.indices))
    rhs = use_steps(inline_reductions(values.rhs, [r for r in values.reductions if r.name not in inner]))
    rhs = _exponents_as_steps(rhs, {m[0] for m in made}, steps, used)
    steps.append((spec.output, spec.out_indices, rhs))
    steps = _output_order(steps, spec.out_indices)
    aliases = index_aliases(spec)
    out = []
    for name, idx, expr in steps:
        expr = _local_extents(expr, idx, aliases)
        out.append(Equation(name, tuple(idx), expr, {}, names_in(expr)))
    return out


def _exponents_as_steps(rhs, made: set, steps: list, used: set):
    """``rhs`` with each compound exponent that reads a step (``exp(K_Q_sum[i,j] + B[i,j])``,
    attention scores plus a bias or mask) made a step of its own, ``scores[i,j]``, read under any
    names of its indices: a sum of ``exp(scores)`` is then max-shifted like any softmax."""
    from deltagrad.derive.saved_values import replace_pattern

    while True:
        found = sorted((f.args[0] for f in rhs.atoms(sp.exp) if not isinstance(f.args[0], (sp.Indexed, sp.Symbol))
                        and not f.args[0].has(sp.Sum) and _reads(f.args[0], made)), key=sp.default_sort_key)
        if not found:
            return rhs
        arg = found[0]
        name = unique("scores", used)
        used.add(name)
        idx = tuple(_ordered_indices(arg))
        steps.append((name, idx, arg))
        rhs = replace_pattern(rhs, arg, idx, lambda t, n=name: tensor(n)[t] if t else scalar(n))
        if rhs.has(arg):
            return rhs  # pragma: no cover - the pattern always matches itself


def names_in(expr) -> tuple:
    """The tensors and scalars ``expr`` reads, in order of first appearance (an Equation's names).

    >>> from deltagrad.derive.spec import index, scalar, tensor
    >>> names_in(tensor('X')[index('i')] * scalar('c') + tensor('W')[index('i')])
    ('c', 'X', 'W')
    """
    order = []
    for node in sp.preorder_traversal(expr):
        nm = node.base.label.name if isinstance(node, sp.Indexed) else (
            node.name if isinstance(node, sp.Symbol) and not node.is_integer else None)
        if nm and nm not in order:
            order.append(nm)
    return tuple(order)


def _sigmoid_power(node):
    """``(v, n)`` when ``node`` is ``(1 + exp(v))**(-n)`` with ``n`` a positive integer (the
    logistic sigmoid of ``-v``, to the ``n``); else None.

    >>> x = sp.Symbol('x')
    >>> _sigmoid_power(1 / (1 + sp.exp(-x))), _sigmoid_power((1 + sp.exp(x))**-2), _sigmoid_power(1 / (2 + sp.exp(x)))
    ((-x, 1), (x, 2), None)
    """
    ex = one_plus_exp(node.base) if isinstance(node, sp.Pow) and node.exp.is_Integer and node.exp < 0 else None
    return (ex.args[0], int(-node.exp)) if ex is not None else None


def split_at_function(spec: Spec):
    """An element-wise one-line spec with ``tanh`` of a compound argument, or a sigmoid
    ``1/(1 + exp(v))``, inside it as a program in which each such function is a step, or None.
    GELU's tanh form becomes ``u = ...; t = tanh(u); Y = ...t...``, stacked layers
    ``tanh(2*tanh(2*X))`` become ``t = tanh(2*X); Y = tanh(2*t)``, SiLU ``X/(1 + exp(-X))``
    becomes ``s = 1/(1 + exp(-X)); Y = X*s``: the backward reads each ``t`` (its derivative is
    ``1 - t**2``) or ``s`` (``s*(1 - s)``) instead of multiplying ``tanh(...)**2`` terms out or
    dividing by ``(1 + exp(v))**2``, which is what one writes by hand.

    >>> from deltagrad.derive.parse import parse_spec
    >>> eqs = split_at_function(parse_spec("Y[i] = X[i]*(1 + tanh(X[i] + X[i]**3))"))
    >>> [(e.name, e.rhs) for e in eqs]
    [('u', X[i]**3 + X[i]), ('t', tanh(u[i])), ('Y', (t[i] + 1)*X[i])]
    >>> [(e.name, e.rhs) for e in split_at_function(parse_spec("Y[i] = tanh(2*tanh(2*X[i]))"))]
    [('t', tanh(2*X[i])), ('Y', tanh(2*t[i]))]
    >>> [(e.name, e.rhs) for e in split_at_function(parse_spec("Y[i] = X[i]/(1 + exp(-X[i]))"))]
    [('s', 1/(1 + exp(-X[i]))), ('Y', X[i]*s[i])]
    """
    from deltagrad.derive.parse import Equation

    out = tuple(spec.out_indices)
    if spec.rhs.has(sp.Sum) or not out or any(not isinstance(i, sp.Symbol) for i in out):
        return None

    scalars = {i.name for i in spec.inputs if not i.rank}

    def indices_of(n):
        return {i for i in n.free_symbols if is_index(i)}

    def wanted(n):
        if isinstance(n, sp.tanh):
            return not isinstance(n.args[0], (sp.Indexed, sp.Symbol))
        sig = _sigmoid_power(n)
        if sig is None or indices_of(n) != set(out):
            return False
        v = sig[0]
        # v read at every output index (SiLU's X[i,j], not c*X or W[j]*X, whose gradient would
        # keep exp(v)*s**2, 0·inf in float32), and no exp(±v) beside it (exp(v)/(1 + exp(v)) is
        # lowered as one sigmoid: a step would leave inf·0)
        if any(x.name in scalars for x in v.atoms(sp.Symbol)) or any(
                set(e.indices) != set(out) for e in v.atoms(sp.Indexed)):
            return False
        outside = spec.rhs.xreplace({n: sp.Dummy()})
        return not any(e.args[0] in (v, -v) for e in outside.atoms(sp.exp))

    nodes = {n for n in sp.preorder_traversal(spec.rhs) if wanted(n) and n != spec.rhs}
    if not nodes or any(indices_of(n) != set(out) for n in nodes):
        return None

    def depth(n):  # how many of the nodes n holds: innermost first
        return sum(1 for m in sp.preorder_traversal(n) if m in nodes)

    nodes = sorted(nodes, key=lambda n: (depth(n), sp.default_sort_key(n)))
    used = {i.name for i in spec.inputs} | {spec.output} | {s.name for s in spec.rhs.free_symbols}
    steps, made = [], {}
    for node in nodes:
        if not isinstance(node, sp.tanh):
            name = unique("s", used)
            used.add(name)
            value = sp.Pow(node.base.xreplace(made), -1)
            steps.append(Equation(name, out, value, {}, names_in(value)))
            made[node] = tensor(name)[out] ** _sigmoid_power(node)[1]
            continue
        inner = node.args[0].xreplace(made)
        name = unique("t", used)
        used.add(name)
        if len(nodes) == 1 and not isinstance(spec.rhs, sp.tanh) and not inner.atoms(sp.Function):  # a step
            arg = unique("u", used)  # too, GELU's polynomial: (1 - t²)·u' stays factored
            used.add(arg)
            steps.append(Equation(arg, out, inner, {}, names_in(inner)))
            inner = tensor(arg)[out]
        steps.append(Equation(name, out, sp.tanh(inner), {}, names_in(sp.tanh(inner))))
        made[node] = tensor(name)[out]  # the original subtree: outer nodes and the output hold it
    rest = spec.rhs.xreplace(made)
    reads_only_steps = not {e.base.label.name for e in rest.atoms(sp.Indexed)} - {e.name for e in steps}
    single = len(nodes) == 1 and (isinstance(nodes[0], sp.tanh) or _sigmoid_power(nodes[0])[1] == 1)
    if single and reads_only_steps and not wanted(spec.rhs):
        return None  # Y = c*tanh(u), Y = c/(1 + exp(v)): the output's own value serves the backward
    steps.append(Equation(spec.output, out, rest, {}, names_in(rest)))
    return steps


def _output_order(steps, out_indices) -> list:
    """The steps with each intermediate's indices in the output's order where they share names
    (``scores[i,j]``, not ``scores[j,i]``), every reference to it permuted to match."""
    rank = {ix: n for n, ix in enumerate(out_indices)}
    perms = {}
    for name, idx, _ in steps[:-1]:
        new = tuple(sorted(idx, key=lambda ix: (rank.get(ix, len(rank)), idx.index(ix))))
        if new != tuple(idx):
            perms[name] = [tuple(idx).index(ix) for ix in new]

    def permute(expr):
        subs = {occ: tensor(occ.base.label.name)[tuple(occ.indices[p] for p in perms[occ.base.label.name])]
                for occ in expr.atoms(sp.Indexed) if occ.base.label.name in perms}
        return expr.xreplace(subs)

    return [(name, tuple(idx[p] for p in perms[name]) if name in perms else idx, permute(expr))
            for name, idx, expr in steps]


def _local_extents(expr, out_indices, aliases: dict):
    """``expr`` with each size ``n_x`` of an index it does not use written as the size of one it
    uses on the same axis (a step must know all its sizes from its own tensors)."""
    present = [i.name for i in out_indices if isinstance(i, sp.Symbol)]
    present += [i.name for i in _ordered_indices(expr) if i.name not in present]
    present += [lim[0].name for s in expr.atoms(sp.Sum) for lim in s.limits if lim[0].name not in present]
    subs = {}
    for sym in expr.free_symbols:
        x = NAMES.index_of_extent(sym.name) if isinstance(sym, sp.Symbol) else None
        if x is None or x in present:
            continue
        same = [y for y in present if aliases.get(y) == aliases.get(x, x)]
        if same:
            subs[sym] = extent(index(same[0]))
    return expr.xreplace(subs)


def _exp_of_reduction(body, names: set) -> bool:
    """True when ``body`` takes exp of a reduction (attention scores ``exp(Sum(Q*K, d))``): as a
    step of its own, the reduction's sum of exponentials is max-shifted like any softmax."""
    return any(isinstance(f, sp.exp) and _reads(f.args[0], names) for f in body.atoms(sp.exp))


def _reads(expr, names) -> bool:
    return any(isinstance(e, sp.Indexed) and e.base.label.name in names or
               isinstance(e, sp.Symbol) and e.name in names for e in sp.preorder_traversal(expr))


def _centred_parts(body, reductions: set, inputs: set, sources: dict | None = None) -> set:
    """The sums inside ``body`` that subtract a reduction from an input (``X[i,m] - r[i]/n``);
    with ``sources`` (reduction name → the inputs it sums), only a reduction of that input."""
    found = set()
    for node in sp.preorder_traversal(body):
        if (isinstance(node, sp.Add) and _reads(node, inputs) and not node.has(sp.Sum)
                and any(_is_scaled_reduction(t, reductions) and _same_source(t, node, sources) for t in node.args)):
            if not any(node != f and node.has(f) for f in found):
                found = {f for f in found if not f.has(node)} | {node}
    return found


def _same_source(term, node, sources) -> bool:
    """True when the reduction in ``term`` sums an input that the rest of ``node`` reads."""
    if sources is None:
        return True
    ref = next(e for e in sp.preorder_traversal(term) if isinstance(e, (sp.Indexed, sp.Symbol))
               and (e.base.label.name if isinstance(e, sp.Indexed) else e.name) in sources)
    name = ref.base.label.name if isinstance(ref, sp.Indexed) else ref.name
    others = {e.base.label.name for a in node.args if a is not term for e in a.atoms(sp.Indexed)}
    return bool(sources[name] & others)


def _is_scaled_reduction(term, reductions: set) -> bool:
    """True for ``c*r[i]`` or ``r[i]/n_k``: a reduction times numbers and sizes (a mean)."""
    rest = [f for f in sp.Mul.make_args(term) if not (f.is_number or (f.free_symbols and all(
        NAMES.is_extent(s.name) for s in f.free_symbols)))]
    return len(rest) == 1 and _reads(rest[0], reductions) and isinstance(rest[0], (sp.Indexed, sp.Symbol))


def _ordered_indices(expr) -> list:
    out = []
    for node in sp.preorder_traversal(expr):
        if isinstance(node, sp.Indexed):
            out += [i for i in node.indices if isinstance(i, sp.Symbol) and i not in out]
    return out
