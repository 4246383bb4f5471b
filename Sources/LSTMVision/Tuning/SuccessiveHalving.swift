/// Asynchronous successive halving (ASHA, Li et al. 2020), as Optuna's `SuccessiveHalvingPruner` applies it:
/// rungs at `minEpochs · ηᵏ` epochs below `maxEpochs`; a trial that reaches a rung goes on iff its value is in the
/// top 1/η of the values recorded at that rung so far, its own included (at least the best one: while fewer than η
/// are recorded, it must equal or beat all of them). Decisions never wait for other trials, so workers stay busy.
public struct SuccessiveHalving: Codable, Sendable, Equatable {
    public let minEpochs: Int
    public let eta: Int
    public let maxEpochs: Int

    public init(minEpochs: Int, eta: Int, maxEpochs: Int) throws {
        guard minEpochs >= 1 else { throw TuningError("--min-epochs must be ≥ 1, got \(minEpochs)") }
        guard eta >= 2 else { throw TuningError("--eta must be ≥ 2, got \(eta)") }
        guard maxEpochs >= minEpochs else {
            throw TuningError("--epochs (\(maxEpochs)) must be at least --min-epochs (\(minEpochs))")
        }
        self.minEpochs = minEpochs
        self.eta = eta
        self.maxEpochs = maxEpochs
    }

    /// The epochs at which trials are judged, ascending (none when `minEpochs` is `maxEpochs`).
    public var rungs: [Int] {
        var r: [Int] = [], e = minEpochs
        while e < maxEpochs {
            r.append(e)
            let (next, overflow) = e.multipliedReportingOverflow(by: eta)
            if overflow { break }
            e = next
        }
        return r
    }

    /// The rung index of `epoch`, or nil when trials are not judged there.
    public func rung(at epoch: Int) -> Int? { rungs.firstIndex(of: epoch) }

    /// Whether a trial with `value` (higher is better) at a rung goes on, given the values recorded there so far,
    /// its own included.
    public static func promotes(_ value: Double, recorded: [Double], eta: Int) -> Bool {
        guard value.isFinite else { return false }
        let ranked = recorded.filter(\.isFinite).sorted(by: >)
        let kept = max(ranked.count / eta, 1)
        guard ranked.count >= kept else { return true }
        return value >= ranked[kept - 1]
    }
}
