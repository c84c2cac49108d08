"""The layer rule of deltagrad, checked: every import looks down, and no import cycle exists.

Imports are read from every ``import`` statement of every module, including those inside
functions (an import that runs late still ties the modules together). The layers, bottom up:

====  ==========================================  ==========================================
 0    ``errors``, ``files``, ``op_base``, ``dev``  plain helpers: no deltagrad import but these
 1    ``derive``, ``op_table``, ``vugrad_table``   spec → derivation → array program, as data
 2    ``codegen``                                  printers and templates over that data
 3    ``api``, the package ``__init__``             conveniences on a derivation (compile, LaTeX)
 4    ``check``                                    verdicts on claims and code, as data
 5    ``generated``                                codegen's output: needs only ``op_base``
 6    ``nn``                                       the runtime: graph, modules, optimisers, data
 7    ``cli``                                      the only module that prints
====  ==========================================  ==========================================

A module may import its own layer and those below; ``generated`` may import only ``op_base``
and ``errors``, and nothing but ``nn`` and ``cli`` may import ``generated``.

>>> report = check_layers()
>>> report.cycles, report.upward
([], [])

Run ``python -m deltagrad.dev.layers`` for the same check with a printed report (exit 1 on a
violation).
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]

LAYERS = {
    "errors": 0, "files": 0, "op_base": 0, "dev": 0,
    "derive": 1, "op_table": 1, "vugrad_table": 1,
    "codegen": 2,
    "api": 3, "__init__": 3,
    "check": 4,
    "generated": 5,
    "nn": 6,
    "cli": 7,
}
GENERATED_MAY_IMPORT = {"op_base", "errors"}


@dataclass(frozen=True)
class LayerReport:
    """What :func:`check_layers` found: module → imported deltagrad modules, and the violations."""

    imports: dict
    upward: list
    cycles: list


def module_name(path: Path, package: Path = PACKAGE) -> str:
    """The dotted module name of a file in the package.

    >>> module_name(PACKAGE / "derive" / "spec.py")
    'deltagrad.derive.spec'
    >>> module_name(PACKAGE / "check" / "__init__.py")
    'deltagrad.check'
    """
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, modules: set, package: Path = PACKAGE) -> set:
    """The deltagrad modules that the file at ``path`` imports, anywhere in its body."""
    name = module_name(path, package)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")
                up = up[: len(up) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for t in targets:
            while t and t not in modules:  # `from pkg import name`: name may be a module or not
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    # a module imports the packages above it implicitly; those edges are not the module's choice
    return {m for m in found if not name.startswith(m + ".")}


def layer_of(module: str) -> tuple:
    """(layer number, top-level part) of a dotted deltagrad module name.

    >>> layer_of("deltagrad.codegen.latex"), layer_of("deltagrad")
    ((2, 'codegen'), (3, '__init__'))
    """
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    return LAYERS[top], top


def check_layers(package: Path = PACKAGE) -> LayerReport:
    """Read every module's imports; list upward imports and import cycles."""
    files = sorted(p for p in package.rglob("*.py") if "__pycache__" not in p.parts)
    modules = {module_name(p, package) for p in files}
    imports = {module_name(p, package): sorted(imported_modules(p, modules, package)) for p in files}
    upward = []
    for mod, deps in imports.items():
        (low, top) = layer_of(mod)
        for dep in deps:
            (dlow, dtop) = layer_of(dep)
            if top == "generated":
                bad = dtop not in GENERATED_MAY_IMPORT and dtop != "generated"
            else:
                bad = dlow > low or (dtop == "generated" and top not in ("nn", "cli"))
            if bad:
                upward.append((mod, dep))
    return LayerReport(imports, upward, _cycles(imports))


def _cycles(graph: dict) -> list:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def main() -> int:
    report = check_layers()
    for mod, dep in report.upward:
        print(f"upward import: {mod} -> {dep} (layer {layer_of(mod)[0]} -> {layer_of(dep)[0]})")
    for comp in report.cycles:
        print("import cycle: " + " <-> ".join(comp))
    print(f"{len(report.imports)} modules, {len(report.upward)} upward imports, {len(report.cycles)} import cycles")
    return 1 if report.upward or report.cycles else 0


if __name__ == "__main__":
    sys.exit(main())
