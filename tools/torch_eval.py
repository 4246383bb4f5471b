"""Loads a row-LSTM checkpoint written by LSTMVision into the PyTorch `RowLSTM` module with
`model.load_state_dict(safetensors.torch.load_file(path))` and reports its MNIST test accuracy,
to show that a model trained here is the same function in PyTorch.

    .venv/bin/python tools/torch_eval.py runs/row/model.safetensors
"""
import gzip
import json
import sys

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from make_reference import RowLSTM


def idx(path):
    raw = gzip.open(path).read()
    rank = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def main(path, data="data/mnist"):
    with safe_open(path, "pt") as f:
        config = json.loads(f.metadata()["lstmvision.config"])
    model = RowLSTM(config["hidden"], config["layers"], config["bidirectional"], config["classes"])
    model.load_state_dict(load_file(path))
    model.eval()
    x = torch.tensor(idx(f"{data}/t10k-images-idx3-ubyte.gz") / 255.0, dtype=torch.float32)
    y = torch.tensor(idx(f"{data}/t10k-labels-idx1-ubyte.gz").astype(np.int64))
    with torch.no_grad():
        accuracy = (model(x).argmax(1) == y).float().mean().item()
    print(f"{path}: PyTorch test accuracy {100 * accuracy:.2f}% on {len(y)} images")


if __name__ == "__main__":
    main(*sys.argv[1:])
