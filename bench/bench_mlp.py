"""MNIST MLP benchmarks, side by side in one run; prints a table with ratios.

1. Accuracy: 784-300-10 ReLU MLP, Adam 1e-3, batch 128, 10 epochs, trained with the generated
   ops only (target: >= 98.0% test accuracy).
2. Seconds per epoch, same network, same float32 data, same batch order, same thread count:
   deltagrad (graph + generated ops) vs a hand-written NumPy MLP with no graph (target: within
   1.15x) vs PyTorch on the CPU (target: within 1.2x; `pip install torch==2.13.0`, optional).
3. Peak memory (max RSS) of a 1-epoch `deltagrad train` in a fresh process (target < 1.5 GB).
4. With --vugrad: one epoch of `--preset vugrad` (784-3136-10 sigmoid, SGD lr 1e-4, summed loss,
   raw pixels, float64, no shuffling; 55000/5000 split): validation accuracy (target >= 0.94,
   vugrad's own loop gives 0.9486) and seconds.

Run:  python bench/bench_mlp.py [--data-dir ../shared/data/mnist] [--epochs 10] [--threads 2] [--vugrad]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np


def hand_numpy_epoch(x, y, order, params, state, lr=1e-3, bs=128, b1=0.9, b2=0.999, eps=1e-8):
    """One epoch of the same MLP written directly in NumPy (forward, backward, Adam)."""
    W0, b0, W1, b1_ = params
    n = x.shape[0]
    for s in range(0, n, bs):
        idx = order[s:s + bs]
        xb, yb = x[idx], y[idx]
        h_pre = xb @ W0 + b0
        h = np.maximum(h_pre, 0)
        z = h @ W1 + b1_
        m = z.max(axis=1, keepdims=True)
        e = np.exp(z - m)
        ssum = e.sum(axis=1, keepdims=True)
        loss = -np.sum(yb * (z - m - np.log(ssum))) / len(idx)  # noqa: F841
        dz = (e / ssum * yb.sum(axis=1, keepdims=True) - yb) / len(idx)
        gW1 = h.T @ dz
        gb1 = dz.sum(axis=0)
        dh = dz @ W1.T
        dh_pre = dh * (h_pre > 0)
        gW0 = xb.T @ dh_pre
        gb0 = dh_pre.sum(axis=0)
        state["t"] += 1
        t = state["t"]
        scale = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        for p, g, mm, vv in zip(params, (gW0, gb0, gW1, gb1), state["m"], state["v"]):
            mm *= b1
            mm += (1 - b1) * g
            vv *= b2
            vv += (1 - b2) * (g * g)
            p -= scale * mm / (np.sqrt(vv) + eps)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mnist"))
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--timing-epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--vugrad", action="store_true", help="also time one epoch of --preset vugrad")
    args = ap.parse_args()

    from deltagrad.nn import functions as F
    from deltagrad.nn.data import load_mnist
    from deltagrad.nn.graph import Tensor
    from deltagrad.nn.modules import MLP
    from deltagrad.nn.optim import Adam
    from deltagrad.nn.train import TrainConfig, one_hot, train

    data = load_mnist(args.data_dir)
    print(f"threads: {args.threads}; numpy {np.__version__}")

    # 1. accuracy
    start = time.perf_counter()
    run = train(TrainConfig(epochs=args.epochs, hidden=(300,), activation="relu", optimizer="adam", lr=1e-3,
                            batch_size=128, seed=0), None, progress=False, data=data)
    best = run.metrics[-1]["test_accuracy"]
    print(f"\n1. 784-300-10 ReLU, Adam 1e-3, batch 128, {args.epochs} epochs: test accuracy {best:.4f} "
          f"(target >= 0.9800: {'ok' if best >= 0.98 else 'MISSED'}), {time.perf_counter() - start:.1f} s")
    for m in run.metrics:
        print(f"   epoch {m['epoch']:2d}  loss {m['train_loss']:.4f}  val {m['val_accuracy']:.4f}  test {m['test_accuracy']:.4f}")

    # 2. seconds per epoch, side by side
    x = data["train"].images[:55000]
    y = one_hot(data["train"].labels[:55000])
    rng = np.random.default_rng(0)
    orders = [rng.permutation(len(x)) for _ in range(args.timing_epochs)]

    def time_deltagrad():
        net = MLP([784, 300, 10], "relu", rng=np.random.default_rng(0))
        opt = Adam(net.parameters(), 1e-3)
        times = []
        for order in orders:
            t0 = time.perf_counter()
            for s in range(0, len(x), 128):
                idx = order[s:s + 128]
                loss = F.softmax_cross_entropy(net(Tensor(x[idx])), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            times.append(time.perf_counter() - t0)
        return min(times)

    def time_numpy():
        r = np.random.default_rng(0)
        a0, a1 = np.sqrt(6 / (784 + 300)), np.sqrt(6 / 310)
        params = [r.uniform(-a0, a0, (784, 300)).astype(np.float32), np.zeros(300, np.float32),
                  r.uniform(-a1, a1, (300, 10)).astype(np.float32), np.zeros(10, np.float32)]
        state = {"t": 0, "m": [np.zeros_like(p) for p in params], "v": [np.zeros_like(p) for p in params]}
        times = []
        for order in orders:
            t0 = time.perf_counter()
            hand_numpy_epoch(x, y, order, params, state)
            times.append(time.perf_counter() - t0)
        return min(times)

    def time_torch():
        try:
            import torch
        except ImportError:
            return None, None
        torch.set_num_threads(args.threads)
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(784, 300), torch.nn.ReLU(), torch.nn.Linear(300, 10))
        opt = torch.optim.Adam(net.parameters(), 1e-3)
        xt, yt = torch.from_numpy(x), torch.from_numpy(data["train"].labels[:55000])
        times = []
        for order in orders:
            ot = torch.from_numpy(order)
            t0 = time.perf_counter()
            for s in range(0, len(x), 128):
                idx = ot[s:s + 128]
                loss = torch.nn.functional.cross_entropy(net(xt[idx]), yt[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            times.append(time.perf_counter() - t0)
        return min(times), torch.__version__

    ours = time_deltagrad()
    hand = time_numpy()
    torch_s, torch_v = time_torch()
    print(f"\n2. seconds per epoch (55000 images, batch 128, float32, best of {args.timing_epochs}):")
    print(f"   {'deltagrad (generated ops + graph)':<36} {ours:7.3f} s")
    print(f"   {'hand-written NumPy, no graph':<36} {hand:7.3f} s   deltagrad/numpy = {ours / hand:.3f}x "
          f"(target <= 1.15x: {'ok' if ours / hand <= 1.15 else 'MISSED'})")
    if torch_s is None:
        print("   PyTorch: not installed (pip install torch==2.13.0 to compare)")
    else:
        print(f"   {'PyTorch ' + torch_v + ' CPU':<36} {torch_s:7.3f} s   deltagrad/torch = {ours / torch_s:.3f}x "
              f"(target <= 1.2x: {'ok' if ours / torch_s <= 1.2 else 'MISSED'})")

    # 3. peak memory of a real training run in a fresh process
    code = ("import resource, sys; from click.testing import CliRunner; from deltagrad.cli import main; "
            f"r = CliRunner().invoke(main, ['train', '--epochs', '1', '--quiet', '--data-dir', {args.data_dir!r}, "
            "'--out', '/tmp/deltagrad-bench-run']); assert r.exit_code == 0, r.output; "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    peak_mb = int(out.stdout.strip().splitlines()[-1]) / 1024
    print(f"\n3. peak memory of `deltagrad train --epochs 1`: {peak_mb:.0f} MB "
          f"(target < 1536 MB: {'ok' if peak_mb < 1536 else 'MISSED'})")

    # 4. vugrad's conventions
    if args.vugrad:
        from deltagrad.nn.config import make_config

        run = train(make_config("vugrad", epochs=1, data_dir=args.data_dir), None, progress=False,
                    data=load_mnist(args.data_dir, raw=True))
        m = run.metrics[-1]
        print(f"\n4. --preset vugrad, 1 epoch: validation accuracy {m['val_accuracy']:.4f} "
              f"(target >= 0.94: {'ok' if m['val_accuracy'] >= 0.94 else 'MISSED'}), test {m['test_accuracy']:.4f}, "
              f"{m['seconds']:.1f} s for the epoch")


if __name__ == "__main__":
    main()
