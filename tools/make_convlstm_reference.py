#!/usr/bin/env python3
"""PyTorch reference fixtures for LSTMVision's ConvLSTM and FramePredictor (issue 23).

The modules below are issue 23's ConvLSTMCell and FramePredictor, verbatim. Written under
Tests/LSTMVisionTests/Fixtures/ (float32 safetensors, fixed seeds, reproducible):

* convlstm_cell.safetensors     -- one ConvLSTMCell run over a 4-step sequence from a random initial state:
                                   param.conv.{weight,bias}, input [T, N, C, R, S] (time-major), h0, c0,
                                   output [T, N, H, R, S], h_n, c_n, loss weights, loss, grad.{input,h0,c0},
                                   grad.param.conv.{weight,bias}. Loss = sum(out*w_out) + sum(h_n*w_h) + sum(c_n*w_c).
* frame_predictor.safetensors   -- FramePredictor(hidden=(4, 4), k=3, patch=2) on 2 sequences of 6 frames 16x16,
                                   context 3: param.<state_dict name>, frames [N, T, 1, 16, 16], prediction
                                   [N, T - context, 1, 16, 16], loss = MSE(prediction, frames[:, context:]),
                                   grad.param.<name>.
* frame_predictor_state.safetensors -- the same model's bare state_dict, as a user would save it.

Usage: /work/main/.venv/bin/python tools/make_convlstm_reference.py [--out DIR]
"""

import argparse
import json
import os
import struct

import torch
import torch.nn as nn
from safetensors.torch import save_file

DEFAULT_OUT = os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "LSTMVisionTests", "Fixtures")
)


class ConvLSTMCell(nn.Module):
    def __init__(self, cin, hidden, k):
        super().__init__()
        self.hidden = hidden
        self.conv = nn.Conv2d(cin + hidden, 4 * hidden, k, padding=k // 2)

    def forward(self, x, h, c):                   # x [N, cin, H, W]; h, c [N, hidden, H, W]
        i, f, g, o = torch.split(self.conv(torch.cat([x, h], 1)), self.hidden, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class FramePredictor(nn.Module):
    def __init__(self, hidden=(64, 64), k=5, patch=4):
        super().__init__()
        self.p = patch
        chans = [patch * patch] + list(hidden)
        self.cells = nn.ModuleList([ConvLSTMCell(chans[i], chans[i + 1], k) for i in range(len(hidden))])
        self.head = nn.Conv2d(hidden[-1], patch * patch, 1)

    def forward(self, frames, context=10):
        n, t, _, hh, ww = frames.shape
        p, gh, gw = self.p, hh // self.p, ww // self.p
        x = frames.reshape(n, t, gh, p, gw, p).permute(0, 1, 3, 5, 2, 4).reshape(n, t, p * p, gh, gw)
        hs = [x.new_zeros(n, cell.hidden, gh, gw) for cell in self.cells]
        cs = [h.clone() for h in hs]
        out, prev = [], None
        for s in range(t - 1):
            inp = x[:, s] if s < context else prev
            for k, cell in enumerate(self.cells):
                hs[k], cs[k] = cell(inp, hs[k], cs[k])
                inp = hs[k]
            prev = torch.sigmoid(self.head(hs[-1]))
            if s >= context - 1:
                out.append(prev)
        y = torch.stack(out, 1)
        return y.reshape(n, t - context, p, p, gh, gw).permute(0, 1, 4, 2, 5, 3).reshape(n, t - context, 1, hh, ww)


def _sort_metadata(path):
    """Rewrites the safetensors header with `__metadata__` sorted (same length), so files are reproducible."""
    with open(path, "r+b") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n).decode("utf-8"))
        if "__metadata__" not in header:
            return
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
        new = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        f.seek(8)
        f.write(new.ljust(n, b" "))


def write(out_dir, name, tensors, metadata):
    clean = {k: v.detach().to(torch.float32).contiguous().clone() for k, v in tensors.items()}
    meta = {k: str(v) for k, v in metadata.items()}
    meta["generator"] = f"tools/make_convlstm_reference.py (torch {torch.__version__})"
    path = os.path.join(out_dir, name)
    save_file(clean, path, metadata=meta)
    _sort_metadata(path)
    print(f"wrote {path}: {len(clean)} tensors")


def make_cell(out_dir):
    torch.manual_seed(2301)
    T, N, C, H, k, R, S = 4, 2, 3, 4, 3, 6, 5
    cell = ConvLSTMCell(C, H, k)
    x = torch.randn(T, N, C, R, S, requires_grad=True)
    h0 = torch.randn(N, H, R, S, requires_grad=True)
    c0 = torch.randn(N, H, R, S, requires_grad=True)
    h, c, outs = h0, c0, []
    for t in range(T):
        h, c = cell(x[t], h, c)
        outs.append(h)
    out = torch.stack(outs, 0)
    w_out, w_h, w_c = torch.randn_like(out), torch.randn_like(h), torch.randn_like(c)
    loss = (out * w_out).sum() + (h * w_h).sum() + (c * w_c).sum()
    loss.backward()
    t = {f"param.{n}": p for n, p in cell.state_dict().items()}
    t.update({"input": x, "h0": h0, "c0": c0, "output": out, "h_n": h, "c_n": c, "loss_weight.output": w_out,
              "loss_weight.h_n": w_h, "loss_weight.c_n": w_c, "loss": loss.reshape(1), "grad.input": x.grad,
              "grad.h0": h0.grad, "grad.c0": c0.grad})
    for n, p in cell.named_parameters():
        t[f"grad.param.{n}"] = p.grad
    write(out_dir, "convlstm_cell.safetensors", t,
          {"in_channels": C, "hidden": H, "kernel_size": k, "steps": T, "batch": N})


def make_predictor(out_dir):
    torch.manual_seed(2302)
    hidden, k, patch, context = (4, 4), 3, 2, 3
    model = FramePredictor(hidden=hidden, k=k, patch=patch)
    frames = torch.rand(2, 6, 1, 16, 16)
    y = model(frames, context=context)
    loss = nn.functional.mse_loss(y, frames[:, context:])
    loss.backward()
    t = {f"param.{n}": p for n, p in model.state_dict().items()}
    t.update({"frames": frames, "prediction": y, "loss": loss.reshape(1)})
    for n, p in model.named_parameters():
        t[f"grad.param.{n}"] = p.grad
    meta = {"hidden": ",".join(map(str, hidden)), "kernel_size": k, "patch": patch, "context": context}
    write(out_dir, "frame_predictor.safetensors", t, meta)
    save_file({n: p.detach().contiguous() for n, p in model.state_dict().items()},
              os.path.join(out_dir, "frame_predictor_state.safetensors"))
    print("wrote frame_predictor_state.safetensors")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=DEFAULT_OUT)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    make_cell(a.out)
    make_predictor(a.out)


if __name__ == "__main__":
    main()
