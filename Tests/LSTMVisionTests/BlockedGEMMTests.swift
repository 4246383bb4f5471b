import Foundation
import Testing
@testable import LSTMVisionCore
@testable import LSTMVisionKernels

/// BlockedGEMM against the plain-loop `BLAS.gemmReference`: every transpose, sizes around the kernel's 6×64 block
/// and the k blocks, padded leading dimensions, alpha and beta, one and two threads.
@Suite struct BlockedGEMMTests {
    /// One product through BlockedGEMM and the reference; returns the largest difference relative to C's magnitude.
    func difference(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float, beta: Float, pad: Int,
                    threads: Int, seed: UInt64) -> Float {
        let lda = (transA ? m : k) + pad, ldb = (transB ? k : n) + pad, ldc = n + pad
        let a = randomTensor([transA ? k : m, lda], seed: seed).scalars
        let b = randomTensor([transB ? n : k, ldb], seed: seed + 1).scalars
        var expected = randomTensor([m, ldc], seed: seed + 2).scalars
        if beta == 0 { for i in expected.indices { expected[i] = .nan } }   // beta 0 must not read C
        var got = expected
        BLAS.gemmReference(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b,
                           ldb: ldb, beta: beta, c: &expected, ldc: ldc)
        a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in got.withUnsafeMutableBufferPointer { cp in
            BlockedGEMM.gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: ap.baseAddress!,
                             lda: lda, b: bp.baseAddress!, ldb: ldb, beta: beta, c: cp.baseAddress!, ldc: ldc,
                             threads: threads)
        } } }
        var worst: Float = 0, scale: Float = 1
        for i in 0..<m {
            for j in 0..<ldc {
                let (e, g) = (expected[i * ldc + j], got[i * ldc + j])
                if j >= n {   // the padding between rows is left as it was
                    if !(e == g || (e.isNaN && g.isNaN)) { return .infinity }
                    continue
                }
                scale = max(scale, abs(e))
                worst = g.isNaN ? .infinity : max(worst, abs(e - g))
            }
        }
        return worst / scale
    }

    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func matchesReference(transA: Bool, transB: Bool) {
        // (m, n, k): single rows and columns, edges of the 6-row and 64-column blocks, k across the 256-deep blocks.
        let sizes = [(1, 1, 1), (3, 17, 5), (17, 65, 130), (65, 3, 257), (130, 257, 65), (257, 130, 513),
                     (6, 64, 256), (12, 128, 512), (7, 1, 300), (1, 200, 17)]
        var seed: UInt64 = 1
        for (m, n, k) in sizes {
            for (alpha, beta) in [(Float(1), Float(0)), (1, 1), (0.5, -2)] {
                for threads in [1, 2] {
                    let pad = Int(seed % 3) * 5
                    let d = difference(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, beta: beta,
                                       pad: pad, threads: threads, seed: seed)
                    #expect(d <= 1e-5, "\(m)×\(n)×\(k) alpha \(alpha) beta \(beta) pad \(pad) threads \(threads): \(d)")
                    seed += 3
                }
            }
        }
    }

    /// The blocking parameters' edges: more rows than one A block and more columns than one B block, on two threads.
    @Test func coversSeveralBlocks() {
        let d = difference(transA: false, transB: true, m: 301, n: 2113, k: 70, alpha: 1, beta: 1, pad: 3,
                           threads: 2, seed: 99)
        #expect(d <= 1e-5, "\(d)")
    }

    /// k = 0 scales C by beta (zero for beta 0), as BLAS does.
    @Test func emptyDepthScalesC() {
        var c: [Float] = [1, 2, 3, 4]
        let none: [Float] = [0]
        none.withUnsafeBufferPointer { z in c.withUnsafeMutableBufferPointer { cp in
            BlockedGEMM.gemm(transA: false, transB: false, m: 2, n: 2, k: 0, a: z.baseAddress!, lda: 1,
                             b: z.baseAddress!, ldb: 2, beta: 3, c: cp.baseAddress!, ldc: 2)
        } }
        #expect(c == [3, 6, 9, 12])
    }

    /// BLAS.gemm sends large products to BlockedGEMM on an AVX-512 build, small ones to OpenBLAS.
    @Test func routing() {
        #expect(!BLAS.blockedPays(transB: false, m: 32, n: 64, k: 128))
        #expect(!BLAS.blockedPays(transB: true, m: 64, n: 512, k: 160))
        #expect(!BLAS.blockedPays(transB: false, m: 128, n: 28, k: 512))
        #expect(!BLAS.blockedPays(transB: false, m: 1, n: 4096, k: 4096))   // one row: a matrix-vector product
        #expect(BLAS.blockedPays(transB: true, m: 256, n: 3200, k: 4096) == BlockedGEMM.isAVX512Build)
    }
}
