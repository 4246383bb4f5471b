import Foundation

/// `BLAS.gemm`'s two engines side by side on the products that dominate training (`lstmvision bench --modes gemm`):
/// `BlockedGEMM` and OpenBLAS measured in the same run, in alternating order, rate medians over the rounds.
public enum GEMMBenchmark {
    /// A product C[m×n] = op(A)[m×k] · op(B)[k×n] and where it comes from.
    public struct Shape: Sendable {
        public var name: String, m: Int, n: Int, k: Int, transA: Bool, transB: Bool
        public init(_ name: String, m: Int, n: Int, k: Int, transA: Bool = false, transB: Bool = false) {
            (self.name, self.m, self.n, self.k, self.transA, self.transB) = (name, m, n, k, transA, transB)
        }
    }

    /// The ConvLSTM step's im2col products (64 → 64 channels, 5×5, 64×64 images), a square product, and the row-LSTM
    /// 1×512 products at batch 64 (28 steps).
    public static let shapes: [Shape] = [
        Shape("square 1536", m: 1536, n: 1536, k: 1536),
        Shape("convlstm forward", m: 256, n: 4096, k: 3200),
        Shape("convlstm weight gradient", m: 256, n: 3200, k: 4096, transB: true),
        Shape("convlstm column gradient", m: 3200, n: 4096, k: 256, transA: true),
        Shape("convlstm forward k2000", m: 256, n: 4096, k: 2000),
        Shape("row-lstm input projection", m: 64 * 28, n: 2048, k: 28, transB: true),
        Shape("row-lstm weight gradient", m: 2048, n: 512, k: 1792, transA: true),
    ]

    /// One paired measurement, printed as a JSON line.
    public struct Measurement: Codable, Sendable {
        public var shape: String
        public var m: Int, n: Int, k: Int, trans_a: Bool, trans_b: Bool
        public var blocked_gflops: Double, openblas_gflops: Double, speedup: Double
        /// Each round's ratio of the two rates (the rounds' order: blocked first in even rounds).
        public var speedup_per_round: [Double]
        /// The largest difference between the two results, relative to the largest magnitude in C.
        public var relative_difference: Double
        public var rounds: Int, threads: Int
    }

    /// Measures `shape` in `rounds` rounds, each timing both engines for at least `window` seconds (the order
    /// alternating between rounds); reports the median rate of each.
    public static func measure(_ s: Shape, rounds: Int = 5, window: Double = 0.2) -> Measurement {
        var g = SeededGenerator(seed: 7)
        let a = (0..<(s.m * s.k)).map { _ in Float.random(in: -1...1, using: &g) }
        let b = (0..<(s.k * s.n)).map { _ in Float.random(in: -1...1, using: &g) }
        let lda = s.transA ? s.m : s.k, ldb = s.transB ? s.k : s.n
        var blocked = [Float](repeating: 0, count: s.m * s.n), reference = blocked
        func run(_ useBlocked: Bool, _ c: inout [Float]) {
            a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
                if useBlocked {
                    BlockedGEMM.gemm(transA: s.transA, transB: s.transB, m: s.m, n: s.n, k: s.k, a: ap.baseAddress!,
                                     lda: lda, b: bp.baseAddress!, ldb: ldb, beta: 0, c: cp.baseAddress!, ldc: s.n)
                } else {
                    BLAS.openBLASGemm(transA: s.transA, transB: s.transB, m: s.m, n: s.n, k: s.k, a: ap.baseAddress!,
                                      lda: lda, b: bp.baseAddress!, ldb: ldb, beta: 0, c: cp.baseAddress!, ldc: s.n)
                }
            } } }
        }
        func rate(_ useBlocked: Bool) -> Double {
            var calls = 0
            let t0 = Date()
            repeat {
                if useBlocked { run(true, &blocked) } else { run(false, &reference) }
                calls += 1
            } while Date().timeIntervalSince(t0) < window
            return Double(calls) / Date().timeIntervalSince(t0) * 2 * Double(s.m * s.n * s.k) / 1e9
        }
        run(true, &blocked); run(false, &reference)   // warm-up: buffers, pages, caches
        var ours: [Double] = [], theirs: [Double] = []
        for round in 0..<rounds {
            if round % 2 == 0 {
                ours.append(rate(true)); theirs.append(rate(false))
            } else {
                theirs.append(rate(false)); ours.append(rate(true))
            }
        }
        let scale = reference.reduce(0) { max($0, abs($1)) }
        let difference = zip(blocked, reference).reduce(0) { max($0, abs($1.0 - $1.1)) }
        let (x, y) = (ours.sorted()[rounds / 2], theirs.sorted()[rounds / 2])
        return Measurement(shape: s.name, m: s.m, n: s.n, k: s.k, trans_a: s.transA, trans_b: s.transB,
                           blocked_gflops: x, openblas_gflops: y, speedup: x / y,
                           speedup_per_round: zip(ours, theirs).map { $0 / $1 },
                           relative_difference: Double(difference / max(scale, .leastNormalMagnitude)),
                           rounds: rounds, threads: BLAS.threads)
    }
}
