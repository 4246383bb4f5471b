"""Joins rounds of `lstmvision bench` and `tools/bench_torch.py` JSON lines into a Markdown table: per
measurement, the median images/s of each side, the ratio (LSTMVision / PyTorch) of each round and their median.
Prints it and writes it into docs/performance.md between its bench markers.

Usage: bench_table.py OUT.md OURS_1.jsonl TORCH_1.jsonl [OURS_2.jsonl TORCH_2.jsonl ...]"""
import json
import statistics
import sys


# PyTorch's 1×128 training speed at batch 64 on the machine issue 5 describes (images/s).
ISSUE_TORCH_TRAIN_64 = 11_100


def load(path):
    with open(path) as f:
        return {(r["config"], r["mode"], r["batch"]): r for r in map(json.loads, filter(lambda l: l.startswith("{"), f))}


def table(rounds, epochs=()):
    """rounds: [(ours, theirs)], each a dict from load; epochs: [{"seconds", "sgemm_peak_gflops"}] of the 1×128 epochs
    timed (if any). Returns the Markdown rows and the notes."""
    rows = ["| config | mode | batch | LSTMVision img/s | PyTorch img/s | ratio (median) | ratio per round | LSTMVision GFLOP/s (% of sgemm peak) | PyTorch GFLOP/s (%) |",
            "|---|---|---:|---:|---:|---:|---|---:|---:|"]
    keys = sorted({k for ours, _ in rounds for k in ours}, key=lambda k: (k[0], k[1] != "train", k[2]))
    med = lambda rs, f: statistics.median(f(r) for r in rs)
    for key in keys:
        ours = [o[key] for o, _ in rounds if key in o]
        theirs = [t[key] for _, t in rounds if key in t]
        ratios = [o[key]["images_per_second"] / t[key]["images_per_second"] for o, t in rounds if key in o and key in t]
        line = f"| {key[0]} | {key[1]} | {key[2]} | {med(ours, lambda r: r['images_per_second']):,.0f} | "
        line += f"{med(theirs, lambda r: r['images_per_second']):,.0f} | " if theirs else "n/a | "
        line += (f"{statistics.median(ratios):.2f}× | " + ", ".join(f"{x:.2f}" for x in ratios) + " | ") if ratios else "n/a | | "
        line += f"{med(ours, lambda r: r['gflops']):.0f} ({100 * med(ours, lambda r: r['peak_fraction']):.0f}%) | "
        # PyTorch's share of the same peak as ours (the paired LSTMVision line's), so that the two columns compare.
        shares = [t[key]["gflops"] / o[key]["sgemm_peak_gflops"] for o, t in rounds if key in o and key in t]
        line += f"{med(theirs, lambda r: r['gflops']):.0f} ({100 * statistics.median(shares):.0f}%) |" if shares else "n/a |"
        rows.append(line)
    span = lambda values: f"{min(values):.0f}–{max(values):.0f}" if values else "n/a"
    o_lines = [r for o, _ in rounds for r in o.values()]
    t_peaks = [r["sgemm_peak_gflops"] for _, t in rounds for r in t.values()]
    some_t = next((next(iter(t.values())) for _, t in rounds if t), {})
    notes = (f"\n{len(rounds)} rounds. sgemm peak (GFLOP/s) measured with each line, the median of 5 windows: "
             + "SmallGEMM in cache " + span([r.get("sgemm_peak_in_cache_gflops", 0) for r in o_lines])
             + ", OpenBLAS on 1536² products " + span([r.get("sgemm_peak_openblas_gflops", r["sgemm_peak_gflops"]) for r in o_lines])
             + " (the percentages are of the larger of the two); PyTorch's own 1536² product, best of 0.6 s, " + span(t_peaks)
             + f" GFLOP/s; threads: {next(iter(rounds[0][0].values()))['threads']} / {some_t.get('threads', '?')}; "
             + f"{some_t.get('framework', '')}.\n")
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
        speeds = [t[("1x128", "train", 64)]["images_per_second"] for _, t in rounds if ("1x128", "train", 64) in t]
        if len(speeds) == len(epochs):
            scaled = [e["seconds"] * s / ISSUE_TORCH_TRAIN_64 for e, s in zip(epochs, speeds)]
            notes += (f" Scaled to the machine the issue describes by PyTorch's 1×128 training speed at batch 64 in the same "
                      f"round ({', '.join(f'{s:,.0f}' for s in speeds)} images/s here, {ISSUE_TORCH_TRAIN_64:,} there): "
                      + ", ".join(f"{x:.1f} s" for x in scaled) + f"; median {statistics.median(scaled):.1f} s.")
        notes += "\n"
    return "\n".join(rows), notes


def main(out_path, *paths, epochs=()):
    if len(paths) < 2 or len(paths) % 2:
        sys.exit("usage: bench_table.py OUT.md OURS_1.jsonl TORCH_1.jsonl [OURS_2.jsonl TORCH_2.jsonl ...]")
    rounds = [(load(paths[i]), load(paths[i + 1])) for i in range(0, len(paths), 2)]
    rows, notes = table(rounds, epochs)
    print(rows + notes)
    generated = ("<!-- bench:start (written by tools/bench_table.py) -->\n"
                 "Latest `make bench` (release build, same machine; in each round every measurement is taken by LSTMVision "
                 "and PyTorch back to back, in alternating order; images/s are each side's median over the rounds, each "
                 "round's figure the median of 5 windows after warm-up; GFLOP/s count the LSTM gate GEMMs, ×3 for "
                 "training).\n\n" + rows + "\n" + notes +
                 "\nReproduce: `make bench` (builds release, installs PyTorch from PyPI into .venv on first use, "
                 "then `ROUNDS` (default 3) rounds of `tools/bench_rounds.py`: `lstmvision bench --json` for one "
                 "measurement and `tools/bench_torch.py`'s for the same, 2 threads each; then this table).\n"
                 "<!-- bench:end -->")
    # Only the part between the markers is replaced; the hand-written rest of the page stays.
    try:
        with open(out_path) as f:
            page = f.read()
    except FileNotFoundError:
        page = ""
    start, end = page.find("<!-- bench:start"), page.find("<!-- bench:end -->")
    if start >= 0 and end > start:
        page = page[:start] + generated + page[end + len("<!-- bench:end -->"):]
    else:
        page = "# Performance\n\n" + generated + "\n"
    with open(out_path, "w") as f:
        f.write(page)


if __name__ == "__main__":
    main(*sys.argv[1:])
