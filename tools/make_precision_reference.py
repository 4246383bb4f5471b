#!/usr/bin/env python3
"""PyTorch's bf16 rounding and int8 quantization of a weight matrix and its inputs, and the products of the rounded
values, for Tests/LSTMVisionTests/ReducedPrecisionTests.swift (Fixtures/precision.safetensors).

bf16: `Tensor.bfloat16()` (round to nearest even) of w [37×29] and x [5×29]; y = x·wᵀ of the rounded values in
float64. int8: `torch.quantize_per_channel` of w (axis 0, scale max|w_row| / 127, zero point 0) and
`torch.quantize_per_tensor` of each x row (scale max|x_row| / 127); y = (qx·qwᵀ) · sx · sw in float64.

Usage (from the repository root): .venv/bin/python tools/make_precision_reference.py"""
import os

import torch
from safetensors.torch import save_file

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def main():
    g = torch.Generator().manual_seed(23)
    w = torch.randn(37, 29, generator=g) * 0.3
    x = torch.rand(5, 29, generator=g) * 2 - 1
    wb, xb = w.bfloat16().float(), x.bfloat16().float()
    sw = (w.abs().amax(1) / 127).float()
    qw = torch.quantize_per_channel(w, sw.double(), torch.zeros(37, dtype=torch.long), 0, torch.qint8).int_repr()
    sx = (x.abs().amax(1) / 127).float()
    qx = torch.stack([torch.quantize_per_tensor(x[i], float(sx[i]), 0, torch.qint8).int_repr() for i in range(5)])
    y8 = (qx.double() @ qw.double().T) * sx.double()[:, None] * sw.double()[None, :]
    tensors = {"w": w, "x": x, "w_bf16": wb, "x_bf16": xb, "y_bf16": (xb.double() @ wb.double().T).float(),
               "w_int8": qw.float(), "w_scales": sw, "x_int8": qx.float(), "x_scales": sx, "y_int8": y8.float()}
    path = os.path.join(ROOT, "Tests", "LSTMVisionTests", "Fixtures", "precision.safetensors")
    save_file({k: v.contiguous() for k, v in tensors.items()}, path, metadata={"torch": torch.__version__})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
