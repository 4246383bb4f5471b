import Foundation

/// What decides a search, kept in its study file: a resumed search must be given the same (the number of trials,
/// the epoch budget and the workers may change).
public struct StudySettings: Codable, Sendable, Equatable {
    /// The `train` subcommand the trials run (classification).
    public var task: String
    /// The log.csv column that scores a trial on the validation split, and which way is better.
    public var metric: String
    public var higherIsBetter: Bool
    public var space: SearchSpace
    /// "tpe" or "random".
    public var sampler: String
    public var seed: UInt64
    /// The fixed `train` options, passed to every trial before its searched values.
    public var trainArguments: [String]
    /// Epochs of a trial that is not stopped.
    public var epochs: Int
    /// The early-stopping rule, or nil for none.
    public var halving: SuccessiveHalving?

    public init(task: String, metric: String, higherIsBetter: Bool, space: SearchSpace, sampler: String,
                seed: UInt64, trainArguments: [String], epochs: Int, halving: SuccessiveHalving?) {
        (self.task, self.metric, self.higherIsBetter, self.space, self.sampler) =
            (task, metric, higherIsBetter, space, sampler)
        (self.seed, self.trainArguments, self.epochs, self.halving) = (seed, trainArguments, epochs, halving)
    }

    /// The sampler these settings name.
    public func makeSampler() throws -> any Sampler {
        switch sampler {
        case "tpe": return TPESampler(seed: seed)
        case "random": return RandomSampler(seed: seed)
        default: throw TuningError("unknown sampler '\(sampler)' (tpe or random)")
        }
    }
}

/// A value recorded at an ASHA rung, in the order recorded.
public struct RungEntry: Codable, Sendable, Equatable {
    public let trial: Int
    /// The metric, higher is better (negated for a metric that is better lower).
    public let value: Double
}

/// A search's whole state, one JSON file (`OUT/study.json`) rewritten atomically after every change: its settings,
/// every trial (values, per-epoch metric, state, message, seconds) and the values recorded at each rung.
public struct Study: Codable, Sendable, Equatable {
    public var version = 1
    public var settings: StudySettings
    public var trials: [Trial] = []
    public var rungs: [[RungEntry]] = []

    public init(settings: StudySettings) {
        self.settings = settings
        rungs = Array(repeating: [], count: settings.halving?.rungs.count ?? 0)
    }

    /// The study file of the output folder `out`.
    public static func path(in out: String) -> String { out + "/study.json" }

    /// Reads a study file within `limits`.
    public static func read(_ path: String, limits: InputLimits = .default) throws -> Study {
        let data = try limits.readFile(path)
        let study = try InputLimits.decodeJSON(Study.self, from: data, source: path, what: "study")
        guard study.version == 1 else { throw TuningError("\(path): study version \(study.version), expected 1") }
        guard study.rungs.count == (study.settings.halving?.rungs.count ?? 0),
              study.trials.enumerated().allSatisfy({ $0.offset == $0.element.number }) else {
            throw TuningError("\(path): inconsistent study (rungs or trial numbers)")
        }
        return study
    }

    /// Writes the study atomically to `path`.
    public func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf",
                                                                      negativeInfinity: "-inf", nan: "nan")
        try AtomicFile.write(try encoder.encode(self), to: path)
    }

    /// Training epochs run so far by all trials (finished epochs).
    public var epochsRun: Int { trials.reduce(0) { $0 + $1.metrics.count } }

    /// The best completed trial by its best metric (on the validation split), earliest on ties.
    public var bestTrial: Trial? {
        let up = settings.higherIsBetter
        var best: (Trial, Double)?
        for t in trials where t.state == .completed {
            guard let b = t.best(higherIsBetter: up)?.value else { continue }
            if best == nil || (up ? b > best!.1 : b < best!.1) { best = (t, b) }
        }
        return best?.0
    }
}
