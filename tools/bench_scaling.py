"""The scaling table of docs/performance.md: LSTMVision (`lstmvision bench`) and PyTorch (tools/bench_torch.py) on
the same models as one size grows — the row-LSTM's hidden units, its sequence length (the 784 pixels of an MNIST
digit read as T steps of 784/T, down to pixel by pixel), the batch, and ReNet's image size — each measurement taken
by both back to back in alternating order, for ROUNDS rounds. Writes runs/scaling-R.jsonl and the table between the
scaling markers of docs/performance.md.

Usage (from the repository root, after a release build): .venv/bin/python tools/bench_scaling.py [ROUNDS]"""
import json
import os
import statistics
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_rounds import THREADS, ours  # noqa: E402
from bench_table import replace_block  # noqa: E402
from bench_torch import measure, sgemm_peak  # noqa: E402

# (series, what grows, [(value shown, model, mode, batch)])
SERIES = [
    ("hidden units", "H", [(h, f"1x{h}", mode, batch) for h in (64, 128, 256, 512, 1024)
                           for mode, batch in (("train", 64), ("infer", 1), ("infer", 64))]),
    ("sequence length", "T steps × I inputs", [(f"{t}×{784 // t}", f"1x128@{t}x{784 // t}", mode, 64)
                                              for t in (28, 112, 196, 392, 784) for mode in ("train", "infer")]),
    ("batch", "N", [(n, "1x128", "infer", n) for n in (1, 4, 16, 64, 256, 1024)]
     + [(n, "1x128", "train", n) for n in (16, 64, 256, 1024)]),
    ("ReNet image size", "S×S pixels", [(f"{s}×{s}", f"renet@{s}", mode, batch) for s in (28, 56, 84, 112)
                                        for mode, batch in (("train", 16), ("infer", 1), ("infer", 16))]),
]


def main(rounds):
    torch.set_num_threads(THREADS)
    results = []   # per round: {(model, mode, batch): (ours, theirs)}
    for r in range(1, rounds + 1):
        got = {}
        for i, (_, _, points) in enumerate(SERIES):
            for j, (_, model, mode, batch) in enumerate(points):
                sides = [("ours", lambda: ours(model, mode, batch)),
                         ("theirs", lambda: measure(model, mode, batch, sgemm_peak(), 0.5))]
                pair = {}
                for name, run in sides if (r + i + j) % 2 else sides[::-1]:
                    pair[name] = run()
                got[(model, mode, batch)] = (pair["ours"], pair["theirs"])
                print(json.dumps(pair), flush=True)
        os.makedirs("runs", exist_ok=True)
        with open(f"runs/scaling-{r}.jsonl", "w") as f:
            f.writelines(json.dumps({"ours": o, "theirs": t}) + "\n" for o, t in got.values())
        results.append(got)
    write("docs/performance.md", table(results, rounds))


def table(results, rounds):
    med = statistics.median
    out = []
    for title, grows, points in SERIES:
        out += [f"\n**{title}** ({grows}):\n",
                f"| {grows} | model | mode | batch | LSTMVision img/s | PyTorch img/s | ratio (median) | ratio per round "
                "| LSTMVision GFLOP/s (% of peak) | PyTorch GFLOP/s (%) |",
                "|---|---|---|---:|---:|---:|---:|---|---:|---:|"]
        for value, model, mode, batch in points:
            pairs = [g[(model, mode, batch)] for g in results]
            ratios = [o["images_per_second"] / t["images_per_second"] for o, t in pairs]
            line = (f"| {value} | {model} | {mode} | {batch} | {med(o['images_per_second'] for o, _ in pairs):,.0f} | "
                    f"{med(t['images_per_second'] for _, t in pairs):,.0f} | {med(ratios):.2f}× | "
                    + ", ".join(f"{x:.2f}" for x in ratios) + " | ")
            if pairs[0][0].get("gflops") is not None:
                line += (f"{med(o['gflops'] for o, _ in pairs):.0f} ({100 * med(o['peak_fraction'] for o, _ in pairs):.0f}%) | "
                         f"{med(t['gflops'] for _, t in pairs):.0f} "
                         f"({100 * med(t['gflops'] / o['sgemm_peak_gflops'] for o, t in pairs):.0f}%) |")
            else:
                line += "– | – |"
            out.append(line)
    peaks = [o["sgemm_peak_gflops"] for g in results for o, _ in g.values()]
    return ("<!-- scaling:start (written by tools/bench_scaling.py) -->\n"
            f"{rounds} round(s), release build, 2 threads each, {torch.__version__}; each measurement as in `make bench` "
            f"(median of 5 windows after warm-up); sgemm peak measured with each line {min(peaks):.0f}–{max(peaks):.0f} "
            "GFLOP/s; GFLOP/s count the gate GEMMs (×3 for training).\n" + "\n".join(out) +
            "\n\nReproduce: `.venv/bin/python tools/bench_scaling.py ROUNDS` after `swift build -c release`.\n"
            "<!-- scaling:end -->")


def write(path, generated):
    replace_block(path, "scaling", generated, lambda page: page + "\n## Scaling\n\n" + generated + "\n")
    print(generated)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
