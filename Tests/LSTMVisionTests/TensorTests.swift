import Foundation
import Testing
@testable import LSTMVision
@testable import LSTMVisionCore

@Suite struct TensorTests {
    @Test func gemmMatchesReferenceForAllTransposes() {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let m = 7, n = 5, k = 9
            let a = randomTensor(ta ? [k, m] : [m, k], seed: 1), b = randomTensor(tb ? [n, k] : [k, n], seed: 2)
            var c0 = randomTensor([m, n], seed: 3).scalars
            var c1 = c0
            BLAS.gemmReference(transA: ta, transB: tb, m: m, n: n, k: k, alpha: 0.5, a: a.scalars, lda: a.shape[1],
                               b: b.scalars, ldb: b.shape[1], beta: 2, c: &c0, ldc: n)
            a.scalars.withUnsafeBufferPointer { ap in b.scalars.withUnsafeBufferPointer { bp in
            c1.withUnsafeMutableBufferPointer { cp in
                BLAS.gemm(transA: ta, transB: tb, m: m, n: n, k: k, alpha: 0.5, a: ap.baseAddress!, lda: a.shape[1],
                          b: bp.baseAddress!, ldb: b.shape[1], beta: 2, c: cp.baseAddress!, ldc: n)
            } } }
            let d = Tensor(shape: [m, n], scalars: c0).maxAbsDifference(Tensor(shape: [m, n], scalars: c1))
            #expect(d < 1e-5, "transA \(ta) transB \(tb): \(d)")
        }
    }

    /// One row of C (a batch of one) runs as `cblas_sgemv` over B, split in column blocks when large: the same
    /// values as the reference for every transpose, padded leading dimensions, beta 0 and 2, one thread and two.
    @Test func oneRowProductMatchesReference() {
        for (n, k) in [(5, 9), (300, 2000)] {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let (lda, ldb) = (ta ? 3 : k + 2, tb ? k + 1 : n + 3)   // A [k × lda] or [1 × lda], B padded
                let a = randomTensor([ta ? k : 1, lda], seed: 4), b = randomTensor([tb ? n : k, ldb], seed: 5)
                for (beta, threads) in [(Float(0), 1), (2, 2)] {
                    let start = randomTensor([1, n], seed: 6).scalars
                    var want = start, got = beta == 0 ? [Float](repeating: .nan, count: n) : start
                    BLAS.gemmReference(transA: ta, transB: tb, m: 1, n: n, k: k, alpha: 0.5, a: a.scalars, lda: lda,
                                       b: b.scalars, ldb: ldb, beta: beta, c: &want, ldc: n)
                    a.scalars.withUnsafeBufferPointer { ap in b.scalars.withUnsafeBufferPointer { bp in
                        got.withUnsafeMutableBufferPointer { cp in
                            BLAS.gemm(transA: ta, transB: tb, m: 1, n: n, k: k, alpha: 0.5, a: ap.baseAddress!,
                                      lda: lda, b: bp.baseAddress!, ldb: ldb, beta: beta, c: cp.baseAddress!, ldc: n,
                                      threads: threads)
                        }
                    } }
                    let d = Tensor(shape: [n], scalars: want).maxAbsDifference(Tensor(shape: [n], scalars: got))
                    let scale = want.map(abs).max()!   // float rounding of k-term sums
                    #expect(d <= 1e-5 * scale, "n \(n) k \(k) transA \(ta) transB \(tb) beta \(beta): \(d)")
                }
            }
        }
    }

    /// The squared norm (interleaved partial sums; two halves on two threads from 2¹⁵ values) is exact on small
    /// integers, at every size around its loop's and its split's edges, and within Double rounding of a plain sum on
    /// random values.
    @Test func squaredNormMatchesPlainSum() {
        for n in [0, 1, 7, 8, 31, 32, 33, 100, (1 << 15) - 1, 1 << 15, (1 << 15) + 37, 100_003] {
            let small: [Int] = (0..<n).map { $0 % 13 - 6 }
            let ints = Tensor(shape: [n], scalars: small.map { Float($0) })
            let exact = Double(small.reduce(0) { $0 + $1 * $1 })
            #expect(ints.squaredNorm() == exact, "n = \(n): \(ints.squaredNorm()) against \(exact)")
            let r = randomTensor([n], seed: UInt64(n) + 1)
            let plain = r.scalars.reduce(0.0) { $0 + Double($1) * Double($1) }
            #expect(abs(r.squaredNorm() - plain) <= 1e-12 * plain, "n = \(n)")
        }
        #expect(Tensor(shape: [40_000], scalars: [Float](repeating: 1, count: 39_999) + [.nan]).squaredNorm().isNaN)
    }

    /// VectorMath.sum: small integers (exact in any order) for every length around the 16- and 64-lane steps, and
    /// random values to a float's rounding of a plain double sum.
    @Test func vectorSumMatchesPlainSum() {
        for n in [0, 1, 15, 16, 17, 63, 64, 65, 100, 1000, 4099] {
            let small = (0..<n).map { Float($0 % 11 - 5) }
            let exact = small.reduce(0, +)
            let r = randomTensor([max(n, 1)], seed: UInt64(n) + 3).scalars.prefix(n)
            let plain = r.reduce(0.0) { $0 + Double($1) }, magnitude = r.reduce(0.0) { $0 + Double(abs($1)) }
            small.withUnsafeBufferPointer { p in
                #expect(VectorMath.sum(p.baseAddress ?? UnsafePointer(bitPattern: 16)!, n) == exact, "n = \(n)")
            }
            Array(r).withUnsafeBufferPointer { p in
                let sum = VectorMath.sum(p.baseAddress ?? UnsafePointer(bitPattern: 16)!, n)
                #expect(abs(Double(sum) - plain) <= 1e-6 * magnitude, "n = \(n): \(sum) against \(plain)")
            }
        }
    }

    /// Swapping the two leading axes (shared among the threads from 2¹⁵ values) moves every row of the last axis.
    @Test func swapLeadingAxesMovesEveryRow() {
        for shape in [[3, 2, 4], [28, 64, 28]] {
            let x = randomTensor(shape, seed: 4)
            let y = swapLeadingAxes(x)
            let (a, b, c) = (shape[0], shape[1], shape[2])
            #expect(y.shape == [b, a, c])
            var same = true
            for i in 0..<a {
                for j in 0..<b {
                    for k in 0..<c { same = same && y.scalars[(j * a + i) * c + k] == x.scalars[(i * b + j) * c + k] }
                }
            }
            #expect(same, "\(shape)")
        }
    }

    @Test func matmulShapes() {
        let a = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        let b = Tensor(shape: [3, 1], scalars: [1, 0, -1])
        #expect(a.matmul(b).scalars == [-2, -2])
        #expect(a.matmul(a, transposeOther: true).scalars == [14, 32, 32, 77])
        #expect(a.matmul(a, transposeSelf: true).shape == [3, 3])
    }

    @Test func vectorMathMatchesLibm() {
        var x = [Float]()
        var v: Float = -30
        while v <= 30 { x.append(v); v += 0.0137 }
        x += [-100, 100, 0, -0.0, 1e-8, -1e-8, 88, -88]
        for (name, f, ref) in [("exp", VectorMath.exp as (VectorMath.V) -> VectorMath.V, VectorMath.expReference),
                               ("sigmoid", VectorMath.sigmoid, VectorMath.sigmoidReference),
                               ("tanh", VectorMath.tanh, VectorMath.tanhReference)] {
            var y = [Float](repeating: 0, count: x.count)
            x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
                VectorMath.map(xp.baseAddress!, yp.baseAddress!, x.count, f)
            } }
            var worst: Float = 0
            for i in 0..<x.count {
                let r = ref(x[i])
                let err = name == "exp" ? abs(y[i] - r) / max(abs(r), 1e-30) : abs(y[i] - r)
                if r.isFinite && r < 1e38 { worst = max(worst, err) }
            }
            print("  \(name): worst error \(worst)")
            #expect(worst < (name == "exp" ? 1e-6 : 2e-7), "\(name): worst error \(worst)")
        }
        // Two vectors at a time (`VectorPair`, as the cell kernel runs them) give one vector's results bit for bit;
        // NaN stays NaN.
        let lanes = ([.nan, .infinity, -.infinity, 87.3, -87.3, 88.3, 89] + x).prefix(32 * 40)
        for (name, one, two) in [("exp", VectorMath.exp as (VectorMath.V) -> VectorMath.V,
                                  VectorMath.exp as (VectorPair) -> VectorPair),
                                 ("sigmoid", VectorMath.sigmoid, VectorMath.sigmoid),
                                 ("tanh", VectorMath.tanh, VectorMath.tanh)] {
            var same = true, nanKept = true
            var padded = Array(lanes)
            padded += [Float](repeating: .nan, count: (32 - padded.count % 32) % 32)
            padded.withUnsafeBufferPointer { p in
                for k in stride(from: 0, to: padded.count, by: 32) {
                    let pair = two(VectorPair.load(p.baseAddress! + k))
                    let single = (one(VectorMath.load(p.baseAddress! + k)),
                                  one(VectorMath.load(p.baseAddress! + k + 16)))
                    for l in 0..<16 {
                        same = same && pair.a[l].bitPattern == single.0[l].bitPattern
                            && pair.b[l].bitPattern == single.1[l].bitPattern
                        if p[k + l].isNaN { nanKept = nanKept && pair.a[l].isNaN }
                        if p[k + 16 + l].isNaN { nanKept = nanKept && pair.b[l].isNaN }
                    }
                }
            }
            #expect(same, "\(name): a pair differs from one vector at a time")
            #expect(nanKept, "\(name): NaN not kept")
        }
    }

    /// The one-instruction vector square root gives Swift's scalar `squareRoot()` bit for bit (both correctly rounded),
    /// including zeros of both signs, subnormals, infinity, negative numbers and NaN.
    @Test func vectorSquareRootMatchesScalar() {
        var g = SeededGenerator(seed: 7)
        var x: [Float] = [0, -0.0, .leastNonzeroMagnitude, .leastNormalMagnitude, 1e-30, 1, 2, 3,
                          .greatestFiniteMagnitude, .infinity, -.infinity, -1, -.leastNonzeroMagnitude, .nan]
        // Every exponent.
        x += (0..<4000).map { _ in Float(bitPattern: UInt32.random(in: 0...0x7F80_0000, using: &g)) }
        x += [Float](repeating: 4, count: (16 - x.count % 16) % 16)
        var mismatches = 0
        x.withUnsafeBufferPointer { p in
            for k in stride(from: 0, to: x.count, by: 16) {
                let root = VectorMath.squareRoot(VectorMath.load(p.baseAddress! + k))
                for l in 0..<16 {
                    let expected = x[k + l].squareRoot()
                    if !(root[l].bitPattern == expected.bitPattern || (root[l].isNaN && expected.isNaN)) {
                        mismatches += 1
                    }
                }
            }
        }
        print("  square root: \(mismatches) of \(x.count) lanes differ from Float.squareRoot()")
        #expect(mismatches == 0)
        #expect(VectorMath.squareRoot(VectorMath.V(repeating: 2))[5] == Float(2).squareRoot())
    }

    @Test func lstmCellKernelsMatchReference() {
        for (batch, hidden) in [(3, 5), (2, 16), (4, 37), (2, 53)] {   // 53: a pair, a single vector and a padded tail
            var gates = randomTensor([batch, 4 * hidden], seed: 10, scale: 2).scalars
            let cPrev = randomTensor([batch, hidden], seed: 11).scalars
            var refGates = gates
            var c = [Float](repeating: 0, count: batch * hidden), tc = c, h = c
            var rc = c, rtc = c, rh = c
            LSTMKernels.cellForwardReference(gates: &refGates, cPrev: cPrev, c: &rc, tanhC: &rtc, h: &rh, batch: batch,
                                             hidden: hidden)
            gates.withUnsafeMutableBufferPointer { g in cPrev.withUnsafeBufferPointer { cp in
                c.withUnsafeMutableBufferPointer { cc in tc.withUnsafeMutableBufferPointer { t in
                h.withUnsafeMutableBufferPointer { hh in
                    LSTMKernels.cellForward(gates: g.baseAddress!, cPrev: cp.baseAddress!, c: cc.baseAddress!,
                                            tanhC: t.baseAddress!, h: hh.baseAddress!, batch: batch, hidden: hidden)
                } } }
            } }
            for (a, b, what) in [(gates, refGates, "gates"), (c, rc, "c"), (tc, rtc, "tanh c"), (h, rh, "h")] {
                let d = Tensor(shape: [a.count], scalars: a).maxAbsDifference(Tensor(shape: [b.count], scalars: b))
                #expect(d < 1e-6, "forward \(what) \(batch)x\(hidden): \(d)")
            }
            // Inference (no tanh(c) buffer): the same c and h, the pre-activations left as they were.
            var preGates = randomTensor([batch, 4 * hidden], seed: 10, scale: 2).scalars
            let untouched = preGates
            var ic = [Float](repeating: .nan, count: batch * hidden), ih = ic
            preGates.withUnsafeMutableBufferPointer { g in cPrev.withUnsafeBufferPointer { cp in
                ic.withUnsafeMutableBufferPointer { cc in ih.withUnsafeMutableBufferPointer { hh in
                    LSTMKernels.cellForward(gates: g.baseAddress!, cPrev: cp.baseAddress!, c: cc.baseAddress!,
                                            tanhC: nil, h: hh.baseAddress!, batch: batch, hidden: hidden)
                } }
            } }
            #expect(ic == c && ih == h && preGates == untouched, "inference path \(batch)x\(hidden)")
            let dh = randomTensor([batch, hidden], seed: 12).scalars
            var dc = randomTensor([batch, hidden], seed: 13).scalars, rdc = dc
            var dg = [Float](repeating: 0, count: batch * 4 * hidden), rdg = dg
            LSTMKernels.cellBackwardReference(gates: refGates, cPrev: cPrev, tanhC: rtc, dh: dh, dc: &rdc, dgates: &rdg,
                                              batch: batch, hidden: hidden)
            gates.withUnsafeBufferPointer { g in cPrev.withUnsafeBufferPointer { cp in tc.withUnsafeBufferPointer { t in
                dh.withUnsafeBufferPointer { d in dc.withUnsafeMutableBufferPointer { dcp in
                dg.withUnsafeMutableBufferPointer { dgp in
                    LSTMKernels.cellBackward(gates: g.baseAddress!, cPrev: cp.baseAddress!, tanhC: t.baseAddress!,
                                             dh: d.baseAddress!, dc: dcp.baseAddress!, dgates: dgp.baseAddress!,
                                             batch: batch, hidden: hidden)
                } } }
            } } }
            #expect(Tensor(shape: [dc.count], scalars: dc)
                        .maxAbsDifference(Tensor(shape: [dc.count], scalars: rdc)) < 1e-6)
            #expect(Tensor(shape: [dg.count], scalars: dg)
                        .maxAbsDifference(Tensor(shape: [dg.count], scalars: rdg)) < 1e-6)
        }
    }

    /// The gradients' squared norm (one pass that both checks them and feeds clipping): the plain sum in Double, NaN or
    /// infinite exactly when a gradient is, finite for huge finite gradients whose squares overflow a Float.
    @Test func gradientSquaredNormChecksAndMeasures() {
        let values = (0..<1003).map { Float($0 % 17) - 8.5 }   // not a multiple of 8: the tail too
        let a = Variable(Tensor(shape: [1003], scalars: values), requiresGrad: true),
            b = Variable(Tensor(zeros: [3]), requiresGrad: true)
        a.grad = Tensor(shape: [1003], scalars: values)
        b.grad = Tensor(shape: [3], scalars: [1, 2, 3])
        let plain = values.reduce(0.0) { $0 + Double($1) * Double($1) } + 14
        #expect(abs(gradientSquaredNorm([a, b]) - plain) < 1e-9 * plain)
        b.grad = Tensor(shape: [3], scalars: [3e30, -3e30, 1])
        #expect(gradientSquaredNorm([a, b]).isFinite)
        for bad: Float in [.nan, .infinity, -.infinity] {
            b.grad = Tensor(shape: [3], scalars: [1, bad, 1])
            #expect(!gradientSquaredNorm([a, b]).isFinite)
        }
    }

    /// Buffers the kernels read with SIMD16 loads start on a cache line, whatever their size; contents round-trip.
    @Test func alignedFloatsStartOnACacheLine() {
        for count in [0, 1, 3, 16, 1000, 70_000] {
            let a = AlignedFloats(repeating: 2, count: count)
            #expect(Int(bitPattern: a.base) % 64 == 0, "count \(count)")
            #expect(a.count == count && a.allSatisfy { $0 == 2 })
            let scratch = AlignedFloats.allocate(count)
            #expect(Int(bitPattern: scratch) % 64 == 0, "scratch of \(count)")
            scratch.deallocate()
        }
        let values = (0..<100).map(Float.init), a = AlignedFloats(uninitializedCount: 130)
        a.write(values, at: 30)
        #expect(a.array(30..<130) == values && Array(a[40..<42]) == [10, 11] && AlignedFloats(values).array() == values)
        let packed = SmallGEMM.pack(randomTensor([28, 512], seed: 1), transposed: true)
        #expect(Int(bitPattern: packed.base) % 64 == 0 && packed.count == 28 * 512)
    }

    @Test func seededGeneratorRepeatsAndRestores() {
        var a = SeededGenerator(seed: 42), b = SeededGenerator(seed: 42)
        let xs = (0..<5).map { _ in a.next() }
        #expect(xs == (0..<5).map { _ in b.next() })
        var c = SeededGenerator(state: a.state)!
        #expect(a.next() == c.next())
        #expect(SeededGenerator(seed: 1).state != SeededGenerator(seed: 2).state)
        var g = SeededGenerator(seed: 7)
        let u = (0..<10_000).map { _ in g.uniform() }
        #expect(u.allSatisfy { $0 >= 0 && $0 < 1 })
        let mean = u.reduce(0, +) / 10_000
        #expect(abs(mean - 0.5) < 0.02)
    }

    @Test func reductionsAndSoftmax() {
        let t = Tensor(shape: [2, 3], scalars: [1, 2, 3, -1, 5, 0])
        #expect(t.sumRows().scalars == [0, 7, 3])
        #expect(t.argmaxRows() == [2, 1])
        let s = t.softmaxRows()
        #expect(abs(s.scalars[0..<3].reduce(0, +) - 1) < 1e-6)
        #expect(abs(s.scalars[2] - 0.66524096) < 1e-6)
        #expect(t.reshaped([3, -1]).shape == [3, 2])
    }
}

@Suite struct SmallGEMMTests {
    /// The fused step product bias + A₁·B₁ + A₂·B₂ (B packed) against the triple loop, on row/column remainders and
    /// deep products cut into slices of k (both terms cut, with a narrow last panel: 12×144×(200+130)).
    @Test(arguments: [(1, 512, 28, 128), (3, 80, 5, 7), (32, 512, 28, 128), (6, 144, 256, 16), (12, 144, 200, 130)])
    func twoTermsAndBiasMatchReference(_ m: Int, _ n: Int, _ k1: Int, _ k2: Int) {
        let a1 = randomTensor([m, k1], seed: 4), b1 = randomTensor([k1, n], seed: 5)
        let a2 = randomTensor([m, k2 + 1], seed: 6), b2 = randomTensor([k2, n], seed: 7),
            bias = randomTensor([n], seed: 8)
        var ref = [Float](repeating: 0, count: m * n), second = ref
        BLAS.gemmReference(transA: false, transB: false, m: m, n: n, k: k1, a: a1.scalars, lda: k1, b: b1.scalars,
                           ldb: n, beta: 0, c: &ref, ldc: n)
        BLAS.gemmReference(transA: false, transB: false, m: m, n: n, k: k2, a: a2.scalars, lda: k2 + 1, b: b2.scalars,
                           ldb: n, beta: 0, c: &second, ldc: n)
        for r in 0..<m { for j in 0..<n { ref[r * n + j] += second[r * n + j] + bias.scalars[j] } }
        var c = [Float](repeating: .nan, count: m * n)
        // B₂ packed from its transpose, as the LSTM packs W_hhᵀ from W_hh.
        let b2T = Tensor(shape: [n, k2], scalars: (0..<(n * k2)).map { b2.scalars[($0 % k2) * n + $0 / k2] })
        let (p1, p2) = (SmallGEMM.pack(b1, transposed: false), SmallGEMM.pack(b2T, transposed: true))
        #expect(p2 == SmallGEMM.pack(b2, transposed: false))
        a1.scalars.withUnsafeBufferPointer { a1p in p1.withUnsafeBufferPointer { b1p in
        a2.scalars.withUnsafeBufferPointer { a2p in p2.withUnsafeBufferPointer { b2p in
        bias.scalars.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
            SmallGEMM.multiply(m: m, n: n, .init(a: a1p.baseAddress!, lda: k1, b: b1p.baseAddress!, k: k1),
                               .init(a: a2p.baseAddress!, lda: k2 + 1, b: b2p.baseAddress!, k: k2),
                               bias: bp.baseAddress!, c: cp.baseAddress!, ldc: n, accumulate: false)
        } } } } } }
        let worst = zip(c, ref).map { abs($0 - $1) }.max()!
        print("  SmallGEMM two terms \(m)×\(n)×(\(k1)+\(k2)): largest difference \(worst)")
        #expect(worst < 1e-4)
    }

    /// A given as the transpose of a row-major [k×m] matrix (the backward's dgatesᵀ), against the triple loop:
    /// accumulating, with remainder rows, a narrow last panel, and k deep enough to be cut into slices.
    @Test(arguments: [(12, 80, 32), (7, 144, 300), (512, 160, 128)])
    func transposedAMatchesReference(_ m: Int, _ n: Int, _ k: Int) {
        let a = randomTensor([k, m + 5], seed: 11), b = randomTensor([k, n], seed: 12)
        var c = randomTensor([m, n], seed: 13).scalars, ref = c
        BLAS.gemmReference(transA: true, transB: false, m: m, n: n, k: k, a: a.scalars, lda: m + 5, b: b.scalars,
                           ldb: n, beta: 1, c: &ref, ldc: n)
        a.scalars.withUnsafeBufferPointer { ap in SmallGEMM.pack(b, transposed: false).withUnsafeBufferPointer { bp in
        c.withUnsafeMutableBufferPointer { cp in
            SmallGEMM.multiply(m: m, n: n, .init(transposed: ap.baseAddress!, lda: m + 5, b: bp.baseAddress!, k: k),
                               c: cp.baseAddress!, ldc: n, accumulate: true)
        } } }
        let worst = zip(c, ref).map { abs($0 - $1) }.max()!
        print("  SmallGEMM transposed A \(m)×\(n)×\(k): largest difference \(worst)")
        #expect(worst < 1e-4)
    }

    /// The register-blocked kernel against the plain triple loop, on every row/column remainder, and deep
    /// products cut into slices of k (32×128×512: the LSTM backward's dh; 8×80×300 with a narrow last panel).
    @Test(arguments: [(1, 16, 3), (3, 32, 5), (4, 64, 7), (5, 80, 128), (9, 512, 128), (32, 128, 512), (7, 48, 1),
                      (1, 512, 128), (2, 272, 9), (8, 80, 300)])
    func matchesReference(_ m: Int, _ n: Int, _ k: Int) {
        let a = randomTensor([m, k + 2], seed: 1), b = randomTensor([k, n], seed: 2)
        for accumulate in [false, true] {
            var c = randomTensor([m, n + 3], seed: 3).scalars
            var ref = c
            BLAS.gemmReference(transA: false, transB: false, m: m, n: n, k: k, a: a.scalars, lda: k + 2, b: b.scalars,
                               ldb: n, beta: accumulate ? 1 : 0, c: &ref, ldc: n + 3)
            a.scalars.withUnsafeBufferPointer { ap in
            SmallGEMM.pack(b, transposed: false).withUnsafeBufferPointer { bp in
            c.withUnsafeMutableBufferPointer { cp in
                SmallGEMM.multiply(m: m, n: n, k: k, a: ap.baseAddress!, lda: k + 2, b: bp.baseAddress!,
                                   c: cp.baseAddress!, ldc: n + 3, accumulate: accumulate)
            } } }
            var worst: Float = 0
            for r in 0..<m { for j in 0..<n { worst = max(worst, abs(c[r * (n + 3) + j] - ref[r * (n + 3) + j])) } }
            #expect(worst < 1e-4, "\(m)×\(n)×\(k) accumulate \(accumulate): \(worst)")
            // Columns beyond n (the leading-dimension padding) are untouched.
            #expect(c[n] == randomTensor([m, n + 3], seed: 3).scalars[n])
        }
    }
}
