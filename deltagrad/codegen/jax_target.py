"""Render a derivation as a JAX function built on ``jax.custom_vjp`` whose backward is the
derived one.

The array programs print with ``jnp`` for ``xp`` (:class:`JaxPrinter`): ``jax.numpy`` follows
the array API, so the calls are those of the NumPy op. The layout is the template
``templates/jax_vjp.py.j2``: a public function checks shapes and passes the sizes the rule needs
as static (``nondiff_argnums``) arguments to the ``custom_vjp`` function, whose ``fwd`` returns the
output and the residuals (the values the backward reads) and whose ``bwd`` is the derived
backward. JAX differentiates ``fwd`` and ``bwd`` themselves for higher orders (``jax.hessian``,
``check_grads(order=2, modes=["rev"])``); it gives an integer input a ``float0`` zero cotangent
whatever ``bwd`` returns for it.

This module never imports JAX: only the code it generates does.

>>> from deltagrad.derive.derivation import derive
>>> print(jax_source(derive("Y[i,j] = X[i,j] / Sum(X[i,k], k)", name="normalize")))  # doctest: +ELLIPSIS
def normalize(X):
    \"\"\"The op normalize: forward from its spec, backward derived by deltagrad.
...
    \"\"\"
    check_shapes("Normalize", ("i", "j"), {"X": (X, ("i", "j"))})
    return _normalize(X)
<BLANKLINE>
<BLANKLINE>
@jax.custom_vjp
def _normalize(X):
    return _normalize_fwd(X)[0]
<BLANKLINE>
<BLANKLINE>
def _normalize_fwd(X):
    row_sum = jnp.sum(X, axis=1)
    Y = X / row_sum[:, None]
    return Y, (row_sum, Y)
<BLANKLINE>
<BLANKLINE>
def _normalize_bwd(residuals, goutput):
    row_sum, Y = residuals
    dX = (goutput - jnp.sum(goutput * Y, axis=1)[:, None]) / row_sum[:, None]
    return (dX,)
<BLANKLINE>
<BLANKLINE>
_normalize.defvjp(_normalize_fwd, _normalize_bwd)
<BLANKLINE>
"""

from __future__ import annotations

from deltagrad.codegen.op_class import environment, header, op_context
from deltagrad.codegen.python_printer import _PREC, PythonPrinter, backward_source
from deltagrad.codegen.targets import assignments, build, framework_plan, function_name, require, shared_context

#: the batch helpers a framework op with ``...`` imports (its function flattens and restores)
BATCH_IMPORTS = ", flatten_batch, unflatten_batch"
HEADER = "import jax\nimport jax.numpy as jnp\n\nfrom deltagrad.op_base import check_shapes\n"


def jax_module_source(derivation, summary: str | None = None) -> str:
    """The op as a module of its own, with the imports it uses (``partial`` only where sizes are
    static arguments)."""
    source = jax_source(derivation, summary)
    head = ("from functools import partial\n\n" if "@partial(" in source else "") + header(derivation, "", HEADER, BATCH_IMPORTS)
    if "jax.scipy.special." in source:
        head = head.replace("import jax\n", "import jax\nimport jax.scipy.special\n")
    return head + "\n\n" + source


class JaxPrinter(PythonPrinter):
    """Python source with ``jnp`` as the array namespace.

    >>> from deltagrad.derive.array_program import Call, Var
    >>> JaxPrinter().visit(Call('sum', (Var('X'),), (('axis', 1),)))
    'jnp.sum(X, axis=1)'
    """

    what = "print for jax"

    def visit_Helper(self, node):
        """``scatter_add`` as ``.at[].add`` into zeros; ``put_along`` as a ``where``."""
        index, values, size = (self.visit(a) for a in node.args)
        # an operand that is a product or a sum is parenthesised before .shape or [..., None]
        index_, values_ = (self.wrap(a, _PREC["atom"], False) for a in node.args[:2])
        if node.fn == "scatter_add":
            return f"jnp.zeros(({size}, *{values_}.shape[1:]), {values_}.dtype).at[{index}].add({values})"
        return f"jnp.where({index_}[..., None] == jnp.arange({size}), {values_}[..., None], 0)"

    #: calls outside ``jax.numpy``
    modules = {"erf": "jax.scipy.special.erf", "erfc": "jax.scipy.special.erfc", "sigmoid": "jax.nn.sigmoid"}

    def visit_Call(self, node):
        args = [self.visit(a) for a in node.args] + [f"{k}={self.visit(v)}" for k, v in node.kwargs]
        return f"{self.modules.get(node.fn, 'jnp.' + node.fn)}({', '.join(args)})"


def jax_context(derivation, summary: str | None = None) -> dict:
    """The plain data ``jax_vjp.py.j2`` renders."""
    op = op_context(derivation, summary)
    plan = framework_plan(derivation)
    printer = JaxPrinter()
    shapes = op["shapes"]
    targets = [t for t in (shapes["targets"] if shapes else []) if t != "_"]
    static = list(dict.fromkeys(targets + [st.target for st in plan.size_statements]))
    name = function_name(derivation)
    return {
        "function": name,
        "private": f"_{name}",
        **shared_context(derivation, op, plan),
        "size_lines": assignments(printer, plan.size_statements),
        "static": static,
        "forward_lines": assignments(printer, plan.body),
        "residuals": plan.saved_arrays,
        "backward": assignments(printer, plan.backward),
        "results": plan.results,
    }


def jax_source(derivation, summary: str | None = None) -> str:
    """The source of the JAX function and its ``custom_vjp`` rule for ``derivation``."""
    return environment().get_template("jax_vjp.py.j2").render(op=jax_context(derivation, summary))


def jax_backward_source(derivation, input_name: str | None = None) -> str:
    """The backward's JAX lines that compute one input's gradient (all when None)."""
    return backward_source(derivation, input_name, JaxPrinter())


def compile_jax(derivation, functions: dict | None = None):
    """The op as a function ``f(*inputs, **sizes)`` built on ``jax.custom_vjp``; ``f.source``
    is the generated module."""
    require("jax")
    source = jax_module_source(derivation)
    namespace = build(source, f"jax op {derivation.name}", functions)
    fn = namespace[function_name(derivation)]
    fn.source = source
    fn.derivation = derivation
    return fn
