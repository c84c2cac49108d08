"""What the write-up says between its equations: which Kronecker delta collapses which sum in
which term, the identity behind a step "through saved values" (σ′ = σ(1 − σ)), softmax where
it appears, and the bridge from index sums to matrix products.

Everything here reads the derivation's SymPy expressions and returns LaTeX text; nothing is
derived anew except the per-term elimination of deltas (the engine's own
:func:`~deltagrad.derive.eliminate.eliminate_deltas`, applied to one term at a time).

>>> from deltagrad.derive.derivation import derive
>>> from deltagrad.codegen.latex_printer import IndexLatexPrinter
>>> d = derive("Y[i,j] = X[i,j] / Sum(X[i,k], k)")
>>> st = d.steps["X"]
>>> terms = delta_terms(st.chain_rule)
>>> len(terms)
2
>>> print(delta_note(terms, IndexLatexPrinter("G", "Y", ("X",)), "Y", d.spec.out_indices, "X", st.indices))
first term: $\\delta_{ai}$, $\\delta_{bj}$ set $i = a$, $j = b$; second term: $\\delta_{ai}$, $\\delta_{bk}$ set $i = a$, $k = b$, but it has no $\\delta_{bj}$, so $\\sum_{j}$ survives: every $Y_{aj}$ depends on $X_{ab}$
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from deltagrad.derive.eliminate import eliminate_deltas
from deltagrad.derive.affine import is_affine
from deltagrad.derive.windows import solve_affine_deltas

_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth")


@dataclass(frozen=True)
class Term:
    """One term of the chain rule after distributing over sums: the term, what the deltas
    leave of it, and for each summed index the delta that collapses it (or None)."""

    expr: sp.Expr
    result: sp.Expr
    sets: tuple  # (summed index, value, delta)
    pairs: tuple  # (summed index, delta, delta, resulting delta): Σ_i δ_ai δ_bi = δ_ab
    survives: tuple  # summed indices no delta touches, still summed in the result
    counted: tuple  # summed indices no delta touches that became a factor n_k
    remains: tuple  # deltas with no summed index: δ_0b


def _delta_part(e):
    """(product of the Kronecker deltas every term of ``e`` carries, the rest)."""
    if isinstance(e, sp.KroneckerDelta):
        return e, sp.S.One
    if isinstance(e, sp.Mul):
        parts = [_delta_part(f) for f in e.args]
        return sp.Mul(*[d for d, _ in parts]), sp.Mul(*[r for _, r in parts])
    if isinstance(e, sp.Add):
        parts = [_delta_part(t) for t in e.args]
        if parts[0][0] != 1 and all(d == parts[0][0] for d, _ in parts):
            return parts[0][0], sp.Add(*[r for _, r in parts])
    return sp.S.One, e


def pull_deltas(e):
    """``e`` with Kronecker deltas that every term of a sum carries written once in front:
    δ_ai δ_bj (½ + … + …) rather than δ_ai δ_bj ½ + … δ_ai δ_bj … (nothing else is rewritten).

    >>> from deltagrad.derive.spec import index, tensor
    >>> a, i = index('a'), index('i')
    >>> X = tensor('X')
    >>> pull_deltas(sp.KroneckerDelta(a, i) * X[i] + sp.KroneckerDelta(a, i) * X[i] ** 2)
    (X[i]**2 + X[i])*KroneckerDelta(a, i)
    """
    if isinstance(e, sp.Sum):
        return sp.Sum(pull_deltas(e.function), *e.limits)
    if isinstance(e, (sp.Add, sp.Mul)):
        d, r = _delta_part(e)
        if d != 1 and r.has(sp.Add):
            return d * (r.func(*[pull_deltas(a) for a in r.args]) if r.args else r)
        return e.func(*[pull_deltas(a) for a in e.args])
    return e


def split_terms(e, limit: int = 6) -> list:
    """``e`` distributed over the sums of terms that carry Kronecker deltas (not into
    denominators or functions); sums keep their limits."""
    if isinstance(e, sp.Add):
        return [t for a in sp.Add.make_args(e) for t in split_terms(a, limit)]
    if isinstance(e, sp.Sum):
        inner = split_terms(e.function, limit)
        if len(inner) == 1:
            return [e]
        return [-sp.Sum(-t, *e.limits) if t.could_extract_minus_sign() else sp.Sum(t, *e.limits) for t in inner]
    if isinstance(e, sp.Mul):
        out = [sp.S.One]
        for f in e.args:
            parts = split_terms(f, limit) if f.has(sp.KroneckerDelta) and not isinstance(f, sp.Pow) else [f]
            out = [sp.Mul(a, b) for a in out for b in parts]
        return out
    return [e]


def _summed(e) -> list:
    """(index, its Sum node) for every sum in ``e`` over a Kronecker delta (the chain rule's
    sums, not the forward's), outermost first."""
    out = []
    for node in sp.preorder_traversal(e):
        if isinstance(node, sp.Sum) and node.function.has(sp.KroneckerDelta):
            out += [(lim[0], node) for lim in node.limits]
    return out


def _result_sums(e) -> set:
    return {lim[0] for s in e.atoms(sp.Sum) for lim in s.limits}


def _affine_delta(s, deltas, used):
    """(δ(x, s·i + s), the value that solves it for ``s``) for a delta on an affine index
    (X[i+k]: derive/windows.py) where ``s`` has coefficient 1; None when there is none."""
    for d in deltas:
        if d in used:
            continue
        for lhs, rhs in (d.args, d.args[::-1]):
            if is_affine(rhs) and not lhs.has(s) and sp.expand(rhs).coeff(s) == 1:
                return d, sp.expand(lhs - (rhs - s))
    return None


def analyse_term(term) -> Term:
    deltas = sorted(term.atoms(sp.KroneckerDelta), key=str)
    affine = any(is_affine(a) for d in deltas for a in d.args)
    result = solve_affine_deltas(term) if affine else eliminate_deltas(term)
    summed = [s for s, _ in _summed(term)]
    solved = {}  # inner sums first, as solve_affine_deltas does
    for s in reversed(summed) if affine else ():
        hit = None if any(s in d.args for d in deltas) else _affine_delta(s, deltas, {h[0] for h in solved.values()})
        if hit:
            solved[s] = hit
    sets, pairs, survives, counted = [], [], [], []
    used = set()
    for s in summed:
        mine = [d for d in deltas if s in d.args and d not in used]
        if len(mine) >= 2:
            a = next(x for x in mine[0].args if x != s)
            b = next(x for x in mine[1].args if x != s)
            pairs.append((s, mine[0], mine[1], sp.KroneckerDelta(a, b)))
            used |= {mine[0], mine[1]}
        elif mine:
            value = next(x for x in mine[0].args if x != s)
            sets.append((s, value, mine[0]))
            used.add(mine[0])
        elif s in solved:
            d, value = solved[s]
            sets.append((s, value, d))
            used.add(d)
        elif s in _result_sums(result):
            survives.append(s)
        else:
            counted.append(s)
    summed_set = set(summed)
    remains = tuple(d for d in deltas if not (set(d.args) & summed_set) and d not in used)
    return Term(term, result, tuple(sets), tuple(pairs), tuple(survives), tuple(counted), remains)


def delta_terms(chain_rule) -> list:
    """The chain rule's terms, positive first, each analysed (:class:`Term`); empty when the
    expression has no Kronecker delta."""
    if not chain_rule.has(sp.KroneckerDelta):
        return []
    terms = split_terms(chain_rule)
    terms = sorted(terms, key=lambda t: t.could_extract_minus_sign())
    return [analyse_term(t) for t in terms]


def delta_note(terms, printer, output: str, out_indices, input_name: str, grad_indices) -> str:
    """The note beside the step where the deltas collapse the sums, per term."""
    p = printer.doprint
    seen_sets = {}
    for t in terms:
        for s, v, d in t.sets:
            seen_sets.setdefault(s, d)
    parts = []
    for n, t in enumerate(terms):
        bits = []
        if t.sets:
            ds = ", ".join(f"${p(d)}$" for _, _, d in t.sets)
            vals = ", ".join(f"${p(s)} = {p(v)}$" + (f" where $0 \\le {p(v)} < {p(_extent(s))}$" if v.is_Add else "")
                             for s, v, _ in t.sets)
            verb = "sets" if len(t.sets) == 1 else "set"
            bits.append(f"{ds} {verb} {vals}")
        for s, d1, d2, d in t.pairs:
            bits.append(f"$\\sum_{{{p(s)}}} {p(d1)} {p(d2)} = {p(d)}$")
        sentence = "; ".join(bits)
        if t.survives:
            lost = [seen_sets.get(s) for s in t.survives]
            if all(x is not None for x in lost):
                why = "it has no " + " or ".join(f"${p(x)}$" for x in lost)
            else:
                why = "no $\\delta$ involves " + " or ".join(f"${p(s)}$" for s in t.survives)
            sums = " and ".join(f"$\\sum_{{{p(s)}}}$" for s in t.survives)
            verb = "survives" if len(t.survives) == 1 else "survive"
            sub = {a: v for a, v, _ in t.sets}
            who = _output_entry(output, out_indices, sub, printer)
            outs = [s for s in t.survives if s in out_indices]
            depends = f": every {who} depends on ${_entry(input_name, grad_indices, printer)}$" if who and outs else ""
            tail = f"{why}, so {sums} {verb}{depends}"
            sentence = f"{sentence}, but {tail}" if sentence else tail
        if t.counted:
            ks = ", ".join(f"$\\sum_{{{p(s)}}}$" for s in t.counted)
            sentence += ("; " if sentence else "") + f"{ks} of a term without its index gives a factor ${' '.join(p(_extent(s)) for s in t.counted)}$"
        for d in t.remains:
            a, b = sorted(d.args, key=lambda x: x.is_Integer or x.name == "_")
            if b.is_Symbol and b.name == "_":  # _ is an axis of size one: a takes no other value
                sentence += ("; " if sentence else "") + f"${p(d)} = 1$: ${p(a)}$ runs over an axis of size one"
                continue
            sentence += ("; " if sentence else "") + f"${p(d)}$ remains (zero unless ${p(a)} = {p(b)}$)"
        if len(terms) > 1:
            sentence = f"{_ORDINALS[n] if n < len(_ORDINALS) else f'term {n + 1}'} term: {sentence}"
        parts.append(sentence)
    return "; ".join(parts)


def _extent(s):
    from deltagrad.derive.spec import extent

    return extent(s)


def _entry(name, indices, printer) -> str:
    if not indices:
        return printer.doprint(sp.Symbol(name))
    return printer.doprint(sp.IndexedBase(name)[tuple(indices)])


def _output_entry(output, out_indices, sub, printer) -> str:
    if not out_indices:
        return ""
    idx = tuple(sub.get(i, i) for i in out_indices)
    return f"${printer.doprint(sp.IndexedBase(output)[idx])}$"


# -- identities behind "through saved values" -----------------------------------------------------
_FUNCTION_NAMES = {"sigmoid": "sigma", "tanh": "tanh", "exp": "exp", "softplus": "softplus", "mish": "mish",
                   "gelu": "GELU", "swish": "swish", "silu": "SiLU", "elu": "ELU", "log": "log", "sqrt": "sqrt"}


def elementwise_identity(d, input_name: str, printer):
    """For an element-wise op of one input, Y = f(X), whose gradient is written through Y:
    (f(x) as LaTeX, f'(x) from the derivative, f'(x) through f). None otherwise.

    >>> from deltagrad.derive.derivation import derive
    >>> from deltagrad.codegen.latex_printer import IndexLatexPrinter
    >>> d = derive("Y[i,j] = 1 / (1 + exp(-X[i,j]))", name="sigmoid")
    >>> elementwise_identity(d, "X", IndexLatexPrinter("G", "Y", ("X",)))
    ('\\\\sigma(x) = \\\\frac{1}{1 + \\\\exp(-x)}', "\\\\sigma'(x) = \\\\frac{\\\\exp(-x)}{(1 + \\\\exp(-x))^{2}}", '\\\\sigma(x) (1 - \\\\sigma(x))')
    """
    spec = d.spec
    if d.statements or len(spec.inputs) != 1 or not spec.out_indices:
        return None
    st = d.steps[input_name]
    entries = spec.rhs.atoms(sp.Indexed)
    if spec.rhs.atoms(sp.Sum) or len(entries) != 1:
        return None
    (entry,) = entries
    if tuple(entry.indices) != tuple(spec.out_indices):
        return None
    g_entry = sp.IndexedBase(d.grad_name, real=True)[st.indices]
    x_entry = sp.IndexedBase(input_name, real=True)[st.indices]
    y_entry = sp.IndexedBase(spec.output, real=True)[st.indices]
    if st.final == st.simplified or not st.final.has(y_entry) or st.final.has(x_entry):
        return None
    h, g = _without(st.simplified, g_entry), _without(st.final, g_entry)
    if h is None or g is None:
        return None
    x = sp.Symbol("x", real=True)
    fname = _FUNCTION_NAMES.get(spec.name, "f")
    f = sp.Function(fname)(x)
    fx = spec.rhs.xreplace({entry: x})
    hx = h.xreplace({x_entry: x})
    gx = g.xreplace({y_entry: f})
    if hx.free_symbols - {x} or gx.free_symbols - {x}:
        return None
    pf = printer.doprint
    head = pf(f)
    prime = head.replace("(x)", "'(x)", 1)
    return f"{head} = {pf(fx)}", f"{prime} = {pf(hx)}", pf(gx)


def _without(product, factor):
    """``product`` with one factor ``factor`` taken out, or None when it is not a factor."""
    args = list(sp.Mul.make_args(product))
    if factor not in args:
        return None
    args.remove(factor)
    rest = sp.Mul(*args)
    return None if rest.has(factor) else rest


def definitions_used(d, st, printer) -> list:
    """``name_ab = …`` for each saved value the step through saved values brings in (the
    output at the gradient's indices, named reductions)."""
    new = _names(st.final) - _names(st.simplified)
    out = []
    spec = d.spec
    by_name = {r.name: r for r in d.values.reductions}
    for name in sorted(new, key=lambda n: (n != spec.output, n)):
        if name == spec.output and not d.statements:
            entry = _first_entry(st.final, name)
            if entry is None:
                continue
            sub = dict(zip(spec.out_indices, entry.indices)) if spec.out_indices else {}
            out.append(f"{printer.doprint(entry)} = {printer.doprint(_rename_bound(spec.rhs, sub))}")
        elif name in by_name:
            r = by_name[name]
            entry = _first_entry(st.final, name)
            sub = dict(zip(r.indices, entry.indices)) if entry is not None and r.indices else {}
            lhs = printer.doprint(entry) if entry is not None else printer.doprint(sp.Symbol(name))
            out.append(f"{lhs} = {printer.doprint(_rename_bound(r.expr, sub))}")
    return out


def _rename_bound(expr, sub):
    """``expr`` with free indices replaced by ``sub``; bound indices that would clash are renamed."""
    clash = {lim[0] for s in expr.atoms(sp.Sum) for lim in s.limits} & set(sub.values())
    if clash:
        from deltagrad.derive.spec import index

        taken = {s.name for s in expr.free_symbols} | {str(v) for v in sub.values()}
        fresh = {}
        for c in clash:
            for cand in "klmnpqrsuvw":
                if cand not in taken:
                    taken.add(cand)
                    fresh[c] = index(cand)
                    break
        expr = expr.xreplace(fresh)
    return expr.xreplace(sub)


def _names(e) -> set:
    return {x.base.label.name if isinstance(x, sp.Indexed) else x.name for x in e.atoms(sp.Indexed, sp.Symbol)}


def _first_entry(e, name):
    found = sorted((x for x in e.atoms(sp.Indexed) if x.base.label.name == name), key=str)
    if found:
        return found[0]
    if any(s.name == name for s in e.atoms(sp.Symbol)):
        return sp.Symbol(name, real=True)
    return None


# -- softmax, where it appears ---------------------------------------------------------------------
def is_softmax(rhs) -> bool:
    """``exp(u)/Σ_k exp(u')`` with u' the same as u up to the summed index."""
    if not isinstance(rhs, sp.Mul):
        return False
    exps = [f for f in rhs.args if isinstance(f, sp.exp)]
    dens = [f.base for f in rhs.args if isinstance(f, sp.Pow) and f.exp == -1 and isinstance(f.base, sp.Sum)]
    if len(exps) != 1 or len(dens) != 1 or len(rhs.args) != 2:
        return False
    body = dens[0].function
    k = dens[0].limits[0][0]
    if not isinstance(body, sp.exp):
        return False
    return any(body.args[0].xreplace({k: s}) == exps[0].args[0] for s in exps[0].free_symbols)


def softmax_ratio(expr, d):
    """(ratio, softmax of which tensor) for a factor pair ``exp(X_ab - row_max_a) /
    shifted_exp_sum_a`` (or ``exp(X_ab)/Σ_k exp(X_ak)``) inside ``expr``, else None."""
    by_name = {r.name: r for r in d.values.reductions}
    for m in sorted(expr.atoms(sp.Mul), key=str):
        exps = [f for f in m.args if isinstance(f, sp.exp)]
        for f in m.args:
            if not (isinstance(f, sp.Pow) and f.exp == -1):
                continue
            den = f.base
            total = None
            if isinstance(den, sp.Indexed) and den.base.label.name in by_name:
                r = by_name[den.base.label.name]
                total = r.expr.xreplace(dict(zip(r.indices, den.indices)))
            elif isinstance(den, sp.Sum):
                total = den
            if not isinstance(total, sp.Sum) or not isinstance(total.function, sp.exp):
                continue
            k = total.limits[0][0]
            for e in exps:
                for s in e.free_symbols:
                    if total.function.args[0].xreplace({k: s}) == e.args[0]:
                        tensors = [x.base.label.name for x in e.atoms(sp.Indexed) if x.base.label.name not in by_name
                                   and x.base.label.name not in {m_.name for m_ in d.values.maxima}]
                        if tensors:
                            return e * f, tensors[0], e.atoms(sp.Indexed)
    return None


def row_sum_of_input(expr, d):
    """A sum ``Σ_j T_aj`` of a bare input over one of its indices, or None."""
    inputs = set(d.inputs)
    for s in expr.atoms(sp.Sum):
        if len(s.limits) == 1 and isinstance(s.function, sp.Indexed) and s.function.base.label.name in inputs:
            return s
    return None


# -- from index sums to matrix products ---------------------------------------------------------------
def _matrix_name(entry, printer):
    """LaTeX of the tensor of an Indexed entry (the gradient gets its ∇)."""
    label = entry.base.label.name
    text = printer.grad() if label == printer.grad_name else printer.doprint(sp.Symbol(label))
    return text


def _t(text):
    return (f"{{{text}}}" if "^" in text else text) + "^{\\top}"


def sum_bridges(expr, printer) -> list:
    """``\\sum_j Y^∇_{aj} W_{bj} = (Y^∇ W^⊤)_{ab}`` for each sum in ``expr`` that is a matrix
    product, a row sum or a column sum of plain entries."""
    out = []
    for s in sorted(expr.atoms(sp.Sum), key=sp.default_sort_key):
        if len(s.limits) != 1 or s.function.atoms(sp.Sum):
            continue
        k = s.limits[0][0]
        factors = list(sp.Mul.make_args(s.function))
        if not all(isinstance(f, sp.Indexed) and len(f.indices) <= 2 for f in factors):
            continue
        text = None
        if all(len(f.indices) == 2 and f.indices == factors[0].indices for f in factors) and k in factors[0].indices:
            pos = factors[0].indices.index(k)
            other = factors[0].indices[1 - pos]
            names = " \\odot ".join(_matrix_name(f, printer) for f in factors)
            inner = f"({names})" if len(factors) > 1 else names
            if pos == 1:
                text = f"({inner}\\mathbf{{1}})_{{{other}}}"
            else:
                text = f"({_t(inner)}\\mathbf{{1}})_{{{other}}}"
        elif len(factors) == 2 and all(k in f.indices and list(f.indices).count(k) == 1 for f in factors):
            rest = [i for f in factors for i in f.indices if i != k]
            if len(set(rest)) == len(rest):  # distinct free indices: a matrix product, not its diagonal
                text = _product_bridge(factors, k, printer)
        if text is not None:
            out.append(f"{printer.doprint(s)} = {text}")
    return out


def _product_bridge(factors, k, printer):
    A, B = factors
    # the factor whose free index comes first alphabetically goes first (a before b)
    def free(f):
        rest = [i for i in f.indices if i != k]
        return rest[0] if rest else None

    if free(A) is None and free(B) is None:
        return None
    if free(A) is None or (free(B) is not None and str(free(B)) < str(free(A))):
        A, B = B, A
    if free(B) is None:  # matrix times vector: Σ_k A_ak v_k = (A v)_a
        a_text = _matrix_name(A, printer)
        if A.indices[0] == k:
            a_text = _t(a_text)
        return f"({a_text} {_matrix_name(B, printer)})_{{{free(A)}}}"
    a_text, b_text = _matrix_name(A, printer), _matrix_name(B, printer)
    if len(A.indices) == 2 and A.indices[0] == k:
        a_text = _t(a_text)
    if len(B.indices) == 2 and B.indices[1] == k:
        b_text = _t(b_text)
    return f"({a_text} {b_text})_{{{free(A)}{free(B)}}}"


# -- named subexpressions ------------------------------------------------------------------------------
_SHORT_NAMES = ("u", "v", "w", "r", "q", "s", "h", "g", "p")


def _candidates(e, grad_name="G"):
    """Subexpressions worth a name: functions, sums, roots and powers of something that is not
    a single entry (never the whole expression, nor a sum the chain rule's deltas collapse)."""
    for node in sp.preorder_traversal(e):
        if node is e or node == e or isinstance(node, (sp.Indexed, sp.Symbol, sp.Number, sp.KroneckerDelta)) or not node.args:
            continue
        if node.has(sp.KroneckerDelta) or any(x.base.label.name == grad_name for x in node.atoms(sp.Indexed)):
            continue
        if isinstance(node, sp.Pow) and (isinstance(node.base, (sp.Indexed, sp.Symbol)) or node.exp == -1):
            continue
        if isinstance(node, (sp.Function, sp.Pow, sp.Sum)) and node.atoms(sp.Indexed):
            yield node


def abbreviate(exprs, too_wide, printer, taken, limit: int = 4):
    """Give the largest repeated subexpressions short names until no expression is
    ``too_wide`` (a predicate on an expression). Returns the new expressions and the
    definitions ``(entry, subexpression)`` in the order the names were made."""
    from deltagrad.derive.lower import canonical

    exprs = list(exprs)
    defs = []
    names = [n for n in _SHORT_NAMES if n not in taken]
    for _ in range(limit):
        wide = [e for e in exprs if too_wide(e)]
        if not wide or not names:
            break
        counts, widths, first = {}, {}, {}
        for e in wide:
            for node in _candidates(e, printer.grad_name):
                key = canonical(node)[0]
                counts[key] = counts.get(key, 0) + 1
                if key not in widths:
                    from deltagrad.codegen.latex_layout import width

                    widths[key] = width(printer.doprint(node))
                    first[key] = node
        best = max((k for k in counts if widths[k] >= 4.0 and (counts[k] >= 2 or widths[k] >= 9.0)),
                   key=lambda k: (counts[k] * widths[k], widths[k]), default=None)
        if best is None:
            break
        name = names.pop(0)
        base = sp.IndexedBase(name, real=True)
        # the roles of the free indices, in alphabetical order of their names where first seen
        roles = sorted(range(len(canonical(first[best])[1])), key=lambda r: str(canonical(first[best])[1][r]))

        def named(node, base=base, name=name, roles=roles):
            free = canonical(node)[1]
            return base[tuple(free[r] for r in roles)] if free else sp.Symbol(name, real=True)

        def matches(node, best=best):
            return not isinstance(node, (sp.Symbol, sp.Indexed, sp.Number)) and bool(node.args) and canonical(node)[0] == best

        exprs = [e.replace(matches, named) for e in exprs]
        defs.append((named(first[best]), first[best]))
    return exprs, defs
