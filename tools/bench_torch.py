"""Measures the PyTorch side of `make bench`: the same row-LSTM configurations, batches and method as
`lstmvision bench` (warm-up, median of 5 timed windows, 2 threads), one JSON line per measurement; and (`epoch`, for
tools/bench_rounds.py) the 1×128 MNIST epoch that `lstmvision train --epochs 1` times."""
import argparse
import gzip
import json
import statistics
import time

import numpy as np

import torch
from torch import nn

from make_reference import RowLSTM  # the reference module, defined once


CONFIGS = {"1x128": (128, 1, False), "2x128-bi": (128, 2, True)}


def flops(config, batch, training):
    hidden, layers, bi = CONFIGS[config]
    dirs = 2 if bi else 1
    total = 0.0
    for layer in range(layers):
        inp = 28 if layer == 0 else hidden * dirs
        total += dirs * 2 * batch * 28 * 4 * hidden * (inp + hidden)
    return 3 * total if training else total


def rate(body, window, windows):
    start = time.perf_counter()
    while time.perf_counter() - start < window / 2:
        body()
    rates = []
    for _ in range(windows):
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < window:
            body()
            n += 1
        rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates)


def sgemm_peak(n=1536, seconds=0.6):
    a = torch.full((n, n), 0.5)
    b = a.clone()
    best, start = 0.0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = max(best, 2 * n ** 3 / (time.perf_counter() - t0) / 1e9)
    return best


def measure(config, mode, batch, peak, window):
    torch.manual_seed(1)
    model = RowLSTM(*CONFIGS[config])
    x = torch.rand(batch, 28, 28)
    labels = torch.arange(batch) % 10
    if mode == "train":
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)
        loss_fn = nn.CrossEntropyLoss()

        def body():
            opt.zero_grad()
            loss_fn(model(x), labels).backward()
            opt.step()
    else:
        model.eval()

        def body():
            with torch.no_grad():
                model(x)
    per_second = rate(body, window, 5)
    gflops = per_second * flops(config, batch, mode == "train") / 1e9
    return {"config": config, "mode": mode, "batch": batch, "images_per_second": per_second * batch,
            "gflops": gflops, "peak_fraction": gflops / peak, "sgemm_peak_gflops": peak,
            "threads": torch.get_num_threads(), "framework": f"pytorch {torch.__version__}"}


def mnist_train(directory="data/mnist"):
    """The 60,000 MNIST training images scaled to [0, 1] as [60000, 28, 28] floats, and their labels."""
    with gzip.open(f"{directory}/train-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(f"{directory}/train-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    return torch.from_numpy(images.astype(np.float32) / 255), torch.from_numpy(labels.astype(np.int64))


def epoch(images, labels, batch=64, seed=1):
    """Seconds of one 1×128 training epoch as a PyTorch user writes it: the data in memory, shuffled batches of 64,
    cross-entropy, Adam (lr 2e-3, as `lstmvision train`), as `lstmvision train --epochs 1` times it (no validation)."""
    torch.manual_seed(seed)
    model = RowLSTM(*CONFIGS["1x128"])
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    order = torch.randperm(len(labels))
    for i in range(0, len(labels), batch):
        idx = order[i:i + batch]
        opt.zero_grad()
        loss_fn(model(images[idx]), labels[idx]).backward()
        opt.step()
    return time.perf_counter() - start


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--configs", default="1x128,2x128-bi")
    p.add_argument("--modes", default="train,infer")
    p.add_argument("--infer-batches", default="1,64,256")
    p.add_argument("--train-batches", default="64,256")
    p.add_argument("--window", type=float, default=0.5)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    peak = sgemm_peak()
    for config in a.configs.split(","):
        for mode in a.modes.split(","):
            for batch in (a.train_batches if mode == "train" else a.infer_batches).split(","):
                print(json.dumps(measure(config, mode, int(batch), peak, a.window)), flush=True)


if __name__ == "__main__":
    main()
