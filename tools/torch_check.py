#!/usr/bin/env python3
"""LSTMVision's files in PyTorch: each loads into python/lstmvision_torch.py's module with strict=True (built from
its metadata by ``from_file``) and gives LSTMVision's outputs on real inputs.

The files: models/*.safetensors (the shipped classifiers), a patch-LSTM and a ReNet without fc1 trained here for one
epoch on 256 MNIST digits, and three tiny detectors, one per encoder, trained here for one epoch on 16 canvases by
``lstmvision train detection`` (conv and conv-renet with a refiner). LSTMVision's outputs come from
``lstmvision export --model M --out X.onnx --samples N``, which writes ``X.samples.safetensors``: ``input``
[N, H, W*C], ``output`` (logits [N, classes], or the detector's raw outputs [K, N*cells, 6 + classes]) and, with a
refiner, ``crops_by_rows``, ``crops_by_columns`` [S, M, S*(C+1)] and ``refiner_output`` [M, classes + 5].
Prints per model the largest difference and fails above 1e-5 * max(1, |value|).

Usage (``make torch-check``): PYTHON tools/torch_check.py BIN WORKDIR   (PYTHON with torch and safetensors)
"""

import glob
import os
import subprocess
import sys

import torch
from safetensors.torch import load_file

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(ROOT, "python"))
import lstmvision_torch as lt  # noqa: E402

# The kinds models/ lacks, trained here for one epoch: name and `train` options.
CLASSIFIERS = [
    ("patch-2x12-bi", ["--model", "patch", "--patch", "4", "--hidden", "12", "--layers", "2", "--bidirectional"]),
    ("renet-2x6-nofc", ["--model", "renet", "--patch", "4", "--hidden", "6", "--layers", "2", "--fc", "0"]),
]

# The tiny detectors: name and `train detection` options.
DETECTORS = [
    ("det-conv+refiner", ["--encoder", "conv", "--conv-widths", "4,8,8,8", "--hidden", "8", "--refiner",
                          "--refiner-hidden", "4"]),
    ("det-renet", ["--encoder", "renet", "--renet-widths", "6,4", "--hidden", "8"]),
    ("det-conv-renet+refiner", ["--encoder", "conv-renet", "--conv-widths", "4,8,8", "--renet-widths", "4",
                                "--hidden", "8", "--refiner", "--refiner-hidden", "4"]),
]


def run(cmd, log):
    with open(log, "w") as f:
        r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)
    if r.returncode != 0:
        sys.exit(f"torch-check: {' '.join(cmd)} failed (exit {r.returncode}); see {log}:\n" + open(log).read()[-2000:])


def difference(name, want, got):
    """The largest |difference|, failing when it exceeds 1e-5 * max(1, |value|) anywhere."""
    if tuple(want.shape) != tuple(got.shape):
        sys.exit(f"torch-check: {name}: PyTorch gives shape {tuple(got.shape)}, LSTMVision {tuple(want.shape)}")
    d = (want - got).abs()
    if bool((d > 1e-5 * want.abs().clamp(min=1)).any()):
        sys.exit(f"torch-check: {name}: max |difference| {float(d.max()):.3g} over 1e-5 * max(1, |value|)")
    return float(d.max())


def check(name, model_path, samples_path):
    model = lt.from_file(model_path)                        # strict=True
    s = load_file(samples_path)
    with torch.no_grad():
        figures = [("outputs", difference(name, s["output"], model(s["input"])))]
        if "refiner_output" in s:
            figures.append((f"refiner outputs (M={s['refiner_output'].shape[0]})",
                            difference(name, s["refiner_output"],
                                       model.refine(s["crops_by_rows"], s["crops_by_columns"]))))
    kind = type(model).__name__
    print(f"{name:24s} {kind:18s} " + ", ".join(f"{w} max |Δ| {v:.3g}" for w, v in figures)
          + f"  (N={s['input'].shape[0]}, input {list(s['input'].shape)})")
    return max(v for _, v in figures)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().split("\n")[-1])
    binary, work = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    os.makedirs(work, exist_ok=True)
    files = [(os.path.splitext(os.path.basename(p))[0], p) for p in sorted(glob.glob(os.path.join(ROOT, "models",
                                                                                             "*.safetensors")))]
    trained = [(n, ["train", "--limit", "256"] + o) for n, o in CLASSIFIERS]
    trained += [(n, ["train", "detection", "--train-count", "16", "--test-count", "4"] + o) for n, o in DETECTORS]
    for name, options in trained:
        out = os.path.join(work, name)
        if not os.path.exists(os.path.join(out, "model.safetensors")):
            run([binary] + options + ["--epochs", "1", "--out", out], os.path.join(work, name + ".train.log"))
        files.append((name, os.path.join(out, "model.safetensors")))
    worst = 0.0
    for name, path in files:
        onnx = os.path.join(work, name + ".onnx")
        run([binary, "export", "--model", path, "--out", onnx, "--samples", "4"], os.path.join(work, name + ".log"))
        worst = max(worst, check(name, path, os.path.join(work, name + ".samples.safetensors")))
    print(f"torch-check: passed, {len(files)} files, largest difference {worst:.3g}")


if __name__ == "__main__":
    main()
