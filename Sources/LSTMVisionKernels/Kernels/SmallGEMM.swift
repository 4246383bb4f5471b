import Foundation

/// A register-blocked GEMM for the LSTM's per-step products, C[m×n] (+)= bias + A₁·B₁ + A₂·B₂ with each
/// B already in the kernel's layout (`pack`: the weights, laid out once per update). OpenBLAS repacks B
/// on every call, which for a 32-row step costs as much as the arithmetic; this kernel reads B in place.
/// Two terms and the bias let one call compute a step's gates, b + x_t·W_ihᵀ + h_{t−1}·W_hhᵀ, with each
/// block of C written once: 4 rows × 64 columns live in 16 SIMD16 accumulators while k runs.
public enum SmallGEMM {
    public typealias V = SIMD16<Float>

    /// Columns per panel of a packed B.
    public static let panelWidth = 64

    /// Writes `count` values as columns j..<j+count of row p of a packed B [depth×n] (the layout `pack` makes), so that
    /// a row made of pieces (as [x_t | h_{t−1} | 1]) is packed without being assembled first.
    @inline(__always)
    public static func packColumns(_ values: UnsafePointer<Float>, count: Int, at j: Int, n: Int,
                                   into b: UnsafeMutablePointer<Float>, row p: Int, depth: Int) {
        var done = 0
        while done < count {
            let column = j + done, j0 = column - column % panelWidth, w = min(panelWidth, n - j0)
            let run = min(count - done, j0 + w - column)                      // to the end of this column's panel
            (b + j0 * depth + p * w + (column - j0)).update(from: values + done, count: run)
            done += run
        }
    }

    /// One product term: A [m×k] times B [k×n] packed by `pack`, where element (i, p) of A is at
    /// a[i·rowStride + p·step]: a row-major A with leading dimension lda has (lda, 1), the transpose of a
    /// row-major [k×m] matrix has (1, lda). `slice` cuts out columns p0..<p0+k of A and rows p0..<p0+k of a
    /// packed B that has `depth` rows.
    public struct Term {
        public var a: UnsafePointer<Float>, rowStride: Int, step: Int, b: UnsafePointer<Float>, k: Int
        package var p0 = 0, depth: Int
        /// A is row-major [m×k] with leading dimension `lda`.
        public init(a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, k: Int) {
            self.a = a; rowStride = lda; step = 1; self.b = b; self.k = k; depth = k
        }
        /// A is the transpose of `transposed`, a row-major [k×m] matrix with leading dimension `lda`.
        public init(transposed a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, k: Int) {
            self.a = a; rowStride = 1; step = lda; self.b = b; self.k = k; depth = k
        }

        /// Rows lo..<hi of this term's k.
        package func slice(_ lo: Int, _ hi: Int) -> Term {
            var t = self
            t.a = a + lo * step; t.p0 = p0 + lo; t.k = hi - lo
            return t
        }
        /// The same A and B with k = 0 (adds nothing).
        package var empty: Term { var t = self; t.k = 0; return t }
    }

    /// The deepest slice of k a block of rows runs through at once: its 128×64 panel of B (32 KB) stays in L1
    /// while the row blocks take turns on it. Products with k ≤ 192 (as the fused gates, 28 + 128) are not cut.
    package static let sliceDepth = 128

    /// True when this kernel handles `n` columns (multiples of 16); otherwise use `BLAS.gemm`. Whether a caller uses
    /// it is the caller's choice (the LSTM's: `LSTMKernel`).
    public static func supports(n: Int) -> Bool { n > 0 && n % 16 == 0 }

    /// C = A·B (`accumulate` false) or C += A·B, row-major with leading dimensions; B is [k×n], packed.
    public static func multiply(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                                b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool) {
        multiply(m: m, n: n, Term(a: a, lda: lda, b: b, k: k), c: c, ldc: ldc, accumulate: accumulate)
    }

    /// C = bias + A₁·B₁ + A₂·B₂ (`accumulate` false) or C += that; `bias` is one row of n (or none).
    public static func multiply(m: Int, n: Int, _ first: Term, _ second: Term? = nil, bias: UnsafePointer<Float>? = nil,
                                c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool) {
        precondition(n % 16 == 0, "SmallGEMM: n = \(n) is not a multiple of 16")
        let terms = (first, second ?? first.empty)
        // A deep product runs as slices of k, each term's k cut evenly into pieces of at most `sliceDepth`; a slice
        // after the first adds to C. A panel of B deeper than L1 holds would stream from L2 again for every block of
        // rows.
        let sliced = first.k + terms.1.k > 192
        let pieces = sliced ? ((first.k + sliceDepth - 1) / sliceDepth, (terms.1.k + sliceDepth - 1) / sliceDepth)
            : (1, 0)
        @inline(__always) func slice(_ q: Int) -> (Term, Term) {
            guard sliced else { return terms }
            let (t, part, count) = q < pieces.0 ? (terms.0, q, pieces.0) : (terms.1, q - pieces.0, pieces.1)
            return (t.slice(t.k * part / count, t.k * (part + 1) / count), t.empty)
        }
        // Groups of 4 rows, at most 32 rows at a time (more rows push the k×64 panel of B out of L1): column
        // panels outside, rows inside, so the panel stays in L1 while every row block uses it.
        let m4 = m - m % 4
        var r0 = 0
        while r0 < m4 {
            let r1 = min(m4, r0 + 32)
            var j = 0
            while j < n {
                let wide = j + 64 <= n, pair = j + 32 <= n
                for q in 0..<(pieces.0 + pieces.1) {
                    let sliceTerms = slice(q), sliceBias = q == 0 ? bias : nil, add = accumulate || q > 0
                    var r = r0
                    while r < r1 {
                        if wide {
                            block4x4(r, j, sliceTerms, n, sliceBias, c, ldc, add)
                        } else if pair {
                            block4x1(r, j, pair: true, sliceTerms, n, sliceBias, c, ldc, add)
                        } else {
                            block4x1(r, j, pair: false, sliceTerms, n, sliceBias, c, ldc, add)
                        }
                        r += 4
                    }
                }
                j += wide ? 64 : pair ? 32 : 16
            }
            r0 = r1
        }
        // Remaining rows (a batch of one is all remainder): 128 columns at a time, so that eight
        // independent accumulators hide the FMA latency while B streams through once.
        for r in m4..<m {
            var j = 0
            while j + 128 <= n { block1x8(r, j, terms, n, bias, c, ldc, accumulate); j += 128 }
            while j < n { block1x1(r, j, terms, n, bias, c, ldc, accumulate); j += 16 }
        }
    }

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> V {
        UnsafeRawPointer(p).loadUnaligned(as: V.self)
    }
    @inline(__always) static func start(_ bias: UnsafePointer<Float>?, _ j: Int) -> V {
        bias.map { load($0 + j) } ?? V()
    }
    @inline(__always) static func store(_ v: V, _ p: UnsafeMutablePointer<Float>, _ accumulate: Bool) {
        UnsafeMutableRawPointer(p).storeBytes(of: accumulate ? v + load(p) : v, as: V.self)
    }
    /// The two terms in turn (the second may have k = 0).
    @inline(__always) package static func term(_ terms: (Term, Term), _ s: Int) -> Term { s == 0 ? terms.0 : terms.1 }
    /// Where column j of a packed B [k×n] starts, and the row stride there (its panel's width).
    @inline(__always) package static func column(_ t: Term, _ j: Int, _ n: Int) -> (UnsafePointer<Float>, Int) {
        let j0 = j - j % panelWidth, width = min(panelWidth, n - j0)
        return (t.b + j0 * t.depth + t.p0 * width + (j - j0), width)
    }

    /// Rows r..<r+4, columns j..<j+64.
    @inline(__always)
    package static func block4x4(_ r: Int, _ j: Int, _ terms: (Term, Term), _ n: Int, _ bias: UnsafePointer<Float>?,
                         _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ accumulate: Bool) {
        let b0i = start(bias, j), b1i = start(bias, j + 16), b2i = start(bias, j + 32), b3i = start(bias, j + 48)
        var c00 = b0i, c01 = b1i, c02 = b2i, c03 = b3i, c10 = b0i, c11 = b1i, c12 = b2i, c13 = b3i
        var c20 = b0i, c21 = b1i, c22 = b2i, c23 = b3i, c30 = b0i, c31 = b1i, c32 = b2i, c33 = b3i
        for s in 0..<2 {
            let t = term(terms, s)
            let a0 = t.a + r * t.rowStride, a1 = a0 + t.rowStride, a2 = a1 + t.rowStride, a3 = a2 + t.rowStride
            let (first, ldb) = column(t, j, n)
            var bp = first
            for p in 0..<t.k {
                let b0 = load(bp), b1 = load(bp + 16), b2 = load(bp + 32), b3 = load(bp + 48)
                var v = V(repeating: a0[p * t.step])
                c00 = c00.plusProduct(v, b0); c01 = c01.plusProduct(v, b1)
                c02 = c02.plusProduct(v, b2); c03 = c03.plusProduct(v, b3)
                v = V(repeating: a1[p * t.step])
                c10 = c10.plusProduct(v, b0); c11 = c11.plusProduct(v, b1)
                c12 = c12.plusProduct(v, b2); c13 = c13.plusProduct(v, b3)
                v = V(repeating: a2[p * t.step])
                c20 = c20.plusProduct(v, b0); c21 = c21.plusProduct(v, b1)
                c22 = c22.plusProduct(v, b2); c23 = c23.plusProduct(v, b3)
                v = V(repeating: a3[p * t.step])
                c30 = c30.plusProduct(v, b0); c31 = c31.plusProduct(v, b1)
                c32 = c32.plusProduct(v, b2); c33 = c33.plusProduct(v, b3)
                bp += ldb
            }
        }
        let o0 = c + r * ldc + j, o1 = o0 + ldc, o2 = o1 + ldc, o3 = o2 + ldc
        store(c00, o0, accumulate); store(c01, o0 + 16, accumulate)
        store(c02, o0 + 32, accumulate); store(c03, o0 + 48, accumulate)
        store(c10, o1, accumulate); store(c11, o1 + 16, accumulate)
        store(c12, o1 + 32, accumulate); store(c13, o1 + 48, accumulate)
        store(c20, o2, accumulate); store(c21, o2 + 16, accumulate)
        store(c22, o2 + 32, accumulate); store(c23, o2 + 48, accumulate)
        store(c30, o3, accumulate); store(c31, o3 + 16, accumulate)
        store(c32, o3 + 32, accumulate); store(c33, o3 + 48, accumulate)
    }

    /// Rows r..<r+4, columns j..<j+16, or with `pair` j..<j+32: eight accumulators then hide the FMA latency, which
    /// four do not (as on a 32-column tail panel, which the 160-wide [x | h | 1] rows of the weight gradients end in).
    /// Called with a constant `pair`, each use compiles to its own loop.
    @inline(__always)
    package static func block4x1(_ r: Int, _ j: Int, pair: Bool, _ terms: (Term, Term), _ n: Int,
                         _ bias: UnsafePointer<Float>?, _ c: UnsafeMutablePointer<Float>, _ ldc: Int,
                         _ accumulate: Bool) {
        var c0 = start(bias, j), c1 = c0, c2 = c0, c3 = c0
        var d0 = pair ? start(bias, j + 16) : V(), d1 = d0, d2 = d0, d3 = d0
        for s in 0..<2 {
            let t = term(terms, s)
            let a0 = t.a + r * t.rowStride, a1 = a0 + t.rowStride, a2 = a1 + t.rowStride, a3 = a2 + t.rowStride
            let (first, ldb) = column(t, j, n)
            var bp = first
            for p in 0..<t.k {
                let b0 = load(bp)
                let v0 = V(repeating: a0[p * t.step]), v1 = V(repeating: a1[p * t.step])
                let v2 = V(repeating: a2[p * t.step]), v3 = V(repeating: a3[p * t.step])
                c0 = c0.plusProduct(v0, b0); c1 = c1.plusProduct(v1, b0)
                c2 = c2.plusProduct(v2, b0); c3 = c3.plusProduct(v3, b0)
                if pair {
                    let b1 = load(bp + 16)
                    d0 = d0.plusProduct(v0, b1); d1 = d1.plusProduct(v1, b1)
                    d2 = d2.plusProduct(v2, b1); d3 = d3.plusProduct(v3, b1)
                }
                bp += ldb
            }
        }
        let o0 = c + r * ldc + j
        store(c0, o0, accumulate); store(c1, o0 + ldc, accumulate)
        store(c2, o0 + 2 * ldc, accumulate); store(c3, o0 + 3 * ldc, accumulate)
        if pair {
            let o1 = o0 + 16
            store(d0, o1, accumulate); store(d1, o1 + ldc, accumulate)
            store(d2, o1 + 2 * ldc, accumulate); store(d3, o1 + 3 * ldc, accumulate)
        }
    }

    /// Row r, columns j..<j+128.
    @inline(__always)
    package static func block1x8(_ r: Int, _ j: Int, _ terms: (Term, Term), _ n: Int, _ bias: UnsafePointer<Float>?,
                         _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ accumulate: Bool) {
        var c0 = start(bias, j), c1 = start(bias, j + 16), c2 = start(bias, j + 32), c3 = start(bias, j + 48)
        var c4 = start(bias, j + 64), c5 = start(bias, j + 80), c6 = start(bias, j + 96), c7 = start(bias, j + 112)
        for s in 0..<2 {
            let t = term(terms, s)
            let a0 = t.a + r * t.rowStride
            // Two full panels, each read with stride 64.
            var bp = column(t, j, n).0, bq = column(t, j + 64, n).0
            for p in 0..<t.k {
                let v = V(repeating: a0[p * t.step])
                c0 = c0.plusProduct(v, load(bp)); c1 = c1.plusProduct(v, load(bp + 16))
                c2 = c2.plusProduct(v, load(bp + 32)); c3 = c3.plusProduct(v, load(bp + 48))
                c4 = c4.plusProduct(v, load(bq)); c5 = c5.plusProduct(v, load(bq + 16))
                c6 = c6.plusProduct(v, load(bq + 32)); c7 = c7.plusProduct(v, load(bq + 48))
                bp += 64
                bq += 64
            }
        }
        let o = c + r * ldc + j
        store(c0, o, accumulate); store(c1, o + 16, accumulate)
        store(c2, o + 32, accumulate); store(c3, o + 48, accumulate)
        store(c4, o + 64, accumulate); store(c5, o + 80, accumulate)
        store(c6, o + 96, accumulate); store(c7, o + 112, accumulate)
    }

    /// Row r, columns j..<j+16.
    @inline(__always)
    package static func block1x1(_ r: Int, _ j: Int, _ terms: (Term, Term), _ n: Int, _ bias: UnsafePointer<Float>?,
                         _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ accumulate: Bool) {
        var c0 = start(bias, j)
        for s in 0..<2 {
            let t = term(terms, s)
            let a0 = t.a + r * t.rowStride
            let (first, ldb) = column(t, j, n)
            var bp = first
            for p in 0..<t.k { c0 = c0.plusProduct(V(repeating: a0[p * t.step]), load(bp)); bp += ldb }
        }
        store(c0, c + r * ldc + j, accumulate)
    }
}
