"""ONNX Runtime against LSTMVision on every model kind (run by tools/onnx-check.sh).

`make` writes the model files the check needs besides models/ (fresh weights, numpy only: uniform values as PyTorch
initialises, under the names and shapes LSTMVision's files use) and the PPM images of the RGB models' samples.
`check` loads an exported model and its samples (`lstmvision export --samples`): onnx.checker with full_check, then
ONNX Runtime (CPUExecutionProvider) on the samples in two batches of other sizes than the export's (1, then the
rest), and fails unless |ORT - LSTMVision| <= 1e-5 * max(1, |LSTMVision|) everywhere: absolute up to 1, relative
above. It prints one line per model kind with the largest absolute and relative differences.
"""
import json
import os
import struct
import sys

import numpy as np

TOLERANCE = 1e-5


def write_safetensors(path, tensors, metadata):
    """safetensors by hand (float32, little-endian), so that this script needs numpy only."""
    header, offset, blobs = {"__metadata__": metadata}, 0, []
    for name, value in tensors.items():
        data = np.ascontiguousarray(value, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(value.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head + b"".join(blobs))


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header, data = json.loads(raw[8:8 + n]), raw[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", f"{path}: {name} is {info['dtype']}"
        start, end = info["data_offsets"]
        out[name] = np.frombuffer(data[start:end], dtype="<f4").reshape(info["shape"]).astype(np.float32)
    return out


class Weights:
    """Fresh weights under PyTorch state_dict names."""

    def __init__(self, seed):
        self.rng, self.tensors = np.random.default_rng(seed), {}

    def uniform(self, name, shape, bound):
        self.tensors[name] = self.rng.uniform(-bound, bound, shape).astype(np.float32)

    def lstm(self, prefix, inputs, hidden, layers=1, bidirectional=False):
        for k in range(layers):
            size = inputs if k == 0 else hidden * (2 if bidirectional else 1)
            for suffix in ["", "_reverse"] if bidirectional else [""]:
                b = 1 / np.sqrt(hidden)
                self.uniform(f"{prefix}.weight_ih_l{k}{suffix}", (4 * hidden, size), b)
                self.uniform(f"{prefix}.weight_hh_l{k}{suffix}", (4 * hidden, hidden), b)
                self.uniform(f"{prefix}.bias_ih_l{k}{suffix}", (4 * hidden,), b)
                self.uniform(f"{prefix}.bias_hh_l{k}{suffix}", (4 * hidden,), b)

    def linear(self, prefix, inputs, outputs):
        self.uniform(prefix + ".weight", (outputs, inputs), 1 / np.sqrt(inputs))
        self.uniform(prefix + ".bias", (outputs,), 1 / np.sqrt(inputs))

    def conv(self, prefix, inputs, outputs):
        self.tensors[prefix + ".weight"] = (self.rng.standard_normal((outputs, inputs, 3, 3))
                                            * np.sqrt(2 / (9 * inputs))).astype(np.float32)
        self.uniform(prefix + ".bias", (outputs,), 0.1)

    def renet(self, prefix, inputs, hidden):
        self.lstm(prefix + ".vertical", inputs, hidden, bidirectional=True)
        self.lstm(prefix + ".horizontal", 2 * hidden, hidden, bidirectional=True)


def classifier(path, seed, kind, height=28, width=28, channels=1, hidden=16, layers=1, bidirectional=False,
               classes=10, patch=2, fc=0):
    config = dict(kind=kind, height=height, width=width, channels=channels, hidden=hidden, layers=layers,
                  bidirectional=bidirectional, classes=classes, patch=patch, fcHidden=fc, dropout=0.0)
    w = Weights(seed)
    if kind in ("row", "patch"):
        inputs = width * channels if kind == "row" else patch * patch * channels
        w.lstm("lstm", inputs, hidden, layers, bidirectional)
        w.linear("fc", hidden * (2 if bidirectional else 1), classes)
    else:
        features = patch * patch * channels
        for k in range(layers):
            w.renet(f"renet.{k}", features if k == 0 else 2 * hidden, hidden)
        flat = (height // patch) * (width // patch) * 2 * hidden
        if fc:
            w.linear("fc1", flat, fc)
        w.linear("fc", fc or flat, classes)
    write_safetensors(path, w.tensors, {"lstmvision.config": json.dumps(config)})


def detector(path, seed, encoder, height=64, width=64, channels=1, stride=8, conv=(), renet=(), hidden=16,
             boxes=3, skip=True, fine=False, classes=10, refiner=None):
    pooling = stride.bit_length() - 1
    config = dict(height=height, width=width, channels=channels, stride=stride, encoder=encoder,
                  convWidths=list(conv), renetWidths=list(renet), hidden=hidden, maxBoxes=boxes, skipFeatures=skip,
                  fineFeatures=fine, classNames=[str(c) for c in range(classes)], categoryIDs=list(range(classes)))
    w = Weights(seed)
    cin = channels
    for i, width_i in enumerate(conv):
        pooled = min(i, pooling)
        w.conv(f"encoder.{3 * pooled + 2 * (i - pooled)}", cin, width_i)
        cin = width_i
    features = stride * stride * channels + (conv[-1] if conv else 0)
    for k, h in enumerate(renet):
        w.renet(f"{'encoder' if encoder == 'renet' else 'context'}.{k}", features, h)
        features = 2 * h
    feature_size = (conv[-1] if conv else 0) + (2 * renet[-1] if renet else 0)
    w.lstm("decoder.lstm", feature_size, hidden)
    head_in = hidden + (feature_size if skip else 0) + (4 * conv[pooling - 1] if fine else 0)
    w.linear("head", head_in, 6 + classes)
    if refiner:
        crop, rh = refiner
        config["refiner"] = dict(cropSize=crop, context=1.5, hidden=rh)
        w.lstm("refiner.rows", crop * (channels + 1), rh, bidirectional=True)
        w.lstm("refiner.columns", crop * (channels + 1), rh, bidirectional=True)
        w.linear("refiner.head", 4 * rh, classes + 5)
    write_safetensors(path, w.tensors, {"lstmvision.detector": json.dumps(config)})


def ppm_images(folder, count, width, height, seed):
    """RGB images (binary PPM, which LSTMVision reads) of smooth colour patterns, another size than the models'."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(width, height)
    for i in range(count):
        a, b, c = rng.uniform(2, 9, 3)
        image = np.stack([np.sin(a * x + i), np.cos(b * y - i), np.sin(c * (x + y))], -1) * 127.5 + 127.5
        with open(os.path.join(folder, f"image{i:02d}.ppm"), "wb") as f:
            f.write(f"P6 {width} {height} 255\n".encode() + image.astype(np.uint8).tobytes())


def make(work):
    """The fresh-weight model files and the RGB sample images."""
    classifier(f"{work}/patch-1x16.safetensors", 1, "patch", patch=4, hidden=16)
    classifier(f"{work}/patch-2x12-bi.safetensors", 2, "patch", patch=7, hidden=12, layers=2, bidirectional=True)
    classifier(f"{work}/row-3x8.safetensors", 3, "row", hidden=8, layers=3)
    classifier(f"{work}/patch-rgb.safetensors", 4, "patch", height=12, width=16, channels=3, patch=4, hidden=10,
               bidirectional=True, classes=5)
    classifier(f"{work}/renet-2x6-nofc.safetensors", 5, "renet", patch=4, hidden=6, layers=2)
    detector(f"{work}/det-conv.safetensors", 6, "conv", conv=(4, 6, 8, 8), fine=True, refiner=(12, 6))
    detector(f"{work}/det-conv-plain.safetensors", 7, "conv", conv=(4, 6, 8), skip=False)
    detector(f"{work}/det-renet.safetensors", 8, "renet", renet=(6, 5), refiner=(8, 4))
    detector(f"{work}/det-renet-noskip.safetensors", 9, "renet", renet=(6,), skip=False, boxes=2)
    detector(f"{work}/det-conv-renet.safetensors", 10, "conv-renet", conv=(4, 6, 8), renet=(5,), fine=True,
             refiner=(10, 5))
    detector(f"{work}/det-conv-renet-rgb.safetensors", 11, "conv-renet", height=32, width=48, channels=3, stride=4,
             conv=(4, 6), renet=(4, 4), skip=False, fine=True, classes=3, refiner=(8, 4))
    ppm_images(f"{work}/rgb", 6, 40, 30, 12)


def compare(kind, ours, theirs):
    if ours.shape != theirs.shape:
        raise SystemExit(f"onnx-check: {kind}: ONNX Runtime gives shape {theirs.shape}, LSTMVision {ours.shape}")
    diff = np.abs(ours.astype(np.float64) - theirs.astype(np.float64))
    if not np.all(np.isfinite(theirs)) or not np.all(np.isfinite(ours)):
        raise SystemExit(f"onnx-check: {kind}: non-finite outputs")
    bad = diff > TOLERANCE * np.maximum(1, np.abs(ours))
    scaled = float((diff / np.maximum(1, np.abs(ours))).max())
    if bad.any():
        i = np.unravel_index(np.argmax(diff - TOLERANCE * np.maximum(1, np.abs(ours))), diff.shape)
        raise SystemExit(f"onnx-check: {kind}: ONNX Runtime differs from LSTMVision by {diff[i]:.3g} at {i}"
                         f" ({theirs[i]} vs {ours[i]}), over the tolerance 1e-5·max(1, |value|)")
    return float(diff.max()), scaled, float(np.abs(ours).max())


def check(kind, onnx_path, samples_path):
    import onnx
    import onnxruntime as ort
    model = onnx.load(onnx_path)
    onnx.checker.check_model(model, full_check=True)
    lstms = [n for n in model.graph.node if n.op_type == "LSTM"]
    loops = [n.op_type for n in model.graph.node if n.op_type in ("Loop", "Scan")]
    if not lstms or loops:
        raise SystemExit(f"onnx-check: {kind}: {len(lstms)} LSTM nodes, loops {loops}")
    batch = model.graph.input[0].type.tensor_type.shape.dim[0]
    if batch.dim_param != "N":
        raise SystemExit(f"onnx-check: {kind}: the images' batch dimension is not dynamic ({batch})")
    samples = read_safetensors(samples_path)
    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    is_detector = samples["output"].ndim == 3
    names = [o.name for o in session.get_outputs()]
    images = samples["input"]
    if len(images) < 2:
        raise SystemExit(f"onnx-check: {kind}: needs at least 2 samples to vary the batch")
    # Images in batches of 1 and N-1: the detector's outputs are [K, N·cells, D], so they join along axis 1.
    parts = [session.run(["outputs"], {"images": images[a:b], **extra_feeds(session, samples)})[0]
             for a, b in [(0, 1), (1, len(images))]]
    got = np.concatenate(parts, axis=1 if is_detector else 0)
    figures = [("outputs", compare(kind, samples["output"], got))]
    if "refiner_outputs" in names:
        rows, columns = samples["crops_by_rows"], samples["crops_by_columns"]
        m = rows.shape[1]
        cuts = [(0, 1), (1, m)] if m > 1 else [(0, 1)]
        parts = [session.run(["refiner_outputs"], {"images": images[:1], "crops_by_rows": rows[:, a:b],
                                                   "crops_by_columns": columns[:, a:b]})[0] for a, b in cuts]
        figures.append((f"refiner_outputs (M={m})", compare(kind, samples["refiner_output"],
                                                            np.concatenate(parts, axis=0))))
    elif is_detector and "refiner_output" in samples:
        raise SystemExit(f"onnx-check: {kind}: the samples have refiner outputs, the graph has none")
    shown = "; ".join(f"{name} max abs diff {a:.2e} (max diff/max(1,|v|) {r:.2e}, |v| up to {v:.3g})"
                      for name, (a, r, v) in figures)
    print(f"onnx-check: {kind:<22} {len(lstms):2d} LSTM nodes, N={len(images)} as 1+{len(images) - 1}: {shown}")


def extra_feeds(session, samples):
    """A detector with a refiner needs its crop inputs even to compute `outputs`: one crop from the samples."""
    inputs = [i.name for i in session.get_inputs()]
    if "crops_by_rows" not in inputs:
        return {}
    return {"crops_by_rows": samples["crops_by_rows"][:, :1], "crops_by_columns": samples["crops_by_columns"][:, :1]}


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2])
    elif sys.argv[1] == "check":
        check(*sys.argv[2:5])
    else:
        raise SystemExit(f"usage: {sys.argv[0]} make WORKDIR | check KIND MODEL.onnx SAMPLES.safetensors")
