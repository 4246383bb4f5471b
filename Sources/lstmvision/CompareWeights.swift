import ArgumentParser
import Foundation
import LSTMVision

/// `lstmvision compare-weights A B` (hidden): the largest relative difference between the tensors of two model
/// files with the same names and shapes; tools/mpi-check.sh compares a distributed run with one process by it.
struct CompareWeights: ParsableCommand, ReadsFiles {
    static let configuration = CommandConfiguration(
        commandName: "compare-weights", abstract: "Compare the tensors of two model files.", shouldDisplay: false)

    @Argument(help: "The first model file.") var first: String
    @Argument(help: "The second model file.") var second: String
    @Option(help: "Fail when the largest relative difference exceeds this.") var tolerance: Double = 0
    @OptionGroup var limits: LimitOptions

    func run() throws {
        let (a, _) = try SafeTensors.read(first, limits: limits.value)
        let (b, _) = try SafeTensors.read(second, limits: limits.value)
        guard Set(a.keys) == Set(b.keys) else {
            throw CLIError("\(first) and \(second) hold different tensors")
        }
        var largest = 0.0, largestAbsolute = 0.0, values = 0, differing = 0, worst = ""
        for name in a.keys.sorted() {
            let x = a[name]!, y = b[name]!
            guard x.shape == y.shape else {
                throw CLIError("\(name): shape \(x.shape) in \(first), \(y.shape) in \(second)")
            }
            for (u, v) in zip(x.scalars, y.scalars) {
                values += 1
                guard u.bitPattern != v.bitPattern else { continue }
                differing += 1
                let absolute = Double(abs(u - v)), scale = Double(max(abs(u), abs(v)))
                let relative = scale > 0 ? absolute / scale : (absolute == 0 ? 0 : .infinity)
                largestAbsolute = max(largestAbsolute, absolute)
                if !(relative <= largest) { largest = relative; worst = name }
            }
        }
        print("\(a.count) tensors, \(values) values: \(differing) differ; largest relative difference"
              + " \(largest)\(worst.isEmpty ? "" : " (\(worst))"), largest absolute \(largestAbsolute)")
        guard largest <= tolerance else {
            throw CLIError("the largest relative difference \(largest) exceeds the tolerance \(tolerance)")
        }
    }
}
