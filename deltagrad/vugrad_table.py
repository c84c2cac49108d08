"""vugrad's ops (``vugrad/ops.py``) as forward specs: ``deltagrad codegen --target vugrad``
renders this table into a drop-in ``ops.py`` whose every backward is derived.

Each entry names vugrad's class, its ``forward`` signature (keyword arguments included) and
the spec whose derived op does the work. Where vugrad's keyword arguments pick an axis
(``dim``) or a size (``repeats``), the entry's ``adapter`` says how the generated class maps
them onto the one spec (see :data:`ADAPTERS`); an adapter moves or reshapes axes, it never
computes a gradient.

>>> [e.name for e in VUGRAD_OPS][:4]
['Log', 'Id', 'Exp', 'Sum']
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class VugradEntry:
    """One op of vugrad's ``ops.py``.

    ``name``: vugrad's class name; ``spec``: the forward (its tensor names are vugrad's
    argument names, so the generated ``forward`` reads like vugrad's); ``inputs``: the spec's
    argument order; ``params``: the text after ``context,`` in vugrad's ``forward``;
    ``adapter``: a key of :data:`ADAPTERS`; ``keywords``: vugrad keyword → the spec's input or
    size it feeds.
    """

    name: str
    spec: str
    params: str
    summary: str
    adapter: str = "plain"
    inputs: tuple | None = None
    keywords: dict = field(default_factory=dict)


#: How a vugrad class's arguments reach its spec's op (the generated file explains each too):
ADAPTERS = {
    "plain": "the spec's op itself, with vugrad's name and signature",
    "flatten": "any rank: the input is reshaped to a vector for the spec, the gradient back to the input's shape",
    "last_axis": "axis `dim` (any rank, negative too) is moved last, where the spec has it, and moved back after",
    "keyword_inputs": "keyword arguments that are arrays (indices) are the spec's integer inputs; no gradient for them",
}

VUGRAD_OPS: tuple[VugradEntry, ...] = (
    VugradEntry("Log", "Y[...] = log(x[...])", "x", "Natural logarithm, element-wise (any rank)."),
    VugradEntry("Id", "Y[...] = x[...]", "x", "Identity (adds a node to the graph; any rank)."),
    VugradEntry("Exp", "Y[...] = exp(x[...])", "x", "Natural exponent, element-wise (any rank)."),
    VugradEntry("Sum", "s = Sum(x[k], k)", "x", "Sum of all elements of a tensor of any rank: a scalar.",
                adapter="flatten"),
    VugradEntry("RowMax", "y[i] = Max(x[i,k], k)", "x", "Row-wise maximum of a matrix: a vector."),
    VugradEntry("RowSum", "y[i] = Sum(x[i,k], k)", "x", "Row-wise sum of a matrix: a vector."),
    VugradEntry("Normalize", "Y[i,j] = x[i,j] / Sum(x[i,k], k)", "x", "Each row of a matrix divided by its sum."),
    VugradEntry("BatchMM", "Y[i,j] = Sum(vectors[i,k]*matrix[j,k], k)", "matrix, vectors",
                "One matrix times a batch of vectors (the rows of `vectors`).", inputs=("matrix", "vectors")),
    VugradEntry("Sigmoid", "Y[...] = 1 / (1 + exp(-input[...]))", "input", "Logistic sigmoid, element-wise (any rank)."),
    VugradEntry("Expand", "Y[...,r] = input[...,_]", "input, *, dim, repeats",
                "Repeat a size-one axis `dim` `repeats` times (any rank).", adapter="last_axis",
                keywords={"repeats": "r"}),
    VugradEntry("Select", "y[i] = input[i, indices[i]]", "input, *, indices",
                "One element of each row of a matrix, picked by an integer vector.", adapter="keyword_inputs",
                inputs=("input", "indices"), keywords={"indices": "indices"}),
    VugradEntry("Squeeze", "Y[...] = input[...,_]", "input, dim=0", "Remove the size-one axis `dim` (any rank).",
                adapter="last_axis"),
    VugradEntry("Unsqueeze", "Y[...,_] = input[...]", "input, dim=0", "Insert a size-one axis at `dim` (any rank).",
                adapter="last_axis"),
)
