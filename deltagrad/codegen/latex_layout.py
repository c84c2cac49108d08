"""Layout of display math for the write-ups: how wide a LaTeX formula is, and where to break it.

TeX itself is never run. The formula (the small subset of LaTeX the printers emit) is parsed
into a tree, its width estimated from the Computer Modern metrics in em, and a formula wider
than the line is broken before a binary operator (``+``, ``-``, ``\\odot``, ``\\oslash``); a
``\\left( … \\right)`` group too wide for one line is opened into ``\\biggl( … \\biggr)`` so
that the break can fall inside it, and a fraction with a long numerator becomes
``\\frac{1}{den}\\bigl(num\\bigr)``. Widths are estimates a little on the generous side; the
tests compile every write-up and fail on any overfull box.

>>> round(width(r"X^{\\nabla}_{ab}"), 1), round(width(r"\\frac{Y^{\\nabla}_{ab}}{Z_{ab}}"), 1)
(1.7, 1.7)
>>> fit(r"A_{ab} + B_{ab} - C_{ab}", 6)
['A_{ab} + B_{ab}', '- C_{ab}']
>>> fit(r"Y_{ab} \\left(A_{ab} + \\frac{B_{ab}}{2} - C_{ab}\\right)", 8)
['Y_{ab} \\\\biggl(A_{ab} + \\\\frac{B_{ab}}{2}', '- C_{ab} \\\\biggr)']
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: Width (em) of the text column the layout aims at: a plain ``article`` at 10 pt is 34.5 em
#: wide; a little is kept back for the error of the estimate.
LINE_EM = 32.0

_TOKEN = re.compile(r"\\[a-zA-Z]+\*?|\\.|[{}^_&]|\s+|\d+(?:\.\d+)?|.")

_ARITY = {"frac": 2, "tfrac": 2, "dfrac": 2, "sqrt": 1, "mathrm": 1, "mathbf": 1, "mathit": 1,
          "operatorname": 1, "text": 1, "textrm": 1, "texttt": 1, "mathsf": 1, "phantom": 1,
          "overline": 1, "hat": 1, "tilde": 1, "bar": 1, "emph": 1, "textit": 1, "parbox": 2,
          "underbrace": 1, "boldsymbol": 1}
_TEXT_CMDS = {"text", "textrm", "texttt", "emph", "textit"}
_ROMAN_CMDS = {"mathrm", "operatorname"}

# Computer Modern widths in em (cmmi10 italic letters, cmr10 roman letters)
_ITALIC = dict(zip("abcdefghijklmnopqrstuvwxyz",
                   [.53, .43, .43, .52, .47, .49, .48, .58, .35, .41, .52, .30, .88, .60, .49, .50, .45, .45,
                    .47, .36, .57, .49, .72, .57, .49, .47]))
_ITALIC.update(zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                   [.75, .76, .72, .83, .74, .64, .79, .83, .44, .56, .85, .68, .97, .80, .76, .64, .79, .76,
                    .61, .58, .68, .58, .94, .83, .58, .68]))
_ITALIC_CORRECTION = {"F": .14, "H": .08, "I": .08, "J": .1, "K": .07, "M": .1, "N": .1, "P": .14, "T": .14, "U": .11,
                      "V": .22, "W": .14, "Y": .18, "f": .11, "j": .06}
_ROMAN = dict(zip("abcdefghijklmnopqrstuvwxyz",
                  [.50, .56, .44, .56, .44, .31, .50, .56, .28, .31, .53, .28, .83, .56, .50, .56, .53, .39,
                   .39, .39, .56, .53, .72, .53, .53, .44]))
_ROMAN.update({c: .74 for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"})
_ROMAN.update({"M": .92, "W": 1.03, "I": .36, "J": .51})
_OTHER = {"(": .39, ")": .39, "[": .28, "]": .28, ",": .28, ".": .28, ";": .28, ":": .28, "/": .5,
          "|": .28, "'": .28, "!": .28, "?": .47, "*": .5, " ": 0.0, "<": .78, ">": .78}
_SYMBOL = {"delta": .45, "nabla": .95, "partial": .57, "top": .78, "circ": .5, "odot": .78, "oslash": .78,
           "cdot": .28, "times": .78, "alpha": .64, "beta": .57, "gamma": .52, "epsilon": .41,
           "varepsilon": .47, "mu": .61, "sigma": .58, "tau": .44, "theta": .47, "lambda": .59, "pi": .58,
           "rho": .52, "phi": .6, "psi": .66, "omega": .63, "eta": .5, "kappa": .58, "nu": .5, "xi": .5,
           "chi": .63, "zeta": .46, "infty": 1.0, "ldots": 1.17, "cdots": 1.17, "dots": 1.17, "prime": .28,
           "lvert": .28, "rvert": .28, "vert": .28, "mid": .28, "_": .5, "{": .5, "}": .5, "%": .83, "#": .83,
           "&": .78, "$": .5, "to": 1.0, "in": .67, "leq": .78, "geq": .78, "neq": .78, "approx": .78,
           "equiv": .78, "sim": .78, "Sigma": .72, "Delta": .83, "qquad": 2.0, "quad": 1.0, ",": .167,
           ";": .278, ":": .222, "!": -.167, " ": .33, "ell": .42, "lbrace": .5, "rbrace": .5}
_BINARY = {"+", "-", r"\odot", r"\oslash", r"\cdot", r"\times", r"\pm"}
_RELATION = {"=", "<", ">", r"\leq", r"\geq", r"\neq", r"\approx", r"\equiv", r"\to", r"\in", r"\sim"}
_FUNCTIONS = {"exp": 1.39, "log": 1.28, "tanh": 1.95, "sin": 1.17, "cos": 1.39, "max": 1.67, "min": 1.5,
              "sinh": 1.72, "cosh": 1.95, "arcsin": 2.06, "arccos": 2.28, "arctan": 2.06, "ln": .83, "det": 1.28, "tr": .67}
_STYLE_SCALE = (1.0, 1.0, 0.8, 0.64)  # display, text, script, scriptscript


@dataclass
class Tok:
    text: str


@dataclass
class Grp:
    items: list


@dataclass
class Cmd:
    name: str
    args: list
    opt: str = ""
    raw: str | None = None  # the source of a text-like command's argument, kept as it was


@dataclass
class LR:
    left: str
    items: list
    right: str
    plain: bool = False  # ( … ) without \\left and \\right


@dataclass
class Scr:
    base: object
    sub: object = None
    sup: object = None
    sup_first: bool = False


@dataclass
class Open:
    """A ``\\left`` delimiter opened for a line break; ``Close`` with the same ``key`` ends it."""

    key: int
    delim: str
    size: str


@dataclass
class Close:
    key: int
    delim: str
    size: str


def parse(tex: str) -> list:
    """The node list of a LaTeX math string."""
    tokens = [t for t in _TOKEN.findall(tex)]
    pos = 0

    def arg():
        nonlocal pos
        while pos < len(tokens) and tokens[pos].isspace():
            pos += 1
        if pos >= len(tokens):
            return Grp([])
        t = tokens[pos]
        pos += 1
        if t == "{":
            return Grp(seq("}"))
        return Grp([Tok(t)])

    def delim():
        nonlocal pos
        while pos < len(tokens) and tokens[pos].isspace():
            pos += 1
        t = tokens[pos] if pos < len(tokens) else "."
        pos += 1
        return t

    def _raw_group():
        nonlocal pos
        while pos < len(tokens) and tokens[pos].isspace():
            pos += 1
        if pos >= len(tokens) or tokens[pos] != "{":
            pos += 1
            return tokens[pos - 1] if pos <= len(tokens) else ""
        depth, start = 0, pos
        while pos < len(tokens):
            depth += tokens[pos] == "{"
            depth -= tokens[pos] == "}"
            pos += 1
            if depth == 0:
                break
        return "".join(tokens[start + 1:pos - 1])

    def seq(end):
        nonlocal pos
        out = []
        while pos < len(tokens):
            t = tokens[pos]
            pos += 1
            if t == end:
                return out
            if t.isspace():
                continue
            if t == "{":
                out.append(Grp(seq("}")))
            elif t in ("^", "_"):
                slot = "sup" if t == "^" else "sub"
                if out and isinstance(out[-1], Scr) and getattr(out[-1], slot) is None:
                    node = out[-1]
                else:
                    node = Scr(out.pop() if out else None, sup_first=t == "^")
                    out.append(node)
                setattr(node, slot, arg())
            elif t == r"\left":
                left = delim()
                items = seq(r"\right")
                out.append(LR(left, items, delim()))
            elif t.startswith("\\") and t[1:] in _ARITY:
                name, opt = t[1:], ""
                if name == "sqrt" and pos < len(tokens) and tokens[pos] == "[":
                    close = tokens.index("]", pos)
                    opt, pos = "".join(tokens[pos + 1:close]), close + 1
                if name in _TEXT_CMDS or name in _ROMAN_CMDS or name == "mathbf":
                    raw = _raw_group()
                    out.append(Cmd(name, [Grp([Tok(raw)])], opt, raw))
                else:
                    out.append(Cmd(name, [arg() for _ in range(_ARITY[name])], opt))
            else:
                out.append(Tok(t))
        return out

    return _pair_parens(seq(None))


def _pair_parens(nodes) -> list:
    """Plain ``(`` … ``)`` at one level become an :class:`LR` group (so a break may open it)."""
    out, stack = [], []
    for n in nodes:
        if isinstance(n, Grp):
            n = Grp(_pair_parens(n.items))
        elif isinstance(n, LR):
            n = LR(n.left, _pair_parens(n.items), n.right, n.plain)
        elif isinstance(n, Cmd):
            n = Cmd(n.name, [Grp(_pair_parens(a.items)) for a in n.args], n.opt, n.raw)
        elif isinstance(n, Scr):
            base = n.base
            if isinstance(base, Grp):
                base = Grp(_pair_parens(base.items))
            elif isinstance(base, LR):
                base = LR(base.left, _pair_parens(base.items), base.right, base.plain)
            n = Scr(base, n.sub and Grp(_pair_parens(n.sub.items)), n.sup and Grp(_pair_parens(n.sup.items)), n.sup_first)
        if isinstance(n, Tok) and n.text == "(":
            stack.append(len(out))
            out.append(n)
        elif isinstance(n, Tok) and n.text == ")" and stack:
            start = stack.pop()
            out[start:] = [LR("(", out[start + 1:], ")", plain=True)]
        elif isinstance(n, Scr) and isinstance(n.base, Tok) and n.base.text == ")" and stack:
            start = stack.pop()
            n.base = LR("(", out[start + 1:], ")", plain=True)
            out[start:] = [n]
        else:
            out.append(n)
    return out


def to_tex(nodes) -> str:
    """LaTeX of a node list (the inverse of :func:`parse`, up to spacing)."""
    text = ""
    for n in nodes:
        piece = _node_tex(n)
        if text and piece and _needs_space(text, piece, n):
            text += " "
        text += piece
    return text


def _needs_space(before: str, after: str, node) -> bool:
    command = re.search(r"\\[a-zA-Z]+$", before) is not None
    if command and after[0].isalpha():
        return True
    if before[-1] in "({[" or after[0] in ")]}" or (command and after[0] in "({["):
        return False
    if after[0] in ",;" or (before[-1] == "," and len(after) == 1):
        return False
    if before[-1] in "-+" and (len(before) == 1 or before[-2] in "{(["):
        return False  # a sign: -5, (-x
    if isinstance(node, Tok) and len(node.text) == 1 and node.text.isalnum() and before[-1].isalnum():
        return False  # index letters: ab
    return True


def _node_tex(n) -> str:
    if isinstance(n, Tok):
        return n.text
    if isinstance(n, Grp):
        return "{" + to_tex(n.items) + "}"
    if isinstance(n, Cmd):
        opt = f"[{n.opt}]" if n.opt else ""
        if n.raw is not None:
            return f"\\{n.name}{opt}{{{n.raw}}}"
        return f"\\{n.name}{opt}" + "".join(_node_tex(a) for a in n.args)
    if isinstance(n, LR):
        if n.plain:
            return f"{n.left}{to_tex(n.items)}{n.right}"
        return f"\\left{_delim_tex(n.left)}{to_tex(n.items)}\\right{_delim_tex(n.right)}"
    if isinstance(n, Scr):
        base = _node_tex(n.base) if n.base is not None else "{}"
        sub = f"_{_node_tex(n.sub)}" if n.sub is not None else ""
        sup = f"^{_node_tex(n.sup)}" if n.sup is not None else ""
        return base + (sup + sub if n.sup_first else sub + sup)
    if isinstance(n, Open):
        return f"\\{n.size}l{_delim_tex(n.delim)}" if n.size else n.delim
    if isinstance(n, Close):
        return f"\\{n.size}r{_delim_tex(n.delim)}" if n.size else n.delim
    raise TypeError(n)


def _delim_tex(d: str) -> str:
    return d + " " if d.startswith("\\") and d[1:].isalpha() else d


# -- width -------------------------------------------------------------------------------------
def width(tex, style: int = 0) -> float:
    """Estimated width in em of LaTeX math ``tex`` (a string or a node list) in display style."""
    nodes = parse(tex) if isinstance(tex, str) else tex
    return _seq_width(nodes, style) * SAFETY


#: Estimates are scaled by this, so that they err on the wide side.
SAFETY = 1.04


def _kind(n) -> str:
    if isinstance(n, Tok):
        if n.text in _BINARY:
            return "bin"
        if n.text in _RELATION:
            return "rel"
        if n.text in (",", ";"):
            return "punct"
        if n.text in (r"\sum", r"\prod") or n.text[1:] in _FUNCTIONS:
            return "op"
        if n.text in ("(", "["):
            return "open"
        if n.text in (")", "]"):
            return "close"
    if isinstance(n, Scr) and isinstance(n.base, Tok) and n.base.text in (r"\sum", r"\prod"):
        return "op"
    if isinstance(n, Cmd) and n.name == "operatorname":
        return "op"
    if isinstance(n, Open):
        return "open"
    if isinstance(n, Close):
        return "close"
    return "ord"


def _seq_width(nodes, style: int) -> float:
    scale = _STYLE_SCALE[style]
    total, prev = 0.0, None
    for n in nodes:
        kind = _kind(n)
        if kind == "bin" and prev in (None, "bin", "rel", "open", "punct", "op"):
            kind = "ord"  # a unary sign
        total += _node_width(n, style)
        if style <= 1:
            if kind == "bin":
                total += 0.444
            elif kind == "rel":
                total += 0.556
            elif kind == "punct":
                total += 0.167
            elif kind == "op" and prev not in (None, "open"):
                total += 0.167
            elif prev == "op" and kind in ("ord", "open"):
                total += 0.167 * scale
        prev = kind
    return total


def _node_width(n, style: int) -> float:
    scale = _STYLE_SCALE[style]
    script = min(style + 2, 3) if style <= 1 else 3
    if isinstance(n, Tok):
        return _tok_width(n.text, style) * scale
    if isinstance(n, Grp):
        return _seq_width(n.items, style)
    if isinstance(n, Cmd):
        if n.name in ("frac", "dfrac", "tfrac"):
            inner = {"frac": min(style + 1, 3) if style >= 1 else 1, "dfrac": 1, "tfrac": 2 if style <= 1 else 3}[n.name]
            return max(_node_width(a, inner) for a in n.args) + 0.24 * scale
        if n.name == "sqrt":
            return _node_width(n.args[0], style) + 0.9 * scale
        if n.name in _ROMAN_CMDS:
            return _roman(n.raw) * scale
        if n.name in _TEXT_CMDS:
            return _text(n.raw) * scale
        if n.name == "mathbf":
            return 0.6 * scale * max(1, len(n.raw))
        if n.name == "parbox":
            return 0.0
        return _node_width(n.args[-1], style)
    if isinstance(n, LR):
        tall = _tall(n.items) and not n.plain
        d = (0.6 if tall else 0.39) * scale
        return _seq_width(n.items, style) + (d if n.left != "." else 0) + (d if n.right != "." else 0)
    if isinstance(n, Scr):
        base = _node_width(n.base, style) if n.base is not None else 0.0
        if isinstance(n.base, Tok) and n.base.text in (r"\sum", r"\prod") and style == 0:
            below = _node_width(n.sub, 2) if n.sub is not None else 0.0
            above = _node_width(n.sup, 2) if n.sup is not None else 0.0
            return max(1.44, below, above)
        sub = _node_width(n.sub, script) if n.sub is not None else 0.0
        sup = _node_width(n.sup, script) if n.sup is not None else 0.0
        if n.sup is None and isinstance(n.base, Tok):
            base -= _ITALIC_CORRECTION.get(n.base.text, 0.0) * _STYLE_SCALE[style]
        return base + max(sub, sup) + 0.06
    if isinstance(n, (Open, Close)):
        return {"big": .45, "Big": .5, "bigg": .6, "Bigg": .7}.get(n.size, .39) * scale
    return 0.8 * scale


def _tok_width(t: str, style: int) -> float:
    if t.startswith("\\"):
        name = t[1:]
        if name == "sum" or name == "prod":
            return 1.44 if style == 0 else 1.06
        if name in _FUNCTIONS:
            return _FUNCTIONS[name]
        if name in _SYMBOL:
            return _SYMBOL[name]
        return 0.8
    if t in _ITALIC:
        return _ITALIC[t] + _ITALIC_CORRECTION.get(t, 0.0)
    if t[:1].isdigit():
        return 0.5 * sum(c.isdigit() for c in t) + 0.28 * t.count(".")
    if t in ("+", "-", "="):
        return 0.78
    return _OTHER.get(t, 0.6)


def _roman(text: str) -> float:
    text = text.replace("\\_", "_").replace("\\", "").replace(" ", "")
    return sum(_ROMAN.get(c, 0.36 if c == "_" else 0.5) for c in text)


def _text(text: str) -> float:
    text = re.sub(r"\$[^$]*\$", lambda m: "x" * max(1, int(width(m.group(0)[1:-1], 1) / 0.5)), text)
    text = re.sub(r"\\[a-zA-Z]+\s*", "", text).replace("{", "").replace("}", "")
    return sum(_ROMAN.get(c, 0.33 if c == " " else 0.5) for c in text) * 1.0


def _tall(items) -> bool:
    for n in items:
        if isinstance(n, Cmd) and n.name in ("frac", "dfrac", "sqrt"):
            return True
        if isinstance(n, Scr) and isinstance(n.base, Tok) and n.base.text in (r"\sum", r"\prod"):
            return True
        if isinstance(n, (LR, Grp)) and _tall(n.items):
            return True
        if isinstance(n, Scr) and isinstance(n.base, (LR, Grp)) and _tall(n.base.items):
            return True
    return False


def _has_big_sum(items) -> bool:
    for n in items:
        if isinstance(n, Scr) and isinstance(n.base, Tok) and n.base.text in (r"\sum", r"\prod"):
            return True
        if isinstance(n, (LR, Grp)) and _has_big_sum(n.items):
            return True
    return False


def text_width(text: str) -> float:
    """Estimated width in em of a line of text (``$…$`` math inside counts as math)."""
    return _text(text)


# -- breaking ------------------------------------------------------------------------------------
@dataclass
class _State:
    nodes: list
    next_key: int = 0
    sizes: dict = field(default_factory=dict)


def _is_break(nodes, i) -> bool:
    """A line may break before ``nodes[i]``: a binary operator after an operand (not a
    \\cdot or \\times, which bind a number to its power of ten)."""
    if i == 0 or _kind(nodes[i]) != "bin" or nodes[i].text in (r"\cdot", r"\times"):
        return False
    return _kind(nodes[i - 1]) not in ("bin", "rel", "open", "punct", "op")


def _chunks(nodes) -> list:
    out, cur = [], []
    for i, n in enumerate(nodes):
        if cur and _is_break(nodes, i):
            out.append(cur)
            cur = []
        cur.append(n)
    if cur:
        out.append(cur)
    return out


def _pack(chunks, first: float, rest: float) -> list:
    lines, cur = [], []
    for ch in chunks:
        avail = first if not lines else rest
        if cur and _seq_width(cur + ch, 0) * SAFETY > avail:
            lines.append(cur)
            cur = []
        cur = cur + ch
    if cur:
        lines.append(cur)
    return lines


def _expandable(n) -> float:
    """How much opening node ``n`` could help: its width, or 0 when it cannot be opened."""
    if isinstance(n, LR) and n.left in ("(", "[", r"\lbrace") and n.items:
        return _node_width(n, 0)
    if isinstance(n, Cmd) and n.name == "frac" and _node_width(n.args[0], 1) > _node_width(n.args[1], 1) + 1:
        return _node_width(n, 0)
    return 0.0


def _expand(state: _State, idx: int) -> None:
    n = state.nodes[idx]
    key = state.next_key
    state.next_key += 1
    if isinstance(n, LR):
        size = "" if n.plain else "Bigg" if _has_big_sum(n.items) else "bigg" if _tall(n.items) else "big"
        repl = [Open(key, n.left, size), *n.items, Close(key, n.right, size)]
    else:  # a fraction: its numerator's last bracket comes out (a/b (c - d)), else 1/den
        num, den = n.args
        if (num.items and isinstance(num.items[-1], LR) and len(num.items) <= 3
                and not (len(num.items) > 1 and _kind(num.items[-2]) == "bin")):
            head = num.items[:-1] or [Tok("1")]
            repl = [Cmd("frac", [Grp(head), den]), num.items[-1]]
        else:
            size = "Bigg" if _has_big_sum(num.items) else "bigg" if _tall(num.items) else "big"
            repl = [Cmd("frac", [Grp([Tok("1")]), den]), Open(key, "(", size), *num.items, Close(key, ")", size)]
    state.nodes[idx:idx + 1] = repl


def fit(tex: str, first: float, rest: float | None = None, max_lines: int = 12) -> list:
    """``tex`` broken into lines no wider than ``first`` em (the first line) and ``rest`` em
    (each further line; default ``first``). Lines after the first begin with the operator
    they break before. A formula that cannot be broken comes back whole."""
    rest = first if rest is None else rest
    state = _State(parse(tex))
    if _seq_width(state.nodes, 0) * SAFETY <= first:
        return [tex.strip()]
    for _ in range(40):
        lines = _pack(_chunks(state.nodes), first, rest)
        over = [k for k, line in enumerate(lines) if _seq_width(line, 0) * SAFETY > (first if k == 0 else rest)]
        if not over or len(lines) > max_lines:
            break
        line = lines[over[0]]
        # the widest node of the overflowing line that can be opened
        best, best_w = None, 0.0
        for n in line:
            w = _expandable(n)
            if w > best_w:
                best, best_w = n, w
        if best is None:
            break
        _expand(state, next(i for i, n in enumerate(state.nodes) if n is best))
    return [_render_line(line, lines) for line in lines]


def _render_line(line, lines) -> str:
    keys_here = {n.key for n in line if isinstance(n, Open)} & {n.key for n in line if isinstance(n, Close)}
    out = []
    for n in line:
        if isinstance(n, (Open, Close)) and n.key in keys_here and n.size:
            out.append(Tok(("\\left" if isinstance(n, Open) else "\\right") + _delim_tex(n.delim).rstrip()
                           + (" " if n.delim.startswith("\\") else "")))
        else:
            out.append(n)
    if len(out) > 1 and isinstance(out[0], Tok) and out[0].text in _BINARY:  # "- C", the operator broken before
        return (out[0].text + " " + to_tex(out[1:])).strip()
    return to_tex(out).strip()


def fits(tex: str, first: float, rest: float | None = None) -> bool:
    """Whether :func:`fit` can break ``tex`` into lines within the widths."""
    rest = first if rest is None else rest
    lines = fit(tex, first, rest)
    return all(width(ln) <= (first if k == 0 else rest) for k, ln in enumerate(lines))


def shorten(tex: str, first: float, rest: float, names) -> tuple:
    """``tex`` with its widest bracketed group replaced by a name from ``names`` (an iterator
    of ``(name_tex)``), when :func:`fit` cannot break it within the widths; returns the new
    text and ``[(name, group)]`` (empty when nothing was named)."""
    if fits(tex, first, rest):
        return tex, []
    nodes = parse(tex)
    found = []  # (width, setter, group)

    def walk(seq):
        for i, n in enumerate(seq):
            if isinstance(n, LR):
                after_function = i > 0 and _kind(seq[i - 1]) == "op"
                if not after_function:  # exp(…) keeps its argument
                    found.append((_node_width(n, 0), (seq, i), n))
                walk(n.items)
            elif isinstance(n, Scr):
                if isinstance(n.base, LR):
                    if not (i > 0 and _kind(seq[i - 1]) == "op"):
                        found.append((_node_width(n.base, 0), (n, "base"), n.base))
                    walk(n.base.items)
                elif isinstance(n.base, Grp):
                    walk(n.base.items)
            elif isinstance(n, Grp):
                walk(n.items)
            elif isinstance(n, Cmd) and n.raw is None:
                for a in n.args:
                    walk(a.items)

    walk(nodes)
    whole = _seq_width(nodes, 0)
    usable = [f for f in found if 3.0 <= f[0] and f[0] < whole - 2.0]
    if not usable:
        return tex, []
    _, (holder, key), group = max(usable, key=lambda f: f[0])
    name = next(names)
    named = Tok(name)
    if key == "base":
        holder.base = named
    else:
        holder[key] = named
    return to_tex(nodes), [(name, to_tex(group.items))]
