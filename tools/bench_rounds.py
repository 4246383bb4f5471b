"""Runs the rounds of `make bench`: every measurement (configuration, mode, batch) of `lstmvision bench`, of PyTorch
and, for inference, of ONNX Runtime (tools/bench_torch.py, in this process) back to back, in rotating order, so that
the sides are taken seconds apart rather than a whole run apart (this VM's speed drifts from minute to minute). Writes
each round's lines to runs/bench-SIDE-R.jsonl (SIDE: lstmvision, pytorch, onnxruntime). Each round also trains one full 1×128 epoch
(`lstmvision train --epochs 1`, 60,000 images, batch 64), timed with the sgemm peak measured just before it, and the
same epoch in PyTorch (tools/bench_torch.py's `epoch`), the two back to back in alternating order. Then the table
(tools/bench_table.py).

Usage: bench_rounds.py ROUNDS"""
import csv
import json
import shutil
import subprocess
import sys

import torch

import bench_table
from bench_torch import epoch as torch_epoch, measure, measure_onnx, mnist_train, sgemm_peak

THREADS = 2
# Per configuration: the training batches, the inference batches.
PLAN = {"1x128": ((64, 256), (1, 64, 256)), "2x128-bi": ((64, 256), (1, 64, 256)), "1x512": ((64,), (1, 64, 256)),
        "2x256-bi": ((64,), (1, 64, 256)), "renet": ((64,), (1, 64)), "detector": ((16,), (1, 16))}
MEASUREMENTS = [(config, mode, batch) for config, (train, infer) in PLAN.items()
                for mode, batches in (("train", train), ("infer", infer)) for batch in batches]


def ours(config, mode, batch, window=0.5, precision="fp32"):
    option = "--train-batches" if mode == "train" else "--infer-batches"
    out = subprocess.run([".build/release/lstmvision", "bench", "--json", "--threads", str(THREADS), "--configs", config,
                          "--modes", mode, option, str(batch), "--window", str(window), "--precision", precision],
                         check=True, capture_output=True, text=True).stdout
    return next(json.loads(line) for line in out.splitlines() if line.startswith("{"))


def epoch():
    """Seconds of one 1×128 training epoch of `lstmvision train` (validation excluded) and the sgemm peak measured just before."""
    peak = ours("1x128", "infer", 1, window=0.02)["sgemm_peak_gflops"]
    shutil.rmtree("runs/bench-epoch", ignore_errors=True)
    subprocess.run([".build/release/lstmvision", "train", "--epochs", "1", "--threads", str(THREADS), "--out", "runs/bench-epoch"],
                   check=True, capture_output=True)
    with open("runs/bench-epoch/log.csv") as f:
        return {"seconds": float(next(csv.DictReader(f))["seconds"]), "sgemm_peak_gflops": peak}


def theirs(config, mode, batch):
    return measure(config, mode, batch, sgemm_peak(), 0.5)


def onnx(config, mode, batch):
    return measure_onnx(config, batch, sgemm_peak(), 0.5, THREADS)


def main(rounds):
    torch.set_num_threads(THREADS)
    epochs, measured = [], []
    images, labels = mnist_train()
    for r in range(1, rounds + 1):
        print(f"round {r} of {rounds}", flush=True)
        lines = {"lstmvision": [], "pytorch": [], "onnxruntime": []}
        for i, (config, mode, batch) in enumerate(MEASUREMENTS):
            sides = [("lstmvision", ours), ("pytorch", theirs)] + ([("onnxruntime", onnx)] if mode == "infer" else [])
            shift = (r + i) % len(sides)
            for name, run in sides[shift:] + sides[:shift]:
                line = run(config, mode, batch)
                lines[name].append(line)
                print(json.dumps(line), flush=True)
        timed = {}
        for run in (epoch, lambda: {"pytorch_seconds": torch_epoch(images, labels)})[::1 if r % 2 else -1]:
            timed.update(run())
        epochs.append(timed)
        print(json.dumps({"epoch": epochs[-1]}), flush=True)
        for name in lines:
            with open(f"runs/bench-{name}-{r}.jsonl", "w") as f:
                f.writelines(json.dumps(line) + "\n" for line in lines[name])
        measured.append({name: {(x["config"], x["mode"], x["batch"]): x for x in lines[name]} for name in lines})
    bench_table.main("docs/performance.md", measured, epochs=epochs)


if __name__ == "__main__":
    main(int(sys.argv[1]))
