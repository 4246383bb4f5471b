import Foundation

/// Elementwise arithmetic and reductions on tensors, written as simple pointer loops the compiler
/// vectorises, and split over the cores for large tensors.
extension Tensor {
    /// self += other (same shape).
    public mutating func add(_ other: Tensor, scale: Float = 1) {
        precondition(shape == other.shape, "add: shapes \(shape) and \(other.shape) differ")
        let n = count
        scalars.withUnsafeMutableBufferPointer { y in
            other.scalars.withUnsafeBufferPointer { x in
                let yp = y.baseAddress, xp = x.baseAddress
                nonisolated(unsafe) let (ys, xs) = (yp, xp)
                Parallel.forChunks(n) { r in for i in r { ys![i] += scale * xs![i] } }
            }
        }
    }

    /// self *= s.
    public mutating func scale(by s: Float) {
        scalars.withUnsafeMutableBufferPointer { y in for i in 0..<y.count { y[i] *= s } }
    }

    /// Elementwise sum.
    public static func + (a: Tensor, b: Tensor) -> Tensor { var r = a; r.add(b); return r }

    /// Elementwise difference.
    public static func - (a: Tensor, b: Tensor) -> Tensor { var r = a; r.add(b, scale: -1); return r }

    /// Elementwise (Hadamard) product.
    public static func * (a: Tensor, b: Tensor) -> Tensor {
        precondition(a.shape == b.shape, "multiply: shapes \(a.shape) and \(b.shape) differ")
        var r = a
        r.scalars.withUnsafeMutableBufferPointer { y in
            b.scalars.withUnsafeBufferPointer { x in for i in 0..<y.count { y[i] *= x[i] } }
        }
        return r
    }

    /// Tensor times a scalar.
    public static func * (a: Tensor, s: Float) -> Tensor { var r = a; r.scale(by: s); return r }

    /// Sum of all elements (accumulated in Double).
    public func sum() -> Float {
        var s: Double = 0
        scalars.withUnsafeBufferPointer { x in for v in x { s += Double(v) } }
        return Float(s)
    }

    /// Sum of squares of all elements in Double. From 2¹⁵ elements the two halves are summed on two threads (a fresh
    /// weight gradient, which the training loop checks and clips every step, is half in each core's cache), then added
    /// in order: the result does not depend on the thread count.
    public func squaredNorm() -> Double {
        scalars.withUnsafeBufferPointer { x in
            guard x.count >= 1 << 15 else { return Tensor.squaredSum(x) }
            let mid = x.count / 2
            nonisolated(unsafe) let (x, sums) = (x, UnsafeMutablePointer<Double>.allocate(capacity: 2))
            defer { sums.deallocate() }
            Parallel.forParts(2, parts: min(2, Parallel.threads)) { halves in
                for k in halves {
                    sums[k] = Tensor.squaredSum(
                        UnsafeBufferPointer(rebasing: x[(k == 0 ? 0 : mid)..<(k == 0 ? mid : x.count)]))
                }
            }
            return sums[0] + sums[1]
        }
    }

    /// Σ x² in Double, in 32 interleaved partial sums (four vectors of eight): one running sum, or one vector of eight,
    /// is bound by the latency of its additions.
    static func squaredSum(_ x: UnsafeBufferPointer<Float>) -> Double {
        typealias D = SIMD8<Double>
        @inline(__always) func square(_ i: Int) -> D {
            let v = D(Double(x[i]), Double(x[i + 1]), Double(x[i + 2]), Double(x[i + 3]),
                      Double(x[i + 4]), Double(x[i + 5]), Double(x[i + 6]), Double(x[i + 7]))
            return v * v
        }
        var (s0, s1, s2, s3) = (D(), D(), D(), D())
        let full = x.count - x.count % 32
        var i = 0
        while i < full {
            s0 += square(i); s1 += square(i + 8); s2 += square(i + 16); s3 += square(i + 24)
            i += 32
        }
        while i + 8 <= x.count { s0 += square(i); i += 8 }
        var s = ((s0 + s1) + (s2 + s3)).sum()
        while i < x.count { s += Double(x[i]) * Double(x[i]); i += 1 }
        return s
    }

    /// Sums a [rows, cols] tensor over its rows, giving [cols] (one matrix-vector product with ones).
    public func sumRows() -> Tensor {
        precondition(rank == 2, "sumRows: needs rank 2, got \(shape)")
        let rows = shape[0], cols = shape[1]
        var out = [Float](repeating: 0, count: cols)
        guard rows > 0, cols > 0 else { return Tensor(shape: [cols], scalars: out) }
        let ones = [Float](repeating: 1, count: rows)
        scalars.withUnsafeBufferPointer { x in
            ones.withUnsafeBufferPointer { o in
                out.withUnsafeMutableBufferPointer { y in
                    BLAS.gemv(transA: true, m: rows, n: cols, a: x.baseAddress!, lda: cols, x: o.baseAddress!,
                              y: y.baseAddress!)
                }
            }
        }
        return Tensor(shape: [cols], scalars: out)
    }

    /// The index of the largest element of each row of a [rows, cols] tensor.
    public func argmaxRows() -> [Int] {
        precondition(rank == 2, "argmaxRows: needs rank 2, got \(shape)")
        let cols = shape[1]
        return (0..<shape[0]).map { r in
            var best = 0
            for c in 1..<max(cols, 1) where scalars[r * cols + c] > scalars[r * cols + best] { best = c }
            return best
        }
    }

    /// Row-wise softmax of a [rows, cols] tensor.
    public func softmaxRows() -> Tensor {
        precondition(rank == 2, "softmaxRows: needs rank 2, got \(shape)")
        let cols = shape[1]
        var out = scalars
        out.withUnsafeMutableBufferPointer { y in
            for r in 0..<shape[0] {
                let row = y.baseAddress! + r * cols
                var m = -Float.infinity
                for c in 0..<cols { m = max(m, row[c]) }
                var s: Float = 0
                for c in 0..<cols { row[c] = expf(row[c] - m); s += row[c] }
                for c in 0..<cols { row[c] /= s }
            }
        }
        return Tensor(shape: shape, scalars: out)
    }
}
