#!/usr/bin/env python3
"""Generate PyTorch reference fixtures for the LSTMVision Swift test suite.

LSTMVision re-implements LSTM layers, losses, optimizers and learning-rate
schedules in Swift. To check that those implementations agree numerically with
PyTorch, this script runs small, fixed-seed PyTorch computations and stores
their inputs, parameters, outputs and gradients as safetensors files under
``Tests/LSTMVisionTests/Fixtures/``. The Swift tests load the files and compare.

Families written (see Fixtures/README.md for the tensor names in each file):

* ``lstm_*.safetensors``         -- nn.LSTM forward + backward, one file per case
* ``linear_ce*.safetensors``     -- nn.Linear + CrossEntropyLoss (with/without label smoothing)
* ``losses.safetensors``         -- MSE, L1 and SmoothL1 losses and their gradients
* ``optim_*.safetensors``        -- three optimizer steps on a small LSTM classifier
* ``schedules.safetensors``      -- StepLR and CosineAnnealingLR learning rates
* ``row_lstm_bi*.safetensors``   -- a row-wise LSTM image classifier state_dict + I/O,
                                    for checking PyTorch <-> Swift weight interop
* ``conv2d*.safetensors``        -- nn.Conv2d forward + backward (padded, and strided)
* ``maxpool.safetensors``        -- MaxPool2d(2, 2) forward + backward, with tied maxima
* ``refiner.safetensors``        -- the detector's box refiner: crops (grid_sample), its two
                                    bidirectional LSTMs and head, its loss, and the gradients

Everything is float32 (integer labels are stored as float32), contiguous, and
deterministic: every case seeds torch with its own fixed seed, dropout is 0.

Usage::

    python3 tools/make_reference.py [--out DIR]
"""

import argparse
import json
import os
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

DEFAULT_OUT = os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "LSTMVisionTests", "Fixtures")
)


# --------------------------------------------------------------------------- helpers


def _b(flag):
    return "true" if flag else "false"


def _scalar(t):
    """A 0-d tensor as a shape-[1] float32 tensor."""
    return t.detach().reshape(1).to(torch.float32)


def _snapshot(module):
    """A detached copy of a module's state_dict (state_dict() aliases the live parameters)."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _sort_metadata(path):
    """Rewrite the safetensors header with ``__metadata__`` keys sorted.

    safetensors emits metadata in hash-map order, which changes from run to run;
    sorting it makes the files byte-for-byte reproducible. The header keeps its
    length (same characters, different order), so data offsets are unaffected.
    """
    with open(path, "r+b") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        raw = f.read(n)
        header = json.loads(raw.decode("utf-8"))
        if "__metadata__" not in header:
            return
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
        new = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        if len(new) > n:
            raise RuntimeError(f"{path}: canonical header longer than original")
        f.seek(8)
        f.write(new.ljust(n, b" "))


def write(out_dir, name, tensors, metadata=None):
    """Save tensors (detached, float32, contiguous) and print a one-line summary."""
    clean = {k: v.detach().to(torch.float32).contiguous().clone() for k, v in tensors.items()}
    meta = {k: str(v) for k, v in (metadata or {}).items()}
    meta.setdefault("generator", f"tools/make_reference.py (torch {torch.__version__})")
    path = os.path.join(out_dir, name)
    save_file(clean, path, metadata=meta)
    _sort_metadata(path)
    print(f"wrote {path}: {len(clean)} tensors")
    return path


# --------------------------------------------------------------------------- A) LSTM


LSTM_CASES = [
    # file, input_size, hidden, layers, bidirectional, batch, time, initial state, seed
    ("lstm_1layer.safetensors", 6, 8, 1, False, 3, 5, False, 101),
    ("lstm_2layer_bi.safetensors", 4, 6, 2, True, 2, 7, True, 102),
    ("lstm_odd.safetensors", 3, 5, 1, False, 1, 1, True, 103),
    ("lstm_3layer.safetensors", 5, 4, 3, False, 4, 3, False, 104),
]


def make_lstm(out_dir, fname, I, H, L, bi, N, T, has_state, seed):
    torch.manual_seed(seed)
    lstm = nn.LSTM(I, H, L, batch_first=True, bidirectional=bi, dropout=0.0)
    D = 2 if bi else 1
    x = torch.randn(N, T, I, requires_grad=True)
    if has_state:
        h0 = torch.randn(L * D, N, H, requires_grad=True)
        c0 = torch.randn(L * D, N, H, requires_grad=True)
        out, (h_n, c_n) = lstm(x, (h0, c0))
    else:
        out, (h_n, c_n) = lstm(x)
    w_out = torch.randn_like(out)
    w_h = torch.randn_like(h_n)
    w_c = torch.randn_like(c_n)
    loss = (out * w_out).sum() + (h_n * w_h).sum() + (c_n * w_c).sum()
    loss.backward()

    t = {}
    for k, v in lstm.state_dict().items():
        t[f"param.{k}"] = v
    t.update({
        "input": x,
        "output": out,
        "h_n": h_n,
        "c_n": c_n,
        "loss_weight.output": w_out,
        "loss_weight.h_n": w_h,
        "loss_weight.c_n": w_c,
        "loss": _scalar(loss),
        "grad.input": x.grad,
    })
    for k, p in lstm.named_parameters():
        t[f"grad.param.{k}"] = p.grad
    if has_state:
        t.update({"h0": h0, "c0": c0, "grad.h0": h0.grad, "grad.c0": c0.grad})
    meta = {
        "input_size": I,
        "hidden_size": H,
        "num_layers": L,
        "bidirectional": _b(bi),
        "has_initial_state": _b(has_state),
    }
    write(out_dir, fname, t, meta)


def make_lstm_family(out_dir):
    for case in LSTM_CASES:
        make_lstm(out_dir, *case)


# --------------------------------------------------------------------------- B) Linear + CE


def make_linear_ce(out_dir, fname, smoothing, seed):
    torch.manual_seed(seed)
    linear = nn.Linear(7, 5)
    x = torch.randn(4, 7, requires_grad=True)
    labels = torch.randint(0, 5, (4,))
    logits = linear(x)
    loss = nn.CrossEntropyLoss(label_smoothing=smoothing)(logits, labels)
    loss.backward()
    t = {
        "param.weight": linear.weight,
        "param.bias": linear.bias,
        "input": x,
        "labels": labels.to(torch.float32),
        "logits": logits,
        "loss": _scalar(loss),
        "grad.input": x.grad,
        "grad.param.weight": linear.weight.grad,
        "grad.param.bias": linear.bias.grad,
    }
    write(out_dir, fname, t, {"label_smoothing": smoothing})


def make_linear_ce_family(out_dir):
    make_linear_ce(out_dir, "linear_ce.safetensors", 0.0, 201)
    make_linear_ce(out_dir, "linear_ce_smooth.safetensors", 0.1, 202)


# --------------------------------------------------------------------------- C) losses


def make_losses(out_dir):
    torch.manual_seed(301)
    p0 = torch.randn(3, 4) * 2
    t_ = torch.randn(3, 4)
    p0[0, 0] = t_[0, 0]  # exercise the zero-difference case (L1 / SmoothL1 subgradient)
    out = {"prediction": p0, "target": t_}
    fns = {
        "mse": nn.MSELoss(),
        "l1": nn.L1Loss(),
        "smooth_l1": nn.SmoothL1Loss(beta=1.0),
    }
    for name, fn in fns.items():
        p = p0.clone().requires_grad_(True)
        loss = fn(p, t_)
        loss.backward()
        out[f"{name}.loss"] = _scalar(loss)
        out[f"{name}.grad"] = p.grad
    write(out_dir, "losses.safetensors", out, {"reduction": "mean", "smooth_l1_beta": 1.0})


# --------------------------------------------------------------------------- D) optimizers


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(5, 6, 1, batch_first=True)
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        _, (h, _) = self.lstm(x)
        return self.fc(h[-1])


OPTIM_CASES = [
    # file, optimizer kind, kwargs, max_norm (None = no clipping)
    ("optim_adam.safetensors", "adam", dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0), None),
    ("optim_adamw.safetensors", "adamw", dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1), None),
    ("optim_adam_l2.safetensors", "adam", dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05), None),
    ("optim_sgd_nesterov.safetensors", "sgd", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01), None),
    ("optim_sgd_clip.safetensors", "sgd", dict(lr=0.1, momentum=0.5, nesterov=False, weight_decay=0.0), 0.05),
]


def make_optim(out_dir, fname, kind, kwargs, max_norm, seed=401):
    # Same seed for every optimizer case: identical initial model and batch.
    torch.manual_seed(seed)
    model = Classifier()
    x = torch.randn(4, 6, 5)
    labels = torch.randint(0, 3, (4,))
    crit = nn.CrossEntropyLoss()
    opt_cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}[kind]
    opt = opt_cls(model.parameters(), **kwargs)

    t = {"input": x, "labels": labels.to(torch.float32)}
    for k, v in _snapshot(model).items():
        t[f"param.{k}"] = v
    for step in range(3):
        opt.zero_grad()
        loss = crit(model(x), labels)
        loss.backward()
        t[f"loss.step{step}"] = _scalar(loss)
        if max_norm is not None:
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=max_norm)
            t[f"gradnorm.step{step}"] = _scalar(norm)
        opt.step()
        for k, v in _snapshot(model).items():
            t[f"step{step + 1}.{k}"] = v

    meta = {
        "optimizer": kind,
        "lr": kwargs["lr"],
        "weight_decay": kwargs.get("weight_decay", 0.0),
        "momentum": kwargs.get("momentum", 0.0),
        "nesterov": _b(kwargs.get("nesterov", False)),
    }
    if kind in ("adam", "adamw"):
        meta["beta1"], meta["beta2"] = kwargs["betas"]
        meta["eps"] = kwargs["eps"]
    if max_norm is not None:
        meta["max_norm"] = max_norm
    write(out_dir, fname, t, meta)


def make_optim_family(out_dir):
    for case in OPTIM_CASES:
        make_optim(out_dir, *case)


# --------------------------------------------------------------------------- E) schedules


def _record_lrs(make_sched, steps=20, base_lr=0.1):
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=base_lr)
    sched = make_sched(opt)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()  # no grads: a no-op, but keeps the optimizer/scheduler call order PyTorch expects
        sched.step()
    return torch.tensor(lrs, dtype=torch.float64).to(torch.float32)


def make_schedules(out_dir):
    t = {
        "step_lr": _record_lrs(lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=5, gamma=0.5)),
        "cosine": _record_lrs(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=20, eta_min=0.001)),
    }
    meta = {
        "base_lr": 0.1,
        "steps": 20,
        "step_lr.step_size": 5,
        "step_lr.gamma": 0.5,
        "cosine.T_max": 20,
        "cosine.eta_min": 0.001,
    }
    write(out_dir, "schedules.safetensors", t, meta)


# --------------------------------------------------------------------------- F) RowLSTM interop


class RowLSTM(nn.Module):
    def __init__(self, hidden, layers, bidirectional, classes=10, inputs=28):
        super().__init__()
        self.lstm = nn.LSTM(inputs, hidden, layers, batch_first=True, bidirectional=bidirectional)
        self.fc = nn.Linear(hidden * (2 if bidirectional else 1), classes)

    def forward(self, x):
        _, (h, _) = self.lstm(x)
        feat = torch.cat([h[-2], h[-1]], 1) if self.lstm.bidirectional else h[-1]
        return self.fc(feat)


def make_row_lstm(out_dir):
    torch.manual_seed(601)
    model = RowLSTM(hidden=16, layers=2, bidirectional=True).eval()
    # The state_dict exactly as a PyTorch user would save it: plain names, no prefix, no metadata.
    sd = model.state_dict()
    path = os.path.join(out_dir, "row_lstm_bi.safetensors")
    save_file(sd, path)
    print(f"wrote {path}: {len(sd)} tensors")

    x = torch.rand(3, 28, 28)
    with torch.no_grad():
        logits = model(x)
    write(out_dir, "row_lstm_bi_io.safetensors", {"input": x, "logits": logits},
          {"hidden": 16, "layers": 2, "bidirectional": "true", "classes": 10})


# --------------------------------------------------------------------------- G) convolution


CONV_CASES = [
    # file, N, C, H, W, out channels, kernel, stride, padding, seed
    ("conv2d.safetensors", 2, 3, 9, 8, 4, 3, 1, 1, 701),
    # 10x9 with stride 2 and no padding: the last input row is read by no window (its gradient is 0).
    ("conv2d_stride.safetensors", 3, 2, 10, 9, 5, 3, 2, 0, 702),
]


def make_conv(out_dir, fname, N, C, H, W, O, k, stride, padding, seed):
    torch.manual_seed(seed)
    conv = nn.Conv2d(C, O, k, stride=stride, padding=padding)
    x = torch.randn(N, C, H, W, requires_grad=True)
    y = conv(x)
    w = torch.randn_like(y)
    loss = (y * w).sum()
    loss.backward()
    t = {
        "param.weight": conv.weight,
        "param.bias": conv.bias,
        "input": x,
        "output": y,
        "loss_weight": w,
        "loss": _scalar(loss),
        "grad.input": x.grad,
        "grad.param.weight": conv.weight.grad,
        "grad.param.bias": conv.bias.grad,
    }
    meta = {"in_channels": C, "out_channels": O, "kernel_size": k, "stride": stride, "padding": padding}
    write(out_dir, fname, t, meta)


def make_maxpool(out_dir):
    torch.manual_seed(703)
    x = torch.randn(2, 3, 8, 8)
    # Tied maxima: PyTorch routes the gradient to the first one in row-major window order.
    x[0, 0, 0:2, 0:2] = 3.0           # all four equal: (0, 0) wins
    x[0, 1, 2, 3] = x[0, 1, 3, 2] = 5.0  # window rows 2-3, cols 2-3: (2, 3) wins
    x.requires_grad_(True)
    y = nn.MaxPool2d(2, 2)(x)
    w = torch.randn_like(y)
    (y * w).sum().backward()
    t = {"input": x, "output": y, "loss_weight": w, "grad.input": x.grad}
    write(out_dir, "maxpool.safetensors", t, {"kernel_size": 2, "stride": 2})


def make_conv_family(out_dir):
    for case in CONV_CASES:
        make_conv(out_dir, *case)
    make_maxpool(out_dir)


# --------------------------------------------------------------------------- H) box refiner


class Refiner(nn.Module):
    """LSTMVision's BoxRefiner: crops read by rows and by columns, both final states into one Linear."""

    def __init__(self, size, channels, hidden, classes):
        super().__init__()
        self.rows = nn.LSTM(size * (channels + 1), hidden, bidirectional=True)
        self.columns = nn.LSTM(size * (channels + 1), hidden, bidirectional=True)
        self.head = nn.Linear(4 * hidden, classes + 5)

    def forward(self, crops):  # crops [N, C + 1, S, S]: the channels, then the box mask
        n, c, s, _ = crops.shape
        by_rows = crops.permute(2, 0, 3, 1).reshape(s, n, s * c)      # step y; features (x, channel)
        by_columns = crops.permute(3, 0, 2, 1).reshape(s, n, s * c)   # step x; features (y, channel)
        _, (hr, _) = self.rows(by_rows)
        _, (hc, _) = self.columns(by_columns)
        return self.head(torch.cat([hr[0], hr[1], hc[0], hc[1]], 1)), by_rows


def refiner_crops(images, owners, boxes, size, context):
    """Bilinear samples, zeros outside, of the square window `context` times each box's longer side around it, at the
    centres of a size x size grid; beside them a mask channel, 1 where the point lies in the box."""
    n, c, h, w = images.shape
    steps = (torch.arange(size, dtype=torch.float64) + 0.5) / size
    grids, masks = [], []
    for bx, by, bw, bh in boxes:
        side = context * max(bw, bh)
        x, y = bx + bw / 2 - side / 2, by + bh / 2 - side / 2
        px, py = x + steps * side, y + steps * side      # the points; pixel i's centre is at i + 0.5
        gx, gy = 2 * px / w - 1, 2 * py / h - 1          # grid_sample, align_corners=False
        grids.append(torch.stack([gx.expand(size, size), gy[:, None].expand(size, size)], -1))
        inside_x = (px >= bx) & (px <= bx + bw)
        inside_y = (py >= by) & (py <= by + bh)
        masks.append((inside_y[:, None] & inside_x[None, :]).float())
    sampled = F.grid_sample(images[owners], torch.stack(grids).float(), mode="bilinear", padding_mode="zeros", align_corners=False)
    return torch.cat([sampled, torch.stack(masks)[:, None]], 1)


def make_refiner(out_dir):
    torch.manual_seed(801)
    size, channels, hidden, classes, box_weight, context = 6, 3, 5, 3, 2.0, 1.5
    model = Refiner(size, channels, hidden, classes)
    images = torch.rand(2, channels, 10, 12)
    owners = [0, 1, 1, 0]
    boxes = [(2.0, 3.4, 4.0, 3.0), (-0.5, 4.2, 3.0, 6.0), (8.2, 6.5, 3.0, 2.0), (2.0, 2.2, 8.0, 5.0)]   # x, y, w, h
    labels = torch.tensor([2, 3, 0, 1])              # 3 = background
    moves = torch.tensor([[0.2, 0.1, -0.3, 0.05], [0, 0, 0, 0], [0.03, -0.25, 0.1, 0.2], [-0.1, 0.04, 0.05, -0.06]])
    has_box = labels < classes
    crops = refiner_crops(images, owners, boxes, size, context)
    out, by_rows = model(crops)
    l1 = (out[:, classes + 1:] - moves).abs().sum(1)
    loss = (F.cross_entropy(out[:, :classes + 1], labels, reduction="sum") + box_weight * l1[has_box].sum()) / len(owners)
    loss.backward()
    t = {"images": images.permute(0, 2, 3, 1).reshape(2, 10, 12 * channels),   # LSTMVision's [N, H, W*C]
         "owners": torch.tensor(owners, dtype=torch.float32),
         "boxes": torch.tensor(boxes),
         "labels": labels.float(), "moves": moves, "has_box": has_box.float(),
         "crops.by_rows": by_rows, "output": out, "loss": _scalar(loss)}
    for name, p in model.named_parameters():
        t[f"param.{name}"] = p
        t[f"grad.{name}"] = p.grad
    write(out_dir, "refiner.safetensors", t, {"crop_size": size, "channels": channels, "hidden": hidden, "classes": classes,
                                              "box_weight": box_weight, "context": context})


# --------------------------------------------------------------------------- main


def verify(paths):
    for p in paths:
        tensors = load_file(p)
        for k, v in tensors.items():
            assert v.dtype == torch.float32, (p, k, v.dtype)
            assert torch.isfinite(v).all(), (p, k)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_default_dtype(torch.float32)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)

    make_lstm_family(args.out)
    make_linear_ce_family(args.out)
    make_losses(args.out)
    make_optim_family(args.out)
    make_schedules(args.out)
    make_row_lstm(args.out)
    make_conv_family(args.out)
    make_refiner(args.out)

    written = sorted(
        os.path.join(args.out, f) for f in os.listdir(args.out) if f.endswith(".safetensors")
    )
    verify(written)
    print(f"verified {len(written)} files load as float32 and are finite")


if __name__ == "__main__":
    main()
