"""Joins rounds of `lstmvision bench` and `tools/bench_torch.py` JSON lines (PyTorch; ONNX Runtime for inference) into a
Markdown table: per measurement, the median images/s of each side, the ratios (LSTMVision / peer) of each round and
their median.
Prints it and writes it into docs/performance.md between its bench markers.

Usage: bench_table.py OUT.md ROUNDS (reads runs/bench-{lstmvision,pytorch,onnxruntime}-R.jsonl, R = 1 … ROUNDS)"""
import json
import os
import statistics
import sys


# PyTorch's 1×128 training speed at batch 64 on the machine issue 5 describes (images/s).
ISSUE_TORCH_TRAIN_64 = 11_100


def load(path):
    with open(path) as f:
        return {(r["config"], r["mode"], r["batch"]): r for r in map(json.loads, filter(lambda l: l.startswith("{"), f))}


SIDES = ("lstmvision", "pytorch", "onnxruntime")


def table(rounds, epochs=()):
    """rounds: [{side: lines}], each side's lines a dict from load (ONNX Runtime's: inference only); epochs:
    [{"seconds", "sgemm_peak_gflops"}] of the 1×128 epochs timed (if any). Returns the Markdown rows and the notes."""
    rows = ["| config | mode | batch | LSTMVision img/s | PyTorch img/s | ratio (median) | ratio per round "
            "| ONNX Runtime img/s | ratio (median) | ratio per round "
            "| LSTMVision GFLOP/s (% of sgemm peak) | PyTorch GFLOP/s (%) |",
            "|---|---|---:|---:|---:|---:|---|---:|---:|---|---:|---:|"]
    order = {c: i for i, c in enumerate(["1x128", "2x128-bi", "1x512", "2x256-bi", "renet", "detector"])}
    keys = sorted({k for r in rounds for k in r["lstmvision"]}, key=lambda k: (order.get(k[0], 99), k[0],
                                                                              k[1] != "train", k[2]))
    med = statistics.median
    for key in keys:
        ours = [r["lstmvision"][key] for r in rounds if key in r["lstmvision"]]
        line = f"| {key[0]} | {key[1]} | {key[2]} | {med(o['images_per_second'] for o in ours):,.0f} | "
        for side in ("pytorch", "onnxruntime"):
            paired = [(r["lstmvision"][key], r[side][key]) for r in rounds
                      if key in r["lstmvision"] and key in r.get(side, {})]
            if not paired:
                line += "n/a | | | "
                continue
            ratios = [o["images_per_second"] / t["images_per_second"] for o, t in paired]
            line += (f"{med(t['images_per_second'] for _, t in paired):,.0f} | {med(ratios):.2f}× | "
                     + ", ".join(f"{x:.2f}" for x in ratios) + " | ")
        if ours[0].get("gflops") is not None:
            line += f"{med(o['gflops'] for o in ours):.0f} ({100 * med(o['peak_fraction'] for o in ours):.0f}%) | "
            # PyTorch's share of the same peak as ours (the paired LSTMVision line's), so that the two columns compare.
            shares = [(r["pytorch"][key]["gflops"], r["pytorch"][key]["gflops"] / r["lstmvision"][key]["sgemm_peak_gflops"])
                      for r in rounds if key in r["lstmvision"] and key in r["pytorch"]]
            line += f"{med(g for g, _ in shares):.0f} ({100 * med(f for _, f in shares):.0f}%) |" if shares else "n/a |"
        else:
            line += "– | – |"
        rows.append(line)
    span = lambda values: f"{min(values):.0f}–{max(values):.0f}" if values else "n/a"
    o_lines = [line for r in rounds for line in r["lstmvision"].values()]
    t_peaks = [line["sgemm_peak_gflops"] for r in rounds for line in r["pytorch"].values()]
    some_t = next((next(iter(r["pytorch"].values())) for r in rounds if r["pytorch"]), {})
    some_o = next((next(iter(r["onnxruntime"].values())) for r in rounds if r.get("onnxruntime")), {})
    differences = [line["max_abs_difference"] for r in rounds for line in r.get("onnxruntime", {}).values()]
    notes = (f"\n{len(rounds)} rounds. sgemm peak (GFLOP/s) measured with each line, the median of 5 windows: "
             + "SmallGEMM in cache " + span([r.get("sgemm_peak_in_cache_gflops", 0) for r in o_lines])
             + ", OpenBLAS on 1536² products " + span([r.get("sgemm_peak_openblas_gflops", r["sgemm_peak_gflops"]) for r in o_lines])
             + " (the percentages are of the larger of the two); PyTorch's own 1536² product, best of 0.6 s, " + span(t_peaks)
             + f" GFLOP/s; threads: {next(iter(rounds[0]['lstmvision'].values()))['threads']} / {some_t.get('threads', '?')}"
             + f" / {some_o.get('threads', '?')}; {some_t.get('framework', '')}, {some_o.get('framework', 'no ONNX Runtime')}"
             + (f" (each model exported by `torch.onnx.export`; its outputs within {max(differences):.1e} of PyTorch's)"
                if differences else "") + ".\n")
    if epochs:
        notes += ("\nA full 1×128 epoch (`lstmvision train --epochs 1`: 60,000 images, batch 64, validation excluded), one per "
                  "round: " + ", ".join(f"{e['seconds']:.1f} s (peak {e['sgemm_peak_gflops']:.0f})" for e in epochs)
                  + f"; median {statistics.median(e['seconds'] for e in epochs):.1f} s.")
        paired = [e for e in epochs if "pytorch_seconds" in e]
        if paired:
            notes += (" The same epoch in PyTorch, back to back with it (tools/bench_torch.py `epoch`: shuffled batches of 64 "
                      "from memory, cross-entropy, Adam): " + ", ".join(f"{e['pytorch_seconds']:.1f} s" for e in paired)
                      + "; ratio per round " + ", ".join(f"{e['pytorch_seconds'] / e['seconds']:.2f}" for e in paired)
                      + f", median {statistics.median(e['pytorch_seconds'] / e['seconds'] for e in paired):.2f}×.")
        # The issue's 5 s target is for its machine, where PyTorch trains 11,100 images/s (1×128, batch 64): each epoch
        # scaled by PyTorch's speed in the same round (the round's paired 1×128 training line at batch 64).
        speeds = [r["pytorch"][("1x128", "train", 64)]["images_per_second"] for r in rounds
                  if ("1x128", "train", 64) in r["pytorch"]]
        if len(speeds) == len(epochs):
            scaled = [e["seconds"] * s / ISSUE_TORCH_TRAIN_64 for e, s in zip(epochs, speeds)]
            notes += (f" Scaled to the machine the issue describes by PyTorch's 1×128 training speed at batch 64 in the same "
                      f"round ({', '.join(f'{s:,.0f}' for s in speeds)} images/s here, {ISSUE_TORCH_TRAIN_64:,} there): "
                      + ", ".join(f"{x:.1f} s" for x in scaled) + f"; median {statistics.median(scaled):.1f} s.")
        notes += "\n"
    return "\n".join(rows), notes


def main(out_path, rounds, epochs=()):
    """Writes the table of `rounds` (a count: runs/bench-SIDE-R.jsonl for R = 1 … rounds, or the loaded rounds)."""
    if isinstance(rounds, (int, str)):
        rounds = [{side: load(f"runs/bench-{side}-{r}.jsonl") for side in SIDES
                   if side != "onnxruntime" or os.path.exists(f"runs/bench-{side}-{r}.jsonl")}
                  for r in range(1, int(rounds) + 1)]
    rows, notes = table(rounds, epochs)
    print(rows + notes)
    generated = ("<!-- bench:start (written by tools/bench_table.py) -->\n"
                 "Latest `make bench` (release build, same machine; in each round every measurement is taken by LSTMVision, "
                 "PyTorch and, for inference, ONNX Runtime back to back, in rotating order; images/s are each side's median "
                 "over the rounds, each round's figure the median of 5 windows after warm-up; the ratios are LSTMVision's "
                 "speed over the peer's, per round; GFLOP/s count the row-LSTMs' gate GEMMs, ×3 for training).\n\n"
                 + rows + "\n" + notes +
                 "\nReproduce: `make bench` (builds release, installs PyTorch and ONNX Runtime from PyPI into .venv on first "
                 "use, then `ROUNDS` (default 3) rounds of `tools/bench_rounds.py`: `lstmvision bench --json` for one "
                 "measurement and `tools/bench_torch.py`'s for the same, 2 threads each; then this table).\n"
                 "<!-- bench:end -->")
    replace_block(out_path, "bench", generated, lambda page: "# Performance\n\n" + generated + "\n")


def replace_block(path, name, generated, otherwise):
    """Replaces the part of `path` between its `<!-- NAME:start` and `<!-- NAME:end -->` markers with `generated` (the
    hand-written rest of the page stays); without the markers the page becomes `otherwise(page)`."""
    try:
        with open(path) as f:
            page = f.read()
    except FileNotFoundError:
        page = ""
    start, end = page.find(f"<!-- {name}:start"), page.find(f"<!-- {name}:end -->")
    if start >= 0 and end > start:
        page = page[:start] + generated + page[end + len(f"<!-- {name}:end -->"):]
    else:
        page = otherwise(page)
    with open(path, "w") as f:
        f.write(page)


if __name__ == "__main__":
    main(*sys.argv[1:])
