import Foundation

/// What a search under MPI says in one round: every rank reports (`RankReport`), then rank 0 orders
/// (`TuningOrder`s; the other ranks send none). Two variable-length all-gathers of JSON, so no new MPI bindings.
public enum TuningRound {
    /// Every rank's `bytes` in rank order, of any length: the lengths are gathered first, then the bytes padded to
    /// the longest.
    static func exchange(_ bytes: [UInt8], over world: any Communicator) throws -> [[UInt8]] {
        let count = UInt64(bytes.count)
        let lengths = try world.allGather((0..<8).map { UInt8(truncatingIfNeeded: count >> (8 * $0)) }).map { b in
            b.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        }
        let longest = max(Int(lengths.max() ?? 0), 1)
        let all = try world.allGather(bytes + [UInt8](repeating: 0, count: longest - bytes.count))
        return zip(all, lengths).map { Array($0.0.prefix(Int($0.1))) }
    }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf",
                                                                nan: "nan")
        return e
    }()

    static let decoder: JSONDecoder = {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf",
                                                                  nan: "nan")
        return d
    }()

    /// One round: this rank's report, then rank 0's orders (`orders` on rank 0, ignored elsewhere). Returns every
    /// rank's report and rank 0's orders.
    static func run(_ report: RankReport, orders: [TuningOrder],
                    over world: any Communicator) throws -> (reports: [RankReport], orders: [TuningOrder]) {
        let reports = try exchange(Array(try encoder.encode(report)), over: world).enumerated().map { r, bytes in
            do {
                return try decoder.decode(RankReport.self, from: Data(bytes))
            } catch {
                throw TuningError("rank \(r) sent a report that cannot be read: \(error)")
            }
        }
        let mine = world.isRoot ? Array(try encoder.encode(orders)) : []
        let sent = try exchange(mine, over: world)[0]
        do {
            return (reports, try decoder.decode([TuningOrder].self, from: Data(sent)))
        } catch {
            throw TuningError("rank 0 sent orders that cannot be read: \(error)")
        }
    }
}

/// A rank's report in a round: its trials' progress, and scores finished; in the first round also its slots and
/// the trial folders on its machine that hold a checkpoint.
public struct RankReport: Codable, Sendable, Equatable {
    /// First round only: trials this rank runs at once, and trials whose folder here holds a checkpoint.
    public var slots: Int?
    public var checkpoints: [Int]?
    public var trials: [TrialEvent] = []
    public var scores: [ScoreEvent] = []

    public init(slots: Int? = nil, checkpoints: [Int]? = nil) { (self.slots, self.checkpoints) = (slots, checkpoints) }
}

/// A running trial's state on its rank: its process, every epoch's metric so far, and how it ended (once).
public struct TrialEvent: Codable, Sendable, Equatable {
    public let trial: Int
    public let pid: Int32
    public let metrics: [Double]
    /// "finished", "failed" or "refused" (see `TrialExit`) with `message`; nil while it runs.
    public let exit: String?
    public let message: String?

    init(trial: Int, pid: Int32, metrics: [Double], exit: TrialExit?) {
        (self.trial, self.pid, self.metrics) = (trial, pid, metrics)
        switch exit {
        case nil: (self.exit, message) = (nil, nil)
        case .finished?: (self.exit, message) = ("finished", nil)
        case let .failed(m)?: (self.exit, message) = ("failed", m)
        case let .refused(m)?: (self.exit, message) = ("refused", m)
        }
    }

    var trialExit: TrialExit? {
        switch exit {
        case "finished"?: return .finished
        case "refused"?: return .refused(message ?? "")
        case nil: return nil
        default: return .failed(message ?? "")
        }
    }
}

/// A test-split score run on the rank holding the model: its exit status, its stdout (the JSON) and last error line.
public struct ScoreEvent: Codable, Sendable, Equatable {
    public let trial: Int
    public let status: Int32
    public let output: String
    public let error: String?
}

/// Rank 0's orders, carried out in order by the rank named (all ranks for `stale`).
public enum TuningOrder: Codable, Sendable, Equatable {
    /// End a trial's process that an earlier, killed search left running (when it is still that trial's).
    case stale(trial: Int, pid: Int32)
    /// End a trial now (stopped early).
    case stop(trial: Int, rank: Int)
    /// Start a trial: `words` after the executable, into `folder` (emptied unless `resuming`), metric column `metric`.
    case start(trial: Int, rank: Int, folder: String, words: [String], metric: String, resuming: Bool)
    /// Run the executable with `words` (a test-split score), its stdout into `output`, its stderr into `errors`.
    case score(trial: Int, rank: Int, words: [String], output: String, errors: String)
    /// The search is over: every rank leaves the loop.
    case done
}
