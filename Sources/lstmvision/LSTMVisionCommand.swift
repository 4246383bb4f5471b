import ArgumentParser
import Foundation
import LSTMVision

/// `lstmvision`: train, evaluate and use LSTM image classifiers from the command line.
@main
struct LSTMVisionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lstmvision",
        abstract: "Image classification with LSTM networks, on the CPU.",
        subcommands: [Demo.self, Train.self, Eval.self, Predict.self, AttackCommand.self, DetectData.self,
                      Evaluate.self, Detect.self, Export.self, Models.self, Bench.self,
                      MovingMNISTCommand.self, EvaluateFrames.self, Forecast.self, CompareWeights.self, Tune.self])

    /// Runs the command; any failure becomes one line on stderr and a non-zero exit, never a trap.
    static func main() {
        CPUStartup.restartWithBetterKernelsIfNeeded()
        CPUStartup.keepFreedMemory()
        ParentWatch.startIfAsked()           // a `tune` trial ends with its search
        do {
            // Under mpirun, the MPI job (after the restart above); ranks other than 0 print nothing but errors.
            if try !Distributed.start().isRoot { dup2(open("/dev/null", O_WRONLY), STDOUT_FILENO) }
            var command = try parseAsRoot(try taskAsSubcommand(Array(CommandLine.arguments.dropFirst())))
            try (command as? ReadsFiles)?.limits.check()
            let threads = try (command as? UsesThreads)?.threadOptions.count() ?? Parallel.threads
            try Parallel.withThreads(threads) { try command.run() }
            Distributed.current.finish()
        } catch let stopped as TrainingStopped {
            // Every rank stopped at the same step, rank 0's checkpoint written: rank 0 says where and how to go on.
            let world = Distributed.current
            if world.isRoot {
                // `train` resumes with its own command line; `demo` has no --resume.
                let train = CommandLine.arguments.dropFirst().first == "train"
                let hint = train ? "; resume with: \(resumeCommand(ranks: world.size))" : ""
                FileHandle.standardError.write(Data("lstmvision: \(stopped)\(hint)\n".utf8))
            }
            world.finish()
            Foundation.exit(StopSignals.exitStatus(stopped.signal))
        } catch {
            let world = Distributed.current
            let code = exitCode(for: error)
            if code == .success {            // --help, --version
                print(fullMessage(for: error))
                Foundation.exit(0)
            }
            let ours = error is CLIError || error is DataError || error is CheckpointError || error is TrainingError
                || error is ImageError || error is ImageTransformError || error is ModelError || error is AttackError
                || error is ONNXExportError
                || error is DistributedError || error is TuningError
            let message = ours ? "\(error)" : message(for: error)
            let line = "\(message.split(separator: "\n").first ?? "")\(LimitOptions.hint(for: error))"
            let everyRank = (error as? DistributedError)?.everyRank ?? false
            if world.isRoot || !everyRank {
                FileHandle.standardError.write(Data("lstmvision: error: \(line)\n".utf8))
            }
            let status = code == .success ? 1 : max(code.rawValue, 1)
            // An error this rank alone has met ends the others too, rather than leave them waiting in a collective.
            if world.size > 1 && !everyRank { world.abort(code: status) }
            world.finish()
            Foundation.exit(status)
        }
    }
}

/// `arguments` with `train … --task X …` read as `train X …`: `--task` is kept (out of help) for command lines
/// written before `train` had a subcommand per task.
func taskAsSubcommand(_ arguments: [String]) throws -> [String] {
    guard arguments.first == "train" else { return arguments }
    var rest = Array(arguments.dropFirst()), task: String?, i = 0
    while i < rest.count, rest[i] != "--" {
        if rest[i] == "--task" {
            guard i + 1 < rest.count else { throw CLIError("Missing value for '--task <task>'") }
            task = rest[i + 1]
            rest.removeSubrange(i...(i + 1))
        } else if rest[i].hasPrefix("--task=") {
            task = String(rest[i].dropFirst("--task=".count))
            rest.remove(at: i)
        } else {
            i += 1
        }
    }
    guard let task else { return arguments }
    let names = TrainTask.allCases.map(\.rawValue)
    guard let kind = TrainTask(argument: task) else {
        throw CLIError("--task must be \(names.joined(separator: " or ")), got '\(task)'")
    }
    if let first = rest.first, let named = TrainTask(argument: first) {
        guard named == kind else { throw CLIError("--task \(task) contradicts the subcommand \(first)") }
        return ["train"] + rest
    }
    return ["train", kind.rawValue] + rest
}

/// A usage problem found after parsing (a missing file, a bad combination of options).
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// The command that resumes a stopped run: this one, as typed, with `--resume`; under `mpirun -np N` for N ranks.
func resumeCommand(ranks: Int, arguments: [String] = CommandLine.arguments) -> String {
    let rest = arguments.dropFirst().filter { $0 != "--resume" }
    let words = [arguments.first ?? "lstmvision"] + rest + ["--resume"]
    return (ranks > 1 ? "mpirun -np \(ranks) " : "") + words.map(shellQuoted).joined(separator: " ")
}

/// `word` as a POSIX shell reads it back: as it is when it has only safe characters, else in single quotes.
func shellQuoted(_ word: String) -> String {
    let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./-_")
    guard word.isEmpty || !word.allSatisfy(safe.contains) else { return word }
    return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
