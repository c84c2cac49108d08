"""The ``deltagrad`` command: thin, it parses options, calls the library and prints."""

from __future__ import annotations

import sys

import click

from deltagrad.errors import SpecError

DERIVE_EXAMPLES = """
\b
Examples:
  deltagrad derive "Y[i,j] = X[i,j] / Z[i,j]"
  deltagrad derive "Y[i,j] = Sum(X[i,k]*W[k,j], k)" --wrt W
  deltagrad derive "Y[i,j] = exp(X[i,j]) / Sum(exp(X[i,k]), k)" --format numpy
  deltagrad derive "L = -Sum(T[i,j]*log(P[i,j]), i, j)" --inputs P,T
  deltagrad derive "Y[i,j] = x[i]" --steps

\b
Spec syntax: OUT[i,j] = EXPR (or OUT = EXPR for a scalar). EXPR uses tensors
indexed by names or integers (X[i,0,j]), scalar names, numbers, + - * / **,
Sum(expr, k, ...), exp log sqrt tanh sin cos Abs Max Min Heaviside.
An output index that no input carries becomes a keyword argument of forward.
At a kink, Heaviside(0) = 1/2: Max/Min split the gradient between tied arguments.
"""


@click.group()
@click.version_option(package_name="deltagrad")
def main():
    """deltagrad: derive verified backward rules and readable array code from a forward spec."""


def _fail(err: Exception, code: int):
    click.echo(f"error: {err}", err=True)
    sys.exit(code)


@main.command(epilog=DERIVE_EXAMPLES)
@click.argument("spec")
@click.option("--wrt", help="Only the gradient of this input.")
@click.option("--format", "fmt", type=click.Choice(["text", "numpy"]), default="text", show_default=True,
              help="text: index notation and the numpy it lowers to; numpy: the generated Op class.")
@click.option("--name", help="The op's name (default: the output's name).")
@click.option("--inputs", help="Comma-separated argument order (default: order of first appearance).")
@click.option("--steps", is_flag=True, help="Also print the chain rule and the delta-elimination steps.")
def derive(spec, wrt, fmt, name, inputs, steps):
    """Derive the backward of SPEC for each input."""
    from deltagrad.derive.derivation import derive as run_derive
    from deltagrad.derive.lower import LoweringError

    try:
        order = [s.strip() for s in inputs.split(",")] if inputs else None
        d = run_derive(spec, name=name, inputs=order)
        if wrt is not None:
            d.spec.input(wrt)
    except SpecError as err:
        _fail(err, 2)
    except LoweringError as err:
        _fail(err, 1)
    click.echo(render_text(d, wrt, steps) if fmt == "text" else render_numpy(d, wrt))


def render_text(d, wrt=None, steps=False) -> str:
    """The derivation as text: the forward, then per input its backward and numpy lines."""
    from deltagrad.codegen.index_printer import index_text

    lines = [f"{index_text(d.spec.lhs)} = {index_text(d.spec.rhs)}", ""]
    for name, st in d.steps.items():
        if wrt not in (None, name):
            continue
        idx = ",".join(i.name for i in st.indices)
        lhs = f"d{name}[{idx}]" if idx else f"d{name}"
        if steps:
            lines.append(f"{lhs} = {index_text(st.chain_rule)}    (chain rule)")
            lines.append(f"{' ' * len(lhs)} = {index_text(st.eliminated)}    (deltas eliminated)")
            lines.append(f"{' ' * len(lhs)} = {index_text(st.simplified)}    (simplified)")
            lines.append(f"{' ' * len(lhs)} = {index_text(st.final)}    (through saved values)")
        else:
            lines.append(f"{lhs} = {index_text(st.final)}")
        for code in d.numpy(name).splitlines():
            lines.append(f"    {code}")
        lines.append("")
    saved = ", ".join(d.saved) or "nothing"
    lines.append(f"forward saves: {saved}; G is the gradient of {d.output} (goutput in code)")
    return "\n".join(lines)


def render_numpy(d, wrt=None) -> str:
    """The generated Op class, or only the backward lines of one input."""
    if wrt is not None:
        return d.numpy(wrt)
    from deltagrad.codegen.op_class import HEADER

    return HEADER + "\n\n" + d.source()


if __name__ == "__main__":  # pragma: no cover
    main()
