"""The ``deltagrad`` command: thin, it parses options, calls the library and prints."""

from __future__ import annotations

import sys
from contextlib import contextmanager

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
@click.option("--budget", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True,
              help="Seconds a derivation may take before the spec is refused.")
@click.option("--latex", "as_latex", is_flag=True, help="Print the LaTeX write-up (a fragment) instead.")
def derive(spec, wrt, fmt, name, inputs, steps, budget, as_latex):
    """Derive the backward of SPEC for each input."""
    d = _derive_or_exit(spec, name, inputs, budget)
    if wrt is not None:
        with _exit_on_spec_errors():
            d.spec.input(wrt)
    if as_latex:
        click.echo(d.latex(fragment=True), nl=False)
        return
    from deltagrad.codegen.text import derivation_text

    click.echo(derivation_text(d, wrt, steps) if fmt == "text" else render_numpy(d, wrt))


@contextmanager
def _exit_on_spec_errors():
    """A bad spec or claim exits 2 with its one line; what the lowering cannot do exits 1."""
    from deltagrad.derive.lower import LoweringError

    try:
        yield
    except SpecError as err:
        _fail(err, 2)
    except LoweringError as err:
        _fail(err, 1)


def _derive_or_exit(spec, name, inputs, budget=10.0):
    from deltagrad.api import derive as run_derive

    with _exit_on_spec_errors():
        order = [s.strip() for s in inputs.split(",")] if inputs else None
        return run_derive(spec, name=name, inputs=order, budget=budget)


LATEX_EXAMPLES = """
\b
Examples:
  deltagrad latex "Y[i,j] = X[i,j] / Sum(X[i,k], k)" -o normalize.tex && pdflatex normalize.tex
  deltagrad latex "Y[i,j] = 1/(1 + exp(-X[i,j]))" --fragment >> writeup.tex
"""


@main.command(epilog=LATEX_EXAMPLES)
@click.argument("spec")
@click.option("-o", "--out", "outfile", type=click.Path(dir_okay=False), help="Write here (atomically) instead of stdout.")
@click.option("--budget", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True,
              help="Seconds a derivation may take before the spec is refused.")
@click.option("--fragment", is_flag=True, help="Only the body, to \\input into your own document.")
@click.option("--name", help="The op's name (default: the output's name).")
@click.option("--inputs", help="Comma-separated argument order.")
def latex(spec, outfile, budget, fragment, name, inputs):
    """Write the derivation of SPEC as LaTeX: a standalone amsmath document by default."""
    d = _derive_or_exit(spec, name, inputs, budget)
    text = d.latex(fragment=fragment)
    if outfile:
        from deltagrad.files import write_atomic

        write_atomic(outfile, text)
        click.echo(f"wrote {outfile}")
    else:
        click.echo(text, nl=False)


CODEGEN_EXAMPLES = """
\b
Examples:
  deltagrad codegen -o deltagrad/generated          # the standard op table
  deltagrad codegen "softplus: Y[i,j] = log(1 + exp(X[i,j]))" -o myops
  deltagrad codegen standard "gelu: Y[i,j] = X[i,j] / (1 + exp(-1.702*X[i,j]))" -o myops
  deltagrad codegen --latex docs/derivations        # one .tex per standard op + all.tex

\b
Each SPEC may be prefixed by a name and a colon (NAME: SPEC); the word 'standard'
stands for the whole standard table. -o writes ops.py, op_base.py and __init__.py.
"""


def parse_entries(items):
    """Op entries from command-line items: 'standard', 'NAME: SPEC' or 'SPEC'."""
    from deltagrad.op_table import STANDARD_OPS, OpEntry

    entries = []
    for item in items or ["standard"]:
        if item.strip() == "standard":
            entries.extend(STANDARD_OPS)
            continue
        name, sep, spec = item.partition(":")
        if sep and name.strip().isidentifier():
            entries.append(OpEntry(name.strip(), spec.strip()))
        else:
            entries.append(OpEntry("", item.strip()))
    from deltagrad.derive.parse import parse_spec

    return [e if e.name else OpEntry(parse_spec(e.spec).output, e.spec) for e in entries]


@main.command(epilog=CODEGEN_EXAMPLES)
@click.argument("specs", nargs=-1)
@click.option("-o", "--out", "outdir", type=click.Path(file_okay=False), help="Write the Python package here.")
@click.option("--latex", "latexdir", type=click.Path(file_okay=False), help="Write one .tex per op and all.tex here.")
def codegen(specs, outdir, latexdir):
    """Render ops (the standard table by default) as Python Op classes and/or LaTeX."""
    from deltagrad.codegen.module import render_package, standard_package, write_package

    if not outdir and not latexdir:
        _fail(click.UsageError("give -o DIR for the Python package and/or --latex DIR for the write-ups"), 2)
    with _exit_on_spec_errors():
        entries = parse_entries(specs)
        if outdir:
            files = standard_package() if not specs or list(specs) == ["standard"] else render_package(
                entries, source="specs given to `deltagrad codegen`",
                how_to_regenerate="rerun `deltagrad codegen` with the same specs.")
            for path in write_package(files, outdir):
                click.echo(f"wrote {path}")
        if latexdir:
            from deltagrad.codegen.latex import write_latex_dir

            for path in write_latex_dir(entries, latexdir):
                click.echo(f"wrote {path}")


TRAIN_EXAMPLES = """
\b
Examples:
  deltagrad train --hidden 300 --activation relu --optimizer adam --lr 1e-3 \\
      --epochs 5 --batch-size 128 --device cpu --seed 0 --out runs/relu
  deltagrad train --epochs 3 --compare activation=sigmoid,relu --out runs/act
  deltagrad train --optimizer sgd --lr 0.05 --compare momentum=0,0.5,0.9 --out runs/mom
  deltagrad train --compare init=glorot,normal,zeros --out runs/init
  deltagrad train --compare hidden=100,300,300-100 --out runs/width
  deltagrad evaluate runs/relu

\b
MNIST is read from --data-dir, $DELTAGRAD_DATA or the cache folder, and downloaded
(and checked against its SHA-256) when missing. --synthetic trains on a quick
synthetic stand-in instead.
"""


def _hidden(text: str) -> tuple:
    from deltagrad.nn.train import parse_hidden

    try:
        return parse_hidden(text)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None


@main.command(epilog=TRAIN_EXAMPLES)
@click.option("--hidden", default="300", show_default=True, help="Hidden widths, e.g. 300 or 300,100.")
@click.option("--activation", type=click.Choice(["relu", "sigmoid", "tanh"]), default="relu", show_default=True)
@click.option("--optimizer", type=click.Choice(["sgd", "momentum", "adam"]), default="adam", show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--momentum", type=float, default=0.0, show_default=True, help="SGD momentum (0.9 for --optimizer momentum).")
@click.option("--epochs", type=click.IntRange(1), default=5, show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=128, show_default=True)
@click.option("--init", type=click.Choice(["glorot", "normal", "zeros"]), default="glorot", show_default=True)
@click.option("--residual", is_flag=True, help="Add skip connections between hidden layers of equal width.")
@click.option("--device", type=click.Choice(["cpu", "cuda", "array-api-strict"]), default="cpu", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--data-dir", type=click.Path(file_okay=False), help="Folder with the MNIST IDX files.")
@click.option("--synthetic", is_flag=True, help="Train on a synthetic stand-in for MNIST.")
@click.option("--limit", type=click.IntRange(1), help="Use only the first N training images (validation included).")
@click.option("--compare", "compare_spec", help="KEY=V1,V2,...: one run per value, one overlay plot.")
@click.option("--out", "out", type=click.Path(file_okay=False), default="runs/latest", show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bars.")
def train(hidden, activation, optimizer, lr, momentum, epochs, batch_size, init, residual, device, seed,
          data_dir, synthetic, limit, compare_spec, out, quiet):
    """Train an MLP on MNIST with the generated ops only."""
    from deltagrad.nn import train as T
    from deltagrad.nn.backend import DeviceError, namespace
    from deltagrad.nn.data import DataError

    config = T.TrainConfig(hidden=_hidden(hidden), activation=activation, optimizer=optimizer, lr=lr,
                           momentum=momentum, epochs=epochs, batch_size=batch_size, init=init, residual=residual,
                           device=device, seed=seed, data="synthetic" if synthetic else "mnist", data_dir=data_dir,
                           limit=limit)
    try:
        namespace(device)
        if compare_spec:
            key, values = T.parse_compare(compare_spec)
            runs = T.compare(config, key, values, out, progress=not quiet)
            for label, r in runs.items():
                m = r.metrics[-1]
                click.echo(f"{label}: train loss {m['train_loss']:.4f}, val {m['val_accuracy']:.4f}, "
                           f"test {m['test_accuracy']:.4f}")
            click.echo(f"overlay plots: {out}/compare_loss.png, {out}/compare_accuracy.png")
        else:
            r = T.train(config, out, progress=not quiet)
            m = r.metrics[-1]
            click.echo(f"epoch {m['epoch']}: train loss {m['train_loss']:.4f}, val accuracy {m['val_accuracy']:.4f}, "
                       f"test accuracy {m['test_accuracy']:.4f} ({m['seconds']:.1f} s/epoch)")
            click.echo(f"wrote {out}/metrics.json, metrics.csv, loss.png, accuracy.png, model.npz")
    except (DeviceError, DataError, ValueError) as err:
        _fail(err, 1)


@main.command()
@click.argument("run", type=click.Path(exists=True))
@click.option("--data-dir", type=click.Path(file_okay=False), help="Folder with the MNIST IDX files.")
@click.option("--device", type=click.Choice(["cpu", "cuda", "array-api-strict"]), help="Override the run's device.")
def evaluate(run, data_dir, device):
    """Test accuracy of a saved model (a run folder or its model.npz)."""
    from pathlib import Path

    from deltagrad.nn import train as T
    from deltagrad.nn.backend import DeviceError
    from deltagrad.nn.data import DataError

    path = Path(run)
    path = path / "model.npz" if path.is_dir() else path
    try:
        acc = T.evaluate(path, data_dir, device)
    except (DeviceError, DataError, ValueError, OSError, KeyError) as err:
        _fail(err, 1)
    click.echo(f"test accuracy {acc:.4f} ({path})")


CHECK_EXAMPLES = """
\b
Examples:
  deltagrad check "Y[i,j] = X[i,j] / Z[i,j]" --claim "dZ[a,b] = -G[a,b]*X[a,b]/Z[a,b]**2"
  deltagrad check "Y[i,j] = Sum(X[i,k]*W[k,j], k)" --claim "dW[a,b] = Sum(X[i,a]*G[i,b], i)"
  deltagrad check "Y[i,j] = 1/(1+exp(-X[i,j]))" --code my_ops.py:Sigmoid
  deltagrad check --batch homework.toml --format json

\b
A claim names an input's gradient on the left (d + the input's name, its indices
bound by position) and may use G (the output's gradient; --grad-name changes the
letter), the spec's inputs, Sum and the spec functions on the right.
--code FILE.py:ClassName IMPORTS AND RUNS your file (as python would), then runs the
class's forward and backward on random inputs and compares them with the derived op.
Exit code: 0 every claim correct, 1 one is not, 2 a bad claim, spec or file.
"""


@main.command(epilog=CHECK_EXAMPLES)
@click.argument("spec", required=False)
@click.option("--claim", "claims", multiple=True, help='A claimed gradient, e.g. "dX[a,b] = G[a,b]/Z[a,b]".')
@click.option("--code", "code", help="FILE.py:ClassName of a hand-written Op (runs that file).")
@click.option("--grad-name", default="G", show_default=True, help="The letter claims use for the output's gradient.")
@click.option("--inputs", help="Comma-separated argument order (for --code).")
@click.option("--batch", type=click.Path(dir_okay=False), help="A TOML or YAML file of (spec, claims/code) entries.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def check(spec, claims, code, grad_name, inputs, batch, fmt):
    """Check hand-derived gradients (claims or code) against the derived backward of SPEC."""
    import json

    from deltagrad.codegen import verdict_text as words

    if batch:
        from deltagrad.check.batch import count_statuses, run_batch

        try:
            results = run_batch(batch)
        except (SpecError, OSError) as err:
            _fail(err, 2)
        counts = count_statuses(results)
        if fmt == "json":
            click.echo(json.dumps({"results": [words.batch_result_dict(r) for r in results], "summary": counts},
                                  indent=2))
        else:
            for r in results:
                click.echo(words.batch_line(r))
            click.echo(words.batch_summary_text(counts))
        sys.exit(2 if counts["error"] else 1 if counts["incorrect"] else 0)
    if not spec or not (claims or code):
        _fail(click.UsageError("give SPEC with --claim and/or --code, or --batch FILE"), 2)
    from deltagrad.check.claims import check_claim
    from deltagrad.check.code import check_code, load_op

    d = _derive_or_exit(spec, None, inputs)
    verdicts = []
    with _exit_on_spec_errors():
        for c in claims:
            verdicts.append(check_claim(d, c, grad_name))
        if code:
            op, file = load_op(code)
            verdicts += check_code(d, op, file)
    if fmt == "json":
        click.echo(json.dumps([words.verdict_dict(v) for v in verdicts], indent=2))
    else:
        for v in verdicts:
            click.echo(words.verdict_text(v))
    sys.exit(0 if all(v.correct for v in verdicts) else 1)


def render_numpy(d, wrt=None) -> str:
    """The generated Op class, or only the backward lines of one input."""
    if wrt is not None:
        return d.numpy(wrt)
    from deltagrad.codegen.op_class import HEADER

    return HEADER + "\n\n" + d.source()


if __name__ == "__main__":  # pragma: no cover
    main()
