"""Regenerate the README's experiment plots: each experiment is one `deltagrad train` command.

The settings are reduced so that all six grids take a few minutes on two CPU cores: the first
20000 training images (18000 to train on, 2000 to validate), 5 epochs, 3 seeds per setting; the
test accuracy is always on the full 10000 test images. Drop --limit and raise --epochs for the
full experiments.

Run:  python docs/experiments/make_plots.py [--data-dir ../shared/data/mnist] [--runs runs/experiments] [--replot]

--replot redraws the plots and tables of grids already trained (`deltagrad train --resume` on a
finished grid trains nothing and writes its outputs again).

Each grid is trained into RUNS/NAME; its validation-accuracy and training-loss overlays are copied
here as NAME_val_accuracy.png and NAME_train_loss.png, and its summary table as NAME.md.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REDUCED = ["--limit", "20000", "--epochs", "5", "--seeds", "3"]

#: name → the options of its `deltagrad train` command (besides --data-dir, the reduction and --out)
EXPERIMENTS = {
    "activation": ["--compare", "activation=sigmoid,relu"],
    "width": ["--compare", "hidden=32,100,300,1000"],
    "depth": ["--compare", "hidden=300,300-300,300-300-300,300-300-300-300"],
    "momentum": ["--optimizer", "sgd", "--lr", "0.01", "--compare", "momentum=0,0.5,0.9,0.99"],
    "init": ["--compare", "init=glorot,glorot_normal,normal,zeros"],
    "optimizer": ["--compare", "optimizer=sgd,momentum,adam,rmsprop"],
}


def command(name: str, data_dir: str, runs: Path) -> list:
    return ["deltagrad", "train", *EXPERIMENTS[name], *REDUCED, "--data-dir", data_dir, "--quiet",
            "--out", str(runs / name)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default=str(HERE.parents[2] / "shared" / "data" / "mnist"))
    ap.add_argument("--runs", default="runs/experiments")
    ap.add_argument("--replot", action="store_true", help="only redraw grids already trained in --runs")
    ap.add_argument("names", nargs="*", default=list(EXPERIMENTS), help="which experiments (default: all)")
    args = ap.parse_args()
    runs = Path(args.runs)
    total = time.perf_counter()
    for name in args.names:
        cmd = command(name, args.data_dir, runs)
        if args.replot:
            cmd = ["deltagrad", "train", "--resume", str(runs / name), "--quiet"]
        print("$ " + shlex.join(cmd), flush=True)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "deltagrad.cli", *cmd[1:]], check=True)
        print(f"({time.perf_counter() - start:.0f} s)\n", flush=True)
        for metric in ("val_accuracy", "train_loss"):
            shutil.copyfile(runs / name / f"compare_{metric}.png", HERE / f"{name}_{metric}.png")
        shutil.copyfile(runs / name / "summary.md", HERE / f"{name}.md")
    print(f"all: {time.perf_counter() - total:.0f} s")


if __name__ == "__main__":
    main()
