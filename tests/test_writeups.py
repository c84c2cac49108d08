"""Every write-up compiles with pdflatex and has no overfull box: standalone (the document
``d.latex()`` writes) and as a fragment inside ``\\documentclass{article}`` with only amsmath
and amssymb, for every op of the table, every op of the README and a broad set of further specs.

The write-ups are compiled in two batches (one document of all fragments, one of all
standalone bodies under the standalone preamble), each write-up marked by a ``\\typeout``, so
that a box or an error in the log is charged to its op.
"""

import os
import re
import shutil
import subprocess

import pytest

from deltagrad import derive
from deltagrad.op_table import STANDARD_OPS
from test_ops_numeric import CASES

#: Specs beyond the table and the README: roots, norms, bilinear forms, attention, layers,
#: kinks, call-time sizes, and programs (several named steps).
FURTHER = [
    ("sqrt_divide", "Y[i,j] = X[i,j]/sqrt(Z[i,j])"),
    ("cosine_similarity", "y[i] = Sum(X[i,k]*Z[i,k], k)/sqrt(Sum(X[i,k]**2, k)*Sum(Z[i,k]**2, k))"),
    ("layer_norm_eps", "Y[i,j] = (X[i,j] - Sum(X[i,k], k)/size(k)) / "
                       "sqrt(Sum((X[i,k] - Sum(X[i,l], l)/size(l))**2, k)/size(k) + 0.00001)"),
    ("rms_norm", "Y[i,j] = X[i,j]/sqrt(Sum(X[i,k]**2, k)/size(k) + 0.00001)"),
    ("bilinear_form", "s = Sum(x[j]*W[j,k]*z[k], j, k)"),
    ("bilinear_rows", "s[i] = Sum(x[i,j]*W[j,k]*z[i,k], j, k)"),
    ("attention", "O[i,e] = Sum(exp(Sum(Q[i,d]*K[j,d], d))*V[j,e], j)/Sum(exp(Sum(Q[i,d]*K[l,d], d)), l)"),
    ("mish", "Y[i,j] = X[i,j]*tanh(log(1 + exp(X[i,j])))"),
    ("gelu_tanh", "Y[i,j] = 0.5*X[i,j]*(1 + tanh(0.7978845608*(X[i,j] + 0.044715*X[i,j]**3)))"),
    ("tanh_layer", "Y[i,j] = tanh(Sum(X[i,k]*W[k,j], k))"),
    ("stacked_tanh", "Y[i,j] = tanh(Sum(tanh(Sum(X[i,k]*W[k,l], k))*V[l,j], l))"),
    ("power_scalar", "Y[i,j] = X[i,j]**p"),
    ("cube", "Y[i,j] = X[i,j]**3"),
    ("softplus", "Y[i,j] = log(1 + exp(X[i,j]))"),
    ("swish", "Y[i,j] = X[i,j]/(1 + exp(-X[i,j]))"),
    ("leaky_relu", "Y[i,j] = Max(X[i,j], 0.01*X[i,j])"),
    ("hinge", "L = Sum(Max(0, 1 - T[i]*x[i]), i)"),
    ("broadcast_two", "Y[i,j,k] = x[i]"),
    ("matmul_transposed", "Y[i,j] = Sum(X[k,i]*W[j,k], k)"),
    ("select_two", "Y[i,j] = X[i,2,j]"),
    ("weighted_sum", "y[i] = Sum(w[k]*X[i,k], k)"),
    ("sigmoid_bce", "L = -Sum(T[i,j]*log(1/(1 + exp(-X[i,j]))) + (1 - T[i,j])*log(1 - 1/(1 + exp(-X[i,j]))), i, j)"
                    "/size(i)"),
    ("program_layer_norm", "mu[i] = Sum(X[i,k], k)/size(k); D[i,j] = X[i,j] - mu[i]; "
                           "var[i] = Sum(D[i,k]**2, k)/size(k); Y[i,j] = D[i,j]/sqrt(var[i] + 0.00001)"),
    ("program_cross_entropy", "P[i,j] = exp(X[i,j])/Sum(exp(X[i,k]), k); L = -Sum(T[i,j]*log(P[i,j]), i, j)/size(i)"),
    ("program_attention", "S[i,j] = Sum(Q[i,d]*K[j,d], d); P[i,j] = exp(S[i,j])/Sum(exp(S[i,l]), l); "
                          "O[i,e] = Sum(P[i,j]*V[j,e], j)"),
    ("program_mlp", "H[i,j] = tanh(Sum(X[i,k]*W1[k,j], k) + B1[j]); Y[i,l] = Sum(H[i,j]*W2[j,l], j) + B2[l]"),
    ("gelu_erf", "Y[i,j] = X[i,j]*(1 + erf(X[i,j]/sqrt(2)))/2"),
    ("leaky_relu_where", "Y[i,j] = where(X[i,j] > 0, X[i,j], 0.01*X[i,j])"),
    ("sigmoid_asinh_layer", "Y[i,j] = sigmoid(Sum(asinh(X[i,k])*W[k,j], k))"),
]

SPECS = ([(e.name, e.spec, e.inputs) for e in STANDARD_OPS] + [(c[0], c[1], None) for c in CASES]
         + [(n, s, None) for n, s in FURTHER])

FRAGMENT_PREAMBLE = "\\documentclass{article}\n\\usepackage{amsmath}\n\\usepackage{amssymb}\n\\begin{document}\n"


def need_pdflatex():
    if not shutil.which("pdflatex"):
        if os.environ.get("CI"):
            pytest.fail("CI must install pdflatex (see .ci/run)")
        pytest.skip("pdflatex is not installed")


@pytest.fixture(scope="module")
def writeups():
    """name → (standalone document, fragment) for every spec."""
    out = {}
    for name, spec, inputs in SPECS:
        d = derive(spec, name=name, inputs=inputs)
        out[name] = (d.latex(), d.latex(fragment=True))
    return out


def compile_batch(tmp_path, stem: str, preamble: str, bodies: dict) -> dict:
    """Compile ``bodies`` (name → LaTeX) in one document; name → problems found in the log."""
    parts = [preamble]
    for name, body in bodies.items():
        parts += [f"\\typeout{{@@writeup {name}}}", body, "\\clearpage"]
    parts.append("\\typeout{@@writeup end}\n\\end{document}\n")
    (tmp_path / f"{stem}.tex").write_text("\n".join(parts))
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", f"{stem}.tex"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    log = (tmp_path / f"{stem}.log").read_text(errors="replace")
    problems, current = {}, None
    for line in log.splitlines():
        m = re.match(r"@@writeup (\S+)", line)
        if m:
            current = m.group(1)
        elif line.startswith(("Overfull", "!")) or "Missing" in line and line.startswith("!"):
            problems.setdefault(current, []).append(line.strip())
    assert "@@writeup end" in log, f"{stem}.tex stopped early:\n{proc.stdout[-3000:]}"
    return problems


def test_every_fragment_compiles_in_a_plain_article_without_overfull_boxes(writeups, tmp_path):
    need_pdflatex()
    problems = compile_batch(tmp_path, "fragments", FRAGMENT_PREAMBLE, {n: f for n, (_, f) in writeups.items()})
    assert not problems, "fragments with errors or overfull boxes:\n" + "\n".join(
        f"{n}: {p}" for n, ps in problems.items() for p in ps)


def test_every_standalone_writeup_compiles_without_overfull_boxes(writeups, tmp_path):
    need_pdflatex()
    preambles, bodies = set(), {}
    for name, (doc, _) in writeups.items():
        head, body = doc.split("\\begin{document}\n", 1)
        assert body.rstrip().endswith("\\end{document}")
        preambles.add(head)
        bodies[name] = body.rstrip()[: -len("\\end{document}")]
    assert len(preambles) == 1  # one preamble: compiling the bodies under it compiles every document
    problems = compile_batch(tmp_path, "standalone", preambles.pop() + "\\begin{document}\n", bodies)
    assert not problems, "write-ups with errors or overfull boxes:\n" + "\n".join(
        f"{n}: {p}" for n, ps in problems.items() for p in ps)


def test_one_standalone_document_compiles_on_its_own(writeups, tmp_path):
    need_pdflatex()
    (tmp_path / "divide.tex").write_text(writeups["divide"][0])
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "divide.tex"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "Overfull" not in (tmp_path / "divide.log").read_text()


def test_every_fragment_names_its_op_and_carries_its_notation(writeups):
    for name, (doc, frag) in writeups.items():
        assert frag.startswith("\\section*{"), name
        heading = frag.splitlines()[0]
        assert heading.lower().replace(" ", "_").startswith("\\section*{" + name.lower()[:3]), (name, heading)
        assert "\\paragraph{Notation.}" in frag, name
        assert frag in doc, name


def test_no_writeup_uses_a_symbol_its_notation_does_not_define(writeups):
    for name, (_, frag) in writeups.items():
        notation = frag[frag.index("\\paragraph{Notation.}"):].split("\n", 1)[0]
        rest = frag.split("\n", 2)[2]
        for symbol in ("\\odot", "\\oslash", "\\mathbf{1}", "\\delta", "^{\\circ", "\\operatorname{diag}"):
            if symbol in rest:
                assert symbol in notation, (name, symbol)
        if re.search(r"[^a-z]H\(", rest):
            assert "Heaviside" in notation, name
        if "n_{" in rest:
            assert "n_{k}" in notation or "n_{" in notation, name
