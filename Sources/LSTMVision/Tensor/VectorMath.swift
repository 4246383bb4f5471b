import Dispatch
import Foundation

/// Transcendental kernels (exp, sigmoid, tanh) written branch-free on scalars so that the loops calling
/// them vectorise (AVX-512/AVX2 when the build targets them), next to libm references for the tests.
/// The polynomial is Cephes' `expf` (about 1 ulp on the reduced range); NaN stays NaN.
public enum VectorMath {
    /// e^x; inputs are clamped to [-87.3, 88.3] so the result stays finite and normal.
    @inline(__always)
    public static func exp(_ x: Float) -> Float {
        var xc = x < -87.3 ? -87.3 : x
        xc = xc > 88.3 ? 88.3 : xc
        // n = round(x / ln 2) by the 1.5·2²³ trick (plain adds, no libm call).
        let n = (xc * 1.442_695_040_888_963_4 + 12_582_912) - 12_582_912
        var r = xc - n * 0.693_359_375
        r = r + n * 2.121_944_400_546_905_8e-4
        var p: Float = 1.987_569_150_0e-4
        p = p * r + 1.398_199_950_7e-3
        p = p * r + 8.333_451_907_3e-3
        p = p * r + 4.166_579_589_4e-2
        p = p * r + 1.666_666_545_9e-1
        p = p * r + 5.000_000_120_1e-1
        p = p * r * r + r + 1
        // 2ⁿ: n + 127 + 2²³ holds the biased exponent in its low mantissa bits; shift it into place.
        let biased = (n + 8_388_735).bitPattern & 0xFF
        return p * Float(bitPattern: biased << 23)
    }

    /// Logistic sigmoid 1 / (1 + e^-x).
    @inline(__always)
    public static func sigmoid(_ x: Float) -> Float { 1 / (1 + exp(-x)) }

    /// Hyperbolic tangent, as 2·sigmoid(2x) − 1 (absolute error below 1e-7).
    @inline(__always)
    public static func tanh(_ x: Float) -> Float { 2 / (1 + exp(-2 * x)) - 1 }

    /// Applies `f` to `n` floats from `x` into `y` (which may alias `x`).
    @inline(__always)
    public static func map(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, _ f: (Float) -> Float) {
        for i in 0..<n { y[i] = f(x[i]) }
    }

    /// Scalar references of the kernels above, through libm.
    public static func expReference(_ x: Float) -> Float { Foundation.exp(x) }
    public static func sigmoidReference(_ x: Float) -> Float { 1 / (1 + Foundation.exp(-x)) }
    public static func tanhReference(_ x: Float) -> Float { Foundation.tanh(x) }
}

/// Splits work over the machine's cores when it is large enough to pay for the threads.
public enum Parallel {
    /// The number of worker chunks used for parallel loops (the core count).
    public static let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// Runs `body(range)` over `0..<n` in contiguous chunks, in parallel when `n >= minimum`.
    public static func forChunks(_ n: Int, minimum: Int = 1 << 15, _ body: (Range<Int>) -> Void) {
        split(n, parts: n >= minimum ? min(cores, n) : 1, body)
    }

    /// Splits `0..<rows` into one block per core (when there are at least `minimum` rows per block) and
    /// runs `body` on each block concurrently, with OpenBLAS single-threaded inside (the blocks already
    /// use every core). Used for the LSTM time loop, where batch rows are independent.
    public static func forRowBlocks(_ rows: Int, minimum: Int = 8, _ body: (Range<Int>) -> Void) {
        let parts = min(cores, rows / minimum)
        if parts <= 1 { body(0..<rows); return }
        let saved = BLAS.threads
        BLAS.setThreads(1)
        defer { BLAS.setThreads(saved) }
        split(rows, parts: parts, body)
    }

    /// Runs `body` on `parts` contiguous, near-equal ranges of `0..<n` concurrently.
    private static func split(_ n: Int, parts: Int, _ body: (Range<Int>) -> Void) {
        if parts <= 1 { body(0..<n); return }
        let step = (n + parts - 1) / parts
        withoutActuallyEscaping(body) { body in
            nonisolated(unsafe) let body = body
            DispatchQueue.concurrentPerform(iterations: parts) { p in
                let lo = p * step, hi = min(n, lo + step)
                if lo < hi { body(lo..<hi) }
            }
        }
    }
}
