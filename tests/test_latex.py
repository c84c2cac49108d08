"""The LaTeX write-ups: the right steps and forms, and documents that pdflatex compiles."""

import os
import shutil
import subprocess

import pytest
from click.testing import CliRunner

from deltagrad import derive
from deltagrad.cli import main


def test_division_writeup_has_delta_step_final_and_matrix_form():
    tex = derive("Y[i,j] = X[i,j] / Z[i,j]", name="divide").latex(fragment=True)
    assert r"X^{\nabla}_{ab} = \sum_{i,j} Y^{\nabla}_{ij} \, \frac{\partial Y_{ij}}{\partial X_{ab}}" in tex
    assert r"\frac{\partial Y_{ij}}{\partial X_{ab}} = \frac{\delta_{ai} \delta_{bj}}{Z_{ij}}" in tex
    assert r"each $\delta$ collapses its sum: $i = a$, $j = b$" in tex
    assert r"&= \frac{Y^{\nabla}_{ab}}{Z_{ab}}" in tex
    assert r"X^{\nabla} = Y^{\nabla} \oslash Z" in tex
    assert r"Z^{\nabla} = -Y^{\nabla} \odot Y \oslash Z" in tex
    assert "dX = goutput / Z" in tex


def test_matmul_writeup_has_both_matrix_forms():
    tex = derive("Y[i,j] = Sum(X[i,k]*W[k,j], k)").latex(fragment=True)
    assert r"X^{\nabla} = Y^{\nabla} \, W^{\top}" in tex
    assert r"W^{\nabla} = X^{\top} \, Y^{\nabla}" in tex
    assert r"&= \sum_{j} W_{bj} Y^{\nabla}_{aj}" in tex or r"&= \sum_{j} Y^{\nabla}_{aj} W_{bj}" in tex


def test_softmax_writeup_reaches_the_form_through_y_and_row_sums():
    tex = derive("Y[i,j] = exp(X[i,j]) / Sum(exp(X[i,k]), k)").latex(fragment=True)
    assert r"\left(Y^{\nabla}_{ab} - \sum_{j} Y^{\nabla}_{aj} Y_{aj}\right) Y_{ab}" in tex
    assert r"X^{\nabla} = Y \odot \left(Y^{\nabla} - \left(Y^{\nabla} \odot Y\right)\mathbf{1}\mathbf{1}^{\top}\right)" in tex


def test_no_matrix_form_is_said_plainly():
    tex = derive("Y[i,j] = X[i,0,j]").latex(fragment=True)
    assert "no plain matrix form" in tex


def test_standalone_document_and_fragment():
    d = derive("Y[i,j] = tanh(X[i,j])")
    doc, frag = d.latex(), d.latex(fragment=True)
    assert doc.startswith(r"\documentclass") and r"\usepackage{amsmath,amssymb}" in doc and r"\end{document}" in doc
    assert r"\documentclass" not in frag and frag in doc
    assert d._repr_latex_().startswith("$$\\begin{aligned}")


def test_cli_latex_commands(tmp_path):
    out = tmp_path / "tanh.tex"
    r = CliRunner().invoke(main, ["latex", "Y[i,j] = tanh(X[i,j])", "-o", str(out)])
    assert r.exit_code == 0 and out.read_text().startswith(r"\documentclass")
    r = CliRunner().invoke(main, ["latex", "Y[i,j] = tanh(X[i,j])", "--fragment"])
    assert r.exit_code == 0 and r"\documentclass" not in r.output and r"\section*{Y}" in r.output
    r = CliRunner().invoke(main, ["derive", "Y[i,j] = tanh(X[i,j])", "--latex"])
    assert r.exit_code == 0 and r"X^{\nabla}" in r.output
    r = CliRunner().invoke(main, ["latex", "Y[i,j] = tanh(Q[i,k])"])
    assert r.exit_code == 2


def test_every_standard_op_compiles_with_pdflatex(tmp_path):
    if not shutil.which("pdflatex"):
        if os.environ.get("CI"):
            pytest.fail("CI must install pdflatex (see .ci/run)")
        pytest.skip("pdflatex is not installed")
    r = CliRunner().invoke(main, ["codegen", "--latex", str(tmp_path)])
    assert r.exit_code == 0, r.output
    docs = sorted(tmp_path.glob("*.tex"))
    assert len(docs) > 20 and (tmp_path / "all.tex") in docs
    for doc in docs:
        for _ in range(2 if doc.name == "all.tex" else 1):  # twice for the table of contents
            proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name],
                                  cwd=tmp_path, capture_output=True, text=True, timeout=120)
            assert proc.returncode == 0, f"{doc.name} does not compile:\n{proc.stdout[-2000:]}"
        assert doc.with_suffix(".pdf").exists()
    assert "Overfull" not in (tmp_path / "all.log").read_text()
