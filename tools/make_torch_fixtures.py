#!/usr/bin/env python3
"""PyTorch-written model files of every LSTMVision model kind, for Tests/LSTMVisionTests/TorchModelTests.swift.

Builds small models with python/lstmvision_torch.py (fixed seeds), saves each state_dict with
``safetensors.torch.save_file`` WITHOUT metadata as ``Fixtures/torch/<name>.safetensors`` (as a PyTorch user would),
and beside it ``<name>_io.safetensors``: real inputs (MNIST test digits from data/mnist, canvases of MNIST digits)
and PyTorch's outputs. The io file's metadata records what the Swift test must be told (the image size, K, the
refiner's context) and the model's settings, for the test to check what it inferred.

Usage (from the repository root): /work/main/.venv/bin/python tools/make_torch_fixtures.py [--out DIR]
"""

import argparse
import gzip
import json
import os
import sys

import numpy as np
import torch
from safetensors.torch import save_file

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(ROOT, "python"))
import lstmvision_torch as lt  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "tools"))
from make_reference import _sort_metadata  # noqa: E402  (metadata in a fixed order: reproducible files)

DEFAULT_OUT = os.path.join(ROOT, "Tests", "LSTMVisionTests", "Fixtures", "torch")


def mnist(split, count):
    """The first `count` MNIST images of a split as float32 [count, 28, 28] in [0, 1], and their labels."""
    prefix = "t10k" if split == "test" else "train"
    with gzip.open(os.path.join(ROOT, "data", "mnist", f"{prefix}-images-idx3-ubyte.gz")) as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)[:count]
    with gzip.open(os.path.join(ROOT, "data", "mnist", f"{prefix}-labels-idx1-ubyte.gz")) as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)[:count]
    return torch.from_numpy(images.astype(np.float32) / 255), torch.from_numpy(labels.astype(np.int64))


def canvases(n, height, width, channels, seed):
    """`n` canvases [n, H, W*C] with two half-size MNIST test digits each (RGB: each digit in a random colour),
    and the digits' boxes (image index, x, y, w, h)."""
    g = torch.Generator().manual_seed(seed)
    digits, _ = mnist("test", 200)
    d = min(14, height, width)
    small = torch.nn.functional.interpolate(digits[:, None], size=(d, d), mode="area")[:, 0]  # [200, d, d]
    out = torch.zeros(n, height, width, channels)
    boxes = []
    for i in range(n):
        for _ in range(2):
            digit = small[int(torch.randint(0, 200, (1,), generator=g))]
            y = int(torch.randint(0, height - d + 1, (1,), generator=g))
            x = int(torch.randint(0, width - d + 1, (1,), generator=g))
            colour = torch.rand(channels, generator=g) * 0.5 + 0.5 if channels == 3 else torch.ones(1)
            out[i, y:y + d, x:x + d] = torch.maximum(out[i, y:y + d, x:x + d], digit[..., None] * colour)
            boxes.append((i, x + d / 7, y + d / 14, d * 5 / 7, d * 0.9))
    return out.reshape(n, height, width * channels), boxes


def save(out_dir, name, model, io, meta):
    """The state_dict alone (no metadata), and the io tensors with `meta` (strings) beside it."""
    sd = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(sd, os.path.join(out_dir, f"{name}.safetensors"))
    clean = {k: v.detach().to(torch.float32).contiguous().clone() for k, v in io.items()}
    meta = {k: (v if isinstance(v, str) else json.dumps(v, sort_keys=True)) for k, v in meta.items()}
    meta["generator"] = f"tools/make_torch_fixtures.py (torch {torch.__version__})"
    save_file(clean, os.path.join(out_dir, f"{name}_io.safetensors"), metadata=meta)
    _sort_metadata(os.path.join(out_dir, f"{name}_io.safetensors"))
    size = sum(os.path.getsize(os.path.join(out_dir, f"{name}{s}.safetensors")) for s in ("", "_io"))
    print(f"{name}: {len(sd)} tensors, {size / 1024:.1f} KiB with its io file")


def classifier(out_dir, name, seed, model, x, config, image_size):
    """A classifier fixture: `x` [N, H, W*C] and the logits; `image_size` [W, H, C] is what Swift is told."""
    model.eval()
    with torch.no_grad():
        logits = model(x)
    save(out_dir, name, model, {"input": x, "output": logits},
         {"config": config, "imageSize": image_size, "seed": str(seed)})


def trained_renet(out_dir):
    """A ReNet trained briefly on MNIST (so that its predictions vary): its logits for the first 64 test digits
    for `eval` and `predict` on a PyTorch-written ReNet."""
    torch.manual_seed(2004)
    model = lt.ReNet(hidden=8, patch=4, fc=16, layers=1, size=28, channels=1, classes=10)
    train, labels = mnist("train", 4096)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for epoch in range(2):
        for s in range(0, 4096, 64):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(train[s:s + 64]), labels[s:s + 64])
            loss.backward()
            opt.step()
    model.eval()
    x, y = mnist("test", 64)
    with torch.no_grad():
        logits = model(x)
    accuracy = float((logits.argmax(1) == y).float().mean())
    print(f"renet_mnist: accuracy {accuracy:.4f} on the first 64 test digits")
    config = {"kind": "renet", "height": 28, "width": 28, "channels": 1, "hidden": 8, "layers": 1,
              "bidirectional": False, "classes": 10, "patch": 4, "fcHidden": 16}
    # The digits themselves are not stored: the Swift test reads them from data/mnist, as `eval` does.
    save(out_dir, "renet_mnist", model, {"output": logits, "labels": y.float()},
         {"config": config, "imageSize": [28, 28, 1], "accuracy": f"{accuracy:.6f}"})


def detector(out_dir, name, seed, n, config, image_size, refiner=None):
    """A detector fixture: canvases, the raw outputs and, with a refiner, crops around the digits and its outputs."""
    torch.manual_seed(seed)
    c = config
    model = lt.LSTMDetector(c["height"], c["width"], c["channels"], c["stride"], c["encoder"], c["convWidths"],
                            c["renetWidths"], c["hidden"], c["maxBoxes"], c["skipFeatures"], c["fineFeatures"],
                            c["classes"], refiner).eval()
    x, boxes = canvases(n, c["height"], c["width"], c["channels"], seed)
    io = {"input": x}
    with torch.no_grad():
        io["output"] = model(x)
        if refiner is not None:
            owners = [b[0] for b in boxes]
            rows, columns, _ = lt.crops(x, owners, [b[1:] for b in boxes], refiner["cropSize"], refiner["context"],
                                        c["channels"])
            io.update({"crops_by_rows": rows, "crops_by_columns": columns,
                       "refiner_output": model.refine(rows, columns),
                       "boxes": torch.tensor([list(b) for b in boxes])})
    save(out_dir, name, model, io, {"config": dict(c, refiner=refiner), "imageSize": image_size, "seed": str(seed)})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT)
    out = ap.parse_args().out
    os.makedirs(out, exist_ok=True)
    digits, _ = mnist("test", 4)

    def cfg(kind, h, w, c, hidden, layers, bi, classes, patch=2, fc=0):
        return {"kind": kind, "height": h, "width": w, "channels": c, "hidden": hidden, "layers": layers,
                "bidirectional": bi, "classes": classes, "patch": patch, "fcHidden": fc}

    torch.manual_seed(2001)
    classifier(out, "row_1layer", 2001, lt.RowLSTM(hidden=8, classes=10), digits,
               cfg("row", 28, 28, 1, 8, 1, False, 10), [28, 28, 1])
    torch.manual_seed(2002)
    classifier(out, "row_2layer_bi", 2002, lt.RowLSTM(hidden=6, layers=2, bidirectional=True, classes=10), digits,
               cfg("row", 28, 28, 1, 6, 2, True, 10), [28, 28, 1])
    torch.manual_seed(2003)
    classifier(out, "patch_grey", 2003, lt.PatchLSTM(28, 28, 1, patch=4, hidden=8, bidirectional=True), digits,
               cfg("patch", 28, 28, 1, 8, 1, True, 10, patch=4), [28, 28, 1])
    torch.manual_seed(2005)
    rgb, _ = canvases(3, 16, 24, 3, 2005)
    classifier(out, "patch_rgb", 2005, lt.PatchLSTM(16, 24, 3, patch=4, hidden=6, layers=2, classes=5), rgb,
               cfg("patch", 16, 24, 3, 6, 2, False, 5, patch=4), [24, 16, 3])
    torch.manual_seed(2006)
    classifier(out, "renet_fc1", 2006, lt.ReNet(hidden=4, patch=4, fc=16, layers=1, size=28), digits,
               cfg("renet", 28, 28, 1, 4, 1, False, 10, patch=4, fc=16), [28, 28, 1])
    torch.manual_seed(2007)
    rgb, _ = canvases(3, 12, 12, 3, 2007)
    classifier(out, "renet_rgb_nofc1", 2007, lt.ReNetClassifier(4, 3, 0, 2, 12, 12, 3, classes=4), rgb,
               cfg("renet", 12, 12, 3, 4, 2, False, 4, patch=3), [12, 12, 3])
    trained_renet(out)

    def det(h, w, c, stride, encoder, conv, renet, hidden, boxes, skip, fine, classes):
        return {"height": h, "width": w, "channels": c, "stride": stride, "encoder": encoder, "convWidths": conv,
                "renetWidths": renet, "hidden": hidden, "maxBoxes": boxes, "skipFeatures": skip,
                "fineFeatures": fine, "classes": classes}

    detector(out, "detector_conv", 2101, 2, det(32, 32, 1, 8, "conv", [4, 8, 8, 8], [], 8, 3, True, True, 10),
             [32, 32, 1])
    detector(out, "detector_renet_rgb", 2102, 2, det(32, 48, 3, 8, "renet", [], [4, 4], 8, 2, True, False, 3),
             [48, 32, 3])
    detector(out, "detector_conv_renet", 2103, 2,
             det(32, 32, 1, 4, "conv-renet", [4, 8, 8], [4], 8, 3, True, True, 10), [32, 32, 1],
             refiner={"cropSize": 8, "context": 1.5, "hidden": 4})


if __name__ == "__main__":
    main()
