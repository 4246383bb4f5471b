import ArgumentParser
import Foundation
import LSTMVision

/// `lstmvision bench`: training and inference throughput of the row-LSTMs, the ReNet and the detector,
/// one JSON line per measurement, with the GEMM rate and the machine's sgemm peak measured in the same run.
struct Bench: ParsableCommand, UsesThreads {
    static let configuration = CommandConfiguration(
        abstract: "Measure training and inference speed (images/s, GFLOP/s, fraction of the sgemm peak).")

    @Option(help: ArgumentHelp("Models, comma-separated: \(Benchmark.grammar).", valueName: "model,..."))
    var configs: CommaList<String> = ["1x128", "2x128-bi"]
    @Option(help: ArgumentHelp("Modes, comma-separated: train, infer, gemm (matrix products: BlockedGEMM beside"
                               + " OpenBLAS).", valueName: "mode,..."))
    var modes: CommaList<BenchMode> = [.train, .infer]
    @Option(help: "Inference batch sizes, comma-separated.") var inferBatches: CommaList<Int> = [1, 64, 256]
    @Option(help: "Training batch sizes, comma-separated.") var trainBatches: CommaList<Int> = [64, 256]
    @Option(help: "Seconds per timed window (5 windows, median).") var window: Double = 0.5
    @OptionGroup var threadOptions: ThreadOptions
    @OptionGroup var precisionOptions: PrecisionOptions
    @Flag(help: "Print only the JSON lines.") var json = false

    func validate() throws {
        guard window > 0, window <= 60 else {
            throw ValidationError("--window must be in (0, 60] seconds, got \(window)")
        }
        for c in configs.values where c != "detector" && Benchmark.config(named: c) == nil {
            throw ValidationError("--configs takes \(Benchmark.grammar); got '\(c)'")
        }
        for (name, list) in [("--train-batches", trainBatches), ("--infer-batches", inferBatches)] {
            for b in list.values where !(1...4096).contains(b) {
                throw ValidationError("\(name) must be batch sizes in 1...4096, got \(b)")
            }
        }
    }

    func run() throws {
        let peak = Benchmark.sgemmPeak()
        if !json {
            print(String(format: "sgemm peak %.0f GFLOP/s: OpenBLAS (%@ kernels) %.0f on large products,"
                         + " SmallGEMM %.0f in cache; %d threads",
                         peak.best, CPUStartup.blasCoreName, peak.openBLAS, peak.inCache, BLAS.threads))
        }
        if modes.values.contains(.gemm) {
            for shape in GEMMBenchmark.shapes {
                try printJSON(GEMMBenchmark.measure(shape, window: window))
            }
        }
        for config in configs.values {
            for mode in modes.values where mode != .gemm {
                for batch in (mode == .train ? trainBatches : inferBatches).values {
                    let m = try Benchmark.measure(config, training: mode == .train, batch: batch, peak: peak,
                                                  window: window, precision: precisionOptions.precision)
                    try printJSON(m)
                }
            }
        }
    }
}
