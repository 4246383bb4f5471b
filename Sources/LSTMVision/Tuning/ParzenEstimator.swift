import Foundation

/// A Parzen (kernel) density over a search space, as Optuna 5's TPE builds it (`_ParzenEstimator`): one kernel
/// per observation plus a prior kernel, each a product over the parameters (multivariate TPE), weighted by Optuna's
/// `default_weights` (older observations down-weighted past 25) and prior weight 1. A numeric parameter's kernel is
/// a normal truncated to the range (on the log scale for log ranges; an integer range is widened by ½ each side and
/// its density is the mass of [x − ½, x + ½]), centred on the observation, its width the larger gap to a
/// neighbouring observation, clipped to [range / min(100, n + 2), range]; the prior is centred with the range as
/// width. A choice's kernel puts 1 + 1/(n + 1) on the observed choice and 1/(n + 1) on each (then normalised).
/// Values are held as Doubles: choice index, integer, or float.
struct ParzenEstimator {
    enum Dimension {
        /// `low`, `high` are the transformed bounds (widened for integers, logged for log ranges).
        case numeric(mus: [Double], sigmas: [Double], low: Double, high: Double, log: Bool, integer: Bool,
                     bounds: ClosedRange<Double>)
        case categorical(weights: [[Double]])
    }

    let weights: [Double]
    let dimensions: [Dimension]

    /// The density of `observations` (each one value per parameter of `space`, in order).
    init(space: SearchSpace, observations: [[Double]], priorWeight: Double = 1) {
        let n = observations.count
        var w = Self.defaultWeights(n)
        w = n == 0 ? [1] : w + [priorWeight]
        let total = w.reduce(0, +)
        weights = w.map { $0 / total }
        dimensions = space.parameters.enumerated().map { d, p in
            let column = observations.map { $0[d] }
            switch p.domain {
            case let .choice(choices):
                let c = choices.count
                guard n > 0 else { return .categorical(weights: [[Double](repeating: 1 / Double(c), count: c)]) }
                var rows = [[Double]](repeating: [Double](repeating: priorWeight / Double(n + 1), count: c),
                                      count: n + 1)
                for (k, x) in column.enumerated() { rows[k][Int(x)] += 1 }
                return .categorical(weights: rows.map { row in
                    let s = row.reduce(0, +)
                    return row.map { $0 / (s == 0 ? 1 : s) }
                })
            case let .int(lo, hi, log):
                return Self.numeric(column, low: Double(lo) - 0.5, high: Double(hi) + 0.5, log: log, integer: true,
                                    bounds: Double(lo)...Double(hi))
            case let .float(lo, hi, log):
                return Self.numeric(column, low: lo, high: hi, log: log, integer: false, bounds: lo...hi)
            }
        }
    }

    /// Optuna's `default_weights(n)`: ones up to 25 observations, then a ramp from 1/n to 1 for all but the last 25.
    static func defaultWeights(_ n: Int) -> [Double] {
        guard n >= 25 else { return [Double](repeating: 1, count: n) }
        let m = n - 25, first = 1 / Double(n)
        var ramp = [Double](repeating: first, count: m)
        if m > 1 {
            for i in 0..<m { ramp[i] = first + (1 - first) * Double(i) / Double(m - 1) }
        }
        return ramp + [Double](repeating: 1, count: 25)
    }

    /// The kernels of a numeric parameter's observations `xs` in a range [low, high] (before the log).
    static func numeric(_ xs: [Double], low rawLow: Double, high rawHigh: Double, log: Bool, integer: Bool,
                        bounds: ClosedRange<Double>) -> Dimension {
        let low = log ? Foundation.log(rawLow) : rawLow, high = log ? Foundation.log(rawHigh) : rawHigh
        let mus = log ? xs.map { Foundation.log($0) } : xs
        let order = mus.indices.sorted { mus[$0] < mus[$1] }
        let withEnds = [low] + order.map { mus[$0] } + [high]
        var sorted: [Double] = []
        for i in 1..<(withEnds.count - 1) {
            sorted.append(max(withEnds[i] - withEnds[i - 1], withEnds[i + 1] - withEnds[i]))
        }
        if withEnds.count >= 4 {
            sorted[0] = withEnds[2] - withEnds[1]
            sorted[sorted.count - 1] = withEnds[withEnds.count - 2] - withEnds[withEnds.count - 3]
        }
        var sigmas = [Double](repeating: 0, count: mus.count)
        for (rank, i) in order.enumerated() { sigmas[i] = sorted[rank] }
        let maxSigma = high - low, minSigma = (high - low) / min(100, 1 + Double(mus.count + 1))
        sigmas = sigmas.map { min(max($0, minSigma), maxSigma) }
        return .numeric(mus: mus + [(low + high) / 2], sigmas: sigmas + [high - low], low: low, high: high, log: log,
                        integer: integer, bounds: bounds)
    }

    /// One draw: a kernel by weight, then each parameter from that kernel.
    func sample(_ g: inout SeededGenerator) -> [Double] {
        var u = g.unit(), k = weights.count - 1
        for (i, w) in weights.enumerated() {
            if u < w { k = i; break }
            u -= w
        }
        return dimensions.map { d in
            switch d {
            case let .categorical(rows):
                let row = rows[min(k, rows.count - 1)]
                var q = g.unit(), c = row.count - 1
                for (i, p) in row.enumerated() {
                    if q < p { c = i; break }
                    q -= p
                }
                return Double(c)
            case let .numeric(mus, sigmas, low, high, log, integer, bounds):
                let (mu, sigma) = (mus[k], sigmas[k])
                let z = TruncatedNormal.quantile(g.unit(), a: (low - mu) / sigma, b: (high - mu) / sigma)
                var x = mu + sigma * z
                if log { x = exp(x) }
                if integer { x = (x - bounds.lowerBound).rounded() + bounds.lowerBound }
                return min(max(x, bounds.lowerBound), bounds.upperBound)
            }
        }
    }

    /// The log density of `x` (natural log; on the log scale for log ranges, a mass for integers).
    func logPDF(_ x: [Double]) -> Double {
        var terms = weights.map { Foundation.log($0) }
        for (d, dim) in dimensions.enumerated() {
            switch dim {
            case let .categorical(rows):
                for k in terms.indices { terms[k] += Foundation.log(rows[min(k, rows.count - 1)][Int(x[d])]) }
            case let .numeric(mus, sigmas, low, high, log, integer, _):
                for k in terms.indices {
                    let (mu, s) = (mus[k], sigmas[k])
                    let truncation = TruncatedNormal.logMass((low - mu) / s, (high - mu) / s)
                    if integer {
                        let l = log ? Foundation.log(x[d] - 0.5) : x[d] - 0.5
                        let r = log ? Foundation.log(x[d] + 0.5) : x[d] + 0.5
                        terms[k] += TruncatedNormal.logMass((l - mu) / s, (r - mu) / s) - truncation
                    } else {
                        let z = ((log ? Foundation.log(x[d]) : x[d]) - mu) / s
                        terms[k] += -0.5 * z * z - 0.5 * Foundation.log(2 * Double.pi) - truncation - Foundation.log(s)
                    }
                }
            }
        }
        let top = terms.max() ?? -.infinity
        guard top.isFinite else { return top }
        return top + Foundation.log(terms.reduce(0) { $0 + exp($1 - top) })
    }
}

/// The standard normal truncated to [a, b]: log masses and quantiles, stable in either tail.
enum TruncatedNormal {
    /// Φ(x) for x ≤ 0 from erfc (no cancellation in the lower tail).
    static func lowerTail(_ x: Double) -> Double { 0.5 * erfc(-x / 2.0.squareRoot()) }

    /// log(Φ(b) − Φ(a)), computed on the side of zero where the difference does not cancel.
    static func logMass(_ a: Double, _ b: Double) -> Double {
        guard b > a else { return -.infinity }
        let mass: Double
        if a >= 0 {
            mass = lowerTail(-a) - lowerTail(-b)
        } else if b <= 0 {
            mass = lowerTail(b) - lowerTail(a)
        } else {
            mass = 1 - lowerTail(a) - lowerTail(-b)
        }
        return mass > 0 ? log(mass) : -.infinity
    }

    /// The z in [a, b] below which a fraction q of the truncated mass lies (bisection on the log mass).
    static func quantile(_ q: Double, a: Double, b: Double) -> Double {
        let total = logMass(a, b), target = log(max(q, 1e-300)) + total
        var lo = a, hi = b
        for _ in 0..<100 {
            let mid = 0.5 * (lo + hi)
            if logMass(a, mid) < target { lo = mid } else { hi = mid }
        }
        return 0.5 * (lo + hi)
    }
}
