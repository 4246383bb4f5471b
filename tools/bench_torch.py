"""Measures the peers' side of `make bench`: the same models, batches and method as `lstmvision bench` (warm-up,
median of 5 timed windows, 2 threads), one JSON line per measurement, in PyTorch and, for inference, in ONNX Runtime
running the PyTorch model exported by `torch.onnx.export` (its outputs checked against PyTorch's); and (`epoch`, for
tools/bench_rounds.py) the 1×128 MNIST epoch that `lstmvision train --epochs 1` times."""
import argparse
import gzip
import json
import os
import re
import statistics
import sys
import time

import numpy as np

import torch
from torch import nn

from make_reference import RowLSTM  # the reference module, defined once

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import lstmvision_torch as lt  # noqa: E402  (the PyTorch definitions of LSTMVision's ReNet and detector)

CONFIGS = ["1x128", "2x128-bi", "1x512", "2x256-bi", "renet", "detector"]
ROW = re.compile(r"^(\d+)x(\d+)(-bi)?(?:@(\d+)x(\d+))?$")


def row(config):
    """(hidden, layers, bidirectional, steps, inputs) of a row-LSTM named as `lstmvision bench` names them,
    LxH[-bi][@TxI], or None."""
    m = ROW.match(config)
    if not m:
        return None
    return int(m[2]), int(m[1]), bool(m[3]), int(m[4] or 28), int(m[5] or 28)


def model_and_input(config, batch):
    """The model of `config` (seeded) and a uniform input batch, as `lstmvision bench` builds them: row-LSTMs, the
    ReNet of models/renet (2×2 patches, 32 units, FC 256; renet@S on S×S images), the default detector on 64×64
    canvases."""
    torch.manual_seed(1)
    if config.startswith("renet"):
        size = int(config.split("@")[1]) if "@" in config else 28
        return lt.ReNet(hidden=32, patch=2, fc=256, size=size), torch.rand(batch, size, size)
    if config == "detector":
        return lt.LSTMDetector(), torch.rand(batch, 64, 64)
    hidden, layers, bi, steps, inputs = row(config)
    return RowLSTM(hidden, layers, bi, inputs=inputs), torch.rand(batch, steps, inputs)


def loss_of(config, output, labels):
    """Cross-entropy for the classifiers; for the detector the MSE of its raw outputs against zeros, as `lstmvision
    bench` (the Hungarian matching left out on both sides)."""
    if config == "detector":
        return nn.functional.mse_loss(output, torch.zeros_like(output))
    return nn.functional.cross_entropy(output, labels)


def flops(config, batch, training):
    """The gate GEMMs' floating-point operations of a row-LSTM batch (None for the other models)."""
    if row(config) is None:
        return None
    hidden, layers, bi, steps, inputs = row(config)
    dirs = 2 if bi else 1
    total = 0.0
    for layer in range(layers):
        inp = inputs if layer == 0 else hidden * dirs
        total += dirs * 2 * batch * steps * 4 * hidden * (inp + hidden)
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
    model, x = model_and_input(config, batch)
    labels = torch.arange(batch) % 10
    if mode == "train":
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)

        def body():
            opt.zero_grad()
            loss_of(config, model(x), labels).backward()
            opt.step()
    else:
        model.eval()

        def body():
            with torch.no_grad():
                model(x)
    per_second = rate(body, window, 5)
    count = flops(config, batch, mode == "train")
    gflops = per_second * count / 1e9 if count else None
    return {"config": config, "mode": mode, "batch": batch, "images_per_second": per_second * batch,
            "gflops": gflops, "peak_fraction": gflops / peak if gflops else None, "sgemm_peak_gflops": peak,
            "threads": torch.get_num_threads(), "framework": f"pytorch {torch.__version__}"}


_SESSIONS = {}


def onnx_session(config, batch, threads, folder="runs/bench-onnx"):
    """ONNX Runtime's session of the PyTorch model of `config` exported at `batch` (`torch.onnx.export`, opset 17),
    with its input; the export and the check against PyTorch (max |difference| ≤ 1e-4) happen once per process."""
    import onnxruntime as ort
    key = (config, batch, threads)
    if key not in _SESSIONS:
        model, x = model_and_input(config, batch)
        model.eval()
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"{config}-{batch}.onnx")
        torch.onnx.export(model, (x,), path, dynamo=False, opset_version=17, input_names=["x"], output_names=["y"])
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        feed = {"x": x.numpy()}
        with torch.no_grad():
            difference = float(np.abs(session.run(None, feed)[0] - model(x).numpy()).max())
        if not difference <= 1e-4:
            raise SystemExit(f"{path}: ONNX Runtime's outputs differ from PyTorch's by {difference}")
        _SESSIONS[key] = (session, feed, difference, ort.__version__)
    return _SESSIONS[key]


def measure_onnx(config, batch, peak, window, threads=2):
    """Inference of `config` at `batch` in ONNX Runtime (CPU, `threads` intra-op threads, sequential)."""
    session, feed, difference, version = onnx_session(config, batch, threads)
    per_second = rate(lambda: session.run(None, feed), window, 5)
    count = flops(config, batch, False)
    gflops = per_second * count / 1e9 if count else None
    return {"config": config, "mode": "infer", "batch": batch, "images_per_second": per_second * batch,
            "gflops": gflops, "peak_fraction": gflops / peak if gflops else None, "sgemm_peak_gflops": peak,
            "threads": threads, "framework": f"onnxruntime {version}", "max_abs_difference": difference}


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
    model = RowLSTM(128, 1, False)
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
    p.add_argument("--onnx", action="store_true", help="inference in ONNX Runtime instead of PyTorch")
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
                if a.onnx and mode == "infer":
                    line = measure_onnx(config, int(batch), peak, a.window, a.threads)
                else:
                    line = measure(config, mode, int(batch), peak, a.window)
                print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
