"""The generator never needs its output: a copy of the package with no ``generated/`` folder
regenerates the committed ``deltagrad/generated`` byte for byte."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "deltagrad"

# `python -m deltagrad.cli ARGS`, with every deltagrad module taken from the first sys.path entry
# that holds the package (the copy, via PYTHONPATH). Without this guard an editable install's
# finder would quietly supply a module the copy lacks, such as deltagrad.generated.
RUN_CLI_FROM_THE_COPY = """
import importlib.machinery, runpy, sys

class OnlyTheCopy:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name != "deltagrad" and not name.startswith("deltagrad."):
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None:
            raise ModuleNotFoundError(f"No module named {name!r} in the copy", name=name)
        return spec

sys.meta_path.insert(0, OnlyTheCopy)
sys.argv[0] = "deltagrad"
runpy.run_module("deltagrad.cli", run_name="__main__", alter_sys=True)
"""


def committed_files() -> dict:
    generated = PACKAGE / "generated"
    return {p.name: p.read_bytes() for p in sorted(generated.iterdir()) if p.is_file() and p.suffix == ".py"}


def run_copy(tmp_path, *args):
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-c", RUN_CLI_FROM_THE_COPY, *args],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_codegen_rebuilds_the_committed_package_without_it(tmp_path):
    copy = tmp_path / "deltagrad"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.rmtree(copy / "generated")
    out = copy / "generated"
    proc = run_copy(tmp_path, "codegen", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    written = {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}
    committed = committed_files()
    assert sorted(written) == sorted(committed)
    differ = [name for name in written if written[name] != committed[name]]
    assert not differ, f"regenerated {differ} differ from the committed deltagrad/generated"


def test_the_guard_keeps_the_installed_package_out(tmp_path):
    """A copy whose errors module imports deltagrad.generated cannot regenerate it."""
    copy = tmp_path / "deltagrad"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.rmtree(copy / "generated")
    with open(copy / "errors.py", "a", encoding="utf-8") as f:
        f.write("\nimport deltagrad.generated.op_base  # noqa: E402,F401\n")
    proc = run_copy(tmp_path, "codegen", "-o", str(copy / "generated"))
    assert proc.returncode != 0
    assert "No module named 'deltagrad.generated' in the copy" in proc.stderr, proc.stderr
