import Foundation

/// A cache-blocked GEMM for large products, BLIS/Goto style, with the contract of `BLAS.gemm`: k runs in blocks of
/// at most `kc`, op(B) is packed into blocks of kc×64 panels (a block stays in L2), op(A) into blocks of `mc` rows cut
/// into 6-row micro-panels (one stays in L1), and a 6×64 register kernel reads both contiguously. Packing resolves the
/// transposes, so one kernel serves all four cases; zero padding resolves the edges. It exists because OpenBLAS
/// runs its AVX2 kernels here (OPENBLAS_CORETYPE=Haswell), at half of what the AVX-512 FMA units deliver.
public enum BlockedGEMM {
    typealias V = SIMD16<Float>

    /// True when this module was compiled for AVX-512 (Package.swift's LSTMVISION_AVX512), where the kernel's 24
    /// accumulators fit the 32 vector registers; `BLAS.gemm` uses this GEMM only there.
    public static var isAVX512Build: Bool {
        #if LSTMVISION_AVX512
        return true
        #else
        return false
        #endif
    }

    /// Rows and columns of the register kernel's block of C.
    static let mr = 6, nr = 64

    /// Depth of a k block, rows of an A block and columns of a B block: a 6-row micro-panel of A (6 KB at depth 256)
    /// stays in L1 while the B block's panels (kc × nc floats, 512 KB) stream from L2 past it.
    static let kc = 256, mc = 96, nc = 512

    /// C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C, row-major with leading dimensions, split over `threads`
    /// (blocks of rows, or of 64-column panels when C is wider than tall), each thread packing its own operands.
    public static func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
                            a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                            beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, threads: Int = Parallel.threads) {
        if m == 0 || n == 0 { return }
        let op = Operands(a: a, aRow: transA ? 1 : lda, aStep: transA ? lda : 1,
                          b: b, bStep: transB ? 1 : ldb, bColumn: transB ? ldb : 1)
        nonisolated(unsafe) let c = c
        if m >= n {
            let units = (m + mr - 1) / mr, parts = max(1, min(threads, units / 4))
            Parallel.forParts(units, parts: parts) { r in
                let lo = r.lowerBound * mr, hi = min(m, r.upperBound * mr)
                multiply(op.rows(lo), m: hi - lo, n: n, k: k, alpha: alpha, beta: beta, c: c + lo * ldc, ldc: ldc)
            }
        } else {
            let units = (n + nr - 1) / nr, parts = max(1, min(threads, units / 2))
            Parallel.forParts(units, parts: parts) { r in
                let lo = r.lowerBound * nr, hi = min(n, r.upperBound * nr)
                multiply(op.columns(lo), m: m, n: hi - lo, k: k, alpha: alpha, beta: beta, c: c + lo, ldc: ldc)
            }
        }
    }

    /// op(A) and op(B) as strides: element (i, p) of op(A) is a[i·aRow + p·aStep], (p, j) of op(B) is
    /// b[p·bStep + j·bColumn].
    struct Operands: @unchecked Sendable {
        var a: UnsafePointer<Float>, aRow: Int, aStep: Int, b: UnsafePointer<Float>, bStep: Int, bColumn: Int
        /// The operands of the rows from `i` on.
        func rows(_ i: Int) -> Operands { var o = self; o.a += i * aRow; return o }
        /// The operands of the columns from `j` on.
        func columns(_ j: Int) -> Operands { var o = self; o.b += j * bColumn; return o }
    }

    /// One thread's product: the blocking loops around the kernel, with this thread's packing buffers.
    static func multiply(_ op: Operands, m: Int, n: Int, k: Int, alpha: Float, beta: Float,
                         c: UnsafeMutablePointer<Float>, ldc: Int) {
        if k == 0 {
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
            return
        }
        let depths = (k + kc - 1) / kc, depthMax = (k + depths - 1) / depths
        let widthMax = min(nc, roundUp(n, nr)), heightMax = min(mc, roundUp(m, mr))
        let (packedA, packedB) = GEMMScratch.current.buffers(a: heightMax * depthMax, b: depthMax * widthMax)
        var jc = 0
        while jc < n {
            let width = min(nc, n - jc)
            for q in 0..<depths {
                let p0 = k * q / depths, depth = k * (q + 1) / depths - p0
                packB(op, p0: p0, depth: depth, j0: jc, width: width, into: packedB)
                let blockBeta = q == 0 ? beta : 1
                var ic = 0
                while ic < m {
                    let height = min(mc, m - ic)
                    packA(op, i0: ic, height: height, p0: p0, depth: depth, alpha: alpha, into: packedA)
                    block(depth: depth, height: height, width: width, a: packedA, b: packedB,
                          c: c + ic * ldc + jc, ldc: ldc, beta: blockBeta)
                    ic += height
                }
            }
            jc += width
        }
    }

    @inline(__always) static func roundUp(_ x: Int, _ unit: Int) -> Int { (x + unit - 1) / unit * unit }

    /// Packs rows p0..<p0+depth, columns j0..<j0+width of op(B) as panels of 64 columns, each depth × 64 row-major,
    /// zero beyond `width`.
    static func packB(_ op: Operands, p0: Int, depth: Int, j0: Int, width: Int, into out: UnsafeMutablePointer<Float>) {
        var panel = 0
        while panel * nr < width {
            let dst = out + panel * depth * nr, j = j0 + panel * nr, w = min(nr, width - panel * nr)
            if op.bColumn == 1 {        // rows of op(B) are contiguous
                for p in 0..<depth {
                    let row = dst + p * nr
                    row.update(from: op.b + (p0 + p) * op.bStep + j, count: w)
                    if w < nr { (row + w).update(repeating: 0, count: nr - w) }
                }
            } else {                    // columns of op(B) are contiguous (transB): a transpose, 16×16 at a time,
                // 16 columns at a time, each read from start to end (16 streams for the prefetcher).
                let src = op.b + j * op.bColumn + p0, whole = depth - depth % 16
                var jj = 0
                while jj + 16 <= w {
                    for q in stride(from: 0, to: whole, by: 16) {
                        transpose16(src + jj * op.bColumn + q, op.bColumn, dst + q * nr + jj, nr)
                    }
                    jj += 16
                }
                for jt in 0..<w {
                    for p in (jt < jj ? whole : 0)..<depth { dst[p * nr + jt] = src[jt * op.bColumn + p] }
                }
                if w < nr { for p in 0..<depth { (dst + p * nr + w).update(repeating: 0, count: nr - w) } }
            }
            panel += 1
        }
    }

    /// Writes the transpose of the 16×16 block at `src` (rows `stride` apart) to `dst` (rows `dstStride` apart): four
    /// rounds of unzipping pairs of rows, each of which rotates the 8 bits of an element's index by one.
    @inline(__always)
    static func transpose16(_ src: UnsafePointer<Float>, _ stride: Int, _ dst: UnsafeMutablePointer<Float>,
                            _ dstStride: Int) {
        withUnsafeTemporaryAllocation(of: V.self, capacity: 32) { t in
            for r in 0..<16 { t[r] = load(src + r * stride) }
            var (from, to) = (0, 16)
            for _ in 0..<4 {
                for i in 0..<8 {
                    let pair = SIMD32(lowHalf: t[from + 2 * i], highHalf: t[from + 2 * i + 1])
                    t[to + i] = pair.evenHalf
                    t[to + 8 + i] = pair.oddHalf
                }
                (from, to) = (to, from)
            }
            for r in 0..<16 { UnsafeMutableRawPointer(dst + r * dstStride).storeBytes(of: t[from + r], as: V.self) }
        }
    }

    /// Packs rows i0..<i0+height, columns p0..<p0+depth of alpha · op(A) as 6-row micro-panels, each depth × 6
    /// row-major (the 6 values of a column together), zero beyond `height`.
    static func packA(_ op: Operands, i0: Int, height: Int, p0: Int, depth: Int, alpha: Float,
                      into out: UnsafeMutablePointer<Float>) {
        var panel = 0
        while panel * mr < height {
            let dst = out + panel * depth * mr, i = i0 + panel * mr, h = min(mr, height - panel * mr)
            let src = op.a + i * op.aRow + p0 * op.aStep
            if h == mr && alpha == 1 {
                if op.aRow == 1 {       // transA: the 6 values of a column are contiguous
                    for p in 0..<depth { (dst + p * mr).update(from: src + p * op.aStep, count: mr) }
                } else {
                    let r = op.aRow
                    for p in 0..<depth {
                        let s = src + p
                        let d = dst + p * mr
                        d[0] = s[0]; d[1] = s[r]; d[2] = s[2 * r]; d[3] = s[3 * r]; d[4] = s[4 * r]; d[5] = s[5 * r]
                    }
                }
            } else {
                for p in 0..<depth {
                    for ii in 0..<mr { dst[p * mr + ii] = ii < h ? alpha * src[ii * op.aRow + p * op.aStep] : 0 }
                }
            }
            panel += 1
        }
    }

    /// C[height×width] (+)= packed A block · packed B block: each 6-row micro-panel against every 64-column panel.
    static func block(depth: Int, height: Int, width: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                      c: UnsafeMutablePointer<Float>, ldc: Int, beta: Float) {
        let rowPanels = (height + mr - 1) / mr, columnPanels = (width + nr - 1) / nr
        @inline(__always) func tile(_ ir: Int, _ jr: Int) {
            kernel(depth: depth, a: a + ir * depth * mr, b: b + jr * depth * nr, c: c + ir * mr * ldc + jr * nr,
                   ldc: ldc, rows: min(mr, height - ir * mr), columns: min(nr, width - jr * nr), beta: beta)
        }
        for ir in 0..<rowPanels { for jr in 0..<columnPanels { tile(ir, jr) } }
    }

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> V {
        UnsafeRawPointer(p).loadUnaligned(as: V.self)
    }
    /// Writes v to p, adding beta times what is there (nothing read when beta is 0).
    @inline(__always) static func put(_ v: V, _ p: UnsafeMutablePointer<Float>, _ beta: Float) {
        let value = beta == 0 ? v : beta == 1 ? v + load(p) : v + beta * load(p)
        UnsafeMutableRawPointer(p).storeBytes(of: value, as: V.self)
    }

    /// The register kernel: a 6×64 block of C from a 6-row micro-panel of A and a 64-column panel of B, `depth` deep,
    /// in 24 SIMD16 accumulators; C = block + beta · C on the `rows` × `columns` that exist.
    @inline(never)
    static func kernel(depth: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>,
                       ldc: Int, rows: Int, columns: Int, beta: Float) {
        var c00 = V(), c01 = V(), c02 = V(), c03 = V(), c10 = V(), c11 = V(), c12 = V(), c13 = V()
        var c20 = V(), c21 = V(), c22 = V(), c23 = V(), c30 = V(), c31 = V(), c32 = V(), c33 = V()
        var c40 = V(), c41 = V(), c42 = V(), c43 = V(), c50 = V(), c51 = V(), c52 = V(), c53 = V()
        var ap = a, bp = b
        for _ in 0..<depth {
            let b0 = load(bp), b1 = load(bp + 16), b2 = load(bp + 32), b3 = load(bp + 48)
            var v = V(repeating: ap[0])
            c00 = c00.plusProduct(v, b0); c01 = c01.plusProduct(v, b1)
            c02 = c02.plusProduct(v, b2); c03 = c03.plusProduct(v, b3)
            v = V(repeating: ap[1])
            c10 = c10.plusProduct(v, b0); c11 = c11.plusProduct(v, b1)
            c12 = c12.plusProduct(v, b2); c13 = c13.plusProduct(v, b3)
            v = V(repeating: ap[2])
            c20 = c20.plusProduct(v, b0); c21 = c21.plusProduct(v, b1)
            c22 = c22.plusProduct(v, b2); c23 = c23.plusProduct(v, b3)
            v = V(repeating: ap[3])
            c30 = c30.plusProduct(v, b0); c31 = c31.plusProduct(v, b1)
            c32 = c32.plusProduct(v, b2); c33 = c33.plusProduct(v, b3)
            v = V(repeating: ap[4])
            c40 = c40.plusProduct(v, b0); c41 = c41.plusProduct(v, b1)
            c42 = c42.plusProduct(v, b2); c43 = c43.plusProduct(v, b3)
            v = V(repeating: ap[5])
            c50 = c50.plusProduct(v, b0); c51 = c51.plusProduct(v, b1)
            c52 = c52.plusProduct(v, b2); c53 = c53.plusProduct(v, b3)
            ap += mr
            bp += nr
        }
        if rows == mr && columns == nr {
            let o0 = c, o1 = o0 + ldc, o2 = o1 + ldc, o3 = o2 + ldc, o4 = o3 + ldc, o5 = o4 + ldc
            put(c00, o0, beta); put(c01, o0 + 16, beta); put(c02, o0 + 32, beta); put(c03, o0 + 48, beta)
            put(c10, o1, beta); put(c11, o1 + 16, beta); put(c12, o1 + 32, beta); put(c13, o1 + 48, beta)
            put(c20, o2, beta); put(c21, o2 + 16, beta); put(c22, o2 + 32, beta); put(c23, o2 + 48, beta)
            put(c30, o3, beta); put(c31, o3 + 16, beta); put(c32, o3 + 32, beta); put(c33, o3 + 48, beta)
            put(c40, o4, beta); put(c41, o4 + 16, beta); put(c42, o4 + 32, beta); put(c43, o4 + 48, beta)
            put(c50, o5, beta); put(c51, o5 + 16, beta); put(c52, o5 + 32, beta); put(c53, o5 + 48, beta)
            return
        }
        // An edge block: through a 6×64 tile, written element by element where C exists.
        withUnsafeTemporaryAllocation(of: V.self, capacity: mr * 4) { t in
            t[0] = c00; t[1] = c01; t[2] = c02; t[3] = c03; t[4] = c10; t[5] = c11; t[6] = c12; t[7] = c13
            t[8] = c20; t[9] = c21; t[10] = c22; t[11] = c23; t[12] = c30; t[13] = c31; t[14] = c32; t[15] = c33
            t[16] = c40; t[17] = c41; t[18] = c42; t[19] = c43; t[20] = c50; t[21] = c51; t[22] = c52; t[23] = c53
            t.baseAddress!.withMemoryRebound(to: Float.self, capacity: mr * nr) { tile in
                for r in 0..<rows {
                    let o = c + r * ldc, s = tile + r * nr
                    for j in 0..<columns { o[j] = beta == 0 ? s[j] : s[j] + beta * o[j] }
                }
            }
        }
    }
}
