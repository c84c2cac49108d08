"""A fuzzer for specs: random expression trees from the spec grammar (and mutations of them),
each derived, compiled and run, and checked against an evaluation of the spec's text that owes
nothing to deltagrad (Python's ``ast`` and explicit loops over index values) and against central
differences of the forward.

Used by ``tests/test_spec_fuzz.py`` (hypothesis, a small fixed budget) and ``bench/fuzz.py`` (a
long run with counts). The grammar is written once against a ``pick`` interface: ``pick.int(lo,
hi)`` and ``pick.choice(seq)``, served by hypothesis' ``draw`` in tests or by ``random.Random``.

>>> import random
>>> spec = random_spec(RandomPick(random.Random(3)))
>>> outcome = run_spec(spec).kind
>>> outcome in OUTCOMES
True
"""

from __future__ import annotations

import ast
import itertools
import math
import random
import time
from dataclasses import dataclass, field

import numpy as np

#: What one fuzzed spec can come to. ``ok``: derived, ran, forward and gradients agree;
#: ``refused``: a SpecError at derive time; the rest are failures.
OUTCOMES = ("ok", "refused", "crash", "shape", "forward", "gradient", "nondeterministic", "slow")
FAILURES = ("crash", "shape", "forward", "gradient", "nondeterministic", "slow")

#: Index names and the size each runs over (two of each size, so transposes are possible).
SIZES = {"i": 3, "j": 4, "k": 3, "l": 4, "m": 2}
TENSORS = ("X", "W", "Z", "V")
SCALARS = ("c",)
UNARY = ("exp", "log", "tanh", "sqrt", "Abs", "sin", "cos", "Heaviside")
EXPONENTS = ("2", "3", "0.5", "-1", "1.5", "-2", "(-0.5)")


class RandomPick:
    """The ``pick`` interface over :class:`random.Random`."""

    def __init__(self, rnd: random.Random):
        self.rnd = rnd

    def int(self, lo: int, hi: int) -> int:
        return self.rnd.randint(lo, hi)

    def choice(self, seq):
        return seq[self.rnd.randrange(len(seq))]


class DrawPick:
    """The ``pick`` interface over hypothesis' ``draw`` (so that failures shrink)."""

    def __init__(self, draw):
        from hypothesis import strategies as st

        self.draw, self.st = draw, st

    def int(self, lo: int, hi: int) -> int:
        return self.draw(self.st.integers(lo, hi))

    def choice(self, seq):
        return seq[self.draw(self.st.integers(0, len(seq) - 1))]


@dataclass
class _Grammar:
    pick: object
    shapes: dict = field(default_factory=dict)  # tensor name -> axis sizes

    def shape_of(self, name: str, wanted: list) -> tuple:
        """The axis sizes of ``name``: fixed at first use (from the indices wanted there)."""
        if name not in self.shapes:
            rank = self.pick.int(1, 2)
            self.shapes[name] = tuple((SIZES[wanted[n]] if n < len(wanted) and self.pick.int(0, 3) else self.pick.choice((2, 3, 4)))
                                      for n in range(rank))
        return self.shapes[name]

    def access(self, avail: list, must: list = ()) -> str:
        """A tensor entry, indexed by available indices whose size fits, or by literals."""
        name = self.pick.choice(TENSORS)
        shape = self.shape_of(name, list(must) or avail)
        out, need = [], [m for m in must]
        for size in shape:
            fits = [n for n in need if SIZES[n] == size] or [n for n in avail if SIZES[n] == size]
            if fits and self.pick.int(0, 5):
                ix = fits[0] if fits[0] in need else self.pick.choice(fits)
                if ix in need:
                    need.remove(ix)
                out.append(ix)
            else:
                out.append(str(self.pick.int(0, 1)))
        text = f"{name}[{','.join(out)}]"
        for n in need:  # an index the shape could not take: a second factor carries it
            text = f"({text} * {self.access_one(n)})"
        return text

    def access_one(self, ix: str) -> str:
        """An entry of a tensor of rank one that carries index ``ix``."""
        name = self.pick.choice([t for t in TENSORS if self.shapes.get(t, (SIZES[ix],)) == (SIZES[ix],)]
                                or [f"U{SIZES[ix]}"])
        self.shapes[name] = (SIZES[ix],)
        return f"{name}[{ix}]"

    def expr(self, depth: int, avail: list) -> str:
        p = self.pick
        kind = p.int(0, 9) if depth > 0 else p.int(0, 2)
        if kind == 0 or kind == 1:
            return self.access(avail)
        if kind == 2:
            return p.choice(("c", "2", "0.5", "3", "1e-3", "-1", "c", f"size({p.choice(avail)})" if avail else "2"))
        if kind == 3:
            return f"{p.choice(UNARY)}({self.expr(depth - 1, avail)})"
        if kind in (4, 5):
            op = p.choice(("+", "-", "*", "/", "*"))
            return f"({self.expr(depth - 1, avail)} {op} {self.expr(depth - 1, avail)})"
        if kind == 6:
            form = p.int(0, 5)
            if form <= 3:
                return f"({self.expr(depth - 1, avail)})**{p.choice(EXPONENTS)}"
            if form == 4:
                return f"{p.choice(('2', '0.5', '3', '4'))}**({self.expr(depth - 1, avail)})"
            return f"Abs({self.expr(depth - 1, avail)})**({self.expr(depth - 1, avail)})"
        if kind == 7:
            f = p.choice(("Max", "Min"))
            second = p.choice(("0", self.expr(depth - 1, avail)))
            return f"{f}({self.expr(depth - 1, avail)}, {second})"
        free = [n for n in SIZES if n not in avail]
        if not free:
            return self.access(avail)
        k = p.choice(free)
        body = self.expr(depth - 1, avail + [k])
        if k not in body.replace("[", ",").replace("]", ",").split(","):
            body = f"({body} * {self.access(avail + [k], [k])})"
        return f"Sum({body}, {k})"


def random_spec(pick) -> str:
    """One spec text from the grammar: an output of rank 0 to 2, a tree of depth up to 3."""
    g = _Grammar(pick)
    out = list(itertools.islice(iter(("i", "j") if pick.int(0, 1) else ("j", "i")), pick.int(0, 2)))
    body = g.expr(pick.int(1, 3), out)
    carrier = g.access(out, out) if out else None
    if carrier:
        body = f"{body} {pick.choice(('+', '*', '-'))} {carrier}" if pick.int(0, 4) else f"{carrier} / (1 + ({body})**2)"
    lhs = f"Y[{','.join(out)}]" if out else "L"
    return f"{lhs} = {body}"


MUTATION_TOKENS = ("X", "i", "(", ")", "[", "]", ",", "*", "+", "**", "Sum", "exp", "0", "1e400", "_", "Ｘ",
                   "n_X_0", "goutput", "size", "k", " ", ".", "=", "None", "G", "dX")


def mutate_spec(text: str, pick) -> str:
    """``text`` with one to three edits: a character dropped, a token inserted or replaced."""
    for _ in range(pick.int(1, 3)):
        if not text:
            break
        at = pick.int(0, len(text) - 1)
        kind = pick.int(0, 2)
        if kind == 0:
            text = text[:at] + text[at + 1:]
        elif kind == 1:
            text = text[:at] + pick.choice(MUTATION_TOKENS) + text[at:]
        else:
            text = text[:at] + pick.choice(MUTATION_TOKENS) + text[at + 1:]
    return text


# ---------------------------------------------------------------------------------------------
# The independent reference: the spec's text evaluated entry by entry with NumPy scalars.

_FUNCS = {"exp": np.exp, "log": np.log, "tanh": np.tanh, "sqrt": np.sqrt, "Abs": np.abs, "sin": np.sin,
          "cos": np.cos, "Heaviside": lambda x: np.heaviside(x, 0.5)}


class Reference:
    """Evaluate ``OUT[idx] = EXPR`` on arrays by walking Python's ``ast`` of the text, one output
    entry at a time, with explicit loops for ``Sum``: no part of deltagrad is used.

    >>> ref = Reference("Y[i] = Sum(X[i,k]*W[k], k) + c")
    >>> ref({"X": np.ones((2, 3)), "W": np.arange(3.0), "c": 1.0}, {"i": 2, "k": 3}).tolist()
    [4.0, 4.0]
    """

    def __init__(self, text: str):
        stmt = ast.parse(text.strip()).body[0]
        target = stmt.targets[0]
        if isinstance(target, ast.Subscript):
            items = target.slice.elts if isinstance(target.slice, ast.Tuple) else [target.slice]
            self.out = [it.id if isinstance(it, ast.Name) else int(it.value) for it in items]
        else:
            self.out = []
        self.rhs = stmt.value

    def shapes(self, sizes: dict):
        """Each tensor's shape as the text implies it (an axis an index runs over has that index's
        size, a literal-only axis is one longer than its largest literal, at least 2), or None
        when the text's uses disagree (a mutated spec).

        >>> Reference("Y[i] = X[i,1] + Sum(X[k,0], k)").shapes({"i": 3, "k": 3})
        {'X': (3, 2)}
        """
        named, literal = {}, {}
        for node in ast.walk(self.rhs):
            if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
                items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
                for axis, it in enumerate(items):
                    key = (node.value.id, axis)
                    if isinstance(it, ast.Name) and it.id == "_":  # an axis of size one
                        named.setdefault(key, set()).add(1)
                    elif isinstance(it, ast.Name):
                        named.setdefault(key, set()).add(sizes.get(it.id, 3))
                    elif isinstance(it, ast.Constant) and type(it.value) is int:
                        literal[key] = max(literal.get(key, 0), it.value + 1)
                    elif isinstance(it, ast.BinOp):  # X[2*i+p]: one past its largest value
                        named.setdefault(key, set()).add(_index_value(it, {}, sizes) + 1)
        out = {}
        for name, axis in sorted(set(named) | set(literal)):
            got = named.get((name, axis), set())
            lit = literal.get((name, axis), 0)
            if len(got) > 1 or (got and min(got) < lit):
                return None
            out.setdefault(name, []).append(got.pop() if got else max(lit, 2))
        return {n: tuple(v) for n, v in out.items()}

    def __call__(self, arrays: dict, sizes: dict) -> np.ndarray:
        shape = tuple(sizes.get(i, 3) if isinstance(i, str) else 1 for i in self.out)
        result = np.empty(shape)
        self.nonfinite = False  # whether some intermediate value was inf or NaN (no chain rule through it)
        with np.errstate(all="ignore"):
            for pos in np.ndindex(shape):
                env = {i: p for i, p in zip(self.out, pos) if isinstance(i, str)}
                result[pos] = self.value(self.rhs, env, arrays, sizes)
        return result if shape else result[()]

    def value(self, node, env, arrays, sizes) -> float:
        out = self._value(node, env, arrays, sizes)
        if not np.isfinite(out):
            self.nonfinite = True
        return out

    def _value(self, node, env, arrays, sizes) -> float:
        v = lambda n: self.value(n, env, arrays, sizes)  # noqa: E731
        if isinstance(node, ast.Constant):
            return np.float64(node.value)
        if isinstance(node, ast.Name):
            return np.float64(arrays[node.id])
        if isinstance(node, ast.Subscript):
            items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            key = tuple(_index_value(it, env) for it in items)
            return np.float64(arrays[node.value.id][key])
        if isinstance(node, ast.UnaryOp):
            return -v(node.operand) if isinstance(node.op, ast.USub) else v(node.operand)
        if isinstance(node, ast.BinOp):
            a, b = v(node.left), v(node.right)
            op = type(node.op)
            if op is ast.Pow:
                return np.float64(np.power(a, b)) if not (a == 0 and b < 0) else np.float64(np.inf)
            if op is ast.Div:
                return np.float64(np.divide(a, b))
            return {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply}[op](a, b)
        if isinstance(node, ast.Call):
            name = node.func.id
            if name == "Sum":
                ks = [a.id for a in node.args[1:]]
                total = np.float64(0.0)
                for values in itertools.product(*[range(sizes.get(k, 3)) for k in ks]):
                    total += self.value(node.args[0], {**env, **dict(zip(ks, values))}, arrays, sizes)
                return total
            if name == "size":
                return np.float64(sizes.get(node.args[0].id, 3))
            args = [v(a) for a in node.args]
            if name in ("Max", "Min"):  # NaN in, NaN out (as numpy's maximum)
                return np.float64(np.nan) if any(np.isnan(a) for a in args) else np.float64((max if name == "Max" else min)(args))
            return np.float64(_FUNCS[name](args[0]))
        raise AssertionError(f"the reference cannot evaluate {ast.dump(node)}")


def _index_value(node, env: dict, sizes: dict | None = None) -> int:
    """The value of an index expression (a name, an integer, sums and integer multiples of them)
    at ``env``; with ``sizes``, its largest value over the names' ranges (affine, so at the top).

    >>> _index_value(ast.parse("2*i+p", mode="eval").body, {}, {"i": 3, "p": 2})
    5
    """
    if isinstance(node, ast.Name):  # _ is an axis of size one; a name no loop binds only ever
        if node.id == "_":           # appears times 0 (0*k), which SymPy reads as 0
            return 0
        return sizes.get(node.id, 3) - 1 if sizes is not None else env.get(node.id, 0)
    if isinstance(node, ast.Constant):
        return int(node.value)
    a, b = _index_value(node.left, env, sizes), _index_value(node.right, env, sizes)
    return {ast.Add: a + b, ast.Mult: a * b}[type(node.op)]


# ---------------------------------------------------------------------------------------------
# Running one spec.


@dataclass
class Outcome:
    """What happened to one spec: ``kind`` (one of OUTCOMES), a detail line, derive seconds."""

    kind: str
    spec: str
    detail: str = ""
    seconds: float = 0.0


def _inputs(d, shapes: dict, rng, low, high):
    """Random arrays for the inputs of ``d``, shaped as the spec's text implies."""
    return {name: rng.uniform(low, high, size=shapes[name]) if name in shapes else float(rng.uniform(low, high))
            for name in d.inputs}


def run_spec(text: str, *, budget: float = 5.0, points: int = 2, determinism: bool = False, seed: int = 0) -> Outcome:
    """Derive, compile and run ``text``; compare with :class:`Reference` and central differences."""
    from deltagrad import derive
    from deltagrad.errors import ShapeError, SpecError

    start = time.perf_counter()
    try:
        d = derive(text, budget=budget)
    except SpecError as err:
        return Outcome("refused", text, str(err), time.perf_counter() - start)
    except Exception as err:  # noqa: BLE001 - the fuzzer's point
        return Outcome("crash", text, f"derive: {type(err).__name__}: {err}", time.perf_counter() - start)
    seconds = time.perf_counter() - start
    if seconds > budget + 2:
        return Outcome("slow", text, f"derive took {seconds:.1f} s", seconds)
    try:
        op = d.compile()
        if determinism and derive(text, budget=budget).source() != d.source():
            return Outcome("nondeterministic", text, "two derivations print different sources", seconds)
    except SpecError as err:
        return Outcome("refused", text, f"compile: {err}", seconds)
    except Exception as err:  # noqa: BLE001
        return Outcome("crash", text, f"compile: {type(err).__name__}: {err}", seconds)
    ref = Reference(text)
    shapes = ref.shapes(SIZES)
    if shapes is None:
        return Outcome("ok", text, "skipped: no consistent shapes", seconds)
    rng = np.random.default_rng(seed)
    for n in range(points):
        low, high = ((0.3, 2.0), (-2.0, 2.0))[n % 2]
        arrays = _inputs(d, shapes, rng, low, high)
        kwargs = {ix.name: SIZES.get(ix.name, 3) for ix in d.spec.size_indices}  # as the reference reads them
        args = [arrays[i] for i in d.inputs]
        try:
            failure = _check_point(d, op, ref, arrays, args, kwargs, rng)
        except (ShapeError, SpecError) as err:
            return Outcome("shape", text, f"{type(err).__name__}: {err}", seconds)
        except Exception as err:  # noqa: BLE001
            return Outcome("crash", text, f"run: {type(err).__name__}: {err}", seconds)
        if failure:
            return Outcome(failure[0], text, failure[1], seconds)
    return Outcome("ok", text, "", seconds)


def _check_point(d, op, ref, arrays, args, kwargs, rng):
    """(kind, detail) of the first disagreement at one point, or None."""
    with np.errstate(all="ignore"):
        context = {}
        out = np.asarray(op.forward(context, *args, **kwargs))
        if np.iscomplexobj(out):
            return "forward", f"complex values {out.tolist()} at {arrays}"
        out = out.astype(float)
        want = np.asarray(ref(arrays, SIZES), dtype=float)
        if out.shape != want.shape:
            return "forward", f"shape {out.shape}, reference {want.shape}"
        fine = np.isfinite(want) & (np.abs(want) < 1e8)
        if not np.allclose(out[fine], want[fine], rtol=1e-9, atol=1e-9):
            if _ill_conditioned(ref, arrays, want, fine):
                return None  # cos(2.66**20.6): the last bit of an input moves the value itself
            return "forward", f"at {arrays}: got {out.tolist()}, reference {want.tolist()}"
        if not fine.all() or ref.nonfinite:
            return None  # no gradient to compare where the forward, or a value inside it, is not finite
        g = rng.normal(size=out.shape)
        grads = op.backward(context, g if out.shape else float(g))

        def f(n, value):
            a = list(args)
            a[n] = value
            return float(np.sum(g * np.asarray(op.forward({}, *a, **kwargs), dtype=float)))

        for n, (name, got) in enumerate(zip(d.inputs, grads)):
            got = np.asarray(got, dtype=float)
            base = np.asarray(args[n], dtype=float)
            if got.shape != base.shape:
                return "gradient", f"d{name} has shape {got.shape}, input {base.shape}"
            for idx in np.ndindex(base.shape):
                want_g = _central(f, n, base, idx)
                if want_g is None:
                    continue
                have = got[idx]
                if not np.isfinite(have) or abs(have - want_g) > 1e-4 * (1 + abs(want_g)):
                    return "gradient", f"d{name}{list(idx)} = {have!r}, central differences {want_g!r} at {arrays}"
    return None


def _ill_conditioned(ref, arrays, want, fine) -> bool:
    """True when the reference itself moves past the tolerance if every input moves by a few
    units in the last place: no two correct evaluations need agree there."""
    nudged = {k: np.asarray(v) * (1 + 4e-16) + 0.0 if np.ndim(v) else float(v) * (1 + 4e-16) for k, v in arrays.items()}
    again = np.asarray(ref(nudged, SIZES), dtype=float)
    return not np.allclose(again[fine], want[fine], rtol=1e-9, atol=1e-9, equal_nan=True)


def _central(f, n, base, idx, h=1e-6):
    """The derivative along one entry by central differences, or None near a kink, a pole or a
    non-finite value (the one-sided differences disagree, or a value is not finite)."""
    def at(delta):
        x = base.copy()
        x[idx] += delta
        return f(n, x if x.shape else float(x))

    f0, fp, fm = at(0.0), at(h), at(-h)
    fp2, fm2 = at(2 * h), at(-2 * h)
    values = (f0, fp, fm, fp2, fm2)
    if not all(math.isfinite(v) for v in values) or max(abs(v) for v in values) > 1e6:
        return None
    right, left = (fp - f0) / h, (f0 - fm) / h
    central = (fp - fm) / (2 * h)
    central2 = (fp2 - fm2) / (4 * h)
    scale = 1 + abs(central)
    if abs(right - left) > 1e-3 * scale or abs(central - central2) > 1e-5 * scale:
        return None  # a kink, a pole or rounding: no derivative to compare with
    return central
