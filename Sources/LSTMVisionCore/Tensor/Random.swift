/// A seeded pseudo-random generator (xoshiro256**, seeded by SplitMix64) so that runs repeat exactly.
public struct SeededGenerator: RandomNumberGenerator, Sendable, Codable, Equatable {
    public private(set) var state: [UInt64]

    public init(seed: UInt64) {
        var z = seed
        var s = [UInt64](repeating: 0, count: 4)
        for i in 0..<4 {
            z &+= 0x9E37_79B9_7F4A_7C15
            var x = z
            x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
            x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
            s[i] = x ^ (x >> 31)
        }
        state = s
    }

    /// Restores a generator from a saved `state` (four words).
    public init?(state: [UInt64]) {
        guard state.count == 4, state.contains(where: { $0 != 0 }) else { return nil }
        self.state = state
    }

    public mutating func next() -> UInt64 {
        let result = rotl(state[1] &* 5, 7) &* 9
        let t = state[1] << 17
        state[2] ^= state[0]
        state[3] ^= state[1]
        state[1] ^= state[2]
        state[0] ^= state[3]
        state[2] ^= t
        state[3] = rotl(state[3], 45)
        return result
    }

    private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// A uniform Float in [low, high).
    public mutating func uniform(_ low: Float = 0, _ high: Float = 1) -> Float {
        let u = Float(next() >> 40) * (1.0 / Float(1 << 24))
        return low + (high - low) * u
    }

    /// A standard normal sample (Box-Muller).
    public mutating func normal() -> Float {
        let u1 = max(uniform(), 1e-7), u2 = uniform()
        return (-2 * logf(u1)).squareRoot() * cosf(2 * .pi * u2)
    }
}

extension Tensor {
    /// A tensor of independent uniform samples in [low, high).
    public static func uniform(_ shape: [Int], low: Float, high: Float, generator: inout SeededGenerator) -> Tensor {
        let n = shape.reduce(1, *)
        var s = [Float](repeating: 0, count: n)
        for i in 0..<n { s[i] = generator.uniform(low, high) }
        return Tensor(shape: shape, scalars: s)
    }

    /// A tensor of independent standard-normal samples times `std`.
    public static func normal(_ shape: [Int], std: Float = 1, generator: inout SeededGenerator) -> Tensor {
        let n = shape.reduce(1, *)
        var s = [Float](repeating: 0, count: n)
        for i in 0..<n { s[i] = std * generator.normal() }
        return Tensor(shape: shape, scalars: s)
    }
}

import Foundation
