import COpenBLAS
import Foundation

/// Matrix products through OpenBLAS `cblas_sgemm`; transposes are BLAS flags, never copies.
public enum BLAS {
    /// C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C, all row-major with leading dimensions.
    /// Large products (`blockedPays`) run on `BlockedGEMM`, the rest on OpenBLAS (`openBLASGemm`).
    /// Pass `threads: 1` inside parallel code.
    @inlinable
    public static func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
                            a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                            beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, threads: Int = Parallel.threads) {
        if blockedPays(transB: transB, m: m, n: n, k: k) {
            BlockedGEMM.gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                             b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, threads: threads)
        } else {
            openBLASGemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                         b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, threads: threads)
        }
    }

    /// True when `BlockedGEMM` beats OpenBLAS's AVX2 kernels on a product of this size (measured in
    /// docs/performance.md): an AVX-512 build, at least 2²⁰ multiply-adds, at least 64 columns (a narrower C wastes
    /// lanes of the 64-column kernel), and for a transposed B at least 128 rows (its transposing pack costs about as
    /// much as 64 rows of arithmetic); never one row (a matrix-vector product). `LSTMVISION_GEMM=openblas` turns it
    /// off.
    public static func blockedPays(transB: Bool, m: Int, n: Int, k: Int) -> Bool {
        blockedEnabled && m > 1 && m * n * k >= 1 << 20 && n >= 64 && (!transB || m >= 128)
    }

    /// False when the environment sets `LSTMVISION_GEMM=openblas` (every product on OpenBLAS, as before BlockedGEMM).
    public static let blockedEnabled = BlockedGEMM.isAVX512Build
        && ProcessInfo.processInfo.environment["LSTMVISION_GEMM"] != "openblas"

    /// `gemm` on OpenBLAS. Products of at least `parallelWork` multiply-adds are split into row (or column) blocks,
    /// one per thread, each a single-threaded OpenBLAS call: OpenBLAS's own threads spin in `sched_yield` after
    /// every call and steal the cores from the LSTM's time loop.
    @inlinable
    public static func openBLASGemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
                                    a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float,
                                    c: UnsafeMutablePointer<Float>, ldc: Int, threads: Int = Parallel.threads) {
        if m == 0 || n == 0 { return }
        if k == 0 {
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
            return
        }
        let parts = m * n * k >= parallelWork ? min(threads, max(m, n) / 16) : 1
        if m == 1 {
            rowTimesMatrix(transA: transA, transB: transB, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                           beta: beta, c: c, parts: parts)
        } else if parts <= 1 {
            gemmOneThread(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                          b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        } else if m >= n {   // row blocks of C: rows of op(A)
            nonisolated(unsafe) let (a, b, c) = (a, b, c)
            Parallel.forParts(m, parts: parts) { r in
                gemmOneThread(transA: transA, transB: transB, m: r.count, n: n, k: k, alpha: alpha,
                              a: a + r.lowerBound * (transA ? 1 : lda), lda: lda, b: b, ldb: ldb,
                              beta: beta, c: c + r.lowerBound * ldc, ldc: ldc)
            }
        } else {             // column blocks of C: columns of op(B)
            nonisolated(unsafe) let (a, b, c) = (a, b, c)
            Parallel.forParts(n, parts: parts) { r in
                gemmOneThread(transA: transA, transB: transB, m: m, n: r.count, k: k, alpha: alpha, a: a, lda: lda,
                              b: b + r.lowerBound * (transB ? ldb : 1), ldb: ldb,
                              beta: beta, c: c + r.lowerBound, ldc: ldc)
            }
        }
    }

    /// One row of C (m = 1, a batch of one): c = alpha · op(A) · op(B) + beta · c as `cblas_sgemv` over B, in
    /// `parts` blocks of C's columns. sgemm would pack all of B for the one row, reading it twice (a ReNet's 12544×256
    /// FC weights: most of a batch-1 forward).
    @usableFromInline
    static func rowTimesMatrix(transA: Bool, transB: Bool, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>,
                               lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>,
                               parts: Int) {
        _ = openBLASSingleThreaded
        nonisolated(unsafe) let (a, b, c) = (a, b, c)
        // op(A)'s row: A's first row, or (transposed) its first column, lda apart.
        let incA = Int32(transA ? lda : 1)
        Parallel.forParts(n, parts: max(parts, 1)) { r in
            if transB {   // B [n × k]: c_j = B_j · a
                cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(r.count), Int32(k), alpha, b + r.lowerBound * ldb,
                            Int32(ldb), a, incA, beta, c + r.lowerBound, 1)
            } else {      // B [k × n]: c = Bᵀ · a over B's columns r
                cblas_sgemv(CblasRowMajor, CblasTrans, Int32(k), Int32(r.count), alpha, b + r.lowerBound,
                            Int32(ldb), a, incA, beta, c + r.lowerBound, 1)
            }
        }
    }

    /// Multiply-adds from which `gemm` splits a product over threads (below, thread wake-up costs more).
    public static let parallelWork = 1 << 19

    /// One single-threaded `cblas_sgemm` call (OpenBLAS's own threading is switched off once).
    @inlinable
    package static func gemmOneThread(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                              a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                              beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        _ = openBLASSingleThreaded
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Switches OpenBLAS's thread pool off on first use; `Parallel` does the threading.
    @usableFromInline package static let openBLASSingleThreaded: Void = openblas_set_num_threads(1)

    /// y = alpha · op(A) · x + beta · y for a row-major A [m×n] (op transposes when `transA`).
    @inlinable
    public static func gemv(transA: Bool, m: Int, n: Int, alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                            x: UnsafePointer<Float>, beta: Float = 0, y: UnsafeMutablePointer<Float>) {
        _ = openBLASSingleThreaded
        cblas_sgemv(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, Int32(m), Int32(n), alpha, a, Int32(lda),
                    x, 1, beta, y, 1)
    }

    /// Plain triple-loop reference of `gemm`, used to test it.
    package static func gemmReference(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
                                     a: [Float], lda: Int, b: [Float], ldb: Int,
                                     beta: Float, c: inout [Float], ldc: Int) {
        for i in 0..<m {
            for j in 0..<n {
                var s: Float = 0
                for p in 0..<k {
                    let av = transA ? a[p * lda + i] : a[i * lda + p]
                    let bv = transB ? b[j * ldb + p] : b[p * ldb + j]
                    s += av * bv
                }
                c[i * ldc + j] = alpha * s + (beta == 0 ? 0 : beta * c[i * ldc + j])
            }
        }
    }

    /// The number of threads matrix products use (`Parallel.threads`; `Parallel.withThreads` sets it for a scope).
    public static var threads: Int { Parallel.threads }
}
