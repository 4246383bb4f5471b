import Foundation

/// Draws the values of a search's next trial from the space and the trials so far. Seeded and deterministic: the
/// same seed, trial number and history give the same values (so a resumed search goes on as it would have).
public protocol Sampler: Sendable {
    /// The values of trial `number`, given every trial so far (any state) and which way the metric is better.
    func sample(_ space: SearchSpace, number: Int, trials: [Trial], higherIsBetter: Bool) -> [String: ParameterValue]
}

/// The sampler's generator for trial `number` of a search seeded with `seed`.
func trialGenerator(seed: UInt64, number: Int) -> SeededGenerator {
    SeededGenerator(seed: seed ^ (UInt64(number) &+ 1) &* 0x9E37_79B9_7F4A_7C15)
}

extension SeededGenerator {
    /// A uniform Double in [0, 1) (53 random bits).
    mutating func unit() -> Double { Double(next() >> 11) * 0x1p-53 }
}

/// Each value drawn independently and uniformly: a choice with equal chances, an integer range uniformly over its
/// integers (a log range uniformly in log(low − ½)…log(high + ½), then rounded), a float range uniformly on its
/// scale.
public struct RandomSampler: Sampler {
    public let seed: UInt64

    public init(seed: UInt64) { self.seed = seed }

    public func sample(_ space: SearchSpace, number: Int, trials: [Trial],
                       higherIsBetter: Bool) -> [String: ParameterValue] {
        var g = trialGenerator(seed: seed, number: number)
        return Self.draw(space, generator: &g)
    }

    /// One uniform draw of every parameter of `space`.
    static func draw(_ space: SearchSpace, generator g: inout SeededGenerator) -> [String: ParameterValue] {
        var values: [String: ParameterValue] = [:]
        for p in space.parameters {
            switch p.domain {
            case let .choice(choices):
                values[p.name] = choices[min(Int(g.unit() * Double(choices.count)), choices.count - 1)]
            case let .int(low, high, log):
                if log {
                    let a = Foundation.log(Double(low) - 0.5), b = Foundation.log(Double(high) + 0.5)
                    let x = exp(a + (b - a) * g.unit()).rounded()
                    values[p.name] = .int(min(max(Int(x), low), high))
                } else {
                    let span = Double(high - low + 1)
                    values[p.name] = .int(low + min(Int(g.unit() * span), high - low))
                }
            case let .float(low, high, log):
                if log {
                    let a = Foundation.log(low), b = Foundation.log(high)
                    values[p.name] = .float(min(max(exp(a + (b - a) * g.unit()), low), high))
                } else {
                    values[p.name] = .float(low + (high - low) * g.unit())
                }
            }
        }
        return values
    }
}
