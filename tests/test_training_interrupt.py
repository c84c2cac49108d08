"""Ctrl-C and SIGTERM keep the last finished epoch (model, metrics, plots, marked interrupted);
`evaluate` works on it from anywhere; `--resume` gives the numbers of an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from deltagrad.cli import main
from deltagrad.nn import optim
from deltagrad.nn.runs import model_epoch, read_metrics
from deltagrad.nn.signals import Interrupted, StopSignals
from deltagrad.nn.train import RunInterrupted, TrainConfig, evaluate, train


def numbers(rows):
    return [{k: v for k, v in m.items() if k != "seconds"} for m in rows]


def stop_at(epoch, batch):
    def hook(e, b):
        if (e, b) == (epoch, batch):
            raise KeyboardInterrupt
    return hook


@pytest.fixture(scope="module")
def data():
    from deltagrad.nn.data import load_synthetic

    return load_synthetic(seed=3)


@pytest.mark.parametrize("optimizer,shuffle", [("adam", True), ("momentum", False), ("rmsprop", True)])
def test_an_interrupted_run_keeps_its_last_epoch_and_resumes_to_the_same_numbers(tmp_path, optimizer, shuffle, data):
    cfg = TrainConfig(epochs=4, hidden=(16,), data="synthetic", optimizer=optimizer, shuffle=shuffle, seed=3)
    run = tmp_path / "run"
    with pytest.raises(RunInterrupted) as info:
        train(cfg, run, progress=False, data=data, on_batch=stop_at(3, 4))  # two finished epochs of four, then Ctrl-C
    kept = info.value.result
    assert kept.status == "interrupted" and kept.epochs_done == 2 and info.value.signum == signal.SIGINT
    doc = read_metrics(run)
    assert (doc["status"], doc["interrupted_by"], doc["epochs_done"], doc["epochs_planned"]) == ("interrupted", "SIGINT", 2, 4)
    assert model_epoch(run / "model.npz") == 2
    assert (run / "loss.png").stat().st_size and (run / "accuracy.png").stat().st_size
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]
    assert evaluate(run / "model.npz") == pytest.approx(doc["epochs"][-1]["test_accuracy"])

    resumed = train(cfg, run, progress=False, data=data, resume=True)
    uninterrupted = train(cfg, None, progress=False, data=data)
    assert numbers(resumed.metrics) == numbers(uninterrupted.metrics)
    assert read_metrics(run)["status"] == "complete" and model_epoch(run / "model.npz") == 4


def test_a_run_stopped_before_its_first_epoch_starts_again_on_resume(tmp_path):
    cfg = TrainConfig(epochs=2, hidden=(8,), data="synthetic")
    run = tmp_path / "run"
    with pytest.raises(RunInterrupted):
        train(cfg, run, progress=False, on_batch=stop_at(1, 2))
    assert read_metrics(run)["epochs"] == [] and not (run / "model.npz").exists()
    r = CliRunner().invoke(main, ["evaluate", str(run)])
    assert r.exit_code == 2 and "has no model.npz" in r.output
    resumed = train(cfg, run, progress=False, resume=True)
    assert numbers(resumed.metrics) == numbers(train(cfg, None, progress=False).metrics)


def test_sigterm_through_the_cli_then_evaluate_elsewhere_and_resume(tmp_path, mnist_dir, monkeypatch):
    """A real SIGTERM in the third epoch; the run used a relative --data-dir."""
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(work)
    args = ["train", "--data-dir", os.path.relpath(mnist_dir, work), "--limit", "2000", "--epochs", "4", "--hidden", "16",
            "--quiet"]
    steps = {"n": 0}
    real_step = optim.Adam.step

    def step(self):
        real_step(self)
        steps["n"] += 1
        if steps["n"] == 2 * 15 + 3:  # 1800 training images: 15 batches an epoch
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(optim.Adam, "step", step)
    r = CliRunner().invoke(main, [*args, "--out", "run"])
    assert r.exit_code == 128 + signal.SIGTERM, r.output
    assert "interrupted (SIGTERM) after epoch 2 of 4" in r.output and "deltagrad train --resume run" in r.output
    assert "Traceback" not in r.output
    config = json.loads((work / "run" / "config.json").read_text())
    assert os.path.isabs(config["data_dir"])
    monkeypatch.setattr(optim.Adam, "step", real_step)

    monkeypatch.chdir(elsewhere)
    r = CliRunner().invoke(main, ["evaluate", str(work / "run")])
    assert r.exit_code == 0, r.output
    kept = read_metrics(work / "run")["epochs"]
    assert f"test accuracy {kept[-1]['test_accuracy']:.4f}" in r.output and "interrupted after epoch 2 of 4" in r.output

    r = CliRunner().invoke(main, ["train", "--resume", str(work / "run"), "--quiet"])
    assert r.exit_code == 0, r.output
    monkeypatch.chdir(work)
    assert CliRunner().invoke(main, [*args, "--out", "whole"]).exit_code == 0
    assert numbers(read_metrics(work / "run")["epochs"]) == numbers(read_metrics(work / "whole")["epochs"])
    r = CliRunner().invoke(main, ["train", "--resume", "run"])
    assert r.exit_code == 0 and "nothing to train" in r.output


def test_ctrl_c_in_a_real_process(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "deltagrad.cli", "train", "--synthetic", "--epochs", "500", "--hidden",
                             "64", "--quiet", "--out", str(run)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if read_metrics(run)["epochs"]:
                    break
            except Exception:  # noqa: BLE001 - not written yet
                pass
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted (SIGINT) after epoch" in err and "Traceback" not in err
    doc = read_metrics(run)
    assert doc["status"] == "interrupted" and 1 <= doc["epochs_done"] < 500
    assert model_epoch(run / "model.npz") == doc["epochs_done"] and (run / "accuracy.png").exists()


def test_a_grid_stopped_midway_is_finished_by_resume(tmp_path, monkeypatch):
    args = ["train", "--synthetic", "--epochs", "2", "--hidden", "8", "--quiet", "--compare", "activation=sigmoid,relu"]
    steps = {"n": 0}
    real_step = optim.Adam.step

    def step(self):
        real_step(self)
        steps["n"] += 1
        if steps["n"] == 2 * 42 + 50:  # 5400 training images: 43 batches an epoch; in the second run
            raise Interrupted(signal.SIGTERM)

    monkeypatch.setattr(optim.Adam, "step", step)
    r = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "grid")])
    assert r.exit_code == 143, r.output
    assert json.loads((tmp_path / "grid" / "grid.json").read_text())["status"] == "interrupted"
    summary = (tmp_path / "grid" / "summary.md").read_text()
    assert "| sigmoid |" in summary and "interrupted" in summary
    monkeypatch.setattr(optim.Adam, "step", real_step)
    r = CliRunner().invoke(main, ["train", "--resume", str(tmp_path / "grid"), "--quiet"])
    assert r.exit_code == 0, r.output
    assert CliRunner().invoke(main, [*args, "--out", str(tmp_path / "whole")]).exit_code == 0
    for name in ("activation=sigmoid", "activation=relu"):
        assert numbers(read_metrics(tmp_path / "grid" / name)["epochs"]) == numbers(
            read_metrics(tmp_path / "whole" / name)["epochs"])
    assert json.loads((tmp_path / "grid" / "grid.json").read_text())["status"] == "complete"
    assert "interrupted" not in (tmp_path / "grid" / "summary.md").read_text()


def test_signals_in_a_deferred_section_wait_for_its_end():
    with StopSignals() as stop:
        with pytest.raises(Interrupted) as info:
            with stop.deferred():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.01)
                done = True  # reached: the signal waited
        assert done and info.value.signum == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_a_diverging_run_stops_with_one_line_and_keeps_its_last_good_epoch(tmp_path):
    r = CliRunner().invoke(main, ["train", "--synthetic", "--epochs", "3", "--hidden", "8", "--optimizer", "sgd", "--lr",
                                  "1e30", "--quiet", "--out", str(tmp_path / "run")])
    assert r.exit_code == 1 and r.output.startswith("error: the training loss became") and r.output.count("\n") == 1
    assert read_metrics(tmp_path / "run")["status"] == "diverged"


def test_a_signal_between_two_runs_of_a_grid_stops_it_cleanly(tmp_path):
    from deltagrad.nn.grid import plan_grid, run_grid

    plan = plan_grid(TrainConfig(epochs=1, hidden=(8,), data="synthetic"), ["activation=sigmoid,relu"])

    def after(run, result):
        raise Interrupted(signal.SIGTERM)

    with pytest.raises(RunInterrupted) as info:
        run_grid(plan, tmp_path, progress=False, on_run=after)
    assert info.value.signum == signal.SIGTERM
    assert json.loads((tmp_path / "grid.json").read_text())["status"] == "interrupted"
    assert "| sigmoid | 1 | 1/1 |" in (tmp_path / "summary.md").read_text()
    run_grid(plan, tmp_path, progress=False, resume=True)
    assert json.loads((tmp_path / "grid.json").read_text())["status"] == "complete"
    assert read_metrics(tmp_path / "activation=relu")["status"] == "complete"


def test_resume_with_more_epochs_trains_a_finished_run_on(tmp_path, data):
    from dataclasses import replace

    cfg = TrainConfig(epochs=2, hidden=(8,), data="synthetic", seed=3)
    train(cfg, tmp_path, progress=False, data=data)
    longer = train(replace(cfg, epochs=3), tmp_path, progress=False, data=data, resume=True)
    assert numbers(longer.metrics) == numbers(train(replace(cfg, epochs=3), None, progress=False, data=data).metrics)
    assert read_metrics(tmp_path)["epochs_planned"] == 3 and model_epoch(tmp_path / "model.npz") == 3
