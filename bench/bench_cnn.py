"""The seeds' CNN on MNIST: deltagrad's generated Conv2d/MaxPool2d against PyTorch CPU, side by side.

Same network (conv 1→6 5×5, ReLU, 2×2 max pool (``--pool avg``: average), conv 6→16 5×5, ReLU,
pool, 256→120→84→10; deltagrad's CNN max-pools before ReLU, the same function, and PyTorch is
timed in both orders),
same float32 images, same batch order, batch 64, Adam 1e-3, the same thread count (2 by default,
set before NumPy's BLAS and torch start). Prints seconds per epoch, the ratio (target: within 1.5x
of PyTorch), each side's test accuracy after the timed epochs, and the process's peak memory
after deltagrad's epochs (measured before PyTorch runs).

Run:  python bench/bench_cnn.py [--data-dir ../shared/data/mnist] [--images 55000] [--epochs 1] [--threads 2]
                               [--pool max|avg] [--pixels standard|unit]
A quick look on a shared machine: --images 5000.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mnist"))
    ap.add_argument("--images", type=int, default=55000, help="training images per epoch")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--pool", choices=("max", "avg"), default="max")
    ap.add_argument("--pixels", choices=("standard", "unit"), default="standard",
                    help="both sides' input: standardised with MNIST's mean and s.d. (train --model cnn's default) or in [0, 1]")
    args = ap.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)  # before numpy loads its BLAS

    import numpy as np

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    from deltagrad.nn import functions as F
    from deltagrad.nn.data import load_mnist
    from deltagrad.nn.graph import Tensor
    from deltagrad.nn.modules import CNN
    from deltagrad.nn.optim import Adam
    from deltagrad.nn.train import MNIST_MEAN, MNIST_STD, one_hot

    data = load_mnist(args.data_dir)
    x = data["train"].images[: args.images].astype(np.float32)
    labels = data["train"].labels[: args.images]
    y = one_hot(labels)
    x_test, y_test = data["test"].images.astype(np.float32), data["test"].labels
    if args.pixels == "standard":
        x, x_test = [((a - np.float32(MNIST_MEAN)) / np.float32(MNIST_STD)).astype(np.float32) for a in (x, x_test)]
    rng = np.random.default_rng(0)
    orders = [rng.permutation(len(x)) for _ in range(args.epochs)]
    bs = args.batch_size

    def accuracy(predict):
        hits = 0
        for s in range(0, len(x_test), 1000):
            hits += int((predict(x_test[s:s + 1000]).argmax(1) == y_test[s:s + 1000]).sum())
        return hits / len(x_test)

    def run_deltagrad():
        net = CNN(pool=args.pool, rng=np.random.default_rng(0))
        opt = Adam(net.parameters(), 1e-3)
        times = []
        for order in orders:
            t0 = time.perf_counter()
            for s in range(0, len(x), bs):
                idx = order[s:s + bs]
                loss = F.softmax_cross_entropy(net(Tensor(x[idx])), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            times.append(time.perf_counter() - t0)
        return min(times), accuracy(lambda xb: net(Tensor(xb)).value)

    def run_torch(pool_first=False):
        try:
            import torch
        except ImportError:
            return None, None, None
        torch.set_num_threads(args.threads)
        torch.manual_seed(0)
        nn = torch.nn
        pool = nn.MaxPool2d if args.pool == "max" else nn.AvgPool2d
        def block(a, b):  # the seeds' order, or deltagrad's (max-pooling first: the same function)
            return [nn.Conv2d(a, b, 5), pool(2), nn.ReLU()] if pool_first else [nn.Conv2d(a, b, 5), nn.ReLU(), pool(2)]

        net = nn.Sequential(nn.Unflatten(1, (1, 28, 28)), *block(1, 6), *block(6, 16), nn.Flatten(),
                            nn.Linear(256, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
        opt = torch.optim.Adam(net.parameters(), 1e-3)
        xt, yt = torch.from_numpy(x), torch.from_numpy(labels.astype(np.int64))
        times = []
        for order in orders:
            ot = torch.from_numpy(order)
            t0 = time.perf_counter()
            for s in range(0, len(x), bs):
                idx = ot[s:s + bs]
                loss = nn.functional.cross_entropy(net(xt[idx]), yt[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            times.append(time.perf_counter() - t0)
        with torch.no_grad():
            acc = accuracy(lambda xb: net(torch.from_numpy(xb)).numpy())
        return min(times), acc, torch.__version__

    ours, our_acc = run_deltagrad()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB (Linux: KiB), data included
    theirs, their_acc, version = run_torch()
    if theirs is not None and args.pool == "max":
        reordered, reordered_acc, _ = run_torch(pool_first=True)
    print(f"the seeds' CNN ({args.pool} pool), {len(x)} images ({args.pixels} pixels), batch {bs}, float32, "
          f"{args.threads} threads, best of {args.epochs} epoch(s); numpy {np.__version__}")
    print(f"  {'deltagrad (generated Conv2d, ' + args.pool.title() + 'Pool2d)':<42} {ours:8.2f} s/epoch   test accuracy {our_acc:.4f}"
          f"   peak memory {peak:.0f} MiB (process, data included; target < 2048)")
    if theirs is None:
        print("  PyTorch: not installed")
        return
    ratio = ours / theirs
    print(f"  {'PyTorch ' + version + ' CPU':<42} {theirs:8.2f} s/epoch   test accuracy {their_acc:.4f}")
    print(f"  deltagrad/torch = {ratio:.2f}x (target <= 1.5x: {'ok' if ratio <= 1.5 else 'MISSED'})")
    if args.pool == "max":  # deltagrad's CNN max-pools before the activation; PyTorch given the same order
        print(f"  {'PyTorch, max pool before ReLU':<42} {reordered:8.2f} s/epoch   test accuracy {reordered_acc:.4f}")
        print(f"  deltagrad/torch (same order) = {ours / reordered:.2f}x")


if __name__ == "__main__":
    main()
