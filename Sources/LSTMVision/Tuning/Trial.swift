import Foundation

/// One configuration tried by a search: its values, what it reported, how it ended.
public struct Trial: Codable, Sendable, Equatable {
    /// Running (or interrupted: a resumed search starts it again, from its checkpoint if it has one), completed (all
    /// epochs), pruned (stopped at a rung), failed (the run stopped on its own with an error, or reported a
    /// non-finite value).
    public enum State: String, Codable, Sendable, CaseIterable {
        case running, completed, pruned, failed
    }

    /// 0-based; the trial's run folder is `OUT/trials/NNN` with this number.
    public let number: Int
    public let params: [String: ParameterValue]
    public var state: State
    /// The validation metric after each finished epoch (as the run's log.csv has it).
    public var metrics: [Double]
    /// Why it failed (the run's last error line), or why it was stopped.
    public var message: String?
    /// Wall-clock seconds it ran, summed over restarts.
    public var seconds: Double
    /// The process running it, while it runs.
    public var pid: Int32?
    /// The MPI rank that ran it (last), in a search spread over ranks.
    public var rank: Int?
    /// How many times it was started (more than once after a resumed search restarted it).
    public var starts: Int
    /// How each start after the first went: from its checkpoint, or from scratch and why (nil: never restarted).
    public var restarts: [String]?
    /// The training epochs the whole search had run when this trial ended (for best-so-far against compute).
    public var searchEpochsAtEnd: Int?

    public init(number: Int, params: [String: ParameterValue]) {
        self.number = number
        self.params = params
        state = .running
        metrics = []
        seconds = 0
        starts = 0
    }

    /// Its best metric and that epoch (1-based), by `higherIsBetter`; nil before any epoch.
    public func best(higherIsBetter: Bool) -> (value: Double, epoch: Int)? {
        var best: (Double, Int)?
        for (i, m) in metrics.enumerated() where m.isFinite {
            if best == nil || (higherIsBetter ? m > best!.0 : m < best!.0) { best = (m, i + 1) }
        }
        return best
    }

    /// Whether it has ended (nothing more to run).
    public var isFinished: Bool { state != .running }
}
