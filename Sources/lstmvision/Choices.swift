import ArgumentParser
import Foundation
import LSTMVision

// The library's choices as option values: parsed from their raw values, which help lists.
extension ModelConfig.Kind: ExpressibleByArgument {}
extension OptimizerKind: ExpressibleByArgument {}
extension ScheduleKind: ExpressibleByArgument {}
extension DetectorConfig.Encoder: ExpressibleByArgument {}
extension Attack.Method: ExpressibleByArgument {}
extension Precision: ExpressibleByArgument {}

/// What `train` trains: the names of its subcommands, which `--task` also takes.
enum TrainTask: String, CaseIterable, ExpressibleByArgument {
    case classification, detection, frames
}

/// What `bench` measures.
enum BenchMode: String, CaseIterable, ExpressibleByArgument {
    /// `gemm`: BLAS.gemm's two engines (BlockedGEMM, OpenBLAS) on large products, paired.
    case train, infer, gemm
}

/// `--forget-bias`: a finite number, or `none` for PyTorch's default initialisation (no bias set).
struct ForgetBias: ExpressibleByArgument, CustomStringConvertible {
    var value: Float?

    init?(argument: String) {
        if argument == "none" { value = nil; return }
        guard let v = Float(argument), v.isFinite else { return nil }
        value = v
    }

    var description: String { value.map { "\($0)" } ?? "none" }
}

/// A comma-separated list of values, e.g. `--conv-widths 16,32,64`; empty items are skipped, spaces trimmed.
struct CommaList<Element: ExpressibleByArgument>: ExpressibleByArgument, ExpressibleByArrayLiteral,
                                                  CustomStringConvertible {
    var values: [Element]

    init(arrayLiteral elements: Element...) { values = elements }

    init?(argument: String) {
        var values: [Element] = []
        for item in argument.split(separator: ",") {
            guard let v = Element(argument: item.trimmingCharacters(in: .whitespaces)) else { return nil }
            values.append(v)
        }
        guard !values.isEmpty else { return nil }
        self.values = values
    }

    var description: String { values.map(\.defaultValueDescription).joined(separator: ",") }
}
