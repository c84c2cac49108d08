"""Every name deltagrad makes up, in one place: extents, size arguments, gradients, the output
gradient, and the saved values of the forward (``row_sum``, ``row_max``, ``shifted_exp_sum``).

User names come from the spec; the names here are derived from them by one rule each, so that
a printer, the lowering and the checker never spell a convention out themselves.

>>> NAMES.extent("k"), NAMES.axis_size("X", 1), NAMES.gradient("W"), NAMES.grad_output
('n_k', 'n_X_1', 'dW', 'goutput')
>>> NAMES.index_of_extent("n_k"), NAMES.index_of_extent("X")
('k', None)
"""

from __future__ import annotations

import keyword
import re
import unicodedata
from dataclasses import dataclass

import sympy as sp

from deltagrad.errors import SpecError


@dataclass(frozen=True)
class Names:
    """The naming conventions of generated code and index notation.

    ``grad_output``: the output gradient's parameter in code; ``grad_symbol``: its name in
    index notation (``G``, or ``G_Y`` when an input is called ``G``); ``namespace``: the array
    namespace variable; ``context``: the forward/backward context dict; ``needs``: the local that
    holds ``context["needs_input_grad"]``.
    """

    grad_output: str = "goutput"
    grad_symbol: str = "G"
    namespace: str = "xp"
    context: str = "context"
    needs: str = "needs"
    extent_prefix: str = "n_"
    gradient_prefix: str = "d"
    #: the code's name for the flattened ``...`` axes, and for their shape
    batch: str = "batch"
    batch_shape: str = "batch_shape"
    #: the output's shape before its merged axes (Y[b,(c,i,j)]) are merged, saved for backward
    out_shape: str = "out_shape"

    def extent(self, index_name: str) -> str:
        """The size of the axis an index runs over: ``n_k`` (``n_batch`` for ``...``, flattened)."""
        return f"{self.extent_prefix}{self.batch if index_name == '...' else index_name}"

    def extent_symbol(self, index_name: str) -> sp.Symbol:
        """The extent as a SymPy symbol (a positive integer)."""
        return sp.Symbol(self.extent(index_name), integer=True, positive=True)

    def is_extent(self, name: str) -> bool:
        """True for a name this object made with :meth:`extent` or :meth:`axis_size`."""
        return name.startswith(self.extent_prefix)

    def index_of_extent(self, name: str) -> str | None:
        """``n_k`` → ``k``; None for a name that is no extent."""
        return name[len(self.extent_prefix):] if self.is_extent(name) else None

    def axis_size(self, tensor: str, axis: int) -> str:
        """The size of one axis of an input that a literal index selects from: ``n_X_1``."""
        return f"{self.extent_prefix}{tensor}_{axis}"

    def gradient(self, input_name: str) -> str:
        """The variable that holds an input's gradient in code: ``dX``."""
        return f"{self.gradient_prefix}{input_name}"

    def reserved_in_code(self) -> set:
        """Names generated code uses for itself: its parameters and locals, and the helpers and
        modules the generated modules import (``check_shapes``, ``array_namespace``, ``torch``…)."""
        return {self.grad_output, self.namespace, self.context, self.needs, self.batch_shape, self.out_shape,
                *HELPERS}

    def is_reserved(self, name: str) -> bool:
        """True for a name no user name may take: one the generated code uses for itself, one
        that starts with ``_``, or one in the namespace of sizes (``n_k``, ``n_X_0``).

        >>> NAMES.is_reserved("check_shapes"), NAMES.is_reserved("n_X_0"), NAMES.is_reserved("X")
        (True, True, False)
        """
        return name in self.reserved_in_code() or name.startswith("_") or self.is_extent(name)


#: What generated modules import or define besides the ops (op_base, templates, frameworks).
#: (The torch and JAX targets refuse their own names, ``ctx``, ``torch``, ``jnp``…, in codegen/targets.py.)
HELPERS = frozenset({"check_shapes", "array_namespace", "Op", "ShapeError", "self", "cls", "np", "math",
                     "flat_batch", "flatten_batch", "unflatten_batch", "special", "scatter_add", "put_along",
                     "windows", "unwindow", "window_count", "merge_axes", "split_axes"})


NAMES = Names()


def normal_name(name: str) -> str:
    """A name as Python reads it (NFKC): ``ｇｏｕｔｐｕｔ`` is ``goutput``.

    >>> normal_name("Ｘ")
    'X'
    """
    return unicodedata.normalize("NFKC", name)


_WORD = re.compile(r"[^\W\d]\w*")


def check_spellings(names, what: str = "name", text: str | None = None) -> None:
    """Refuse two distinct spellings of one name (``Ｘ`` beside ``X``): Python would read them as one.

    ``names`` are raw names; with ``text``, they are the identifiers found in it.

    >>> check_spellings(["X", "Y"])
    >>> check_spellings([], text="Y[i] = Ｘ[i]*X[i]")
    Traceback (most recent call last):
    ...
    deltagrad.errors.SpecError: column 8: 'Ｘ' and 'X' are one name once normalised (NFKC): use one spelling
    """
    seen: dict = {}
    items = [(m.group(), m.start() + 1) for m in _WORD.finditer(text)] if text is not None else [(n, None) for n in names]
    for raw, column in items:
        first = seen.setdefault(normal_name(raw), raw)
        if first != raw:
            raise SpecError(f"{first!r} and {raw!r} are one {what} once normalised (NFKC): use one spelling",
                            text.find(first) + 1 if text is not None else None)


def op_class_name(name: str) -> str:
    """The CamelCase class of an op name (``log_softmax`` → ``LogSoftmax``; ``Op`` for none).

    >>> op_class_name("log_softmax"), op_class_name("Y")
    ('LogSoftmax', 'Y')
    """
    parts = [p for p in name.replace("-", "_").split("_") if p]
    return "".join(p[:1].upper() + p[1:] for p in parts) or "Op"


def check_op_name(name) -> str:
    """The op name ``name`` (NFKC-normalised), or a SpecError when it is no identifier, or when
    its class or function in generated code could not be one: ``None``, ``True``, ``false``
    (class ``False``), ``op`` (class ``Op``, the base class) or a name the generated code reserves.
    A keyword that is a valid class name once capitalised (``lambda``: class ``Lambda``, function
    ``lambda_``) is kept.

    >>> check_op_name("softmax")
    'softmax'
    >>> check_op_name("None")
    Traceback (most recent call last):
    ...
    deltagrad.errors.SpecError: the op name 'None' cannot name a class: its class would be None; choose another name
    """
    if not isinstance(name, str) or not normal_name(name).isidentifier():
        raise SpecError(f"the op name {name!r} must be a Python identifier (letters, digits and _)")
    name = normal_name(name)
    cls = op_class_name(name)
    if keyword.iskeyword(cls) or cls in HELPERS or name in ("None", "True", "False"):
        raise SpecError(f"the op name {name!r} cannot name a class: its class would be {cls}; choose another name")
    if NAMES.is_reserved(name):
        raise SpecError(f"the op name {name!r} is reserved for the generated code; rename it")
    return name


def unique(base: str, used: set) -> str:
    """``base``, or ``base_2``, ``base_3``… when taken; the result is added to ``used``.

    >>> used = {"row_sum"}
    >>> unique("row_sum", used), unique("row_sum", used), unique("row_max", used)
    ('row_sum_2', 'row_sum_3', 'row_max')
    """
    name, n = base, 1
    while name in used:
        n += 1
        name = f"{base}_{n}"
    used.add(name)
    return name


def axis_word(entry_indices: tuple, kept: tuple) -> str:
    """How a reduction over an input entry reads: ``row`` when it drops the last axis,
    ``col`` when it drops the first of two, ``total`` when nothing is kept, else ``''``.

    >>> from deltagrad.derive.spec import index
    >>> i, k = index('i'), index('k')
    >>> axis_word((i, k), (i,)), axis_word((k, i), (i,)), axis_word((i, k), ())
    ('row', 'col', 'total')
    """
    if not kept:
        return "total"
    dropped = [n for n, ix in enumerate(entry_indices) if ix not in kept]
    if dropped == [len(entry_indices) - 1]:
        return "row"
    if len(entry_indices) == 2 and dropped == [0]:
        return "col"
    return ""


def reduction_name(expr: sp.Sum, kept: tuple, used: set) -> str:
    """A readable, unused name for the forward reduction ``expr`` that keeps indices ``kept``:
    ``row_sum``, ``row_exp_sum``, ``row_sq_sum``, ``total_sum``…

    >>> from deltagrad.derive.spec import index, summed, tensor
    >>> import sympy as sp
    >>> i, k = index('i'), index('k')
    >>> used = {"X", "Y"}
    >>> reduction_name(summed(sp.exp(tensor('X')[i, k]), k), (i,), used)
    'row_exp_sum'
    >>> reduction_name(summed(tensor('X')[i, k], k), (i,), used)
    'row_sum'
    """
    body = expr.function
    word = "sum"
    if isinstance(body, sp.exp):
        word, body = "exp_sum", body.args[0]
    elif isinstance(body, sp.Pow) and body.exp == 2:
        word, body = "sq_sum", body.base
    entries = sorted(body.atoms(sp.Indexed), key=str)
    tensors = list(dict.fromkeys(e.base.label.name for e in sorted(body.atoms(sp.Indexed), key=sp.default_sort_key)))
    if len(tensors) == 1:
        where = axis_word(entries[0].indices, kept)
        return unique(f"{where}_{word}" if where else f"{tensors[0]}_{word}", used)
    if word == "sum" and 1 < len(tensors) <= 3:  # a contraction: Q_K_sum
        return unique("_".join(tensors) + "_sum", used)
    return unique(word if word not in _BUILTINS else f"{word}_", used)


def maximum_name(entry_indices: tuple, kept: tuple, used: set) -> str:
    """``row_max`` (or ``col_max``, ``total_max``, ``axis_max``) for the maximum a sum of
    exponentials is shifted by."""
    where = axis_word(entry_indices, kept)
    return unique(f"{where}_max" if where else "axis_max", used)


_BUILTINS = {"sum", "max", "min", "abs"}
_WORDS = {"+": "plus", "-": "minus", "*": "times", "/": "over", "@": "at", "==": "is"}


def temporary_hint(node) -> str | None:
    """A readable name for a temporary computing ``node`` (an array-program node), or None when
    no short one exists (the caller then numbers it).

    >>> from deltagrad.derive.array_program import BinOp, Call, Const, Subscript, Var
    >>> temporary_hint(BinOp('-', Var('X'), Subscript(Var('row_max'), (':', None))))
    'X_minus_row_max'
    >>> temporary_hint(Call('exp', (Var('X_minus_row_max'),))), temporary_hint(BinOp('**', Var('Y'), Const(2)))
    ('exp_X_minus_row_max', 'Y_sq')
    """
    def word(n):
        kind = type(n).__name__
        if kind == "Var":
            return n.name
        if kind == "Subscript":
            return word(n.value)
        if kind == "Neg":
            inner = word(n.operand)
            return inner and f"neg_{inner}"
        if kind == "Call" and n.fn == "astype":  # an indicator [X == row_max]: X_is_row_max
            return word(n.args[0])
        if kind == "Call" and len(n.args) >= 1:
            inner = word(n.args[0])
            return inner and f"{n.fn.replace('.', '_')}_{inner}"
        if kind == "BinOp":
            left, right = word(n.left), word(n.right)
            if n.op == "**" and type(n.right).__name__ == "Const":
                return left and (f"{left}_sq" if n.right.value == 2 else None)
            if n.op in _WORDS and left and right:
                return f"{left}_{_WORDS[n.op]}_{right}"
        return None

    name = word(node)
    return name if name and len(name) <= 20 and name.isidentifier() else None
