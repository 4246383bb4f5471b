import Foundation
import Synchronization

/// SIGTERM and SIGINT during training: the first asks the trainer to stop after the current step (it checkpoints,
/// then throws `TrainingStopped`); a second ends the process at once with 128 + the signal's number. The handler
/// does nothing but set an atomic flag (or, the second time, remove the run's lock file and `_exit`), which is all
/// a signal handler may safely do.
public enum StopSignals {
    /// The signal received first (0: none yet).
    static let received = Atomic<Int32>(0)
    /// The lock file to remove when a second signal ends the process at once (a C string the handler can use).
    nonisolated(unsafe) static let lockPath = Atomic<UnsafeMutablePointer<CChar>?>(nil)
    /// Set once the handlers are in place.
    static let installed = Atomic<Bool>(false)

    /// The signals that stop a run.
    public static let signals: [Int32] = [SIGTERM, SIGINT]

    /// Installs the handlers for SIGTERM and SIGINT (once per process; later calls do nothing). Until then, both
    /// end the process as they always do.
    public static func install() {
        guard installed.compareExchange(expected: false, desired: true, ordering: .sequentiallyConsistent).exchanged
        else { return }
        _ = received.load(ordering: .relaxed)              // the statics exist before a handler reads them
        _ = lockPath.load(ordering: .relaxed)
        for s in signals {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = stopHandler
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            sigaction(s, &action, nil)
        }
    }

    /// The first signal received since the start, or 0.
    public static var pending: Int32 { received.load(ordering: .sequentiallyConsistent) }

    /// The signal's name ("SIGTERM").
    public static func name(_ signal: Int32) -> String {
        switch signal {
        case SIGTERM: return "SIGTERM"
        case SIGINT: return "SIGINT"
        default: return "signal \(signal)"
        }
    }

    /// Exit status after a stop by `signal`: 128 + its number, as a shell reports a process it ended (143 for
    /// SIGTERM, 130 for SIGINT).
    public static func exitStatus(_ signal: Int32) -> Int32 { 128 + signal }

    /// Makes `path` the lock file that a second signal removes before it ends the process (nil: none). The old
    /// string is never freed (a few bytes a run): a handler may be reading it.
    static func setLockPath(_ path: String?) {
        _ = lockPath.exchange(path.map { strdup($0)! }, ordering: .sequentiallyConsistent)
    }
}

/// The handler: records the first signal; a second ends the process at once (async-signal-safe calls only).
private func stopHandler(_ signal: Int32) {
    let (first, _) = StopSignals.received.compareExchange(expected: 0, desired: signal,
                                                          ordering: .sequentiallyConsistent)
    guard !first else { return }
    if let path = StopSignals.lockPath.load(ordering: .sequentiallyConsistent) { unlink(path) }
    _exit(StopSignals.exitStatus(signal))
}

/// A run stopped by SIGTERM or SIGINT after `step` steps (epoch and batch as saved, 0-based), its checkpoint
/// written to `checkpoint`. Every rank of a distributed run throws it at the same step.
public struct TrainingStopped: Error, CustomStringConvertible, Equatable {
    public let signal: Int32
    /// The position saved: finished epochs, batches done in the current one, steps taken.
    public let epoch: Int, batch: Int, step: Int
    public let batchesPerEpoch: Int
    public let checkpoint: String

    public var description: String {
        let position = batch > 0 ? "batch \(batch) of \(batchesPerEpoch) of epoch \(epoch + 1)"
            : "the end of epoch \(epoch)"
        return "stopped by \(StopSignals.name(signal)) after step \(step) (\(position)); checkpoint \(checkpoint)"
    }
}

extension StopSignals {
    /// The signals a test asks the trainer to raise on itself, from LSTMVISION_TEST_SIGNAL_AT_STEP: comma-separated
    /// `STEP` or `STEP:INT` entries, each raising SIGTERM (or SIGINT) during that 1-based step, before the ranks
    /// agree on stopping (a test hook for tools/survive-check.sh and tools/mpi-check.sh, not a user option).
    static func testSignals(_ environment: [String: String] = ProcessInfo.processInfo.environment)
        -> [Int: [Int32]] {
        guard let spec = environment["LSTMVISION_TEST_SIGNAL_AT_STEP"] else { return [:] }
        var out: [Int: [Int32]] = [:]
        for entry in spec.split(separator: ",") {
            let parts = entry.split(separator: ":")
            guard let step = Int(parts[0]), step > 0 else { continue }
            out[step, default: []].append(parts.count > 1 && parts[1] == "INT" ? SIGINT : SIGTERM)
        }
        return out
    }
}
