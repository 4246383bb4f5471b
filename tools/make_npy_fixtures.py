#!/usr/bin/env python3
"""NumPy-written .npy files for LSTMVision's NPY reader tests and the `npy` fuzz corpus.

Writes, with numpy's own np.save / np.lib.format (the reference), into Tests/LSTMVisionTests/Fixtures/npy/:
  uint8_seq.npy     uint8 [3, 2, 4, 5] (values i*7 mod 256), mnist_test_seq.npy's layout in small, version 1.0
  float32.npy       float32 [2, 3] (i/3 - 0.5), version 1.0
  uint8_v2.npy      uint8 [4], written as version 2.0
  vector.npy        float32 [5] (a 1-tuple shape)
  float64.npy       float64 [2, 2]: another dtype, refused
  big_endian.npy    >f4 [2]: refused
  fortran.npy       uint8 [2, 3] in Fortran order: refused
and copies the first three, plus damaged ones (bad-*), into Tests/Fuzz/corpus/npy/.
Usage: /work/main/.venv/bin/python tools/make_npy_fixtures.py
"""

import os

import numpy as np

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
FIX = os.path.join(ROOT, "Tests", "LSTMVisionTests", "Fixtures", "npy")
CORPUS = os.path.join(ROOT, "Tests", "Fuzz", "corpus", "npy")


def save(name, array, version=None):
    path = os.path.join(FIX, name)
    if version is None:
        np.save(path, array)
    else:
        with open(path, "wb") as f:
            np.lib.format.write_array(f, array, version=version)
    print(f"wrote {path}: {array.dtype} {array.shape}")
    return path


def main():
    os.makedirs(FIX, exist_ok=True)
    os.makedirs(CORPUS, exist_ok=True)
    seq = (np.arange(3 * 2 * 4 * 5) * 7 % 256).astype(np.uint8).reshape(3, 2, 4, 5)
    valid = [save("uint8_seq.npy", seq),
             save("float32.npy", (np.arange(6, dtype=np.float32) / 3 - 0.5).reshape(2, 3)),
             save("uint8_v2.npy", np.array([1, 2, 250, 255], dtype=np.uint8), version=(2, 0))]
    save("vector.npy", np.arange(5, dtype=np.float32))
    save("float64.npy", np.ones((2, 2), dtype=np.float64))
    save("big_endian.npy", np.array([1.5, -2], dtype=">f4"))
    save("fortran.npy", np.asfortranarray(np.arange(6, dtype=np.uint8).reshape(2, 3)))
    for p in valid:
        data = open(p, "rb").read()
        open(os.path.join(CORPUS, os.path.basename(p)), "wb").write(data)
    data = open(valid[0], "rb").read()
    # A header claiming 1000 sequences over the same 120 bytes of data; a file cut inside its header.
    claim = data.replace(b"(3, 2, 4, 5)", b"(3,999,4,5) ")   # same length: the header keeps its size
    open(os.path.join(CORPUS, "bad-claims-more.npy"), "wb").write(claim)
    open(os.path.join(CORPUS, "bad-cut-head.npy"), "wb").write(data[:40])
    print(f"wrote {CORPUS}")


if __name__ == "__main__":
    main()
