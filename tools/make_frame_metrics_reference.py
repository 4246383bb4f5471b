#!/usr/bin/env python3
"""Reference frame-prediction metrics from NumPy and scikit-image, for LSTMVision's FrameMetrics tests.

For each case, writes the prediction and the true frames, float32 [N, T, 1, rows, cols] in [0, 1], as .npy files
under Tests/LSTMVisionTests/Fixtures/frame_metrics/, and into expected.json the metrics as the Moving MNIST
literature reports them, per predicted frame index t (averaged over the N sequences):
  mse[t]  = mean_n sum_pixels (pred - true)^2
  mae[t]  = mean_n sum_pixels |pred - true|
  ssim[t] = mean_n skimage.metrics.structural_similarity(true, pred, data_range=1.0)   (default 7x7 window)
computed in float64 from the float32 values. Usage:
  python3 -m venv .venv-ref && .venv-ref/bin/pip install scikit-image numpy
  .venv-ref/bin/python tools/make_frame_metrics_reference.py
"""

import json
import os

import numpy as np
import skimage
from skimage.metrics import structural_similarity

OUT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "LSTMVisionTests",
                                    "Fixtures", "frame_metrics"))


def blobs(rng, n, t, rows, cols):
    """Smooth random images in [0, 1]: a few Gaussian blobs each."""
    y, x = np.mgrid[0:rows, 0:cols]
    out = np.zeros((n, t, 1, rows, cols))
    for i in range(n):
        for j in range(t):
            for _ in range(3):
                cy, cx, s = rng.uniform(0, rows), rng.uniform(0, cols), rng.uniform(2, 8)
                out[i, j, 0] = np.maximum(out[i, j, 0], np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * s * s)))
    return out


def metrics(pred, true):
    p, q = pred.astype(np.float64), true.astype(np.float64)
    n, t = p.shape[:2]
    mse = [float(np.mean([np.sum((p[i, j] - q[i, j]) ** 2) for i in range(n)])) for j in range(t)]
    mae = [float(np.mean([np.sum(np.abs(p[i, j] - q[i, j])) for i in range(n)])) for j in range(t)]
    ssim = [float(np.mean([structural_similarity(q[i, j, 0], p[i, j, 0], data_range=1.0) for i in range(n)]))
            for j in range(t)]
    return {"mse": mse, "mae": mae, "ssim": ssim}


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(2303)
    cases = {}
    # Moving-MNIST-sized frames; the prediction a noisy, shifted copy; sequence 0's last frame exact.
    true = blobs(rng, 2, 3, 64, 64)
    pred = np.clip(np.roll(true, 2, axis=4) * 0.9 + rng.normal(0, 0.05, true.shape), 0, 1)
    pred[0, 2] = true[0, 2]
    cases["batch"] = (pred, true)
    # Small non-square frames of noise; the second pair constant (zero variance).
    true = rng.uniform(0, 1, (1, 2, 1, 9, 12))
    pred = rng.uniform(0, 1, (1, 2, 1, 9, 12))
    true[0, 1], pred[0, 1] = 0.2, 0.7
    cases["small"] = (pred, true)
    expected = {}
    for name, (pred, true) in cases.items():
        pred, true = pred.astype(np.float32), true.astype(np.float32)
        np.save(os.path.join(OUT, f"{name}_prediction.npy"), pred)
        np.save(os.path.join(OUT, f"{name}_truth.npy"), true)
        expected[name] = metrics(pred, true)
    expected["generator"] = (f"tools/make_frame_metrics_reference.py (numpy {np.__version__},"
                             f" scikit-image {skimage.__version__})")
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
    print(json.dumps(expected, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
