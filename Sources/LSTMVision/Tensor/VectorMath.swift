import Dispatch
import Foundation

/// Vectorised transcendental kernels on `SIMD16<Float>` (exp, sigmoid, tanh) with scalar references.
/// The polynomial is Cephes' `expf` (about 1 ulp on the reduced range), so results match libm to ~1e-7.
public enum VectorMath {
    public typealias V = SIMD16<Float>

    /// e^x for 16 lanes; inputs are clamped to [-87.3, 88.3] so the result stays finite and normal.
    @inline(__always)
    public static func exp(_ x: V) -> V {
        let lo = V(repeating: -87.3), hi = V(repeating: 88.3)
        var xc = x.replacing(with: lo, where: x .< lo)
        xc.replace(with: hi, where: xc .> hi)
        // n = round(x / ln 2) by the 1.5·2²³ trick (plain vector adds; no libm call per lane).
        let magic = V(repeating: 12_582_912)
        let n = (xc * 1.442_695_040_888_963_4 + magic) - magic
        var r = xc - n * 0.693_359_375
        r = r + n * 2.121_944_400_546_905_8e-4
        var p = V(repeating: 1.987_569_150_0e-4)
        p = p * r + 1.398_199_950_7e-3
        p = p * r + 8.333_451_907_3e-3
        p = p * r + 4.166_579_589_4e-2
        p = p * r + 1.666_666_545_9e-1
        p = p * r + 5.000_000_120_1e-1
        p = p * r * r + r + 1
        // 2ⁿ: n + 127 + 2²³ holds the biased exponent in its low mantissa bits; shift it into place.
        let biased = unsafeBitCast(n + 8_388_735, to: SIMD16<UInt32>.self) & 0xFF
        let scale = unsafeBitCast(biased &<< 23, to: V.self)
        return p * scale
    }

    /// Logistic sigmoid 1 / (1 + e^-x).
    @inline(__always)
    public static func sigmoid(_ x: V) -> V { 1 / (1 + exp(-x)) }

    /// Hyperbolic tangent, as 2·sigmoid(2x) − 1 (absolute error below 1e-7).
    @inline(__always)
    public static func tanh(_ x: V) -> V { 2 / (1 + exp(-2 * x)) - 1 }

    /// Applies `f` to `n` floats from `x` into `y` (which may alias `x`), 16 lanes at a time.
    @inline(__always)
    public static func map(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, _ f: (V) -> V) {
        var i = 0
        while i + 16 <= n {
            let v = UnsafeRawPointer(x + i).loadUnaligned(as: V.self)
            UnsafeMutableRawPointer(y + i).storeBytes(of: f(v), as: V.self)
            i += 16
        }
        if i < n {
            var v = V(repeating: 0)
            for j in 0..<(n - i) { v[j] = x[i + j] }
            let r = f(v)
            for j in 0..<(n - i) { y[i + j] = r[j] }
        }
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
        let parts = n >= minimum ? min(cores, n) : 1
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
