"""derive(): spec → chain rule → delta elimination → simplification → saved values → programs.

The result, :class:`Derivation`, is plain data: the spec, every step per input, and the forward
and backward array programs. Printing it (Python, LaTeX, text) is ``codegen``'s job; the
conveniences that do it from the object (``.source()``, ``.latex()``, ``.compile()``) are added
one layer up, in :mod:`deltagrad.api`.

>>> d = derive("Y[i,j] = 1 / (1 + exp(-X[i,j]))")
>>> d.grads['X']
(1 - Y[a, b])*G[a, b]*Y[a, b]
>>> d.backward.results
('dX',)
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import sympy as sp

from deltagrad.derive.array_program import Assign, Attr, Program, Subscript, Var, variables
from deltagrad.derive.budget import BudgetExceeded, time_budget
from deltagrad.derive.chain_rule import chain_rule, grad_output_name
from deltagrad.derive.defined import as_defined, check_forward_defined, check_gradient_defined
from deltagrad.derive.ellipsis import has_ellipsis, with_ellipsis_gradients
from deltagrad.derive.centred import centred_axes, zero_centred_sums
from deltagrad.derive.eliminate import eliminate_deltas, substitute_gather_deltas
from deltagrad.derive.from_sympy import equation_from_sympy, spec_from_sympy
from deltagrad.derive.lower import Lowering
from deltagrad.derive.names import NAMES, check_op_name, normal_name
from deltagrad.derive.parse import parse_spec, parse_statements, spec_of_equation
from deltagrad.derive.program import ProgramSpec, build_program, program_values, reverse_mode, split_at_function, split_nested
from deltagrad.derive.forward_values import ForwardValues, Maximum, computation_order, forward_values, inline_reductions, max_node
from deltagrad.derive.saved_values import adds_poles, agree, rewrite_through_forward, use_output, use_reductions
from deltagrad.derive.stabilize import shifted, stabilize
from deltagrad.derive.windows import derive_windowed, has_affine
from deltagrad.derive.simplify import collect_linear, cost, merge_sums, simplify_index_expr
from deltagrad.derive.size_one import gradient_target, on_unit_axes, refuse_in_program
from deltagrad.derive.spec import UNIT, Spec, extent, index, index_aliases, input_pattern, is_gather
from deltagrad.errors import SpecError


@dataclass(frozen=True)
class GradientSteps:
    """Every step of one input's backward, kept for the write-up.

    ``chain_rule``: Σ_out G·∂Y/∂X with the partial derivative written with Kronecker deltas;
    ``eliminated``: after the deltas collapsed the sums; ``simplified``: after simplification;
    ``final``: written through saved forward values (the output, named reductions).
    """

    input: str
    indices: tuple
    partial: sp.Expr
    chain_rule: sp.Expr
    eliminated: sp.Expr
    simplified: sp.Expr
    final: sp.Expr


@dataclass(frozen=True)
class Signature:
    """What the generated ``forward`` takes and checks.

    ``patterns``: input name → one index name or int literal per axis;
    ``size_kwargs``: index names whose sizes are keyword arguments; ``sizes``: the index
    names whose sizes ``check_shapes`` returns, in order.
    """

    patterns: dict
    size_kwargs: tuple
    sizes: tuple
    aliases: dict


@dataclass(frozen=True)
class Derivation:
    """A derived op: spec, steps per input, and the forward/backward array programs (plain data)."""

    spec: Spec
    grad_name: str
    steps: dict
    values: ForwardValues
    signature: Signature
    forward: Program
    backward: Program
    saved: tuple
    #: a program's steps, each a :class:`Spec` of its own (empty for a one-line spec)
    statements: tuple = ()

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def inputs(self) -> tuple:
        """Input names, in argument order."""
        return tuple(i.name for i in self.spec.inputs)

    @property
    def output(self) -> str:
        return self.spec.output

    @property
    def grads(self) -> dict:
        """Input name → its backward in index notation (the final, simplified form)."""
        return {n: s.final for n, s in self.steps.items()}


def _mentions(expr, name: str) -> bool:
    """True when ``expr`` uses the tensor or scalar called ``name``."""
    return any((e.base.label.name if isinstance(e, sp.Indexed) else e.name) == name
               for e in expr.atoms(sp.Indexed, sp.Symbol))


#: The default time budget of one derivation, in seconds (``derive(..., budget=...)``).
DERIVE_SECONDS = 10.0


def derive(spec, *, name: str | None = None, inputs=None, budget: float | None = DERIVE_SECONDS,
           functions=()) -> Derivation:
    """Derive the backward of every input of ``spec``.

    ``spec`` is text such as ``"Y[i,j] = X[i,j] / Z[i,j]"``, a ``(lhs, rhs)`` pair of SymPy
    objects, or a checked :class:`Spec`. ``inputs`` fixes the argument order. A derivation that
    takes longer than ``budget`` seconds (None: no limit) is refused with a :class:`SpecError`.
    ``functions`` names generic functions the spec may call (``["f"]``: ``f(X[i,j])``, whose
    derivative is written ``f_prime(X[a,b])``).

    >>> derive("Y[i,j] = X[i,j] / Z[i,j]").grads
    {'X': G[a, b]/Z[a, b], 'Z': -G[a, b]*Y[a, b]/Z[a, b]}
    """
    try:
        with time_budget(budget) as mine:
            return _derive(spec, name, inputs, functions)
    except BudgetExceeded as err:
        if err.budget is not mine:
            raise
        raise SpecError(f"deriving this spec took longer than its budget of {budget:g} s; "
                        "split it into simpler steps or raise the budget (--budget)") from None


def _derive(spec, name, inputs, functions=()) -> Derivation:
    if name is not None:
        name = check_op_name(name)
    if inputs is not None and not isinstance(inputs, str):
        inputs = [normal_name(n) if isinstance(n, str) else n for n in inputs]
    if isinstance(spec, str):
        equations = parse_statements(spec, functions)
        if len(equations) > 1:
            if any(eq.groups for eq in equations):
                raise SpecError("merged output axes (Y[b,(c,i,j)]) work in one-line specs, not yet in a program "
                                "of named steps")
            return _derive_program(build_program(equations, name=name, inputs=inputs, text=spec))
        spec = spec_of_equation(equations[0], spec, name=name, inputs=inputs)  # parsed once, above
    elif isinstance(spec, tuple) and len(spec) == 2:
        spec = spec_from_sympy(*spec, name=name, inputs=inputs)
    elif isinstance(spec, list) and spec and all(isinstance(s, tuple) and len(s) == 2 for s in spec):
        equations = [equation_from_sympy(lhs, rhs) for lhs, rhs in spec]
        if len(equations) > 1:
            text = "; ".join(f"{lhs} = {rhs}" for lhs, rhs in spec)
            return _derive_program(build_program(equations, name=name, inputs=inputs, text=text))
        spec = spec_from_sympy(*spec[0], name=name, inputs=inputs)
    elif not isinstance(spec, Spec):
        raise SpecError("a spec is text, a (lhs, rhs) pair of SymPy objects, a list of such pairs (a program) "
                        f"or a Spec, not {type(spec).__name__}")
    if name and spec.name != name:
        spec = replace(spec, name=name)
    if has_affine(spec):  # X[b,c,i+p,j+q]: derived over windowed views (derive/windows.py)
        return derive_windowed(spec, lambda inner: _derive(inner, None, None))
    # indices that run over the same axis share one size: write every extent as its class's
    aliases = index_aliases(spec)
    spec = replace(spec, rhs=spec.rhs.xreplace({extent(index(n)): extent(index(r)) for n, r in aliases.items() if n != r}))
    steps = split_nested(spec)  # a variance or a layer norm: derived through its centred values
    if steps is None:
        steps = split_at_function(spec)  # GELU's tanh form: derived through t = tanh(...)
    if steps is not None:
        d = _derive_program(build_program(steps, name=spec.name, inputs=[i.name for i in spec.inputs], text=spec.text))
        return replace(d, spec=replace(d.spec, out_groups=spec.out_groups)) if spec.out_groups else d
    check_forward_defined(spec)
    grad_name = grad_output_name(spec)
    values = forward_values(spec)
    steps = {}
    for inp in differentiable(spec):
        rule = chain_rule(spec, inp.name)
        eliminated = substitute_gather_deltas(eliminate_deltas(rule.expr))
        check_gradient_defined(eliminated, inp.name)
        simplified = simplify_index_expr(eliminated)
        simplified = min(merge_sums(simplified), simplified, key=cost)
        if simplified != eliminated and not as_defined(eliminated, simplified, spec, values, inp.name, rule.indices,
                                                       grad_name):
            simplified = eliminated  # SymPy's form is less defined (NaN for negative X, inf at P = 5)
        final = rewrite_through_forward(simplified, spec, values, inp.name, rule.indices, grad_name)
        steps[inp.name] = GradientSteps(inp.name, rule.indices, rule.partial, rule.expr, eliminated, simplified, final)
    steps = on_unit_axes(spec, steps)
    stable_values, stable = stabilize(spec, values, {n: s.final for n, s in steps.items()})
    if stable_values is not values:
        both = replace(stable_values, reductions=values.reductions + stable_values.reductions)
        for n, st in steps.items():
            if stable[n] != st.final and agree(st.final, stable[n], spec, both, n, st.indices, grad_name):
                steps[n] = replace(st, final=stable[n])
        values = stable_values
    if has_ellipsis(spec):
        steps = with_ellipsis_gradients(steps, spec)
    signature = _signature(spec)
    forward, backward, saved = _programs(spec, steps, values, grad_name, signature)
    return Derivation(spec, grad_name, steps, values, signature, forward, backward, saved)


def _derive_program(prog: ProgramSpec) -> Derivation:
    """A program's derivation: reverse mode over its steps (:mod:`deltagrad.derive.program`)."""
    refuse_in_program(prog.composite)
    if any(has_affine(st) for st in prog.steps):
        raise SpecError("index arithmetic (X[i+k]) works in one-line specs, not yet in a program of named steps")
    grad_name = grad_output_name(prog.composite)
    values, per_step = program_values(prog)
    grads, renamed = reverse_mode(prog, per_step, grad_name)
    spec = replace(prog.composite, extra_aliases=prog.composite.extra_aliases + tuple(renamed))
    to_rep = {extent(index(n)): extent(index(r)) for n, r in index_aliases(spec).items() if n != r}
    spec = replace(spec, rhs=spec.rhs.xreplace(to_rep))
    steps = {}
    centred = centred_axes(prog.steps, to_rep)
    for inp in differentiable(spec):
        indices, composed, partial = grads[inp.name]
        composed = composed.xreplace(to_rep)
        eliminated = zero_centred_sums(substitute_gather_deltas(eliminate_deltas(composed)), centred)
        simplified = min(simplify_index_expr(eliminated), collect_linear(eliminated, grad_name), key=cost)
        simplified = min(merge_sums(simplified), simplified, key=cost)
        final = _through_last_step(simplified, prog, per_step[-1], spec, values, inp.name, indices, grad_name)
        stable = shifted(final, values)
        if stable != final and agree(final, stable, spec, values, inp.name, indices, grad_name):
            final = stable
        steps[inp.name] = GradientSteps(inp.name, indices, partial, composed, eliminated, simplified, final)
    if has_ellipsis(spec):
        steps = with_ellipsis_gradients(steps, spec)
    signature = _signature(spec)
    forward, backward, saved = _programs(spec, steps, values, grad_name, signature)
    return Derivation(spec, grad_name, steps, values, signature, forward, backward, saved, statements=prog.steps)


def _through_last_step(expr, prog: ProgramSpec, last_values, spec, values, input_name, indices, grad_name):
    """``expr`` written through the program's output where that is cheaper (confirmed numerically)."""
    last = prog.steps[-1]
    candidate = use_output(use_reductions(expr, last_values), last, last_values)
    if (candidate != expr and cost(candidate) < cost(expr) and not adds_poles(candidate, expr)
            and agree(expr, candidate, spec, values, input_name, indices, grad_name)):
        return candidate
    return expr


def differentiable(spec: Spec) -> list:
    """The inputs that get a gradient: all but the integer ones (``t`` in ``X[i, t[i]]``).

    >>> [i.name for i in differentiable(parse_spec("Y[i] = X[i, t[i]]"))]
    ['X']
    """
    return [inp for inp in spec.inputs if not inp.integer]


def _signature(spec: Spec) -> Signature:
    aliases = index_aliases(spec)
    patterns = {}
    for inp in spec.inputs:
        # a gathered axis (X[i, t[i]]) takes any size: it is checked as a literal 0 is (size > 0)
        patterns[inp.name] = tuple("_" if i == UNIT else int(i) if i.is_Integer else 0 if is_gather(i)
                                   else aliases[i.name]
                                   for i in input_pattern(spec, inp.name))
    order = []
    for pat in patterns.values():
        order += [i for i in pat if isinstance(i, str) and i != "_" and i not in order]
    order += [aliases[i.name] for i in spec.out_indices if isinstance(i, sp.Symbol) and aliases[i.name] not in order]
    return Signature(patterns, tuple(i.name for i in spec.size_indices), tuple(order), aliases)


def _programs(spec: Spec, steps: dict, values: ForwardValues, grad_name: str, signature: Signature):
    names = {inp.name for inp in spec.inputs} | {spec.output}
    sizes = {extent(index(n)): NAMES.extent(rep) for n, rep in signature.aliases.items()}
    size_statements = []
    grad_sizes = {}  # input name -> sizes of its gradient's indices
    for inp in differentiable(spec):
        own = {}
        for axis, (idx, ix) in enumerate(zip(steps[inp.name].indices, signature.patterns[inp.name])):
            if isinstance(ix, int) or ix == "_":
                own[extent(idx)] = NAMES.axis_size(inp.name, axis)
                size_statements.append(Assign(own[extent(idx)], Subscript(Attr(Var(inp.name), "shape"), (axis,))))
            else:
                own[extent(idx)] = NAMES.extent(ix)
        grad_sizes[inp.name] = own
    all_sizes = set(sizes.values()) | {v for own in grad_sizes.values() for v in own.values()}
    reserved = (names | all_sizes | {NAMES.gradient(n) for n in names} | NAMES.reserved_in_code()
                | {r.name for r in values.reductions} | {m.name for m in values.maxima})

    # backward first: it decides which forward values are saved
    back = Lowering(names={grad_name: NAMES.grad_output}, sizes=sizes, dtype_of=NAMES.grad_output, reserved=reserved,
                    count_in=[s.final for s in steps.values()])
    results = []
    for inp in spec.inputs:
        if inp.integer:
            results.append("None")  # an integer input gets no gradient, as in PyTorch
            continue
        step = steps[inp.name]
        back.order = list(step.indices)
        back.sizes = {**sizes, **grad_sizes[inp.name]}
        back.assign(NAMES.gradient(inp.name), back.lower_output(step.final, gradient_target(spec, inp.name, step.indices)))
        results.append(NAMES.gradient(inp.name))
    read = set()
    for s in back.statements:
        read |= variables(s.value)

    used_reductions = [r for r in values.reductions if r.name in read or r.name in values.statements]
    rhs = inline_reductions(values.rhs, [r for r in values.reductions if r not in used_reductions])
    unused = [r for r in values.reductions if r not in used_reductions]
    bodies = {r.name: inline_reductions(r.expr, unused) for r in used_reductions}
    fwd = Lowering(sizes=sizes, dtype_of=spec.inputs[0].name, order=spec.free_indices, reserved=reserved | read,
                   count_in=[*bodies.values(), rhs])
    fwd.statements.extend(s for s in size_statements if s.target in read)
    computed = [rhs, *(r.expr for r in used_reductions)]
    maxima = [m for m in values.maxima if m.name in read or any(_mentions(e, m.name) for e in computed)]
    for item in computation_order(values, maxima, used_reductions):
        if isinstance(item, Maximum):
            fwd.assign(item.name, max_node(item))
        else:
            fwd.assign(item.name, fwd.lower(bodies[item.name], item.indices))
    fwd.order = list(spec.free_indices)
    fwd.assign(spec.output, fwd.lower_output(rhs, spec.out_indices))
    ranks = {i.name: i.rank for i in spec.inputs}
    ranks.update({NAMES.gradient(i.name): i.rank for i in spec.inputs})
    ranks.update({r.name: len(r.indices) for r in values.reductions})
    ranks.update({m.name: len(m.indices) for m in values.maxima})
    ranks.update({v: 0 for v in all_sizes})
    ranks.update({spec.output: len(spec.out_indices), NAMES.grad_output: len(spec.out_indices)})
    forward = Program(tuple(fwd.statements), (spec.output,), {**ranks, **fwd.ranks})
    backward = Program(tuple(back.statements), tuple(results), {**ranks, **back.ranks})
    saved = tuple(v for v in [*(i.name for i in spec.inputs), *(m.name for m in values.maxima),
                              *(r.name for r in used_reductions), spec.output,
                              *sorted(all_sizes)] if v in read)
    return forward, backward, saved
