"""Experiment grids (every combination of several --compare, --seeds), their overlay plots and
summary tables; the plots' legends, labels and epoch ticks."""

import csv
import io
import json

import pytest
from click.testing import CliRunner

from deltagrad.cli import main
from deltagrad.nn.config import ConfigError, TrainConfig
from deltagrad.nn.grid import expand_grid
from deltagrad.nn.plots import overlay_figures, run_figures
from deltagrad.nn.runs import RunResult, load_result


def test_a_two_by_two_grid_runs_four_folders_with_overlays_and_a_summary(tmp_path):
    out = tmp_path / "grid"
    r = CliRunner().invoke(main, ["train", "--synthetic", "--epochs", "2", "--hidden", "8", "--quiet",
                                  "--compare", "activation=sigmoid,relu", "--compare", "hidden=8,16-8", "--out", str(out)])
    assert r.exit_code == 0, r.output
    folders = ["activation=sigmoid,hidden=8", "activation=sigmoid,hidden=16-8", "activation=relu,hidden=8",
               "activation=relu,hidden=16-8"]
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(folders)
    for f in folders:
        result = load_result(out / f)
        assert result.status == "complete" and len(result.metrics) == 2
        assert f in r.output
    assert load_result(out / "activation=relu,hidden=16-8").config.hidden == (16, 8)
    for name in ("compare_train_loss.png", "compare_val_accuracy.png", "compare_test_accuracy.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = list(csv.DictReader(io.StringIO((out / "summary.csv").read_text())))
    assert [(row["activation"], row["hidden"]) for row in rows] == [("sigmoid", "8"), ("sigmoid", "16-8"),
                                                                    ("relu", "8"), ("relu", "16-8")]
    for row in rows:
        assert 0 <= float(row["final_val_accuracy"]) <= float(row["best_val_accuracy"]) <= 1
        assert float(row["final_test_accuracy"]) <= float(row["best_test_accuracy"]) <= 1
        assert float(row["seconds_per_epoch"]) > 0 and row["status"] == "complete" and row["epochs"] == "2/2"
    md = (out / "summary.md").read_text()
    assert md.startswith("| activation | hidden | seeds | epochs | final val acc | best val acc | final test acc |")
    assert md.count("\n") == 2 + 4 and md in r.output + "\n"
    grid = json.loads((out / "grid.json").read_text())
    assert grid["status"] == "complete" and grid["compare"] == ["activation=sigmoid,relu", "hidden=8,16-8"]


def test_seeds_repeat_each_setting_and_the_summary_gives_the_spread(tmp_path):
    out = tmp_path / "seeds"
    r = CliRunner().invoke(main, ["train", "--synthetic", "--epochs", "1", "--hidden", "8", "--quiet", "--seed", "5",
                                  "--seeds", "2", "--compare", "lr=0.001,0.01", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (out / "lr=0.001").iterdir()) == ["seed=5", "seed=6"]
    assert load_result(out / "lr=0.01" / "seed=6").config.seed == 6
    rows = list(csv.DictReader(io.StringIO((out / "summary.csv").read_text())))
    assert [row["seeds"] for row in rows] == ["2", "2"] and all(row["final_val_accuracy_sd"] for row in rows)
    assert " ± " in (out / "summary.md").read_text()


def test_seeds_without_compare(tmp_path):
    r = CliRunner().invoke(main, ["train", "--synthetic", "--epochs", "1", "--hidden", "8", "--quiet", "--seeds", "2",
                                  "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "seed=0" / "model.npz").exists() and (tmp_path / "seed=1" / "model.npz").exists()
    assert "| setting |" in (tmp_path / "summary.md").read_text()


def test_momentum_grids_use_sgd_and_optimisers_take_their_own_learning_rate():
    runs = expand_grid(TrainConfig(), ["momentum=0,0.9"])
    assert [(r.config.optimizer, r.config.momentum, r.config.lr) for r in runs] == [("sgd", 0, 0.1), ("sgd", 0.9, 0.1)]
    runs = expand_grid(TrainConfig(), ["optimizer=sgd,momentum,adam,rmsprop"])
    assert [(r.config.lr, r.config.momentum) for r in runs] == [(0.1, 0), (0.01, 0.9), (0.001, 0), (0.001, 0)]
    runs = expand_grid(TrainConfig(lr=0.05), ["optimizer=sgd,adam"])
    assert [r.config.lr for r in runs] == [0.05, 0.05]
    with pytest.raises(ConfigError, match="run optimizer=adam,momentum=0.5: --momentum applies"):
        expand_grid(TrainConfig(), ["optimizer=sgd,adam", "momentum=0,0.5"])


# ---- plots -------------------------------------------------------------------------------------

def fake_run(epochs, offset=0.0, **config):
    rows = [{"epoch": e, "train_loss": 1 / e + offset, "val_accuracy": 0.9 + e / 100 + offset,
             "test_accuracy": 0.89 + e / 100 + offset, "seconds": 1.0} for e in range(1, epochs + 1)]
    return RunResult(TrainConfig(**config), rows)


def legend_texts(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_a_runs_plots_put_every_line_in_the_legend_with_labels_that_say_what_is_drawn():
    import matplotlib.pyplot as plt

    figs = run_figures(fake_run(1))
    loss, acc = figs["loss.png"].axes[0], figs["accuracy.png"].axes[0]
    assert legend_texts(loss) == ["training loss"] and len(loss.get_lines()) == 1
    assert legend_texts(acc) == ["validation (5000 images)", "test (10000 images)"] and len(acc.get_lines()) == 2
    assert acc.get_ylabel() == "accuracy (fraction correct)" and "cross-entropy" in loss.get_ylabel()
    for ax in (loss, acc):
        assert ax.get_xlabel() == "epoch"
        assert list(ax.get_xticks()) == [1]  # one epoch: one tick, at 1
    for f in figs.values():
        plt.close(f)


def test_epoch_ticks_are_integers():
    import matplotlib.pyplot as plt

    for epochs in (2, 5, 15, 40):
        figs = run_figures(fake_run(epochs))
        ax = figs["accuracy.png"].axes[0]
        figs["accuracy.png"].canvas.draw()
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() and 1 <= t <= epochs for t in ticks), (epochs, ticks)
        for f in figs.values():
            plt.close(f)


def test_overlay_plots_have_one_legend_entry_per_setting_and_bands_for_seeds():
    import matplotlib.pyplot as plt

    groups = [("activation=sigmoid", [fake_run(3), fake_run(3, 0.01)]), ("activation=relu", [fake_run(3, 0.02)])]
    figs = overlay_figures(groups, "hidden 300")
    assert sorted(figs) == ["compare_test_accuracy.png", "compare_train_loss.png", "compare_val_accuracy.png"]
    ax = figs["compare_val_accuracy.png"].axes[0]
    assert legend_texts(ax) == ["activation=sigmoid", "activation=relu"] and len(ax.get_lines()) == 2
    assert len(ax.collections) == 1  # the band of the setting with two seeds
    assert ax.get_ylabel().startswith("validation accuracy") and "mean ± 1 s.d. over 2 seeds" in ax.get_title()
    assert list(ax.get_xticks()) == [1, 2, 3]
    for f in figs.values():
        plt.close(f)


def test_a_grid_over_models_gives_each_model_its_own_defaults():
    runs = expand_grid(TrainConfig(), ["model=mlp,cnn"])
    mlp, cnn = (r.config for r in runs)
    assert (mlp.hidden, mlp.pixels) == ((300,), "unit")
    assert (cnn.model, cnn.hidden, cnn.pixels) == ("cnn", (120, 84), "standard")
    assert (mlp.batch_size, mlp.lr_decay, mlp.shift) == (128, 1.0, 0)
    assert (cnn.batch_size, cnn.lr_decay, cnn.shift) == (64, 0.7, 1)  # the CNN's schedule and augmentation
    given = expand_grid(TrainConfig(hidden=(64,), pixels="unit"), ["model=cnn"], keep=("pixels",))[0].config
    assert (given.hidden, given.pixels) == ((64,), "unit")  # settings given on the command line stay
    back = expand_grid(TrainConfig(model="cnn", hidden=(120, 84), pixels="standard"), ["model=mlp,cnn"])
    assert [(r.config.hidden, r.config.pixels) for r in back] == [((300,), "unit"), ((120, 84), "standard")]


def test_the_cli_grid_over_models_keeps_what_was_given(tmp_path):
    import json

    from click.testing import CliRunner

    from deltagrad.cli import main

    args = ["train", "--synthetic", "--limit", "300", "--epochs", "1", "--channels", "2,2", "--quiet",
            "--compare", "model=mlp,cnn", "--out", str(tmp_path)]
    result = CliRunner().invoke(main, [*args, "--pixels", "unit", "--shift", "0"])
    assert result.exit_code == 0, result.output
    cnn = json.loads((tmp_path / "model=cnn" / "config.json").read_text())
    cnn = cnn.get("config", cnn)
    assert cnn["hidden"] == [120, 84] and cnn["pixels"] == "unit"  # the CNN's widths; the pixels given
    assert cnn["batch_size"] == 64 and cnn["shift"] == 0  # the CNN's batch; the shift given
    assert json.loads((tmp_path / "grid.json").read_text())["keep"] == ["pixels", "shift"]


def test_a_grid_over_models_under_a_preset_matches_make_config():
    """The CNN chosen by --compare gets what --model would have given it (and back)."""
    from deltagrad.nn.config import make_config

    cnn = make_config(preset="vugrad", model="cnn")
    runs = expand_grid(make_config(preset="vugrad"), ["model=mlp,cnn"])
    assert [(r.config.hidden, r.config.pixels) for r in runs] == [((3136,), "raw"), (cnn.hidden, cnn.pixels)]
    back = expand_grid(cnn, ["model=mlp"])[0].config
    assert (back.hidden, back.pixels) == ((3136,), "raw")
