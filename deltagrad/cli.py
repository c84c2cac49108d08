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
indexed by names or integers (X[i,0,j]: entry 0), scalar names, numbers, + - * / **,
Sum(expr, k, ...), Max/Min(expr, k, ...), gathers X[i, t[i]] by an integer input t,
exp log sqrt tanh sin cos Abs Max Min Heaviside, erf erfc
asin acos atan sinh cosh asinh acosh atanh log1p expm1 sigmoid softplus sign,
where(A > B, P, Q) (also <, <=, >=), and F(...) for each --function F.
_ is an axis of size one: Y[i,j] = X[i,_,j] squeezes, Y[i,_,j] = X[i,j] unsqueezes.
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
@click.option("--format", "fmt", type=click.Choice(["text", "numpy", "torch", "jax", "latex"]), default="text",
              show_default=True,
              help="text: index notation and the numpy it lowers to; numpy: the generated Op class; torch: a "
                   "torch.autograd.Function and its function; jax: a jax.custom_vjp function; latex: the LaTeX "
                   "write-up (a fragment, as --latex; `deltagrad latex` writes a whole document).")
@click.option("--name", help="The op's name (default: the output's name).")
@click.option("--inputs", help="Comma-separated argument order (default: order of first appearance).")
@click.option("--steps", is_flag=True, help="Also print the chain rule and the delta-elimination steps.")
@click.option("--budget", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True,
              help="Seconds a derivation may take before the spec is refused.")
@click.option("--latex", "as_latex", is_flag=True, help="Print the LaTeX write-up (a fragment) instead.")
@click.option("--function", "functions", multiple=True,
              help="Declare a generic function F that SPEC may call, F(X[i,j]); its derivative is written F_prime.")
def derive(spec, wrt, fmt, name, inputs, steps, budget, as_latex, functions):
    """Derive the backward of SPEC for each input."""
    d = _derive_or_exit(spec, name, inputs, budget, functions)
    if wrt is not None:
        with _exit_on_spec_errors():
            d.spec.input(wrt)
    if as_latex or fmt == "latex":
        click.echo(d.latex(fragment=True), nl=False)
        return
    from deltagrad.codegen.text import derivation_text

    if fmt in ("torch", "jax"):
        with _exit_on_spec_errors():
            text = render_target(d, fmt, wrt)
        click.echo(text)
        return
    click.echo(derivation_text(d, wrt, steps) if fmt == "text" else render_numpy(d, wrt))


@contextmanager
def _exit_on_spec_errors():
    """A bad spec or claim exits 2 with its one line (what the lowering cannot do included)."""
    try:
        yield
    except SpecError as err:
        _fail(err, 2)


def _derive_or_exit(spec, name, inputs, budget=10.0, functions=()):
    from deltagrad.api import derive as run_derive

    with _exit_on_spec_errors():
        order = [s.strip() for s in inputs.split(",")] if inputs else None
        return run_derive(spec, name=name, inputs=order, budget=budget, functions=functions)


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
@click.option("--function", "functions", multiple=True, help="Declare a generic function F that SPEC may call.")
def latex(spec, outfile, budget, fragment, name, inputs, functions):
    """Write the derivation of SPEC as LaTeX: a standalone amsmath document by default."""
    d = _derive_or_exit(spec, name, inputs, budget, functions)
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
  deltagrad codegen --target torch -o torch_ops      # the standard table as torch.autograd.Functions
  deltagrad codegen --target jax "gelu: Y[i,j] = X[i,j]/(1 + exp(-1.702*X[i,j]))" -o jax_ops
  deltagrad codegen --target vugrad -o out          # out/ops.py: a drop-in for vugrad/ops.py

\b
Each SPEC may be prefixed by a name and a colon (NAME: SPEC); the word 'standard'
stands for the whole standard table. -o writes ops.py, op_base.py and __init__.py
(with --target vugrad: ops.py alone, from deltagrad/vugrad_table.py).
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
@click.option("--target", type=click.Choice(["numpy", "torch", "jax", "vugrad"]), default="numpy", show_default=True,
              help="numpy: vugrad-style Op classes; torch: torch.autograd.Functions; jax: jax.custom_vjp functions; "
                   "vugrad: DIR/ops.py, a drop-in for vugrad's vugrad/ops.py (from deltagrad/vugrad_table.py).")
@click.option("--latex", "latexdir", type=click.Path(file_okay=False), help="Write one .tex per op and all.tex here.")
def codegen(specs, outdir, target, latexdir):
    """Render ops (the standard table by default) as Python Op classes (or PyTorch / JAX ops)
    and/or LaTeX."""
    from deltagrad.codegen.module import render_package, standard_package, write_package

    if not outdir and not latexdir:
        _fail(click.UsageError("give -o DIR for the Python package and/or --latex DIR for the write-ups"), 2)
    with _exit_on_spec_errors():
        entries = parse_entries(specs)
        standard = not specs or list(specs) == ["standard"]
        if outdir and target == "vugrad":
            if specs:
                _fail(click.UsageError("--target vugrad renders vugrad's op table (deltagrad/vugrad_table.py); "
                                       "give no specs"), 2)
            from deltagrad.codegen.vugrad_target import render_vugrad_package

            for path in write_package(render_vugrad_package(), outdir):
                click.echo(f"wrote {path}")
        elif outdir and target != "numpy":
            from deltagrad.codegen.framework_package import render_target_package, standard_target_package

            files = standard_target_package(target) if standard else render_target_package(
                entries, target, source="specs given to `deltagrad codegen`")
            for path in write_package(files, outdir):
                click.echo(f"wrote {path}")
        elif outdir:
            files = standard_package() if standard else render_package(
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
  deltagrad train --compare activation=sigmoid,relu --compare hidden=100,300-100 \\
      --seeds 3 --out runs/grid
  deltagrad train --compare optimizer=sgd,momentum,adam,rmsprop --out runs/opt
  deltagrad train --preset vugrad --epochs 1 --out runs/vugrad
  deltagrad train --resume runs/relu
  deltagrad evaluate runs/relu

\b
Every option is checked before any data is read (exit 2 with one line).
--compare KEY=V1,V2 may be given several times: every combination runs, each in
its own folder, with overlay plots and summary.csv/summary.md in --out.
Ctrl-C or SIGTERM keeps the last finished epoch's model, metrics and plots;
--resume FOLDER continues the run (or grid) with the numbers it would have had.
MNIST is read from --data-dir, $DELTAGRAD_DATA or the cache folder, and downloaded
(and checked against its SHA-256) when missing. --synthetic trains on a quick
synthetic stand-in instead.
"""


class _OneLineErrors(click.Command):
    """A command whose usage errors (a bad type, an unknown option) are one line and exit 2."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as err:
            _fail(err.format_message(), 2)


#: What ``--resume`` accepts beside the run folder; the rest comes from the run.
RESUME_OPTIONS = ("resume", "epochs", "data_dir", "quiet")


@main.command(cls=_OneLineErrors, epilog=TRAIN_EXAMPLES)
@click.option("--model", help="mlp, or cnn: [conv k×k, activation, 2×2 pool] per --channels, then --hidden (the "
              "seeds' LeNet: 6,16 channels, 5×5, 120,84).  [default: mlp]")
@click.option("--channels", help="The CNN's convolution channels, e.g. 6,16.  [default: 6,16]")
@click.option("--kernel", type=int, help="The CNN's kernel side.  [default: 5]")
@click.option("--pool", help="The CNN's 2×2 pooling: max (the seeds') or avg.  [default: max]")
@click.option("--shift", type=int, help="Move each training image by up to N pixels each way (a new random "
              "offset per image and epoch; border blank), as data augmentation.  [default: 0; 1 for --model cnn]")
@click.option("--hidden", help="Hidden widths, e.g. 300 or 300,100.  [default: 300; 120,84 for --model cnn]")
@click.option("--activation", help="sigmoid, relu or tanh (those with a generated op).  [default: relu]")
@click.option("--optimizer", help="sgd, momentum (SGD with 0.9), adam or rmsprop.  [default: adam]")
@click.option("--lr", type=float, help="Learning rate.  [default: the optimiser's: sgd 0.1, momentum 0.01, "
              "adam 0.001, rmsprop 0.001]")
@click.option("--lr-decay", "lr_decay", type=float,
              help="Multiply the learning rate by this after each epoch (epoch e runs at lr * decay**(e-1)).  "
                   "[default: 1; 0.7 for --model cnn]")
@click.option("--momentum", type=float, help="SGD momentum, in [0, 1).  [default: 0; 0.9 for --optimizer momentum]")
@click.option("--epochs", type=int, help="[default: 5]")
@click.option("--batch-size", type=int, help="[default: 128; 64 for --model cnn]")
@click.option("--init", help="glorot (uniform), glorot_normal, he (uniform, for ReLU), torch (PyTorch's default, biases too), normal or zeros.  [default: glorot]")
@click.option("--residual/--no-residual", default=None, help="Skip connections between hidden layers of equal width.")
@click.option("--loss", help="The batch's cross-entropy: mean or sum.  [default: mean]")
@click.option("--pixels", help="unit (0 to 1), raw (0 to 255) or standard (MNIST's mean 0.1307 and s.d. 0.3081 to 0 and 1).  [default: unit; standard for --model cnn]")
@click.option("--dtype", help="float32 or float64.  [default: float32]")
@click.option("--shuffle/--no-shuffle", default=None, help="A new order of the training images each epoch, or "
              "the files' order.  [default: shuffle]")
@click.option("--preset", help="Defaults from other code, under explicit options: vugrad (784-3136-10 sigmoid, "
              "SGD lr 1e-4, summed loss, raw pixels, float64, no shuffling, Glorot-normal init, 55k/5k split).")
@click.option("--device", help="cpu, cuda or array-api-strict.  [default: cpu]")
@click.option("--seed", type=int, help="[default: 0]")
@click.option("--seeds", type=int, default=1, show_default=True,
              help="Repeat each setting with N seeds (--seed, --seed + 1, ...); plots show mean ± s.d.")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Folder with the MNIST IDX files.")
@click.option("--synthetic", is_flag=True, help="Train on a synthetic stand-in for MNIST.")
@click.option("--limit", type=int, help="Use only the first N training images (a tenth of them for validation).")
@click.option("--compare", "compares", multiple=True,
              help="KEY=V1,V2,...: one run per value; several --compare: every combination.")
@click.option("--resume", type=click.Path(file_okay=False),
              help="Continue the run or grid in this folder from its last finished epoch (with --epochs: train on).")
@click.option("--out", "out", type=click.Path(file_okay=False), default="runs/latest", show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bars.")
def train(model, channels, kernel, pool, shift, hidden, activation, optimizer, lr, lr_decay, momentum, epochs, batch_size, init, residual, loss, pixels, dtype,
          shuffle, preset, device, seed, seeds, data_dir, synthetic, limit, compares, resume, out, quiet):
    """Train an MLP on MNIST with the generated ops only (or a grid of them)."""
    from click.core import ParameterSource

    from deltagrad.nn.backend import DeviceError, namespace
    from deltagrad.nn.config import ConfigError, check_config, make_config, model_defaults, option, resolve
    from deltagrad.nn.grid import plan_grid
    from deltagrad.nn.runs import RunFileError

    ctx = click.get_current_context()
    explicit = [n for n in ctx.params if ctx.get_parameter_source(n) not in (ParameterSource.DEFAULT, None)]
    try:
        if resume:
            others = [option(n) for n in explicit if n not in RESUME_OPTIONS]
            if others:
                raise ConfigError(f"--resume continues {resume} with its own settings: leave out {', '.join(others)} "
                                  "(only --epochs, --data-dir and --quiet go with it)")
            plan, single, out = _resume_plan(resume, epochs, data_dir)
        else:
            config = make_config(
                preset, hidden=None if hidden is None else _widths(hidden), activation=activation,
                optimizer=optimizer, lr=lr, lr_decay=lr_decay, momentum=momentum, epochs=epochs, batch_size=batch_size,
                init=init, residual=residual, loss=loss, pixels=pixels, dtype=dtype, shuffle=shuffle, device=device,
                seed=seed, data="synthetic" if synthetic else None, data_dir=data_dir, limit=limit, model=model,
                channels=None if channels is None else _widths(channels, "--channels"), kernel=kernel, pool=pool, shift=shift)
            if compares or seeds != 1:
                keep = [n for n in model_defaults("cnn") if n in explicit]  # a run of another model keeps them
                plan, single = plan_grid(config, compares, seeds, keep), None
            else:
                plan, single = None, resolve(config)
                check_config(single)
        namespace((single or (plan and plan.base)).device)
    except (ConfigError, RunFileError) as err:
        _fail(err, 2)
    except DeviceError as err:
        _fail(err, 1)
    if plan is not None:
        _train_grid(plan, out, quiet, bool(resume))
    else:
        _train_one(single, out, quiet, bool(resume))


def _widths(text: str, flag: str = "--hidden") -> tuple:
    from deltagrad.nn.config import ConfigError, parse_hidden

    try:
        return parse_hidden(text)
    except ConfigError as err:
        raise ConfigError(f"{flag} {err}") from None


def _resume_plan(folder, epochs, data_dir):
    """(grid plan or None, single config or None, folder) of a folder to resume, overrides applied."""
    from dataclasses import replace
    from pathlib import Path

    from deltagrad.nn.config import check_config, make_config
    from deltagrad.nn.grid import GRID, plan_grid, read_grid
    from deltagrad.nn.runs import CONFIG, RunFileError, read_config

    path = Path(folder)
    changes = {k: v for k, v in (("epochs", epochs), ("data_dir", data_dir)) if v is not None}
    if "data_dir" in changes:
        changes["data_dir"] = make_config(data_dir=data_dir).data_dir
    if (path / GRID).exists():
        g = read_grid(path)
        return plan_grid(replace(g["base"], **changes), g["compare"], g["seeds"], g["keep"]), None, path
    if (path / CONFIG).exists():
        config = replace(read_config(path), **changes)
        check_config(config)
        return None, config, path
    raise RunFileError(f"{path} is not a run folder (no {CONFIG}) nor a grid folder (no {GRID}): nothing to resume")


def _stopped(err, out) -> None:
    """The lines and exit status of a run stopped by Ctrl-C or SIGTERM (128 + the signal)."""
    r = err.result
    name = r.interrupted_by or "interrupted"
    if r.epochs_done:
        click.echo(f"interrupted ({name}) after epoch {r.epochs_done} of {r.config.epochs}: kept its model, metrics "
                   f"and plots in {r.out_dir}", err=True)
    else:
        click.echo(f"interrupted ({name}) before the first epoch finished: nothing to keep in {r.out_dir}", err=True)
    click.echo(f"continue with: deltagrad train --resume {out}", err=True)
    sys.exit(128 + int(err.signum))


@contextmanager
def _training_errors():
    """What ends a run or a grid before or outside its epochs: Ctrl-C before training (130), a bad
    run file (2), missing data or a file system error (1)."""
    from deltagrad.nn.data import DataError
    from deltagrad.nn.runs import RunFileError

    try:
        yield
    except KeyboardInterrupt:
        _fail("interrupted before training started", 130)
    except RunFileError as err:
        _fail(err, 2)
    except (DataError, OSError) as err:
        _fail(err, 1)


def _train_one(config, out, quiet, resume) -> None:
    from deltagrad.nn import train as T
    from deltagrad.nn.runs import read_metrics

    with _training_errors():
        if resume:
            done = len(read_metrics(out)["epochs"])
            if done >= config.epochs:
                click.echo(f"nothing to train: {out} has finished {done} epochs of {config.epochs} "
                           "(give --epochs N to train on)")
                return
        try:
            r = T.train(config, out, progress=not quiet, resume=resume)
        except T.RunInterrupted as err:
            _stopped(err, out)
        except T.Diverged as err:
            kept = f"; {out}/model.npz holds epoch {err.result.epochs_done}" if err.result.epochs_done else ""
            _fail(f"{err}{kept}", 1)
    m = r.metrics[-1] if r.metrics else None
    if m is None:  # pragma: no cover - a finished run has an epoch
        _fail(f"{out}: no epoch finished", 1)
    click.echo(f"epoch {m['epoch']}: train loss {m['train_loss']:.4f}, val accuracy {m['val_accuracy']:.4f}, "
               f"test accuracy {m['test_accuracy']:.4f} ({m['seconds']:.1f} s/epoch)")
    click.echo(f"wrote {out}/metrics.json, metrics.csv, loss.png, accuracy.png, model.npz")


def _train_grid(plan, out, quiet, resume) -> None:
    from pathlib import Path

    from deltagrad.nn import train as T
    from deltagrad.nn.grid import SUMMARY_CSV, SUMMARY_MD, run_grid
    from deltagrad.nn.plots import OVERLAYS

    def echo_run(run, r):
        if r.status == "diverged":
            click.echo(f"{run.folder}: diverged ({r.message})")
        elif r.metrics:
            m = r.metrics[-1]
            click.echo(f"{run.folder}: train loss {m['train_loss']:.4f}, val {m['val_accuracy']:.4f}, "
                       f"test {m['test_accuracy']:.4f} ({m['seconds']:.1f} s/epoch)")

    with _training_errors():
        try:
            run_grid(plan, out, progress=not quiet, resume=resume, on_run=echo_run)
        except T.RunInterrupted as err:
            click.echo(f"the grid's plots and summary so far: {Path(out) / SUMMARY_MD}", err=True)
            _stopped(err, out)
    click.echo((Path(out) / SUMMARY_MD).read_text(encoding="utf-8").rstrip())
    plots = ", ".join(str(Path(out) / name) for name, _ in OVERLAYS.values())
    click.echo(f"wrote {plots}, {Path(out) / SUMMARY_CSV}, {Path(out) / SUMMARY_MD}")


@main.command(cls=_OneLineErrors)
@click.argument("run", type=click.Path())
@click.option("--data-dir", type=click.Path(file_okay=False), help="Folder with the MNIST IDX files.")
@click.option("--device", help="Override the run's device: cpu, cuda or array-api-strict.")
def evaluate(run, data_dir, device):
    """Test accuracy of a saved model (a run folder or its model.npz)."""
    from pathlib import Path

    from deltagrad.nn import train as T
    from deltagrad.nn.backend import DeviceError
    from deltagrad.nn.config import ConfigError, check_value
    from deltagrad.nn.data import DataError
    from deltagrad.nn.grid import GRID
    from deltagrad.nn.runs import MODEL, RunFileError, read_metrics

    path = Path(run)
    try:
        if device is not None:
            try:
                check_value("device", device)
            except ConfigError as err:
                raise ConfigError(f"--device {err}") from None
        if not path.exists():
            raise RunFileError(f"{path} does not exist")
        if path.is_dir():
            if (path / MODEL).exists():
                path = path / MODEL
            elif (path / GRID).exists():
                raise RunFileError(f"{path} is a grid folder: evaluate one of its runs (the folders in it)")
            else:
                raise RunFileError(f"{path} has no {MODEL}: it is not a run folder, or its run stopped before "
                                   "the first epoch finished")
        acc = T.evaluate(path, data_dir, device)
    except (RunFileError, ConfigError) as err:
        _fail(err, 2)
    except (DeviceError, DataError, OSError) as err:
        _fail(err, 1)
    note = ""
    try:
        doc = read_metrics(path.parent)
        if doc["status"] != "complete":
            note = f"; run {doc['status']} after epoch {len(doc['epochs'])} of {doc.get('epochs_planned', '?')}"
    except RunFileError:
        pass
    click.echo(f"test accuracy {acc:.4f} ({path}{note})")


CHECK_EXAMPLES = """
\b
Examples:
  deltagrad check "Y[i,j] = X[i,j] / Z[i,j]" --claim "dZ[a,b] = -G[a,b]*X[a,b]/Z[a,b]**2"
  deltagrad check "Y[i,j] = Sum(X[i,k]*W[k,j], k)" --claim "dW[a,b] = Sum_i(X[i,a]*G[i,b])"
  deltagrad check "Y[i,j] = 1/(1+exp(-X[i,j]))" --code my_ops.py:Sigmoid
  deltagrad check "Y[i,j] = X[i,_]" --code vugrad/ops.py:Expand --kwargs dim=1,repeats=16
  deltagrad check --batch homework.toml --format json

\b
A claim names an input's gradient on the left (d + the input's name, its indices
bound by position) and may use on the right what the derived rules print: G (the
output's gradient; --grad-name changes the letter), the inputs, the output and the
forward's saved values, sizes (n_k), Sum(..., k) or Sum_k(...), delta(a,b), sign
and the spec functions.
--code FILE.py:ClassName IMPORTS AND RUNS your file (as python would) in a separate
process, stopped after --timeout seconds, then runs the class's forward and backward
on random inputs and compares them with the derived op. --kwargs NAME=VALUE,...
passes keyword arguments to forward; a VALUE that names an index of SPEC passes
that index's size (repeats=j).
Exit code: 0 every claim correct, 1 one is not, 2 a bad claim, spec or file.
"""


def _check_error_document(message: str, batch: bool) -> str:
    """The JSON ``check --format json`` prints when nothing could be checked (exit 2)."""
    import json

    from deltagrad.check.batch import count_statuses

    doc = {"error": message, "results": [], "summary": count_statuses([])} if batch else \
        [{"status": "error", "correct": False, "error": message}]
    return json.dumps(doc, indent=2)


class _CheckCommand(click.Command):
    """``check``: with ``--format json`` a bad option (``--timeout abc``, an unknown option) is
    a JSON document too, exit 2, not click's usage text."""

    def parse_args(self, ctx, args):
        given = list(args)  # click consumes args as it parses
        wants_json = any(a == "--format=json" or (a == "--format" and b == "json") for a, b in zip(given, given[1:] + [""]))
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as err:
            if not wants_json:
                raise
            batch = any(a == "--batch" or a.startswith("--batch=") for a in given)
            click.echo(_check_error_document(err.format_message(), batch))
            ctx.exit(2)


@main.command(cls=_CheckCommand, epilog=CHECK_EXAMPLES)
@click.argument("spec", required=False)
@click.option("--claim", "claims", multiple=True, help='A claimed gradient, e.g. "dX[a,b] = G[a,b]/Z[a,b]".')
@click.option("--code", "code", help="FILE.py:ClassName of a hand-written Op (runs that file).")
@click.option("--grad-name", default="G", show_default=True, help="The letter claims use for the output's gradient.")
@click.option("--inputs", help="Comma-separated argument order (for --code).")
@click.option("--kwargs", "kwargs", help="Keyword arguments for --code's forward: NAME=VALUE,... (dim=0,repeats=16).")
@click.option("--timeout", type=float, default=10.0, show_default=True,
              help="Seconds --code's class may run (import, forward and backward) before it is stopped "
                   "(in --batch: for entries without a timeout).")
@click.option("--batch", type=click.Path(dir_okay=False), help="A TOML or YAML file of (spec, claims/code) entries.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--function", "functions", multiple=True,
              help="Declare a generic function F that SPEC calls; claims may call F and F_prime.")
def check(spec, claims, code, grad_name, inputs, kwargs, timeout, batch, fmt, functions):
    """Check hand-derived gradients (claims or code) against the derived backward of SPEC."""
    import json

    from deltagrad.check.batch import count_statuses, exit_code, run_batch, run_entry
    from deltagrad.codegen import verdict_text as words

    def stop(message: str):
        if fmt == "json":
            click.echo(_check_error_document(message, bool(batch)))
            sys.exit(2)
        _fail(message, 2)

    if not 0 < timeout <= 600:
        stop(f"--timeout is a number of seconds above 0 and at most 600, not {timeout:g}")
    try:
        if batch:
            results = run_batch(batch, timeout)
        elif not spec or not (claims or code):
            stop("give SPEC with --claim and/or --code, or --batch FILE")
        else:
            entry = {"spec": spec, "claims": list(claims), "grad_name": grad_name, "timeout": timeout}
            entry.update({k: v for k, v in (("code", code), ("inputs", inputs), ("kwargs", kwargs),
                                            ("functions", list(functions))) if v})
            results = run_entry(entry, "")
    except SpecError as err:
        stop(str(err))
    except Exception as err:  # noqa: BLE001 - check never prints a traceback
        stop(f"deltagrad could not check this ({type(err).__name__}: {err}); please report it")
    if batch:
        counts = count_statuses(results)
        if fmt == "json":
            click.echo(json.dumps({"results": [words.batch_result_dict(r) for r in results], "summary": counts},
                                  indent=2))
        else:
            for r in results:
                click.echo(words.batch_line(r))
            click.echo(words.batch_summary_text(counts))
    elif fmt == "json":
        click.echo(json.dumps([words.result_dict(r) for r in results], indent=2))
    else:
        for r in results:
            if r.verdict is None:
                click.echo(f"error: {r.message}", err=True)
            else:
                click.echo(words.verdict_text(r.verdict))
    sys.exit(exit_code(results))


def render_target(d, target: str, wrt=None) -> str:
    """The generated PyTorch or JAX module of one op, or only the backward lines of one input."""
    if target == "torch":
        from deltagrad.codegen.torch_target import torch_backward_source as lines, torch_module_source as source
    else:
        from deltagrad.codegen.jax_target import jax_backward_source as lines, jax_module_source as source
    return lines(d, wrt) if wrt is not None else source(d)


def render_numpy(d, wrt=None) -> str:
    """The generated Op class, or only the backward lines of one input."""
    if wrt is not None:
        return d.numpy(wrt)
    from deltagrad.codegen.op_class import header

    return header(d, d.source()) + "\n\n" + d.source()


if __name__ == "__main__":  # pragma: no cover
    main()
