import ArgumentParser
import Foundation
import LSTMVision

/// `lstmvision bench`: training and inference throughput of the reference row-LSTM configurations,
/// one JSON line per measurement, with the GEMM rate and the machine's sgemm peak measured in the same run.
struct Bench: ParsableCommand, UsesThreads {
    static let configuration = CommandConfiguration(
        abstract: "Measure training and inference speed (images/s, GFLOP/s, fraction of the sgemm peak).")

    @Option(help: "Configurations, comma-separated: 1x128, 2x128-bi.") var configs: String = "1x128,2x128-bi"
    @Option(help: "Modes, comma-separated: train, infer.") var modes: String = "train,infer"
    @Option(help: "Inference batch sizes, comma-separated.") var inferBatches: String = "1,64,256"
    @Option(help: "Training batch sizes, comma-separated.") var trainBatches: String = "64,256"
    @Option(help: "Seconds per timed window (5 windows, median).") var window: Double = 0.5
    @OptionGroup var threadOptions: ThreadOptions
    @Flag(help: "Print only the JSON lines.") var json = false

    func list(_ s: String) -> [String] { s.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }

    func batches(_ s: String) throws -> [Int] {
        try list(s).map { v in
            guard let b = Int(v), b > 0, b <= 4096 else { throw CLIError("batch sizes must be integers in 1...4096, got '\(v)'") }
            return b
        }
    }

    func run() throws {
        guard window > 0, window <= 60 else { throw CLIError("--window must be in (0, 60] seconds") }
        for m in list(modes) where m != "train" && m != "infer" { throw CLIError("--modes takes train and infer, got '\(m)'") }
        for c in list(configs) where Benchmark.config(named: c) == nil { throw CLIError("--configs takes 1x128 and 2x128-bi, got '\(c)'") }
        let peak = Benchmark.sgemmPeak()
        if !json {
            print(String(format: "sgemm peak %.0f GFLOP/s: OpenBLAS (%@ kernels) %.0f on large products, SmallGEMM %.0f in cache; %d threads",
                         peak.best, CPUStartup.blasCoreName, peak.openBLAS, peak.inCache, BLAS.threads))
        }
        for config in list(configs) {
            for mode in list(modes) {
                for batch in try batches(mode == "train" ? trainBatches : inferBatches) {
                    let m = try Benchmark.measure(config, training: mode == "train", batch: batch, peak: peak, window: window)
                    try printJSON(m)
                }
            }
        }
    }
}
