"""The architecture rule, checked on every run: imports only look down, and none is circular."""

import subprocess
import sys

from deltagrad.dev.layers import LAYERS, check_layers, module_name, PACKAGE


def test_no_upward_import_and_no_cycle():
    report = check_layers()
    assert report.upward == [], report.upward
    assert report.cycles == [], report.cycles


def test_every_module_has_a_layer():
    tops = {module_name(p).split(".")[1] if "." in module_name(p) else "__init__"
            for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}
    assert tops <= set(LAYERS), tops - set(LAYERS)


def test_engine_never_imports_printers_or_runtime():
    report = check_layers()
    for mod, deps in report.imports.items():
        if mod.startswith("deltagrad.derive"):
            assert not [d for d in deps if d.split(".")[1] in ("codegen", "check", "api", "nn", "cli", "generated")], mod


def test_the_checker_finds_a_planted_cycle(tmp_path):
    pkg = tmp_path / "deltagrad"
    (pkg / "derive").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "derive" / "__init__.py").write_text("")
    (pkg / "derive" / "a.py").write_text("def f():\n    from deltagrad.derive import b\n")
    (pkg / "derive" / "b.py").write_text("from deltagrad.derive.a import f\nfrom deltagrad.codegen import x\n")
    (pkg / "codegen").mkdir()
    (pkg / "codegen" / "__init__.py").write_text("")
    (pkg / "codegen" / "x.py").write_text("")
    report = check_layers(pkg)
    assert report.cycles == [["deltagrad.derive.a", "deltagrad.derive.b"]]
    assert ("deltagrad.derive.b", "deltagrad.codegen.x") in report.upward
    assert all(mod == "deltagrad.derive.b" for mod, _ in report.upward)


def test_the_command_reports_clean():
    r = subprocess.run([sys.executable, "-m", "deltagrad.dev.layers"], capture_output=True, text=True)
    assert r.returncode == 0 and "0 upward imports, 0 import cycles" in r.stdout
