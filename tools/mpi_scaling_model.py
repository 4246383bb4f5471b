"""The scaling model of docs/distributed.md: predicted speed-up of data-parallel training on N machines.

Per step of a global batch B, a machine computes B/N images at the measured one-machine rate (images/s of
1 process x 2 threads, tools/mpi-bench.sh) and exchanges the gradient as LSTMVision does: a reduce-scatter
(MPI_Alltoallv) and an all-gather (MPI_Allgatherv) of 4P bytes, 2(N-1)/N * 4P bytes sent per machine, in
2(N-1) messages of latency alpha. Speed-up = T(1) / (T_compute(N) + T_comm(N)). Strong scaling keeps B = 64
(the options mean the same on any N); weak scaling gives every machine 64 images (B = 64 N).
Usage: python3 tools/mpi_scaling_model.py  (prints the Markdown table)
"""
MODELS = [  # name, parameters, measured images/s of one machine (1 process x 2 threads)
    ("row", 82186, 8449), ("patch", 69898, 1686), ("renet", 386058, 441), ("detector", 203664, 130)]
LINKS = [("10 Gbit/s", 10e9 / 8, 25e-6), ("100 Gbit/s", 100e9 / 8, 5e-6)]  # bytes/s, latency per message


def speedup(params, rate, n, link, per_machine=None):
    bandwidth, alpha = link
    batch = per_machine * n if per_machine else 64
    one = batch / rate
    comm = 2 * (n - 1) / n * 4 * params / bandwidth + 2 * (n - 1) * alpha
    return one / (batch / n / rate + comm)


print("| model | bytes per step (gradient) | compute per step, B=64, 1 machine | "
      + " | ".join(f"{w} N={n} {l[0]}" for w in ("strong", "weak") for n in (8, 64) for l in LINKS) + " |")
print("|---" * 11 + "|")
for name, p, rate in MODELS:
    cells = [f"{speedup(p, rate, n, l[1:], 64 if w == 'weak' else None):.1f}×"
             for w in ("strong", "weak") for n in (8, 64) for l in LINKS]
    print(f"| {name} | {4 * p / 1e6:.2f} MB | {64 / rate * 1000:.0f} ms | " + " | ".join(cells) + " |")
