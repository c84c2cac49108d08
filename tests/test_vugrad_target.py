"""`deltagrad codegen --target vugrad`: a generated drop-in for vugrad's vugrad/ops.py.

vugrad (MIT, kept whole in ../shared/vugrad) is copied twice to a temporary folder: once as it
is, once with vugrad/ops.py replaced by the generated file. The same probe script runs in both
(in a subprocess each, with the same seed) and writes every op's output and input gradients,
vugrad's functions (softmax, logsoftmax, celoss, logceloss) and an MLP's loss and gradients; the
two are compared to 1e-9 in float64. experiments/train_mlp.py runs unchanged in both.

Every row of the table is generated (Select is a gather, RowMax a Max reduction, Squeeze,
Unsqueeze and Expand use size-one axes `_`), so the generated file runs vugrad alone.
"""

from __future__ import annotations

import pickle
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from deltagrad.cli import main
from deltagrad.codegen.vugrad_target import render_vugrad_package
from deltagrad.vugrad_table import VUGRAD_OPS

VUGRAD = Path(__file__).resolve().parents[2] / "shared" / "vugrad"
pytestmark = pytest.mark.skipif(not (VUGRAD / "vugrad" / "ops.py").exists(), reason="vugrad is not in ../shared/vugrad")

PROBE = r'''
import pickle, sys, traceback, zlib
import numpy as np

sys.path.insert(0, sys.argv[1])
import vugrad as vg
import vugrad.ops

T = vg.TensorNode
rng = np.random.default_rng(0)
np.random.seed(0)
results = {}


def run(name, make):
    global rng
    rng = np.random.default_rng(zlib.crc32(name.encode()))  # each item its own draws, whatever failed before
    try:
        results[name] = make()
    except Exception:
        results[name] = "error: " + traceback.format_exc()


def op(cls, *values, **kwargs):
    nodes = [T(v) for v in values]
    out = getattr(vg, cls).do_forward(*nodes, **kwargs)
    out.grad = rng.normal(size=out.value.shape)
    out.source.backward()
    return [np.asarray(out.value)] + [n.grad for n in nodes]


def scalar(f):
    out = f()
    out.backward()
    return out


for cls in ["Log", "Exp", "Sigmoid", "Id"]:
    for rank in range(1, 5):
        run(f"{cls} rank {rank}", lambda: op(cls, rng.uniform(0.5, 2.0, size=(2, 3, 1, 2)[:rank])))
for rank in range(0, 5):
    run(f"Sum rank {rank}", lambda: op("Sum", rng.normal(size=(2, 3, 1, 2)[:rank])))
run("RowSum", lambda: op("RowSum", rng.normal(size=(4, 3))))
run("RowMax", lambda: op("RowMax", rng.normal(size=(4, 3))))
run("Normalize", lambda: op("Normalize", rng.uniform(0.5, 2.0, size=(4, 3))))
run("BatchMM", lambda: op("BatchMM", rng.normal(size=(5, 3)), rng.normal(size=(4, 3))))
run("Select", lambda: op("Select", rng.normal(size=(4, 3)), indices=np.array([0, 2, 1, 2])))
run("Expand dim=0", lambda: op("Expand", rng.normal(size=(1, 4)), dim=0, repeats=3))
run("Expand dim=1 rank 3", lambda: op("Expand", rng.normal(size=(3, 1, 4)), dim=1, repeats=5))
run("Expand dim=-1", lambda: op("Expand", rng.normal(size=(2, 3, 1)), dim=-1, repeats=2))
run("Squeeze", lambda: op("Squeeze", rng.normal(size=(1, 4))))
run("Squeeze dim=1 rank 3", lambda: op("Squeeze", rng.normal(size=(3, 1, 4)), dim=1))
run("Unsqueeze dim=1", lambda: op("Unsqueeze", rng.normal(size=(3, 4)), dim=1))
run("Unsqueeze", lambda: op("Unsqueeze", rng.normal(size=(3,))))
run("Unsqueeze dim=-1 rank 3", lambda: op("Unsqueeze", rng.normal(size=(2, 3, 4)), dim=-1))

x = rng.normal(size=(6, 4))
t = np.array([0, 3, 1, 2, 2, 0])


def function(f):
    def make():
        node = T(x.copy())
        out = f(node)
        if out.value.shape:
            out.grad = rng.normal(size=out.value.shape)
            out.source.backward()
        else:
            out.backward()
        return [np.asarray(out.value), node.grad]
    return make


run("softmax", function(vg.softmax))
run("logsoftmax", function(vg.logsoftmax))
run("celoss", function(lambda n: vg.celoss(vg.softmax(n), t)))
run("logceloss", function(lambda n: vg.logceloss(vg.logsoftmax(n), t)))


def mlp():
    np.random.seed(1)
    l1, l2 = vg.Linear(4, 8), vg.Linear(8, 4)
    loss = vg.logceloss(vg.logsoftmax(l2(vg.sigmoid(l1(T(x.copy()))))), t)
    loss.backward()
    return [np.asarray(loss.value)] + [p.grad for p in l1.parameters() + l2.parameters()]


run("MLP", mlp)
with open(sys.argv[2], "wb") as f:
    pickle.dump(results, f)
'''

TRAIN = r'''
import runpy, sys
import numpy as np
sys.path.insert(0, "experiments")
np.random.seed(0)
sys.argv = ["train_mlp.py", "-e", "2", "-b", "256"]
runpy.run_path("experiments/train_mlp.py", run_name="__main__")
'''

@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    """Two copies of vugrad: its own ops, and the generated ops.py in their place."""
    root = tmp_path_factory.mktemp("vugrad")
    own, generated = root / "own", root / "generated"
    ignore = shutil.ignore_patterns("__pycache__", "*.pkl")
    shutil.copytree(VUGRAD, own, ignore=ignore)
    shutil.copytree(VUGRAD, generated, ignore=ignore)
    (generated / "vugrad" / "ops.py").write_text(render_vugrad_package()["ops.py"], encoding="utf-8")
    (root / "probe.py").write_text(PROBE, encoding="utf-8")
    return root, own, generated


def _probe(root, tree, label, *extra):
    out = root / f"{label}.pkl"
    subprocess.run([sys.executable, str(root / "probe.py"), str(tree), str(out), *extra], check=True,
                   capture_output=True, text=True, timeout=300)
    with open(out, "rb") as f:
        return pickle.load(f)


@pytest.fixture(scope="module")
def probes(trees):
    root, own, generated = trees
    return {"own": _probe(root, own, "own"), "generated": _probe(root, generated, "generated")}


ITEMS = ([f"{c} rank {r}" for c in ["Log", "Exp", "Sigmoid", "Id"] for r in range(1, 5)]
         + [f"Sum rank {r}" for r in range(5)]
         + ["RowSum", "RowMax", "Normalize", "BatchMM", "Select", "Expand dim=0", "Expand dim=1 rank 3",
            "Expand dim=-1", "Squeeze", "Squeeze dim=1 rank 3", "Unsqueeze dim=1", "Unsqueeze",
            "Unsqueeze dim=-1 rank 3", "softmax", "logsoftmax", "celoss", "logceloss", "MLP"])


def _compare(want, got, item):
    assert not isinstance(want, str), f"vugrad's own {item} failed: {want}"
    assert not isinstance(got, str), got
    assert len(got) == len(want)
    for n, (g, w) in enumerate(zip(got, want)):
        assert np.shape(g) == np.shape(w), f"{item}: value {n} has shape {np.shape(g)}, vugrad's {np.shape(w)}"
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-12, err_msg=f"{item}: value {n}")


@pytest.mark.parametrize("item", ITEMS)
def test_generated_ops_match_vugrads_own(probes, item):
    _compare(probes["own"][item], probes["generated"][item], item)


def _train(tree):
    proc = subprocess.run([sys.executable, "-c", TRAIN], cwd=tree, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    numbers = [float(v) for v in re.findall(r"(?:accuracy|running loss): ([-0-9.e]+)", proc.stdout)]
    return proc, numbers


def test_train_mlp_runs_unchanged_and_learns_the_same(trees):
    root, own, generated = trees
    _, want = _train(own)
    assert len(want) == 4  # two epochs: accuracy and running loss each
    _, got = _train(generated)
    np.testing.assert_allclose(got, want, rtol=2e-3)  # printed with 4 significant digits


def test_the_generated_file_keeps_vugrads_names_signatures_and_base_class(trees):
    import ast

    own = ast.parse((VUGRAD / "vugrad" / "ops.py").read_text())
    ours = ast.parse(render_vugrad_package()["ops.py"])

    def classes(tree):
        return {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}

    def forward_args(cls):
        f = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "forward")
        return ([a.arg for a in f.args.args[1:]], [d.value for d in f.args.defaults if isinstance(d, ast.Constant)],
                [a.arg for a in f.args.kwonlyargs])

    theirs, mine = classes(own), classes(ours)
    assert set(theirs) <= set(mine)
    for name, cls in theirs.items():
        assert [b.id for b in mine[name].bases] == ["Op"], name
        want, got = forward_args(cls), forward_args(mine[name])
        assert got[1:] == want[1:] and len(got[0]) == len(want[0]), (name, got, want)
    imports = [n for n in ours.body if isinstance(n, ast.ImportFrom)]
    assert any(n.module == "core" and n.level == 1 and {"Op", "TensorNode"} <= {a.name for a in n.names}
               for n in imports)
    assert "np" in {a.asname for n in ours.body if isinstance(n, ast.Import) for a in n.names}


def test_codegen_target_vugrad_writes_ops_py(tmp_path):
    out = CliRunner().invoke(main, ["codegen", "--target", "vugrad", "-o", str(tmp_path)])
    assert out.exit_code == 0, out.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ops.py"]
    assert (tmp_path / "ops.py").read_text() == render_vugrad_package()["ops.py"]
    bad = CliRunner().invoke(main, ["codegen", "--target", "vugrad", "Y[i] = X[i]", "-o", str(tmp_path)])
    assert bad.exit_code == 2 and "give no specs" in bad.output


def test_every_row_is_derived():
    text = render_vugrad_package()["ops.py"]
    for entry in VUGRAD_OPS:
        block = text.split(f"class {entry.name}(Op):", 1)[1].split("\nclass ", 1)[0]
        assert "NotImplementedError" not in block and ("Spec:" in block or "Forward:" in block), entry.name


def test_compile_target_vugrad_with_ellipsis(monkeypatch):
    import deltagrad

    monkeypatch.syspath_prepend(str(VUGRAD))
    from vugrad.core import Op, TensorNode

    Log = deltagrad.derive("Y[...] = log(x[...])", name="log").compile(target="vugrad")
    assert issubclass(Log, Op)
    for shape in [(3,), (2, 3), (2, 1, 3)]:
        x = TensorNode(np.random.default_rng(0).uniform(0.5, 2.0, size=shape))
        y = Log.do_forward(x)
        y.grad = np.ones(shape)
        y.source.backward()
        np.testing.assert_allclose(y.value, np.log(x.value))
        np.testing.assert_allclose(x.grad, 1 / x.value)
