"""Render the write-ups shown in the README as PNG pages: python docs/render_pages.py

Each op's standalone write-up (``deltagrad latex``) is compiled with pdflatex and every page is
rasterised with pdftoppm (poppler-utils) into ``docs/writeups/NAME-PAGE.png``; the .tex beside it
is the source. Needs pdflatex and pdftoppm on the PATH.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from deltagrad import derive  # noqa: E402
from deltagrad.op_table import STANDARD_OPS  # noqa: E402

OUT = HERE / "writeups"
TABLE = {e.name: e for e in STANDARD_OPS}

#: (file name, spec, inputs, summary) of each page set
PAGES = [
    ("divide", TABLE["divide"].spec, None, TABLE["divide"].summary),
    ("matmul", TABLE["matmul"].spec, None, TABLE["matmul"].summary),
    ("normalize", TABLE["normalize"].spec, None, TABLE["normalize"].summary),
    ("sigmoid", TABLE["sigmoid"].spec, None, TABLE["sigmoid"].summary),
    ("softmax_cross_entropy", TABLE["softmax_cross_entropy"].spec, TABLE["softmax_cross_entropy"].inputs,
     TABLE["softmax_cross_entropy"].summary),
    ("layer_norm", "mu[i] = Sum(X[i,k], k)/size(k); D[i,j] = X[i,j] - mu[i]; "
                   "var[i] = Sum(D[i,k]**2, k)/size(k); Y[i,j] = D[i,j]/sqrt(var[i] + 0.00001)", None,
     "Layer norm over each row, in named steps, with epsilon = 0.00001."),
]


def render(name: str, spec: str, inputs, summary: str, dpi: int = 80) -> list:
    """Compile one write-up and write its pages as PNG; returns the PNG paths."""
    from deltagrad.codegen.latex import render_latex

    d = derive(spec, name=name, inputs=inputs)
    tex = render_latex(d, summary=summary)
    OUT.mkdir(exist_ok=True)
    (OUT / f"{name}.tex").write_text(tex)
    for old in OUT.glob(f"{name}-*.png"):
        old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / f"{name}.tex").write_text(tex)
        proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", f"{name}.tex"], cwd=tmp,
                              capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise SystemExit(f"{name}.tex does not compile:\n{proc.stdout[-2000:]}")
        if "Overfull" in (Path(tmp) / f"{name}.log").read_text():
            raise SystemExit(f"{name}.tex has an overfull box")
        subprocess.run(["pdftoppm", "-png", "-r", str(dpi), f"{name}.pdf", str(OUT / name)], cwd=tmp, check=True)
    return sorted(OUT.glob(f"{name}-*.png"))


def main() -> None:
    for tool in ("pdflatex", "pdftoppm"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is needed (texlive-latex-base, poppler-utils)")
    for name, spec, inputs, summary in PAGES:
        for path in render(name, spec, inputs, summary):
            print("wrote", path.relative_to(HERE.parent))


if __name__ == "__main__":
    main()
