"""Render a derivation as a ``torch.autograd.Function`` whose backward is the derived one.

The array programs are printed in PyTorch's own calls by :class:`TorchPrinter` (``torch.sum(x,
dim=1)``, ``torch.amax``, ``torch.eye(n, dtype=..., device=...)``); the layout is the template
``templates/torch_function.py.j2``. The backward is written in differentiable torch ops, so a
double backward (``create_graph=True``, ``gradgradcheck``, Hessian-vector products) runs through
it; the forward values it reads that are neither input nor output are recomputed from the inputs
when grad mode is on in the backward, since saved intermediates carry no graph.

This module never imports torch: only the code it generates does.

>>> from deltagrad.derive.derivation import derive
>>> print(torch_source(derive("Y[i,j] = X[i,j] / Z[i,j]", name="divide")))  # doctest: +ELLIPSIS
class DivideFunction(torch.autograd.Function):
    \"\"\"The ``torch.autograd.Function`` of :func:`divide`; its backward is derived by deltagrad.\"\"\"
<BLANKLINE>
    @staticmethod
    def forward(ctx, X, Z):
        check_shapes("Divide", ("i", "j"), {"X": (X, ("i", "j")), "Z": (Z, ("i", "j"))})
        Y = X / Z
        ctx.save_for_backward(Z, Y)
        return Y
<BLANKLINE>
    @staticmethod
    def backward(ctx, goutput):
        Z, Y = ctx.saved_tensors
        dX = goutput / Z if ctx.needs_input_grad[0] else None
        dZ = -goutput * Y / Z if ctx.needs_input_grad[1] else None
        return dX, dZ
...
"""

from __future__ import annotations

from deltagrad.codegen.op_class import class_name, environment, header, op_context
from deltagrad.codegen.python_printer import _PREC, PythonPrinter, backward_source
from deltagrad.codegen.targets import assignments, build, framework_plan, function_name, require, shared_context
from deltagrad.derive.array_program import Attr, Const

#: the batch helpers a framework op with ``...`` imports (its function flattens and restores)
BATCH_IMPORTS = ", flatten_batch, unflatten_batch"
HEADER = "import torch\n\nfrom deltagrad.op_base import check_shapes\n"


class TorchPrinter(PythonPrinter):
    """Python source in PyTorch's calls: the array-API names and keywords of the IR mapped to
    torch's (``axis`` → ``dim``, ``max`` → ``amax``, ``tensordot(axes=)`` → ``dims=``).

    >>> from deltagrad.derive.array_program import Call, Var
    >>> TorchPrinter().visit(Call('sum', (Var('X'),), (('axis', (0, 1)),)))
    'torch.sum(X, dim=(0, 1))'
    >>> TorchPrinter().visit(Call('maximum', (Const(0), Var('X'))))
    'torch.clamp(X, min=0)'
    """

    what = "print for torch"
    renames = {"max": "amax", "min": "amin", "permute_dims": "permute"}
    keywords = {"axis": "dim", "axes": "dims"}

    def visit_Call(self, node):
        special = getattr(self, "call_" + node.fn.replace(".", "_"), None)
        if special is not None:
            return special(node)
        return self.call(self.renames.get(node.fn, node.fn), node.args,
                         [(self.keywords.get(k, k), v) for k, v in node.kwargs])

    def call(self, fn, args, kwargs=()):
        text = [self.visit(a) for a in args] + [f"{k}={self.visit(v)}" for k, v in kwargs]
        return f"torch.{fn}({', '.join(text)})"

    def on_device(self, fn, node):
        """``torch.fn`` (a new tensor) on the device of the array whose dtype it takes."""
        kwargs = list(node.kwargs)
        for _, v in node.kwargs:
            if isinstance(v, Attr) and v.name == "dtype":
                kwargs.append(("device", Attr(v.value, "device")))
        return self.call(fn, node.args, kwargs)

    def call_eye(self, node):
        return self.on_device("eye", node)

    def call_zeros(self, node):
        return self.on_device("zeros", node)

    def call_astype(self, node):
        """``x.to(dtype)``: torch has no ``astype``."""
        return f"{self.wrap(node.args[0], 5, False)}.to({self.visit(node.args[1])})"

    def call_take(self, node):
        """``torch.index_select``: ``torch.take`` reads the flattened tensor."""
        (axis,) = [v for k, v in node.kwargs if k == "axis"]
        return self.call("index_select", (node.args[0], Const(axis), node.args[1]))

    def call_take_along_axis(self, node):
        return self.call("take_along_dim", node.args, [("dim", v) for k, v in node.kwargs if k == "axis"])

    def visit_Helper(self, node):
        """``scatter_add`` as ``index_add`` into new zeros; ``put_along`` as a ``where`` (both
        differentiable, for a double backward)."""
        index, values, size = (self.visit(a) for a in node.args)
        # an operand that is a product or a sum is parenthesised before .shape or [..., None]
        index_, values_ = (self.wrap(a, _PREC["atom"], False) for a in node.args[:2])
        if node.fn == "scatter_add":
            return f"{values_}.new_zeros(({size}, *{values_}.shape[1:])).index_add(0, {index}, {values})"
        return f"torch.where({index_}[..., None] == torch.arange({size}, device={index_}.device), {values_}[..., None], 0)"

    def call_linalg_diagonal(self, node):
        """The array API's ``linalg.diagonal`` takes the last two axes."""
        return self.call("diagonal", node.args, [("dim1", Const(-2)), ("dim2", Const(-1))])

    def _clamp(self, node, bound):
        a, b = node.args
        if isinstance(a, Const) != isinstance(b, Const):  # torch.maximum takes two tensors
            value, const = (b, a) if isinstance(a, Const) else (a, b)
            return self.call("clamp", (value,), [(bound, const)])
        return self.call(node.fn, node.args)

    def call_erf(self, node):
        return self.call("erf", node.args)

    def call_erfc(self, node):
        return self.call("erfc", node.args)

    def call_sigmoid(self, node):
        return self.call("sigmoid", node.args)

    def call_maximum(self, node):
        return self._clamp(node, "min")

    def call_minimum(self, node):
        return self._clamp(node, "max")


def torch_context(derivation, summary: str | None = None) -> dict:
    """The plain data ``torch_function.py.j2`` renders."""
    op = op_context(derivation, summary)
    plan = framework_plan(derivation)
    printer = TorchPrinter()
    tensors = plan.kept_inputs + [n for n in plan.saved_arrays if n not in plan.inputs]
    sizes = plan.saved_sizes + plan.recompute_sizes
    skippable = len(plan.inputs) > 1  # with one input, torch calls backward only when it needs its gradient
    scalars = [n for n in plan.inputs if not derivation.signature.patterns[n]]
    reference = next((n for n in plan.inputs if derivation.signature.patterns[n]), None)
    return {
        "class_name": class_name(derivation.name) + "Function",
        "function": function_name(derivation),
        **shared_context(derivation, op, plan),
        "forward_lines": assignments(printer, plan.size_statements + plan.body),
        "tensors": tensors,
        "sizes": sizes,
        "recompute": assignments(printer, plan.recompute),
        "intermediates": plan.intermediates,
        "backward": [{"target": st.target, "value": printer.visit(st.value),
                      "need": plan.results.index(st.target) if skippable and st.target in plan.results else None}
                     for st in plan.backward],
        "results": plan.results + [None] * len(op["size_kwargs"]),
        "scalars": scalars,
        "reference": reference,
    }


def torch_source(derivation, summary: str | None = None) -> str:
    """The source of the ``torch.autograd.Function`` and its function for ``derivation``."""
    return environment().get_template("torch_function.py.j2").render(op=torch_context(derivation, summary))


def torch_module_source(derivation, summary: str | None = None) -> str:
    """The op as a module of its own, with its imports."""
    return header(derivation, "", HEADER, BATCH_IMPORTS) + "\n\n" + torch_source(derivation, summary)


def torch_backward_source(derivation, input_name: str | None = None) -> str:
    """The backward's torch lines that compute one input's gradient (all when None)."""
    return backward_source(derivation, input_name, TorchPrinter())


def compile_torch(derivation, functions: dict | None = None):
    """The op as a function ``f(*inputs, **sizes)`` backed by its generated
    ``torch.autograd.Function`` (``f.Function``); ``f.source`` is the generated module."""
    require("torch")
    source = torch_module_source(derivation)
    namespace = build(source, f"torch op {derivation.name}", functions)
    fn = namespace[function_name(derivation)]
    fn.Function = namespace[class_name(derivation.name) + "Function"]
    fn.source = source
    fn.derivation = derivation
    return fn


