import Foundation
import CVectorMath

/// Transcendental kernels (exp, sigmoid, tanh) on 16 lanes (one AVX-512 register; two AVX2 ones) or 32 at a time
/// (`Lanes`), branch-free, next to libm references for the tests. The polynomial is Cephes' `expf` (about
/// 1 ulp on the reduced range); NaN stays NaN.
public enum VectorMath {
    /// Sixteen floats, the unit every kernel here works on.
    public typealias V = SIMD16<Float>

    /// e^x; inputs are clamped to [-87.3, 88.3] so the result stays finite and normal. Generic over `Lanes` so that
    /// a kernel can run it on one vector or on two at once (`VectorPair`), written once. `@_transparent` (here and in
    /// sigmoid and tanh), because with `@inline(__always)` the compiler may keep their specialisations as calls inside
    /// the cell kernel.
    @_transparent
    public static func exp<T: Lanes>(_ x: T) -> T {
        let xc = x.clamped(-87.3, 88.3)   // NaN passes through
        // n = round(x / ln 2) by the 1.5·2²³ trick (plain adds, no libm call); fused multiply-adds throughout
        // (fewer instructions than separate products and sums, and no less accurate).
        let t = T(repeating: 12_582_912).plusProduct(xc, T(repeating: 1.442_695_040_888_963_4))
        let n = t - T(repeating: 12_582_912)
        var r = xc.plusProduct(n, T(repeating: -0.693_359_375))
        r = r.plusProduct(n, T(repeating: 2.121_944_400_546_905_8e-4))
        var p = T(repeating: 1.987_569_150_0e-4)
        p = T(repeating: 1.398_199_950_7e-3).plusProduct(p, r)
        p = T(repeating: 8.333_451_907_3e-3).plusProduct(p, r)
        p = T(repeating: 4.166_579_589_4e-2).plusProduct(p, r)
        p = T(repeating: 1.666_666_545_9e-1).plusProduct(p, r)
        p = T(repeating: 5.000_000_120_1e-1).plusProduct(p, r)
        p = (r + T(repeating: 1)).plusProduct(p, r * r)
        return p.scaled(byExponentIn: t)   // p·2ⁿ, n from t's low bits
    }

    /// Logistic sigmoid 1 / (1 + e^-x).
    @_transparent
    public static func sigmoid<T: Lanes>(_ x: T) -> T {
        T(repeating: 1) / (T(repeating: 1) + exp(T(repeating: 0) - x))
    }

    /// Hyperbolic tangent, as 2·sigmoid(2x) − 1 (absolute error below 1e-7).
    @_transparent
    public static func tanh<T: Lanes>(_ x: T) -> T {
        T(repeating: 2) / (T(repeating: 1) + exp(T(repeating: -2) * x)) - T(repeating: 1)
    }

    /// The correctly rounded square root of each lane, in one instruction (vsqrtps): `SIMD16<Float>.squareRoot()`
    /// compiles to sixteen scalar square roots, which would bind Adam's update.
    @_transparent
    public static func squareRoot(_ x: V) -> V { lv_sqrt16(x) }

    /// Sixteen floats from `p` (any alignment).
    @inlinable @inline(__always) public static func load(_ p: UnsafePointer<Float>) -> V {
        UnsafeRawPointer(p).loadUnaligned(as: V.self)
    }
    /// Stores sixteen floats at `p` (any alignment).
    @inlinable @inline(__always) public static func store(_ v: V, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self)
    }

    /// Applies `f` to `n` floats from `x` into `y` (which may alias `x`), 16 at a time.
    @inlinable @inline(__always)
    public static func map(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, _ f: (V) -> V) {
        let full = n - n % 16
        var i = 0
        while i < full { store(f(load(x + i)), y + i); i += 16 }
        if full < n {
            var t = V()
            for l in 0..<(n - full) { t[l] = x[full + l] }
            t = f(t)
            for l in 0..<(n - full) { y[full + l] = t[l] }
        }
    }

    /// The sum of `n` floats from `x`, in four 16-lane partial sums added at the end.
    @inlinable
    public static func sum(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var (s0, s1, s2, s3) = (V(), V(), V(), V())
        var i = 0
        while i + 64 <= n {
            s0 += load(x + i); s1 += load(x + i + 16); s2 += load(x + i + 32); s3 += load(x + i + 48)
            i += 64
        }
        while i + 16 <= n { s0 += load(x + i); i += 16 }
        var total = ((s0 + s1) + (s2 + s3)).sum()
        while i < n { total += x[i]; i += 1 }
        return total
    }

    /// Scalar references of the kernels above, through libm.
    package static func expReference(_ x: Float) -> Float { Foundation.exp(x) }
    package static func sigmoidReference(_ x: Float) -> Float { 1 / (1 + Foundation.exp(-x)) }
    package static func tanhReference(_ x: Float) -> Float { Foundation.tanh(x) }
}

/// The arithmetic `VectorMath`'s kernels need, on one vector (`VectorMath.V`) or two (`VectorPair`).
public protocol Lanes {
    /// Floats per value: 16 or 32.
    static var scalarCount: Int { get }
    init(repeating: Float)
    static func + (l: Self, r: Self) -> Self
    static func - (l: Self, r: Self) -> Self
    static func * (l: Self, r: Self) -> Self
    static func / (l: Self, r: Self) -> Self
    /// self + a·b: one fused multiply-add where the build targets a vector unit that has them, else a product and a
    /// sum.
    func plusProduct(_ a: Self, _ b: Self) -> Self
    /// Each lane clamped to [lo, hi]; NaN stays NaN.
    func clamped(_ lo: Float, _ hi: Float) -> Self
    /// Each lane times 2ⁿ, with n held in the low bits of `t`'s lane (as `VectorMath.exp` computes it), by adding n to
    /// the exponent field: exact while the result is a normal number.
    func scaled(byExponentIn t: Self) -> Self
    /// Loads from `p` (any alignment) and stores at `p`.
    static func load(_ p: UnsafePointer<Float>) -> Self
    func store(_ p: UnsafeMutablePointer<Float>)
}

extension SIMD16: Lanes where Scalar == Float {
    @_transparent public func plusProduct(_ a: Self, _ b: Self) -> Self {
        #if LSTMVISION_NO_FMA
        self + a * b   // a baseline build has no fma instruction: the stdlib's addingProduct would call fmaf per lane
        #else
        addingProduct(a, b)
        #endif
    }
    @_transparent public func clamped(_ lo: Float, _ hi: Float) -> Self {
        // Comparisons and blends (a NaN lane compares false and stays): the stdlib's pointwiseMin/Max may not be
        // inlined here.
        var r = self
        r.replace(with: lo, where: r .< lo)
        r.replace(with: hi, where: r .> hi)
        return r
    }
    @inlinable @inline(__always) public func scaled(byExponentIn t: Self) -> Self {
        unsafeBitCast(unsafeBitCast(self, to: SIMD16<UInt32>.self) &+
                          (unsafeBitCast(t, to: SIMD16<UInt32>.self) &<< 23), to: Self.self)
    }
    @inlinable @inline(__always) public static func load(_ p: UnsafePointer<Float>) -> Self { VectorMath.load(p) }
    @inlinable @inline(__always) public func store(_ p: UnsafeMutablePointer<Float>) { VectorMath.store(self, p) }
}

/// Two vectors (32 consecutive floats) under one name: a kernel written once over `Lanes` runs on two at a time, its
/// operations interleaved so that the two chains hide each other's latency, with the same results as one vector at a
/// time. (The compiler does not vectorise SIMD32<Float>.)
public struct VectorPair: Lanes {
    public var a, b: VectorMath.V
    public static var scalarCount: Int { 32 }
    @inlinable @inline(__always) public init(_ a: VectorMath.V, _ b: VectorMath.V) { self.a = a; self.b = b }
    @inlinable @inline(__always) public init(repeating v: Float) { a = VectorMath.V(repeating: v); b = a }
    @inlinable @inline(__always) public static func + (l: Self, r: Self) -> Self { Self(l.a + r.a, l.b + r.b) }
    @inlinable @inline(__always) public static func - (l: Self, r: Self) -> Self { Self(l.a - r.a, l.b - r.b) }
    @inlinable @inline(__always) public static func * (l: Self, r: Self) -> Self { Self(l.a * r.a, l.b * r.b) }
    @inlinable @inline(__always) public static func / (l: Self, r: Self) -> Self { Self(l.a / r.a, l.b / r.b) }
    @inlinable @inline(__always) public func plusProduct(_ x: Self, _ y: Self) -> Self {
        Self(a.plusProduct(x.a, y.a), b.plusProduct(x.b, y.b))
    }
    @_transparent public func clamped(_ lo: Float, _ hi: Float) -> Self { Self(a.clamped(lo, hi), b.clamped(lo, hi)) }
    @inlinable @inline(__always) public func scaled(byExponentIn t: Self) -> Self {
        Self(a.scaled(byExponentIn: t.a), b.scaled(byExponentIn: t.b))
    }
    @inlinable @inline(__always) public static func load(_ p: UnsafePointer<Float>) -> Self {
        Self(VectorMath.load(p), VectorMath.load(p + 16))
    }
    @inlinable @inline(__always) public func store(_ p: UnsafeMutablePointer<Float>) {
        VectorMath.store(a, p); VectorMath.store(b, p + 16)
    }
}
