"""Joins the JSON lines of `lstmvision bench` and `tools/bench_torch.py` into a Markdown table with
the speed ratio (LSTMVision / PyTorch), printed and written into docs/performance.md between its
bench markers."""
import json
import sys


def load(path):
    with open(path) as f:
        return {(r["config"], r["mode"], r["batch"]): r for r in map(json.loads, filter(str.strip, f))}


def main(ours_path, torch_path, out_path):
    ours, theirs = load(ours_path), load(torch_path)
    rows = ["| config | mode | batch | LSTMVision img/s | PyTorch img/s | ratio | LSTMVision GFLOP/s (% of sgemm peak) | PyTorch GFLOP/s (%) |",
            "|---|---|---:|---:|---:|---:|---:|---:|"]
    for key in sorted(ours, key=lambda k: (k[0], k[1] != "train", k[2])):
        o, t = ours[key], theirs.get(key)
        ratio = f"{o['images_per_second'] / t['images_per_second']:.2f}×" if t else "n/a"
        rows.append(f"| {key[0]} | {key[1]} | {key[2]} | {o['images_per_second']:,.0f} | "
                    + (f"{t['images_per_second']:,.0f}" if t else "n/a") + f" | {ratio} | "
                    + f"{o['gflops']:.0f} ({100 * o['peak_fraction']:.0f}%) | "
                    + (f"{t['gflops']:.0f} ({100 * t['peak_fraction']:.0f}%)" if t else "n/a") + " |")
    any_o = next(iter(ours.values()))
    any_t = next(iter(theirs.values()), {})
    table = "\n".join(rows)
    notes = (f"\nsgemm peak measured in the same run: LSTMVision/OpenBLAS {any_o['sgemm_peak_gflops']:.0f} GFLOP/s, "
             f"PyTorch {any_t.get('sgemm_peak_gflops', 0):.0f} GFLOP/s; threads: {any_o['threads']} / {any_t.get('threads', '?')}; "
             f"{any_t.get('framework', '')}.\n")
    print(table + notes)
    generated = ("<!-- bench:start (written by tools/bench_table.py) -->\n"
                 "Latest `make bench` (release build, same machine, same run; images/s are the median of 5 windows "
                 "after warm-up; GFLOP/s count the LSTM gate GEMMs, ×3 for training).\n\n" + table + "\n" + notes +
                 "\nReproduce: `make bench` (builds release, installs PyTorch from PyPI into .venv on first use, "
                 "runs `lstmvision bench --json` and `tools/bench_torch.py` with 2 threads, then this table).\n"
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
    main(*sys.argv[1:4])
