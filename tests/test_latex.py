"""The LaTeX write-ups say the right things: steps, per-term delta notes, identities, bridges,
precedence-safe matrix forms, names, headings, notation; the CLI writes them; the table's
write-ups compile (tests/test_writeups.py compiles every write-up, fragments included)."""

import os
import re
import shutil
import subprocess

import pytest
from click.testing import CliRunner

from deltagrad import derive
from deltagrad.cli import main
from deltagrad.codegen.matrix_form import matrix_form, no_matrix_form_reason


def frag(spec, name=None, **kw):
    return derive(spec, name=name, **kw).latex(fragment=True)


def test_division_writeup_has_chain_rule_partial_delta_note_and_matrix_forms():
    tex = frag("Y[i,j] = X[i,j] / Z[i,j]", "divide")
    assert r"X^{\nabla}_{ab} = \sum_{i,j} Y^{\nabla}_{ij} \, \frac{\partial Y_{ij}}{\partial X_{ab}}" in tex
    assert r"\frac{\partial Y_{ij}}{\partial X_{ab}} = \frac{\delta_{ai} \delta_{bj}}{Z_{ij}}" in tex
    assert r"$\partial X_{ij} / \partial X_{ab} = \delta_{ai} \delta_{bj}$" in tex
    assert r"&= \frac{Y^{\nabla}_{ab}}{Z_{ab}} && \text{$\delta_{ai}$, $\delta_{bj}$ set $i = a$, $j = b$}" in tex
    assert r"X^{\nabla} = Y^{\nabla} \oslash Z" in tex
    assert r"Z^{\nabla} = -Y^{\nabla} \odot Y \oslash Z" in tex
    assert "through saved values: $Y_{ab} = \\frac{X_{ab}}{Z_{ab}}$" in tex
    assert "dX = goutput / Z" in tex


def test_normalize_note_points_at_the_sum_that_survives_in_the_second_term():
    tex = frag("Y[i,j] = X[i,j] / Sum(X[i,k], k)", "normalize")
    assert ("first term: $\\delta_{ai}$, $\\delta_{bj}$ set $i = a$, $j = b$; second term: $\\delta_{ai}$, "
            "$\\delta_{bk}$ set $i = a$, $k = b$, but it has no $\\delta_{bj}$, so $\\sum_{j}$ survives: "
            "every $Y_{aj}$ depends on $X_{ab}$") in tex
    assert "j = b$ for" not in tex and "; every" not in tex


@pytest.mark.parametrize("name, spec", [("softmax", "Y[i,j] = exp(X[i,j]) / Sum(exp(X[i,k]), k)"),
                                        ("log_softmax", "Y[i,j] = X[i,j] - log(Sum(exp(X[i,k]), k))")])
def test_row_coupled_ops_say_which_term_keeps_its_sum(name, spec):
    tex = frag(spec, name)
    assert "so $\\sum_{j}$ survives" in tex and "second term" in tex


def test_squeeze_keeps_delta_0b_and_never_sets_b():
    tex = frag("Y[i,j] = X[i,0,j]", "squeeze")
    assert "$\\delta_{0b}$ remains (zero unless $b = 0$)" in tex
    assert "$b = 0$," not in tex and "set $b" not in tex
    assert r"X^{\nabla}_{:,0,:} = Y^{\nabla}" in tex


@pytest.mark.parametrize("spec", ["y[i] = X[i,i]", "t = Sum(X[i,i], i)"])
def test_diagonal_and_trace_collapse_two_deltas_into_one(spec):
    tex = frag(spec)
    assert r"$\sum_{i} \delta_{ai} \delta_{bi} = \delta_{ab}$" in tex
    assert "i = a$, $i = b" not in tex


def test_scale_shows_the_partial_with_respect_to_the_scalar():
    tex = frag("Y[i,j] = c * X[i,j]", "scale")
    assert r"\frac{\partial Y_{ij}}{\partial c} = X_{ij}" in tex
    assert "enters every $Y_{ij}$, so the whole $\\sum_{i,j}$ stays" in tex
    assert r"c^{\nabla} = \mathbf{1}^{\top} (Y^{\nabla} \odot X) \mathbf{1}" in tex or \
        r"c^{\nabla} = \mathbf{1}^{\top}(Y^{\nabla} \odot X)\mathbf{1}" in tex


def test_sigmoid_shows_the_identity_behind_the_form_through_y():
    tex = frag("Y[i,j] = 1 / (1 + exp(-X[i,j]))", "sigmoid")
    assert r"\sigma'(x) = \frac{\exp(-x)}{(1 + \exp(-x))^{2}} = \sigma(x) (1 - \sigma(x))" in tex
    assert r"\sigma(x) = \frac{1}{1 + \exp(-x)}" in tex
    # index form and matrix form in the same order, as the code
    assert r"&= Y^{\nabla}_{ab} Y_{ab} (1 - Y_{ab})" in tex
    assert r"X^{\nabla} = Y^{\nabla} \odot Y \odot (1 - Y)" in tex
    assert "dX = goutput * Y * (1 - Y)" in tex


def test_matmul_has_the_bridge_from_the_sum_to_the_product():
    tex = frag("Y[i,j] = Sum(X[i,k]*W[k,j], k)", "matmul")
    assert r"Y_{ij} = \sum_{k} X_{ik} W_{kj}" in tex  # factors in the order of the spec
    assert r"\sum_{j} Y^{\nabla}_{aj} W_{bj} = (Y^{\nabla} W^{\top})_{ab}" in tex
    assert r"\sum_{i} Y^{\nabla}_{ib} X_{ia} = (X^{\top} Y^{\nabla})_{ab}" in tex
    assert r"X^{\nabla} = Y^{\nabla} W^{\top}" in tex and r"W^{\nabla} = X^{\top} Y^{\nabla}" in tex


def test_cross_entropy_reaches_softmax_minus_targets_over_n():
    tex = frag("L = -Sum(T[i,j]*(X[i,j] - log(Sum(exp(X[i,k]), k))), i, j) / size(i)", "softmax_cross_entropy",
               inputs=["X", "T"])
    assert r"with $P = \operatorname{softmax}(X)$ row by row" in tex
    assert r"&= \frac{L^{\nabla}}{n_{i}} (P_{ab} - T_{ab})" in tex
    assert "when every row of $T$ sums to one (one-hot or probability targets), $\\sum_{j} T_{aj} = 1$" in tex
    assert r"L = -\frac{1}{n_{i}} \sum_{i,j}" in tex


def test_matrix_forms_are_precedence_safe_and_braced():
    ls = derive("Y[i,j] = X[i,j] - log(Sum(exp(X[i,k]), k))")
    assert matrix_form(ls, "X", "latex") == r"X^{\nabla} = Y^{\nabla} - (Y^{\nabla}\mathbf{1}\mathbf{1}^{\top}) \odot \exp(Y)"
    tl = derive("Y[i,j] = tanh(Sum(X[i,k]*W[k,j], k))")
    assert matrix_form(tl, "X", "latex") == r"X^{\nabla} = ((1 - Y^{\circ 2}) \odot Y^{\nabla}) W^{\top}"
    assert matrix_form(tl, "X") == "dX = ((1 - Y^∘2) ⊙ G) Wᵀ"
    bil = derive("s[i] = Sum(x[i,j]*W[j,k]*z[i,k], j, k)")
    assert matrix_form(bil, "W", "latex") == r"W^{\nabla} = ((\mathbf{1}{s^{\nabla}}^{\top}) \odot x^{\top}) z"
    assert matrix_form(bil, "x", "latex") == r"x^{\nabla} = (s^{\nabla}\mathbf{1}^{\top}) \odot (z W^{\top})"
    for spec in ("Y[i,j] = X[i,j]/sqrt(Z[i,j])", "y[i] = Sum(X[i,k]*Z[i,k], k)/sqrt(Sum(X[i,k]**2, k)*Sum(Z[i,k]**2, k))",
                 "Y[i,j] = X[i,j]/sqrt(Sum(X[i,k]**2, k)/size(k) + 0.00001)"):
        d = derive(spec)
        forms = [matrix_form(d, name, "latex") for name in d.inputs]
        assert all(f is not None and "[" not in f for f in forms) and any("\\sqrt{" in f for f in forms), forms


def test_functions_read_the_same_in_index_and_matrix_forms():
    d = derive("Y[i,j] = X[i,j] - log(Sum(exp(X[i,k]), k))", name="log_softmax")
    tex = d.latex(fragment=True)
    assert "\\exp(" in tex and "\\log" in tex and "e^{" not in tex
    assert "\\exp(Y)" in matrix_form(d, "X", "latex") and "exp(Y)" in matrix_form(d, "X")


def test_matrix_forms_where_one_exists_and_specific_reasons_where_none():
    cases = {
        "Y[i,j] = X[i,j]**p": ("X", r"X^{\nabla} = p Y^{\nabla} \odot X^{\circ (p - 1)}"),
        "t = Sum(X[i,i], i)": ("X", r"X^{\nabla} = t^{\nabla} I"),
        "y[i] = X[i,i]": ("X", r"X^{\nabla} = \operatorname{diag}(y^{\nabla})"),
        "Y[i,0,j] = X[i,j]": ("X", r"X^{\nabla} = Y^{\nabla}_{:,0,:}"),
        "Y[b,i,j] = Sum(X[b,i,k]*W[b,k,j], k)": ("X", r"X^{\nabla}_{a} = Y^{\nabla}_{a} W_{a}^{\top} \text{ for every } a"),
        "Y[i,j] = Max(0, X[i,j])": ("X", r"X^{\nabla} = Y^{\nabla} \odot H(X)"),
    }
    for spec, (name, form) in cases.items():
        assert matrix_form(derive(spec), name, "latex") == form, spec
    att = derive("S[i,j] = Sum(Q[i,d]*K[j,d], d); P[i,j] = exp(S[i,j])/Sum(exp(S[i,l]), l); "
                 "O[i,e] = Sum(P[i,j]*V[j,e], j)")
    assert all(matrix_form(att, n, "latex") for n in att.inputs)
    td = derive("Y[i,j] = Sum(X[i,k,l]*W[k,l,j], k, l)")
    assert no_matrix_form_reason(td, "X") == "it contracts over several axes at once"
    assert "because it contracts over several axes at once" in td.latex(fragment=True)


def test_kink_paragraph_only_where_a_kink_occurs():
    assert "At a kink" in frag("Y[i,j] = Max(0, X[i,j])", "relu")
    assert "At a kink" in frag("Y[i,j] = Abs(X[i,j])")
    for spec in ("Y[i,j] = X[i,j] / Z[i,j]", "Y[i,j] = exp(X[i,j]) / Sum(exp(X[i,k]), k)"):
        tex = frag(spec)
        assert "At a kink" not in tex and "H(0)" not in tex


def test_sizes_set_at_call_time_are_stated():
    tex = frag("Y[i,j] = x[i]", "expand")
    assert "The index $j$ appears only on the output" in tex and r"\texttt{forward(context, x, j=16)}" in tex


def test_saved_names_are_upright_defined_and_readable():
    tex = frag("Y[i,j] = X[i,j] / Sum(X[i,k], k)", "normalize")
    assert r"\mathrm{row\_sum}_{i} &= \sum_{k} X_{ik}" in tex  # defined where it first appears
    assert "\\mathit" not in tex and "R0" not in tex


def test_heading_is_the_op_name_or_the_forward():
    assert frag("Y[i,j] = tanh(X[i,j])", "tanh").startswith("\\section*{Tanh}")
    assert frag("Y[i,j] = tanh(X[i,j])").startswith(r"\section*{The backward of $Y_{ij} = \tanh(X_{ij})$}")


def test_repr_latex_is_self_contained_and_in_input_order():
    d = derive("L = -Sum(T[i,j]*(X[i,j] - log(Sum(exp(X[i,k]), k))), i, j) / size(i)", inputs=["X", "T"])
    r = d._repr_latex_()
    assert r.startswith("$$\\begin{aligned}") and r.endswith("\\end{aligned}$$")
    assert r.index("X^{\\nabla}_{ab}") < r.index("T^{\\nabla}_{ab}")
    assert r"\mathrm{shifted\_exp\_sum}_{i} &= " in r and r"\mathrm{row\_max}_{i} &= \max_{k}" in r
    # only commands MathJax and KaTeX both know
    allowed = {"begin", "end", "frac", "sum", "nabla", "mathrm", "exp", "log", "max", "text", "odot", "oslash",
               "mathbf", "top", "left", "right", "sqrt", "delta", "tanh", "operatorname", "tfrac", "circ", "lvert",
               "rvert", "min", "sin", "cos", "cdot", "quad", "qquad", "sigma", "mu"}
    used = set(re.findall(r"\\([a-zA-Z]+)", r))
    assert used <= allowed, used - allowed
    assert "\\parbox" not in r and "\\intertext" not in r
    r = derive("Y[i,j] = Max(0, X[i,j])")._repr_latex_()
    assert "Heaviside step" in r


def test_standalone_document_and_fragment():
    d = derive("Y[i,j] = tanh(X[i,j])")
    doc, fr = d.latex(), d.latex(fragment=True)
    assert doc.startswith(r"\documentclass") and r"\usepackage{amsmath,amssymb}" in doc and r"\end{document}" in doc
    assert r"\documentclass" not in fr and fr in doc


def test_docstring_and_code_agree_in_factor_order():
    src = derive("Y[i,j] = 1 / (1 + exp(-X[i,j]))", name="sigmoid").source()
    assert "dX[a,b] = G[a,b]*Y[a,b]*(1 - Y[a,b])" in src
    assert "dX = G ⊙ Y ⊙ (1 - Y)" in src and "dX = goutput * Y * (1 - Y)" in src
    relu = derive("Y[i,j] = Max(0, X[i,j])", name="relu").source()
    assert "dX = G ⊙ Heaviside(X)" in relu and "Heaviside(0) = 1/2" in relu


def test_cli_latex_commands(tmp_path):
    out = tmp_path / "tanh.tex"
    r = CliRunner().invoke(main, ["latex", "Y[i,j] = tanh(X[i,j])", "-o", str(out)])
    assert r.exit_code == 0 and out.read_text().startswith(r"\documentclass")
    r = CliRunner().invoke(main, ["latex", "Y[i,j] = tanh(X[i,j])", "--fragment"])
    assert r.exit_code == 0 and r"\documentclass" not in r.output
    assert r.output.startswith(r"\section*{The backward of $Y_{ij} = \tanh(X_{ij})$}")
    r = CliRunner().invoke(main, ["derive", "Y[i,j] = tanh(X[i,j])", "--latex"])
    assert r.exit_code == 0 and r"X^{\nabla}" in r.output
    assert CliRunner().invoke(main, ["derive", "Y[i,j] = tanh(X[i,j])", "--format", "latex"]).output == r.output
    r = CliRunner().invoke(main, ["latex", "Y[i,j] = tanh(Q[i,k])"])
    assert r.exit_code == 2


def test_the_table_writeups_compile_with_pdflatex(tmp_path):
    if not shutil.which("pdflatex"):
        if os.environ.get("CI"):
            pytest.fail("CI must install pdflatex (see .ci/run)")
        pytest.skip("pdflatex is not installed")
    r = CliRunner().invoke(main, ["codegen", "--latex", str(tmp_path)])
    assert r.exit_code == 0, r.output
    docs = sorted(tmp_path.glob("*.tex"))
    assert len(docs) > 20 and (tmp_path / "all.tex") in docs
    for _ in range(2):  # twice for the table of contents
        proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "all.tex"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"all.tex does not compile:\n{proc.stdout[-2000:]}"
    assert "Overfull" not in (tmp_path / "all.log").read_text()
