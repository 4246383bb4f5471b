import ArgumentParser
import Foundation
import LSTMVision

/// `lstmvision`: train, evaluate and use LSTM image classifiers from the command line.
@main
struct LSTMVisionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lstmvision",
        abstract: "Image classification with LSTM networks, on the CPU.",
        subcommands: [Demo.self, Train.self, Eval.self, Predict.self, AttackCommand.self, DetectData.self, Evaluate.self, Detect.self, Bench.self])

    /// Runs the command; any failure becomes one line on stderr and a non-zero exit, never a trap.
    static func main() {
        CPUStartup.restartWithBetterKernelsIfNeeded()
        CPUStartup.keepFreedMemory()
        do {
            var command = try parseAsRoot()
            try (command as? ReadsFiles)?.limits.check()
            let threads = try (command as? UsesThreads)?.threadOptions.count() ?? Parallel.threads
            try Parallel.withThreads(threads) { try command.run() }
        } catch {
            let code = exitCode(for: error)
            if code == .success {            // --help, --version
                print(fullMessage(for: error))
                Foundation.exit(0)
            }
            let message = error is CLIError || error is DataError || error is CheckpointError || error is TrainingError || error is ImageError || error is ImageTransformError
                || error is ModelError ? "\(error)" : message(for: error)
            let line = "\(message.split(separator: "\n").first ?? "")\(LimitOptions.hint(for: error))"
            FileHandle.standardError.write(Data("lstmvision: error: \(line)\n".utf8))
            Foundation.exit(code == .success ? 1 : max(code.rawValue, 1))
        }
    }
}

/// A usage problem found after parsing (a missing file, a bad combination of options).
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
