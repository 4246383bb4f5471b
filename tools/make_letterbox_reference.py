"""Writes Tests/LSTMVisionTests/Fixtures/letterbox.safetensors: images letterboxed by PyTorch and Ultralytics' rule.

Each case is a random image (HWC, values in [0, 1]) resized with
torch.nn.functional.interpolate(mode="bilinear", align_corners=False, antialias=True) to the size Ultralytics'
LetterBox gives (r = min(H/h, W/w), new size round(w r) x round(h r)), then padded with 0 as LetterBox splits the
margin (top = round(dh - 0.1), left = round(dw - 0.1)). `Letterbox.apply` must reproduce it. Cases whose
source is smaller also store the plain bilinear resize (antialias=False), which antialiasing must equal when enlarging.
Run: /work/main/.venv/bin/python tools/make_letterbox_reference.py
"""
import json
import os

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

# (source width, source height, channels, input width, input height)
CASES = [(40, 30, 1, 64, 64), (97, 61, 1, 64, 64), (50, 20, 3, 32, 48), (30, 40, 3, 64, 64), (13, 150, 1, 64, 64)]


def letterbox(image, width, height, antialias=True):
    """image: [h, w, c] tensor -> ([height, width, c] tensor, geometry dict), after Ultralytics' LetterBox."""
    h, w, c = image.shape
    r = min(height / h, width / w)
    new_w, new_h = int(round(w * r)), int(round(h * r))
    dw, dh = (width - new_w) / 2, (height - new_h) / 2
    top, left = int(round(dh - 0.1)), int(round(dw - 0.1))
    chw = image.permute(2, 0, 1).unsqueeze(0)
    if (new_w, new_h) != (w, h):
        chw = F.interpolate(chw, size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=antialias)
    out = torch.zeros(1, c, height, width, dtype=torch.float32)
    out[:, :, top:top + new_h, left:left + new_w] = chw
    geometry = {"scaledWidth": new_w, "scaledHeight": new_h, "left": left, "top": top}
    return out[0].permute(1, 2, 0).contiguous(), geometry


def main():
    rng = np.random.default_rng(19)
    tensors, geometry = {}, []
    for k, (w, h, c, width, height) in enumerate(CASES):
        image = torch.from_numpy(rng.random((h, w, c), dtype=np.float32))
        out, g = letterbox(image, width, height)
        tensors[f"case{k}.input"] = image.contiguous()
        tensors[f"case{k}.output"] = out
        if g["scaledWidth"] >= w:
            tensors[f"case{k}.plain"] = letterbox(image, width, height, antialias=False)[0]
        geometry.append(dict(sourceWidth=w, sourceHeight=h, channels=c, width=width, height=height, **g))
    path = os.path.join(os.path.dirname(__file__), "..", "Tests", "LSTMVisionTests", "Fixtures",
                        "letterbox.safetensors")
    # One metadata entry: safetensors writes several in a random order, and the file should be reproducible.
    save_file(tensors, path, metadata={"cases": json.dumps(geometry)})
    print(f"wrote {len(CASES)} cases to {os.path.normpath(path)} (torch {torch.__version__})")


if __name__ == "__main__":
    main()
