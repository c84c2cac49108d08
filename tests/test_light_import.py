"""`import deltagrad` stays light: no plotting, no progress bars, no runtime."""

import json
import subprocess
import sys

HEAVY = ("matplotlib", "tqdm", "deltagrad.nn")


def loaded_after(statement: str) -> set:
    """Which of HEAVY a fresh interpreter has loaded after running ``statement``."""
    code = f"{statement}; import json, sys; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_import_deltagrad_loads_neither_plotting_nor_progress_bars_nor_the_runtime():
    assert loaded_after("import deltagrad") == set()


def test_the_runtime_imports_plotting_and_progress_bars_only_when_used():
    assert loaded_after("import deltagrad.nn.train, deltagrad.nn.data") == {"deltagrad.nn"}
