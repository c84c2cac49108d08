"""The standard ops: one declarative table of forward specs; every backward is derived.

In the spirit of PyTorch's ``derivatives.yaml``, except that no formula here is written by hand
but the forward. ``deltagrad codegen`` renders this table into ``deltagrad/generated/``.

>>> [e.name for e in STANDARD_OPS][:4]
['divide', 'multiply', 'add', 'subtract']
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OpEntry:
    """One op: its name, its forward spec, and optionally its argument order and a summary."""

    name: str
    spec: str
    inputs: tuple | None = None
    summary: str = ""


STANDARD_OPS: tuple[OpEntry, ...] = (
    OpEntry("divide", "Y[i,j] = X[i,j] / Z[i,j]", summary="Element-wise division."),
    OpEntry("multiply", "Y[i,j] = X[i,j] * Z[i,j]", summary="Element-wise product."),
    OpEntry("add", "Y[i,j] = X[i,j] + Z[i,j]", summary="Element-wise sum."),
    OpEntry("subtract", "Y[i,j] = X[i,j] - Z[i,j]", summary="Element-wise difference."),
    OpEntry("scale", "Y[i,j] = c * X[i,j]", summary="A matrix times a scalar."),
    OpEntry("matmul", "Y[i,j] = Sum(X[i,k]*W[k,j], k)", summary="Matrix product XW."),
    OpEntry("linear", "Y[i,j] = Sum(X[i,k]*W[k,j], k) + B[j]", summary="Linear layer: XW plus a bias row."),
    OpEntry("sigmoid", "Y[i,j] = 1 / (1 + exp(-X[i,j]))", summary="Logistic sigmoid."),
    OpEntry("relu", "Y[i,j] = Max(0, X[i,j])", summary="Rectified linear unit (derivative 1/2 at 0)."),
    OpEntry("tanh", "Y[i,j] = tanh(X[i,j])", summary="Hyperbolic tangent."),
    OpEntry("exp", "Y[i,j] = exp(X[i,j])", summary="Element-wise exponential."),
    OpEntry("log", "Y[i,j] = log(X[i,j])", summary="Element-wise natural logarithm."),
    OpEntry("sum", "s = Sum(X[i,j], i, j)", summary="Sum of all entries."),
    OpEntry("row_sum", "y[i] = Sum(X[i,j], j)", summary="Sum of each row."),
    OpEntry("mean", "m = Sum(X[i,j], i, j) / (size(i) * size(j))", summary="Mean of all entries."),
    OpEntry("row_mean", "y[i] = Sum(X[i,j], j) / size(j)", summary="Mean of each row."),
    OpEntry("expand", "Y[i,j] = x[i]", summary="Broadcast a vector to j columns (forward takes j=...)."),
    OpEntry("normalize", "Y[i,j] = X[i,j] / Sum(X[i,k], k)", summary="Divide each row by its sum."),
    OpEntry("squeeze", "Y[i,j] = X[i,_,j]", summary="Drop a middle axis of size one."),
    OpEntry("unsqueeze", "Y[i,_,j] = X[i,j]", summary="Add a middle axis of size one."),
    OpEntry("transpose", "Y[i,j] = X[j,i]", summary="Matrix transpose."),
    OpEntry("softmax", "Y[i,j] = exp(X[i,j]) / Sum(exp(X[i,k]), k)", summary="Row-wise softmax."),
    OpEntry("log_softmax", "Y[i,j] = X[i,j] - log(Sum(exp(X[i,k]), k))", summary="Row-wise log-softmax."),
    OpEntry(
        "conv2d",
        "Y[b,o,i,j] = Sum(X[b,c,i+p,j+q]*W[o,c,p,q], c, p, q) + B[o]",
        summary="2-D convolution (a valid cross-correlation, stride 1) of images X[b,c,h,w] with kernels "
                "W[o,c,p,q], plus a bias per output channel.",
    ),
    OpEntry(
        "avg_pool2d",
        "Y[b,c,i,j] = Sum(X[b,c,2*i+p,2*j+q], p, q) / (size(p)*size(q))",
        summary="Average pooling with stride 2 over p×q windows (forward takes p=2, q=2 for 2×2).",
    ),
    OpEntry(
        "max_pool2d",
        "Y[b,c,i,j] = Max(X[b,c,2*i+p,2*j+q], p, q)",
        summary="Max pooling with stride 2 over p×q windows (forward takes p=2, q=2 for 2×2); the "
                "gradient goes to each window's arg-max, split equally between ties.",
    ),
    OpEntry(
        "flatten",
        "Y[b,(c,i,j)] = X[b,c,i,j]",
        summary="Flatten images X[b,c,i,j] into rows Y[b, c·i·j], row-major (torch.flatten(X, 1)).",
    ),
    OpEntry(
        "softmax_cross_entropy",
        "L = -Sum(T[i,j]*(X[i,j] - log(Sum(exp(X[i,k]), k))), i, j) / size(i)",
        inputs=("X", "T"),
        summary="Mean cross-entropy of row-wise softmax(X) against target rows T (one-hot or probabilities).",
    ),
    OpEntry("row_max", "y[i] = Max(X[i,k], k)",
            summary="Maximum of each row; the gradient goes to the arg-max, split equally between ties."),
    OpEntry("select", "y[i] = X[i, t[i]]",
            summary="Entry t[i] of each row i (vugrad's Select); t holds integers and gets no gradient."),
    OpEntry("embedding", "Y[n,d] = E[t[n], d]",
            summary="Rows t[n] of the table E (an embedding lookup); the backward adds rows into E."),
    OpEntry("nll_loss", "L = -Sum(log(P[i, t[i]]), i) / size(i)",
            summary="Mean negative log-likelihood of the classes t[i] under the probability rows P."),
)
