#!/usr/bin/env python3
"""PyTorch side of the ConvLSTM training-speed comparison: issue 23's FramePredictor (from
tools/make_convlstm_reference.py) trained with Adam on MSE, on the sequences of a .npy file in mnist_test_seq.npy's
layout, `--threads` threads. Prints one JSON line: sequences per second over the timed steps (after 1 warm-up step).

  /work/main/.venv/bin/python tools/bench_convlstm_torch.py --data DIR/train.npy --hidden 64,64 --kernel 5 \
      --patch 4 --batch 16 --steps 4 --threads 2
"""
import argparse
import json
import time

import numpy as np
import torch

from make_convlstm_reference import FramePredictor


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--hidden", default="64,64")
    p.add_argument("--kernel", type=int, default=5)
    p.add_argument("--patch", type=int, default=4)
    p.add_argument("--context", type=int, default=10)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    seq = np.load(a.data)                                   # uint8 [T, S, 64, 64]
    frames = torch.from_numpy(seq.transpose(1, 0, 2, 3)[:, :, None].astype(np.float32) / 255)
    model = FramePredictor(hidden=tuple(int(h) for h in a.hidden.split(",")), k=a.kernel, patch=a.patch)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(i):
        s = (i * a.batch) % (frames.shape[0] - a.batch + 1)
        x = frames[s:s + a.batch]
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x, context=a.context), x[:, a.context:])
        loss.backward()
        opt.step()
        return loss.item()

    step(0)
    t0 = time.perf_counter()
    for i in range(1, a.steps + 1):
        step(i)
    seconds = time.perf_counter() - t0
    print(json.dumps({"framework": f"pytorch {torch.__version__}", "threads": a.threads, "batch": a.batch,
                      "steps": a.steps, "seconds": seconds, "sequences_per_second": a.steps * a.batch / seconds}))


if __name__ == "__main__":
    main()
