"""Run files: the usual mode (umask respected), atomic writes, and `evaluate` on corrupt or foreign
files (one line, exit 2, no pickle)."""

import io
import json
import os
import stat
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

from deltagrad.cli import main
from deltagrad.files import current_umask, write_atomic
from deltagrad.nn.runs import RunFileError, load_model
from deltagrad.nn.train import TrainConfig, train


@pytest.fixture
def umask():
    """Set the process's umask for one test, and put the old one back."""
    old = os.umask(0o022)
    yield lambda m: os.umask(m)
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_write_atomic_gives_the_mode_open_would(tmp_path, umask):
    umask(0o022)
    assert current_umask() == 0o022
    write_atomic(tmp_path / "a.txt", "x")
    assert mode(tmp_path / "a.txt") == 0o644
    umask(0o077)
    write_atomic(tmp_path / "b.txt", b"y")
    assert mode(tmp_path / "b.txt") == 0o600
    umask(0o002)
    os.chmod(tmp_path / "a.txt", 0o640)  # an existing file keeps its own mode
    write_atomic(tmp_path / "a.txt", "z")
    assert mode(tmp_path / "a.txt") == 0o640 and (tmp_path / "a.txt").read_text() == "z"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]  # no temp file left


def test_write_atomic_is_still_atomic(tmp_path, monkeypatch):
    target = tmp_path / "f.txt"
    write_atomic(target, "old")
    inode = os.stat(target).st_ino

    def fail(*a):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OSError):
        write_atomic(target, "new")
    assert target.read_text() == "old" and os.stat(target).st_ino == inode
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]
    monkeypatch.undo()
    write_atomic(target, "new")
    assert target.read_text() == "new" and os.stat(target).st_ino != inode  # replaced by a rename


def test_every_file_of_a_run_and_a_grid_has_mode_0644_under_umask_022(tmp_path, umask):
    umask(0o022)
    r = CliRunner().invoke(main, ["train", "--synthetic", "--epochs", "1", "--hidden", "8", "--quiet",
                                  "--compare", "activation=sigmoid,relu", "--out", str(tmp_path / "grid")])
    assert r.exit_code == 0, r.output
    files = [p for p in (tmp_path / "grid").rglob("*") if p.is_file()]
    assert len(files) >= 5 + 2 * 7
    assert {p.name: oct(mode(p)) for p in files if mode(p) != 0o644} == {}


# ---- evaluate on corrupt and foreign files -------------------------------------------------------

@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "good"
    train(TrainConfig(epochs=1, hidden=(8,), data="synthetic"), run, progress=False)
    return run


def npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def rewrite_config(good_run, change):
    with np.load(good_run / "model.npz") as f:
        arrays = {k: f[k] for k in f.files}
    config = json.loads(str(arrays["config"]))
    change(config)
    arrays["config"] = np.array(json.dumps(config))
    return npz(**arrays)


def bad_files(good_run):
    whole = (good_run / "model.npz").read_bytes()
    return {
        "truncated": (whole[: len(whole) // 2], "truncated or damaged"),
        "empty": (b"", "is empty"),
        "random bytes": (bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)), "not an .npz archive"),
        "text": (b"hello, world\n", "not an .npz archive"),
        "one .npy array": (_npy(np.ones(3)), "single NumPy array"),
        "foreign npz": (npz(weights=np.ones((3, 3))), "has no 'config'"),
        "zip of text": (_zip_of_text(), "has no 'config'"),
        "pickled config": (npz(config=np.array([{"hidden": [8]}], dtype=object)), "pickled"),
        "unknown config key": (rewrite_config(good_run, lambda c: c.update(colour="red")), "unknown setting(s) 'colour'"),
        "bad config value": (rewrite_config(good_run, lambda c: c.update(hidden=["abc"])), "widths must be positive"),
        "wrong shapes": (rewrite_config(good_run, lambda c: c.update(hidden=[9])), "do not fit the network"),
        "config not a table": (npz(config=np.array("[1, 2]")), "not a table of settings"),
    }


def _npy(a) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def _zip_of_text() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme.txt", "not a model")
    return buf.getvalue()


CASES = ["truncated", "empty", "random bytes", "text", "one .npy array", "foreign npz", "zip of text", "pickled config",
         "unknown config key", "bad config value", "wrong shapes", "config not a table"]


@pytest.mark.parametrize("case", CASES)
def test_evaluate_refuses_corrupt_or_foreign_files_with_one_line(case, good_run, tmp_path, monkeypatch):
    content, message = bad_files(good_run)[case]
    path = tmp_path / "model.npz"
    path.write_bytes(content)

    def no_pickle(*a, **k):
        raise AssertionError("unpickling was attempted")

    monkeypatch.setattr("pickle.loads", no_pickle)
    monkeypatch.setattr("pickle.load", no_pickle)
    for target in (path, tmp_path):
        r = CliRunner().invoke(main, ["evaluate", str(target)])
        assert r.exit_code == 2, r.output
        assert r.output.startswith("error: ") and r.output.count("\n") == 1, r.output
        assert message in r.output and "allow_pickle" not in r.output and "Traceback" not in r.output
    with pytest.raises(RunFileError):
        load_model(path)


def test_evaluate_names_what_is_missing(tmp_path, good_run):
    for args, message in ((["evaluate", str(tmp_path / "none")], "does not exist"),
                          (["evaluate", str(tmp_path)], "has no model.npz"),
                          (["evaluate", str(good_run), "--device", "tpu"], "--device 'tpu' is not available")):
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 2 and message in r.output and r.output.count("\n") == 1, r.output
    (tmp_path / "grid.json").write_text("{}")
    r = CliRunner().invoke(main, ["evaluate", str(tmp_path)])
    assert r.exit_code == 2 and "is a grid folder" in r.output


def test_resume_refuses_a_foreign_config(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"hidden": [8], "colour": "red"}))
    r = CliRunner().invoke(main, ["train", "--resume", str(tmp_path)])
    assert r.exit_code == 2 and "unknown setting(s) 'colour'" in r.output and r.output.count("\n") == 1
    (tmp_path / "config.json").write_text("{not json")
    r = CliRunner().invoke(main, ["train", "--resume", str(tmp_path)])
    assert r.exit_code == 2 and "not a readable config file" in r.output


def test_a_relative_data_dir_in_an_old_config_is_taken_from_the_run_folder(tmp_path, good_run):
    data = rewrite_config(good_run, lambda c: c.update(data_dir="../data"))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "model.npz").write_bytes(data)
    _, config = load_model(tmp_path / "run" / "model.npz")
    assert config.data_dir == str((tmp_path / "data").resolve())
