import COpenBLAS

/// Matrix products through OpenBLAS `cblas_sgemm`; transposes are BLAS flags, never copies.
public enum BLAS {
    /// C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C, all row-major with leading dimensions.
    /// Products of at least `parallelWork` multiply-adds are split into row (or column) blocks, one per
    /// thread, each a single-threaded OpenBLAS call: OpenBLAS's own threads spin in `sched_yield` after
    /// every call and steal the cores from the LSTM's time loop. Pass `threads: 1` inside parallel code.
    @inlinable
    public static func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
                            a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                            beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, threads: Int = Parallel.threads) {
        if m == 0 || n == 0 { return }
        if k == 0 {
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
            return
        }
        let parts = m * n * k >= parallelWork ? min(threads, max(m, n) / 16) : 1
        if parts <= 1 {
            gemmOneThread(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                          beta: beta, c: c, ldc: ldc)
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
                              b: b + r.lowerBound * (transB ? ldb : 1), ldb: ldb, beta: beta, c: c + r.lowerBound, ldc: ldc)
            }
        }
    }

    /// Multiply-adds from which `gemm` splits a product over threads (below, thread wake-up costs more).
    public static let parallelWork = 1 << 19

    /// One single-threaded `cblas_sgemm` call (OpenBLAS's own threading is switched off once).
    @inlinable
    static func gemmOneThread(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                              a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                              beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        _ = openBLASSingleThreaded
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Switches OpenBLAS's thread pool off on first use; `Parallel` does the threading.
    @usableFromInline static let openBLASSingleThreaded: Void = openblas_set_num_threads(1)

    /// y = alpha · op(A) · x + beta · y for a row-major A [m×n] (op transposes when `transA`).
    @inlinable
    public static func gemv(transA: Bool, m: Int, n: Int, alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                            x: UnsafePointer<Float>, beta: Float = 0, y: UnsafeMutablePointer<Float>) {
        _ = openBLASSingleThreaded
        cblas_sgemv(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, Int32(m), Int32(n), alpha, a, Int32(lda),
                    x, 1, beta, y, 1)
    }

    /// Plain triple-loop reference of `gemm`, used to test it.
    public static func gemmReference(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
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

    /// Sets the number of threads matrix products and parallel loops use (`Parallel.threads`).
    public static func setThreads(_ n: Int) { Parallel.threads = max(1, n) }

    /// The number of threads matrix products use.
    public static var threads: Int { Parallel.threads }
}

extension Tensor {
    /// Matrix product of two rank-2 tensors, optionally transposing either operand.
    public func matmul(_ other: Tensor, transposeSelf: Bool = false, transposeOther: Bool = false) -> Tensor {
        precondition(rank == 2 && other.rank == 2, "matmul: needs rank-2 tensors, got \(shape) and \(other.shape)")
        let m = transposeSelf ? shape[1] : shape[0], k = transposeSelf ? shape[0] : shape[1]
        let k2 = transposeOther ? other.shape[1] : other.shape[0], n = transposeOther ? other.shape[0] : other.shape[1]
        precondition(k == k2, "matmul: inner dimensions differ: \(shape)\(transposeSelf ? "ᵀ" : "") × \(other.shape)\(transposeOther ? "ᵀ" : "")")
        var out = [Float](repeating: 0, count: m * n)
        if m * n == 0 || k == 0 { return Tensor(shape: [m, n], scalars: out) }
        scalars.withUnsafeBufferPointer { a in
            other.scalars.withUnsafeBufferPointer { b in
                out.withUnsafeMutableBufferPointer { c in
                    BLAS.gemm(transA: transposeSelf, transB: transposeOther, m: m, n: n, k: k,
                              a: a.baseAddress!, lda: shape[1], b: b.baseAddress!, ldb: other.shape[1],
                              beta: 0, c: c.baseAddress!, ldc: n)
                }
            }
        }
        return Tensor(shape: [m, n], scalars: out)
    }
}

import Foundation

extension BLAS {
    /// The kernel family OpenBLAS picked for this CPU (e.g. "SkylakeX", "Haswell", "Prescott").
    public static var coreName: String { String(cString: openblas_get_corename()) }

    /// The kernel family this CPU should use when OpenBLAS fell back to a generic one: OpenBLAS 0.3.21
    /// (Debian 12) does not know recent Xeons and picks the SSE3 "Prescott" kernels, 5-10× slower.
    /// Returns nil when the choice is already good or the user set `OPENBLAS_CORETYPE`.
    public static func betterCoreType() -> String? {
        guard ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil else { return nil }
        guard ["Prescott", "Core2", "Nehalem", "Atom", "Katmai", "Coppermine", "Northwood", "Banias"].contains(coreName) else { return nil }
        guard let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let flagsLine = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return nil }
        let flags = Set(flagsLine.split(separator: " ").map(String.init))
        if flags.isSuperset(of: ["avx512f", "avx512bw", "avx512vl", "avx512dq"]) { return "SkylakeX" }
        if flags.isSuperset(of: ["avx2", "fma"]) { return "Haswell" }
        return nil
    }

    /// Keeps freed tensor buffers in the heap for reuse instead of returning them to the kernel: without
    /// this, every multi-megabyte buffer is a fresh mmap whose pages fault in and get zeroed again.
    public static func keepFreedMemory() {
        _ = glibcMallopt(-3, 1 << 30)   // M_MMAP_THRESHOLD
        _ = glibcMallopt(-1, 1 << 30)   // M_TRIM_THRESHOLD
    }

    /// Restarts the current program with `OPENBLAS_CORETYPE` set when `betterCoreType()` names a better
    /// kernel family (OpenBLAS reads it only when it loads). Returns normally when no restart is needed.
    public static func restartWithBetterKernelsIfNeeded() {
        guard let core = betterCoreType() else { return }
        setenv("OPENBLAS_CORETYPE", core, 1)
        let args = CommandLine.arguments
        var cargs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) }
        cargs.append(nil)
        execv("/proc/self/exe", &cargs)
        // execv returned: keep going with the generic kernels.
    }
}

/// glibc's `mallopt` (malloc.h is not part of Swift's Glibc module).
@_silgen_name("mallopt")
private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
