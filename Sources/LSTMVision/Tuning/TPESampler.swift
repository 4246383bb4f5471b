import Foundation

/// The tree-structured Parzen estimator (Bergstra et al. 2011) with Optuna 5's defaults (its default sampler,
/// multivariate, with the constant liar): the first `startupTrials` finished trials are drawn at random; then the
/// finished trials are split into the best γ(n) = min(⌈n/10⌉, 25) ("below": completed trials by their best value,
/// then pruned ones by the epochs they reached and their last value) and the rest ("above", with the running
/// trials), a `ParzenEstimator` is fitted to each, `candidates` points are drawn from the good density l and the
/// one with the largest l(x)/g(x) (expected improvement) is taken. Chosen over Gaussian-process optimisation: it
/// handles choices, integer and log ranges alike, costs nothing to fit, and uses pruned trials, which ASHA makes
/// the majority.
public struct TPESampler: Sampler {
    public let seed: UInt64
    public let startupTrials: Int
    public let candidates: Int

    public init(seed: UInt64, startupTrials: Int = 10, candidates: Int = 24) {
        self.seed = seed
        self.startupTrials = startupTrials
        self.candidates = candidates
    }

    public func sample(_ space: SearchSpace, number: Int, trials: [Trial],
                       higherIsBetter: Bool) -> [String: ParameterValue] {
        var g = trialGenerator(seed: seed, number: number)
        let others = trials.filter { $0.number != number && Self.point(space, $0.params) != nil }
        let finished = others.filter { $0.state == .completed || $0.state == .pruned }
        guard finished.count >= startupTrials, !space.parameters.isEmpty else {
            return RandomSampler.draw(space, generator: &g)
        }
        let (below, above) = Self.split(others, count: Self.gamma(finished.count), higherIsBetter: higherIsBetter)
        let good = ParzenEstimator(space: space, observations: below.compactMap { Self.point(space, $0.params) })
        let bad = ParzenEstimator(space: space, observations: above.compactMap { Self.point(space, $0.params) })
        var best: [Double] = [], bestScore = -Double.infinity
        for _ in 0..<max(candidates, 1) {
            let x = good.sample(&g), score = good.logPDF(x) - bad.logPDF(x)
            if best.isEmpty || score > bestScore { (best, bestScore) = (x, score) }
        }
        return Self.external(space, best)
    }

    /// Optuna's `default_gamma`: the size of the good group among n finished trials.
    static func gamma(_ n: Int) -> Int { min((n + 9) / 10, 25) }

    /// The good trials (the best `count`) and the rest, each in trial order, as Optuna's `_split_trials` makes them:
    /// completed trials first, by their best value; then pruned ones by (epochs reached, last value), a non-finite
    /// last value last; running trials are always "above" (the constant liar); failed ones are left out.
    static func split(_ trials: [Trial], count: Int, higherIsBetter: Bool) -> (below: [Trial], above: [Trial]) {
        let sign = higherIsBetter ? 1.0 : -1.0
        func completedKey(_ t: Trial) -> Double {
            t.best(higherIsBetter: higherIsBetter).map { $0.value * sign } ?? -.infinity
        }
        func prunedKey(_ t: Trial) -> (Int, Double) {
            guard let last = t.metrics.last else { return (-1, 0) }
            return (t.metrics.count, last.isFinite ? last * sign : -.infinity)
        }
        let completed = trials.filter { $0.state == .completed }.enumerated()
            .sorted { completedKey($0.element) > completedKey($1.element)
                      || (completedKey($0.element) == completedKey($1.element) && $0.offset < $1.offset) }
            .map(\.element)
        let pruned = trials.filter { $0.state == .pruned }.enumerated()
            .sorted { (a, b) in
                let (ka, kb) = (prunedKey(a.element), prunedKey(b.element))
                return ka.0 != kb.0 ? ka.0 > kb.0 : ka.1 != kb.1 ? ka.1 > kb.1 : a.offset < b.offset
            }
            .map(\.element)
        let fromCompleted = min(count, completed.count), fromPruned = min(count - fromCompleted, pruned.count)
        let below = Array(completed.prefix(fromCompleted)) + Array(pruned.prefix(fromPruned))
        let above = Array(completed.dropFirst(fromCompleted)) + Array(pruned.dropFirst(fromPruned))
            + trials.filter { $0.state == .running }
        return (below.sorted { $0.number < $1.number }, above.sorted { $0.number < $1.number })
    }

    /// A trial's values as the estimator holds them (choice index, integer, float), or nil when one is missing or
    /// outside the space (a study whose space changed).
    static func point(_ space: SearchSpace, _ params: [String: ParameterValue]) -> [Double]? {
        var x: [Double] = []
        for p in space.parameters {
            guard let v = params[p.name] else { return nil }
            switch p.domain {
            case let .choice(choices):
                guard let i = choices.firstIndex(of: v) else { return nil }
                x.append(Double(i))
            case let .int(lo, hi, _):
                guard case let .int(i) = v, (lo...hi).contains(i) else { return nil }
                x.append(Double(i))
            case let .float(lo, hi, _):
                guard let d = v.number, (lo...hi).contains(d) else { return nil }
                x.append(d)
            }
        }
        return x
    }

    /// The values of an internal point.
    static func external(_ space: SearchSpace, _ x: [Double]) -> [String: ParameterValue] {
        var values: [String: ParameterValue] = [:]
        for (p, v) in zip(space.parameters, x) {
            switch p.domain {
            case let .choice(choices): values[p.name] = choices[Int(v)]
            case .int: values[p.name] = .int(Int(v.rounded()))
            case .float: values[p.name] = .float(v)
            }
        }
        return values
    }
}
