"""Joins rounds of `lstmvision bench` and `tools/bench_torch.py` JSON lines into a Markdown table: per
measurement, the median images/s of each side, the ratio (LSTMVision / PyTorch) of each round and their median.
Prints it and writes it into docs/performance.md between its bench markers.

Usage: bench_table.py OUT.md OURS_1.jsonl TORCH_1.jsonl [OURS_2.jsonl TORCH_2.jsonl ...]"""
import json
import statistics
import sys


def load(path):
    with open(path) as f:
        return {(r["config"], r["mode"], r["batch"]): r for r in map(json.loads, filter(lambda l: l.startswith("{"), f))}


def table(rounds):
    """rounds: [(ours, theirs)], each a dict from load. Returns the Markdown rows and the notes line."""
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
        line += f"{med(theirs, lambda r: r['gflops']):.0f} ({100 * med(theirs, lambda r: r['peak_fraction']):.0f}%) |" if theirs else "n/a |"
        rows.append(line)
    o_peaks = [next(iter(o.values()))["sgemm_peak_gflops"] for o, _ in rounds if o]
    t_peaks = [next(iter(t.values()))["sgemm_peak_gflops"] for _, t in rounds if t]
    some_t = next((next(iter(t.values())) for _, t in rounds if t), {})
    notes = (f"\n{len(rounds)} alternating rounds. sgemm peak measured in each round: LSTMVision/OpenBLAS "
             + ", ".join(f"{p:.0f}" for p in o_peaks) + " GFLOP/s; PyTorch " + ", ".join(f"{p:.0f}" for p in t_peaks)
             + f" GFLOP/s; threads: {next(iter(rounds[0][0].values()))['threads']} / {some_t.get('threads', '?')}; "
             + f"{some_t.get('framework', '')}.\n")
    return "\n".join(rows), notes


def main(out_path, *paths):
    if len(paths) < 2 or len(paths) % 2:
        sys.exit("usage: bench_table.py OUT.md OURS_1.jsonl TORCH_1.jsonl [OURS_2.jsonl TORCH_2.jsonl ...]")
    rounds = [(load(paths[i]), load(paths[i + 1])) for i in range(0, len(paths), 2)]
    rows, notes = table(rounds)
    print(rows + notes)
    generated = ("<!-- bench:start (written by tools/bench_table.py) -->\n"
                 "Latest `make bench` (release build, same machine; LSTMVision and PyTorch alternate, round after round; "
                 "images/s are each side's median over the rounds, each round's figure the median of 5 windows after warm-up; "
                 "GFLOP/s count the LSTM gate GEMMs, ×3 for training).\n\n" + rows + "\n" + notes +
                 "\nReproduce: `make bench` (builds release, installs PyTorch from PyPI into .venv on first use, "
                 "then `ROUNDS` (default 3) rounds of `lstmvision bench --json` and `tools/bench_torch.py`, 2 threads each, "
                 "then this table).\n"
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
