"""Reduced-precision inference against fp32 and ONNX Runtime: `lstmvision bench --precision fp32|bf16|int8` and ONNX
Runtime (tools/bench_torch.py's `measure_onnx`, the PyTorch model exported by `torch.onnx.export`) on the same
models and batches, every measurement by each side back to back in rotating order, for ROUNDS rounds. Writes
runs/precision-R.jsonl and the table between the precision markers of docs/performance.md.

Usage (from the repository root, after a release build): .venv/bin/python tools/bench_precision.py [ROUNDS]"""
import json
import os
import statistics
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_rounds import THREADS, ours  # noqa: E402
from bench_table import replace_block  # noqa: E402
from bench_torch import measure_onnx, sgemm_peak  # noqa: E402

POINTS = [(model, batch) for model in ("1x128", "2x128-bi", "renet") for batch in (1, 64)]
SIDES = ["fp32", "bf16", "int8", "onnxruntime"]


def main(rounds):
    torch.set_num_threads(THREADS)
    results = []
    for r in range(1, rounds + 1):
        got = {}
        for i, (model, batch) in enumerate(POINTS):
            shift = (r + i) % len(SIDES)
            for side in SIDES[shift:] + SIDES[:shift]:
                if side == "onnxruntime":
                    line = measure_onnx(model, batch, sgemm_peak(), 0.5, THREADS)
                else:
                    line = ours(model, "infer", batch, precision=side)
                got[(model, batch, side)] = line["images_per_second"]
            print(json.dumps({f"{m} {b} {s}": v for (m, b, s), v in got.items() if (m, b) == (model, batch)}),
                  flush=True)
        with open(f"runs/precision-{r}.jsonl", "w") as f:
            f.writelines(json.dumps({"model": m, "batch": b, "side": s, "images_per_second": v}) + "\n"
                         for (m, b, s), v in got.items())
        results.append(got)
    med = statistics.median
    rows = ["| model | batch | fp32 img/s | bf16 img/s | int8 img/s | ONNX Runtime img/s | bf16 / fp32 | int8 / fp32 "
            "| fp32 / ORT | bf16 / ORT | int8 / ORT |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for model, batch in POINTS:
        v = {s: [g[(model, batch, s)] for g in results] for s in SIDES}
        ratio = lambda a, b: med(x / y for x, y in zip(v[a], v[b]))   # per round, then the median
        rows.append(f"| {model} | {batch} | " + " | ".join(f"{med(v[s]):,.0f}" for s in SIDES) + " | "
                    + " | ".join(f"{ratio(a, b):.2f}×" for a, b in (("bf16", "fp32"), ("int8", "fp32"),
                                                                   ("fp32", "onnxruntime"), ("bf16", "onnxruntime"),
                                                                   ("int8", "onnxruntime"))) + " |")
    generated = ("<!-- precision:start (written by tools/bench_precision.py) -->\n"
                 f"{rounds} round(s), release build, 2 threads each, inference; images/s the median over the rounds, "
                 "ratios per round then their median.\n\n" + "\n".join(rows) +
                 "\n\nReproduce: `.venv/bin/python tools/bench_precision.py ROUNDS` after `swift build -c release`.\n"
                 "<!-- precision:end -->")
    marker = "## Tried, and did not pay"
    replace_block("docs/performance.md", "precision", generated,
                  lambda page: page.replace(marker, generated + "\n\n" + marker, 1))
    print(generated)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
