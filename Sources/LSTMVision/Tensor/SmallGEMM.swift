import Foundation

/// A register-blocked GEMM for the LSTM's per-step products, C[m×n] (+)= A[m×k] · B[k×n] with B a
/// row-major, already-laid-out matrix (the recurrent weights, transposed once per sequence). OpenBLAS
/// repacks B on every call, which for a 32-row step costs as much as the arithmetic; this kernel reads
/// B in place: 4 rows × 64 columns of C live in 16 SIMD16 accumulators while k runs.
public enum SmallGEMM {
    public typealias V = SIMD16<Float>

    /// True when this kernel handles `n` columns (multiples of 16); otherwise use `BLAS.gemm`.
    public static func supports(n: Int) -> Bool { enabled && n > 0 && n % 16 == 0 }

    /// True when a batch of `rows` split over the threads leaves at most 64 rows per thread, where this
    /// kernel measured faster than OpenBLAS (with more rows, OpenBLAS's packing of B pays off).
    public static func pays(rows: Int) -> Bool {
        rows / max(1, min(Parallel.threads, rows / 8)) <= 64
    }

    /// Off when LSTMVISION_SMALL_GEMM=0 (then OpenBLAS does every product), for comparisons.
    public static let enabled = ProcessInfo.processInfo.environment["LSTMVISION_SMALL_GEMM"] != "0"

    /// C = A·B (`accumulate` false) or C += A·B, row-major with leading dimensions; B is [k×n] with ldb = n.
    public static func multiply(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                                b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool) {
        precondition(n % 16 == 0, "SmallGEMM: n = \(n) is not a multiple of 16")
        // Groups of 4 rows: column panels outside, rows inside, so a k×64 panel of B stays in L1 while
        // every row block uses it.
        let m4 = m - m % 4
        var j = 0
        while j + 64 <= n {
            var r = 0
            while r < m4 { block4x4(r, j, k, a, lda, b, n, c, ldc, accumulate); r += 4 }
            j += 64
        }
        while j < n {
            var r = 0
            while r < m4 { block4x1(r, j, k, a, lda, b, n, c, ldc, accumulate); r += 4 }
            j += 16
        }
        // Remaining rows (a batch of one is all remainder): 128 columns at a time, so that eight
        // independent accumulators hide the FMA latency while B streams through once.
        for r in m4..<m {
            j = 0
            while j + 128 <= n { block1x8(r, j, k, a, lda, b, n, c, ldc, accumulate); j += 128 }
            while j < n { block1x1(r, j, k, a, lda, b, n, c, ldc, accumulate); j += 16 }
        }
    }

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }
    @inline(__always) static func store(_ v: V, _ p: UnsafeMutablePointer<Float>, _ accumulate: Bool) {
        UnsafeMutableRawPointer(p).storeBytes(of: accumulate ? v + load(p) : v, as: V.self)
    }

    /// Rows r..<r+4, columns j..<j+64.
    @inline(__always)
    static func block4x4(_ r: Int, _ j: Int, _ k: Int, _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>,
                         _ ldb: Int, _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ accumulate: Bool) {
        var c00 = V(), c01 = V(), c02 = V(), c03 = V(), c10 = V(), c11 = V(), c12 = V(), c13 = V()
        var c20 = V(), c21 = V(), c22 = V(), c23 = V(), c30 = V(), c31 = V(), c32 = V(), c33 = V()
        let a0 = a + r * lda, a1 = a0 + lda, a2 = a1 + lda, a3 = a2 + lda
        var bp = b + j
        for p in 0..<k {
            let b0 = load(bp), b1 = load(bp + 16), b2 = load(bp + 32), b3 = load(bp + 48)
            var s = V(repeating: a0[p])
            c00 = c00.addingProduct(s, b0); c01 = c01.addingProduct(s, b1); c02 = c02.addingProduct(s, b2); c03 = c03.addingProduct(s, b3)
            s = V(repeating: a1[p])
            c10 = c10.addingProduct(s, b0); c11 = c11.addingProduct(s, b1); c12 = c12.addingProduct(s, b2); c13 = c13.addingProduct(s, b3)
            s = V(repeating: a2[p])
            c20 = c20.addingProduct(s, b0); c21 = c21.addingProduct(s, b1); c22 = c22.addingProduct(s, b2); c23 = c23.addingProduct(s, b3)
            s = V(repeating: a3[p])
            c30 = c30.addingProduct(s, b0); c31 = c31.addingProduct(s, b1); c32 = c32.addingProduct(s, b2); c33 = c33.addingProduct(s, b3)
            bp += ldb
        }
        let o0 = c + r * ldc + j, o1 = o0 + ldc, o2 = o1 + ldc, o3 = o2 + ldc
        store(c00, o0, accumulate); store(c01, o0 + 16, accumulate); store(c02, o0 + 32, accumulate); store(c03, o0 + 48, accumulate)
        store(c10, o1, accumulate); store(c11, o1 + 16, accumulate); store(c12, o1 + 32, accumulate); store(c13, o1 + 48, accumulate)
        store(c20, o2, accumulate); store(c21, o2 + 16, accumulate); store(c22, o2 + 32, accumulate); store(c23, o2 + 48, accumulate)
        store(c30, o3, accumulate); store(c31, o3 + 16, accumulate); store(c32, o3 + 32, accumulate); store(c33, o3 + 48, accumulate)
    }

    /// Rows r..<r+4, columns j..<j+16.
    @inline(__always)
    static func block4x1(_ r: Int, _ j: Int, _ k: Int, _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>,
                         _ ldb: Int, _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ accumulate: Bool) {
        var c0 = V(), c1 = V(), c2 = V(), c3 = V()
        let a0 = a + r * lda, a1 = a0 + lda, a2 = a1 + lda, a3 = a2 + lda
        var bp = b + j
        for p in 0..<k {
            let b0 = load(bp)
            c0 = c0.addingProduct(V(repeating: a0[p]), b0); c1 = c1.addingProduct(V(repeating: a1[p]), b0)
            c2 = c2.addingProduct(V(repeating: a2[p]), b0); c3 = c3.addingProduct(V(repeating: a3[p]), b0)
            bp += ldb
        }
        let o0 = c + r * ldc + j
        store(c0, o0, accumulate); store(c1, o0 + ldc, accumulate); store(c2, o0 + 2 * ldc, accumulate); store(c3, o0 + 3 * ldc, accumulate)
    }

    /// Row r, columns j..<j+128.
    @inline(__always)
    static func block1x8(_ r: Int, _ j: Int, _ k: Int, _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>,
                         _ ldb: Int, _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ accumulate: Bool) {
        var c0 = V(), c1 = V(), c2 = V(), c3 = V(), c4 = V(), c5 = V(), c6 = V(), c7 = V()
        let a0 = a + r * lda
        var bp = b + j
        for p in 0..<k {
            let s = V(repeating: a0[p])
            c0 = c0.addingProduct(s, load(bp)); c1 = c1.addingProduct(s, load(bp + 16))
            c2 = c2.addingProduct(s, load(bp + 32)); c3 = c3.addingProduct(s, load(bp + 48))
            c4 = c4.addingProduct(s, load(bp + 64)); c5 = c5.addingProduct(s, load(bp + 80))
            c6 = c6.addingProduct(s, load(bp + 96)); c7 = c7.addingProduct(s, load(bp + 112))
            bp += ldb
        }
        let o = c + r * ldc + j
        store(c0, o, accumulate); store(c1, o + 16, accumulate); store(c2, o + 32, accumulate); store(c3, o + 48, accumulate)
        store(c4, o + 64, accumulate); store(c5, o + 80, accumulate); store(c6, o + 96, accumulate); store(c7, o + 112, accumulate)
    }

    /// Row r, columns j..<j+16.
    @inline(__always)
    static func block1x1(_ r: Int, _ j: Int, _ k: Int, _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>,
                         _ ldb: Int, _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ accumulate: Bool) {
        var c0 = V()
        let a0 = a + r * lda
        var bp = b + j
        for p in 0..<k { c0 = c0.addingProduct(V(repeating: a0[p]), load(bp)); bp += ldb }
        store(c0, c + r * ldc + j, accumulate)
    }
}
