"""PyTorch definitions of LSTMVision's models, with LSTMVision's state_dict names.

Every module here takes a safetensors file written by LSTMVision with
``model.load_state_dict(safetensors.torch.load_file(path), strict=True)`` and gives LSTMVision's outputs; the
``state_dict()`` of each, saved with ``safetensors.torch.save_file``, loads in LSTMVision (with or without
metadata). Images enter as LSTMVision's do: ``x`` [N, H, W*C], rows of interleaved channels, pixels in [0, 1].

- ``SequenceClassifier`` (``RowLSTM``, ``PatchLSTM``): rows, or k*k patches in raster order, read by a stacked,
  optionally bidirectional LSTM, then ``fc`` on the last layer's final state(s).
- ``ReNet`` (exactly the issue's definition) and ``ReNetClassifier`` (the same with an optional ``fc1`` and
  non-square images).
- ``LSTMDetector`` with its ``BoxRefiner``: raw outputs [K, N*cells, 6 + classes]; ``refine`` gives
  [M, classes + 5] from the refiner's crops (``crops`` builds them as LSTMVision does).
- ``from_file(path)`` builds the right module from a file's ``lstmvision.config`` / ``lstmvision.detector``
  metadata and loads it strictly.

See docs/pytorch.md.
"""

import json
import math

import torch
from torch import nn

__all__ = ["SequenceClassifier", "RowLSTM", "PatchLSTM", "ReNetLayer", "ReNet", "ReNetClassifier",
           "LSTMDetector", "BoxRefiner", "patch_sequence", "crops", "from_file", "config_of"]


def patch_sequence(x, height, width, channels, patch):
    """[N, H, W*C] images -> [N, (H/k)*(W/k), k*k*C] patches in raster order (row, column, channel inside)."""
    n, k = x.shape[0], patch
    gh, gw = height // k, width // k
    return x.reshape(n, gh, k, gw, k, channels).permute(0, 1, 3, 2, 4, 5).reshape(n, gh * gw, k * k * channels)


# --------------------------------------------------------------------------- row and patch LSTM classifiers


class SequenceClassifier(nn.Module):
    """Row-LSTM (kind "row": each image row a time step) or patch-LSTM (kind "patch": k*k patches)."""

    def __init__(self, kind="row", height=28, width=28, channels=1, hidden=128, layers=1, bidirectional=False,
                 classes=10, patch=2, dropout=0.0):
        super().__init__()
        assert kind in ("row", "patch")
        self.kind, self.height, self.width, self.channels, self.patch = kind, height, width, channels, patch
        features = width * channels if kind == "row" else patch * patch * channels
        self.lstm = nn.LSTM(features, hidden, layers, batch_first=True, bidirectional=bidirectional,
                            dropout=dropout if layers > 1 else 0.0)
        self.fc = nn.Linear(hidden * (2 if bidirectional else 1), classes)

    def forward(self, x):                             # x: [N, H, W*C], pixels in [0, 1]
        seq = x if self.kind == "row" else patch_sequence(x, self.height, self.width, self.channels, self.patch)
        _, (h, _) = self.lstm(seq)
        feat = torch.cat([h[-2], h[-1]], 1) if self.lstm.bidirectional else h[-1]
        return self.fc(feat)


def RowLSTM(height=28, width=28, channels=1, **kw):
    """A row-LSTM classifier of [N, H, W*C] images."""
    return SequenceClassifier("row", height, width, channels, **kw)


def PatchLSTM(height=28, width=28, channels=1, patch=2, **kw):
    """A patch-LSTM classifier: patch*patch patches in raster order are the time steps."""
    return SequenceClassifier("patch", height, width, channels, patch=patch, **kw)


# --------------------------------------------------------------------------- ReNet (the definition)


class ReNetLayer(nn.Module):
    def __init__(self, cin, hidden):
        super().__init__()
        self.vertical = nn.LSTM(cin, hidden, bidirectional=True)
        self.horizontal = nn.LSTM(2 * hidden, hidden, bidirectional=True)

    def forward(self, grid):                      # [N, I, J, F]
        n, gi, gj, f = grid.shape
        v, _ = self.vertical(grid.permute(1, 0, 2, 3).reshape(gi, n * gj, f))      # down each column
        v = v.reshape(gi, n, gj, -1).permute(2, 1, 0, 3).reshape(gj, n * gi, -1)
        hz, _ = self.horizontal(v)                                                 # along each row
        return hz.reshape(gj, n, gi, -1).permute(1, 2, 0, 3)                       # [N, I, J, 2h]


class ReNet(nn.Module):
    def __init__(self, hidden, patch, fc, layers=1, size=28, channels=1, classes=10):
        super().__init__()
        self.p, self.g, self.c = patch, size // patch, channels
        self.renet = nn.ModuleList([ReNetLayer(patch * patch * channels if k == 0 else 2 * hidden, hidden)
                                    for k in range(layers)])
        self.fc1 = nn.Linear(self.g * self.g * 2 * hidden, fc)
        self.fc = nn.Linear(fc, classes)

    def forward(self, x):                         # x: [N, H, W·C], pixels in [0, 1]
        n, p, g, c = x.shape[0], self.p, self.g, self.c
        grid = x.reshape(n, g, p, g, p, c).permute(0, 1, 3, 2, 4, 5).reshape(n, g, g, p * p * c)
        for layer in self.renet:
            grid = layer(grid)
        return self.fc(torch.relu(self.fc1(grid.reshape(n, -1))))


class ReNetClassifier(nn.Module):
    """ReNet as LSTMVision builds it in general: H x W images (not only squares), ``fc1`` only when fc > 0
    (fc = 0: ``fc`` reads the flattened grid). With fc > 0 and a square image it is ``ReNet`` above."""

    def __init__(self, hidden, patch, fc=0, layers=1, height=28, width=28, channels=1, classes=10):
        super().__init__()
        self.p, self.gh, self.gw, self.c = patch, height // patch, width // patch, channels
        self.renet = nn.ModuleList([ReNetLayer(patch * patch * channels if k == 0 else 2 * hidden, hidden)
                                    for k in range(layers)])
        flat = self.gh * self.gw * 2 * hidden
        self.fc1 = nn.Linear(flat, fc) if fc > 0 else None
        self.fc = nn.Linear(fc if fc > 0 else flat, classes)

    def forward(self, x):                         # x: [N, H, W*C], pixels in [0, 1]
        n, p, c = x.shape[0], self.p, self.c
        grid = x.reshape(n, self.gh, p, self.gw, p, c).permute(0, 1, 3, 2, 4, 5)
        grid = grid.reshape(n, self.gh, self.gw, p * p * c)
        for layer in self.renet:
            grid = layer(grid)
        flat = grid.reshape(n, -1)
        return self.fc(torch.relu(self.fc1(flat)) if self.fc1 is not None else flat)


# --------------------------------------------------------------------------- the detector and its refiner


class BoxRefiner(nn.Module):
    """The detector's second stage: two bidirectional LSTMs read a crop around each detection, one down its rows and
    one along its columns (each point: C channels, then a box mask); ``head`` gives class logits (the classes, then
    background) and the moves of the box's left, top, right, bottom edges in crop widths: [M, classes + 5]."""

    def __init__(self, classes, channels=1, crop_size=32, context=1.5, hidden=128):
        super().__init__()
        self.classes, self.channels, self.crop_size, self.context = classes, channels, crop_size, context
        features = crop_size * (channels + 1)
        self.rows = nn.LSTM(features, hidden, bidirectional=True)
        self.columns = nn.LSTM(features, hidden, bidirectional=True)
        self.head = nn.Linear(4 * hidden, classes + 5)

    def forward(self, crops_by_rows, crops_by_columns):   # each [S, M, S*(C + 1)], time-major
        _, (r, _) = self.rows(crops_by_rows)
        _, (c, _) = self.columns(crops_by_columns)
        return self.head(torch.cat([r[0], r[1], c[0], c[1]], 1))


def crops(images, owners, boxes, crop_size, context, channels):
    """The refiner's inputs, as LSTMVision's ``BoxRefiner.crops`` makes them: around each box (x, y, w, h in pixels)
    of image ``owners[i]`` of ``images`` [N, H, W*C], a square window of ``context`` x the box's longer side (at
    least 4 pixels) sampled bilinearly at the centres of a crop_size^2 grid (0 outside the image), each point
    followed by 1 inside the box. Returns (by_rows, by_columns, windows), the first two [S, M, S*(C + 1)]."""
    n_img, height = images.shape[0], images.shape[1]
    width, s, m = images.shape[2] // channels, crop_size, len(boxes)
    img = images.reshape(n_img, height, width, channels).double()
    out = torch.zeros(m, s, s, channels + 1, dtype=torch.float64)
    windows = []
    k = torch.arange(s, dtype=torch.float64) + 0.5
    for i, (bx, by, bw, bh) in enumerate(boxes):
        side = max(4.0, context * max(bw, bh))
        wx, wy = bx + bw / 2 - side / 2, by + bh / 2 - side / 2
        windows.append((wx, wy, side, side))
        xs, ys = wx + k * side / s, wy + k * side / s          # the points, in image coordinates

        def taps(u, size):
            lo = torch.floor(u)
            f = u - lo
            lo = lo.long()
            return lo, lo + 1, f

        x0, x1, fx = taps(xs - 0.5, width)
        y0, y1, fy = taps(ys - 0.5, height)

        def at(yy, xx):
            ok = ((yy >= 0) & (yy < height))[:, None] & ((xx >= 0) & (xx < width))[None, :]
            v = img[owners[i]][yy.clamp(0, height - 1)][:, xx.clamp(0, width - 1)]
            return v * ok[..., None]

        top = at(y0, x0) * (1 - fx)[None, :, None] + at(y0, x1) * fx[None, :, None]
        bottom = at(y1, x0) * (1 - fx)[None, :, None] + at(y1, x1) * fx[None, :, None]
        out[i, :, :, :channels] = top * (1 - fy)[:, None, None] + bottom * fy[:, None, None]
        inside = ((ys >= by) & (ys <= by + bh))[:, None] & ((xs >= bx) & (xs <= bx + bw))[None, :]
        out[i, :, :, channels] = inside.double()
    out = out.float()
    by_rows = out.permute(1, 0, 2, 3).reshape(s, m, s * (channels + 1))            # step = crop row
    by_columns = out.permute(2, 0, 1, 3).reshape(s, m, s * (channels + 1))         # step = crop column
    return by_rows, by_columns, windows


class _Decoder(nn.Module):
    def __init__(self, features, hidden):
        super().__init__()
        self.lstm = nn.LSTM(features, hidden)


class LSTMDetector(nn.Module):
    """LSTMVision's detector: an encoder makes one feature per stride x stride cell, an LSTM decoder emits K boxes
    per cell. Encoders: "conv" (3x3 convolutions with ReLU, the first log2(stride) followed by 2x2 max pooling;
    ``encoder`` is that nn.Sequential), "renet" (ReNet sweeps over stride x stride patches; ``encoder`` is a
    ModuleList of ``ReNetLayer``) and "conv-renet" (the convolutions, then sweeps over each cell's pixels beside its
    convolutional feature, ``context``). forward: images [N, H, W*C] -> raw outputs [K, N*cells, 6 + classes]
    (cx, cy, w, h, no-object and object logits, class logits per step)."""

    def __init__(self, height=64, width=64, channels=1, stride=8, encoder="conv", conv_widths=(16, 32, 64, 64, 64),
                 renet_widths=(64, 64), hidden=128, max_boxes=3, skip_features=True, fine_features=None, classes=10,
                 refiner=None):
        super().__init__()
        self.height, self.width, self.channels, self.stride, self.kind = height, width, channels, stride, encoder
        has_conv, has_sweeps = encoder != "renet", encoder != "conv"
        conv_widths = list(conv_widths) if has_conv else []
        renet_widths = list(renet_widths) if has_sweeps else []
        self.pooling = int(math.log2(stride))
        self.max_boxes, self.skip_features = max_boxes, skip_features
        self.fine_features = has_conv if fine_features is None else fine_features
        self.conv_widths, self.renet_widths = conv_widths, renet_widths
        layers, cin = [], channels
        for i, w in enumerate(conv_widths):
            layers += [nn.Conv2d(cin, w, 3, padding=1), nn.ReLU()]
            if i < self.pooling:
                layers.append(nn.MaxPool2d(2, 2))
            cin = w
        sweeps, features = [], stride * stride * channels + (cin if has_conv else 0)
        for w in renet_widths:
            sweeps.append(ReNetLayer(features, w))
            features = 2 * w
        if encoder == "conv":
            self.encoder = nn.Sequential(*layers)
        elif encoder == "renet":
            self.encoder = nn.ModuleList(sweeps)
        else:
            self.encoder = nn.Sequential(*layers)
            self.context = nn.ModuleList(sweeps)
        self.feature_size = (conv_widths[-1] if conv_widths else 0) + 2 * (renet_widths[-1] if renet_widths else 0)
        fine = 4 * conv_widths[self.pooling - 1] if self.fine_features else 0
        self.decoder = _Decoder(self.feature_size, hidden)
        self.head = nn.Linear(hidden + (self.feature_size if skip_features else 0) + fine, 6 + classes)
        # refiner: None, or a dict {"cropSize", "context", "hidden"} (LSTMVision's BoxRefiner.Config).
        self.refiner = None if refiner is None else BoxRefiner(
            classes, channels, refiner["cropSize"], refiner["context"], refiner["hidden"])

    def encode(self, x):
        """Images [N, H, W*C] -> cell features [N*cells, F] and, with fine features, [N*cells, 4*C'] (else None)."""
        n, height, c = x.shape[0], x.shape[1], self.channels
        width = x.shape[2] // c
        gh, gw = height // self.stride, width // self.stride
        grid, fine = None, None
        if self.kind != "renet":
            y = x.reshape(n, height, width, c).permute(0, 3, 1, 2)
            conv = 0
            for layer in self.encoder:
                y = layer(y)
                if isinstance(layer, nn.Conv2d):
                    conv += 1
                elif isinstance(layer, nn.ReLU) and self.fine_features and conv == self.pooling:
                    ch = y.shape[1]                           # the 2x2 block under each cell: (sx, sy, channel)
                    fine = y.reshape(n, ch, gh, 2, gw, 2).permute(0, 2, 4, 5, 3, 1).reshape(n * gh * gw, 4 * ch)
            grid = y.reshape(n, y.shape[1], gh * gw).transpose(1, 2)                    # [N, cells, C']
        if self.kind != "conv":
            ctx = patch_sequence(x, height, width, c, self.stride)                       # [N, cells, s*s*C]
            if grid is not None:
                ctx = torch.cat([ctx, grid], 2)
            ctx = ctx.reshape(n, gh, gw, -1)
            for layer in (self.encoder if self.kind == "renet" else self.context):
                ctx = layer(ctx)
            ctx = ctx.reshape(n, gh * gw, -1)
            grid = ctx if grid is None else torch.cat([grid, ctx], 2)
        return grid.reshape(n * gh * gw, self.feature_size), fine

    def forward(self, x):                             # x: [N, H, W*C], pixels in [0, 1]
        cells, fine = self.encode(x)
        steps = cells.unsqueeze(0).expand(self.max_boxes, -1, -1)                    # [K, N*cells, F]
        out, _ = self.decoder.lstm(steps)
        parts = [out] + ([steps] if self.skip_features else [])
        if fine is not None:
            parts.append(fine.unsqueeze(0).expand(self.max_boxes, -1, -1))
        return self.head(torch.cat(parts, 2))                                          # [K, N*cells, 6 + classes]

    def refine(self, crops_by_rows, crops_by_columns):
        """The refiner's outputs [M, classes + 5] for crops [S, M, S*(C + 1)] (see ``crops``)."""
        return self.refiner(crops_by_rows, crops_by_columns)


# --------------------------------------------------------------------------- from a file


def config_of(path):
    """The metadata of an LSTMVision file: ("classifier" | "detector", config dict), or (None, None) without it."""
    from safetensors import safe_open
    with safe_open(path, "pt") as f:
        meta = f.metadata() or {}
    if "lstmvision.detector" in meta:
        return "detector", json.loads(meta["lstmvision.detector"])
    if "lstmvision.config" in meta:
        return "classifier", json.loads(meta["lstmvision.config"])
    return None, None


def build(what, c):
    """The module an LSTMVision config (the JSON of ``lstmvision.config`` or ``lstmvision.detector``) describes."""
    if what == "detector":
        return LSTMDetector(c["height"], c["width"], c["channels"], c["stride"], c.get("encoder", "conv"),
                            c["convWidths"], c.get("renetWidths", []), c["hidden"], c["maxBoxes"], c["skipFeatures"],
                            c["fineFeatures"], len(c["classNames"]), c.get("refiner"))
    if c["kind"] == "renet":
        if c["fcHidden"] > 0 and c["height"] == c["width"]:
            return ReNet(c["hidden"], c["patch"], c["fcHidden"], c["layers"], c["height"], c["channels"],
                         c["classes"])
        return ReNetClassifier(c["hidden"], c["patch"], c["fcHidden"], c["layers"], c["height"], c["width"],
                               c["channels"], c["classes"])
    return SequenceClassifier(c["kind"], c["height"], c["width"], c["channels"], c["hidden"], c["layers"],
                              c["bidirectional"], c["classes"], c["patch"], c.get("dropout", 0.0))


def from_file(path, config=None):
    """Builds the module of an LSTMVision file from its metadata (or from ``config``, a dict in that JSON form, for a
    file without it) and loads its tensors with strict=True; returned in eval mode."""
    from safetensors.torch import load_file
    what, c = config_of(path)
    if config is not None:
        what, c = ("detector" if "stride" in config else "classifier"), config
    if c is None:
        raise ValueError(f"{path}: no lstmvision.config or lstmvision.detector metadata (pass config=...)")
    model = build(what, c)
    model.load_state_dict(load_file(path), strict=True)
    return model.eval()
