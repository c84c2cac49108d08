"""The README's op table and examples are what the code produces today."""

from pathlib import Path

from click.testing import CliRunner

from deltagrad import derive
from deltagrad.cli import main
from deltagrad.codegen.index_printer import index_text
from deltagrad.derive.size_one import shown_indices
from test_ops_numeric import CASES

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def table_rows():
    rows = []
    for name, spec, *_ in CASES:
        d = derive(spec, name=name)
        for n, st in d.steps.items():
            idx = ",".join(i.name for i in shown_indices(d.spec, n, st.indices))
            lhs = f"d{n}[{idx}]" if idx else f"d{n}"
            code = d.numpy(n).replace("\n", "; ")
            rows.append(f"| {name} | `{spec}` | `{lhs} = {index_text(st.final)}` | `{code}` |")
    return rows


def test_readme_op_table_is_current():
    missing = [r for r in table_rows() if r not in README]
    assert not missing, "README op table is stale; first stale row:\n" + missing[0]


EXAMPLES = (
    ["derive", "Y[i,j] = Sum(X[i,k]*W[k,j], k)"],
    ["derive", "Y[i,j] = exp(X[i,j]) / Sum(exp(X[i,k]), k)", "--name", "softmax", "--format", "numpy"],
    ["check", "Y[i,j] = X[i,j] / Sum(X[i,k], k)", "--claim",
     "dX[a,b] = G[a,b]/Sum(X[a,k],k) - G[a,b]*X[a,b]/Sum(X[a,k],k)**2"],
    ["derive", "P[i,j] = exp(X[i,j])/Sum(exp(X[i,k]), k); L = -Sum(T[i,j]*log(P[i,j]), i, j)/size(i)"],
    ["derive", "Y[...,i] = exp(X[...,i]) / Sum(exp(X[...,k]), k)", "--name", "softmax"],
    ["derive", "Y[i,j] = where(X[i,j] > 0, X[i,j], 0.01*X[i,j])"],
    ["derive", "Y[i,j] = f(X[i,j])*Z[i,j]", "--function", "f"],
    ["derive", "Y[b,o,i,j] = Sum(X[b,c,i+p,j+q]*W[o,c,p,q], c, p, q) + B[o]", "--steps"],
)


def _command(args):
    return "$ deltagrad " + " ".join(f'"{a}"' if " " in a else a for a in args)


def test_readme_cli_examples_are_current():
    for args in EXAMPLES:
        out = CliRunner().invoke(main, args).output
        assert _command(args) + "\n" + out.strip() + "\n```" in README, f"README example {args} is stale:\n{out}"


def rewrite_table():
    """Replace the README's op table by the current rows: python tests/test_readme.py --write"""
    path = Path(__file__).resolve().parents[1] / "README.md"
    text = path.read_text()
    head = "|---|---|---|---|\n"
    start = text.index(head, text.index("## Derived rules")) + len(head)
    end = text.index("\n## ", start)
    text = text[:start] + "\n".join(table_rows()) + "\n" + text[end:]
    for args in EXAMPLES:
        head = _command(args) + "\n"
        start = text.index(head) + len(head)
        end = text.index("```", start)
        text = text[:start] + CliRunner().invoke(main, args).output.strip() + "\n" + text[end:]
    path.write_text(text)


if __name__ == "__main__":
    import sys

    if "--write" in sys.argv:
        rewrite_table()
    else:
        print("\n".join(table_rows()))


def test_readme_generated_class_and_latex_snippets_are_current():
    from deltagrad.codegen.module import GENERATED_DIR

    ops = (GENERATED_DIR / "ops.py").read_text()
    start = ops.index("class Sigmoid(Op):")
    cls = ops[start:ops.index("\n\n\nclass", start)].rstrip() + "\n"
    assert "```python\n" + cls + "```" in README
    latex = derive("Y[i,j] = X[i,j] / Z[i,j]").latex(fragment=True)
    block = README[README.index("```latex\n") + 9:]
    block = block[:block.index("```")]
    assert block.strip() and block in latex
