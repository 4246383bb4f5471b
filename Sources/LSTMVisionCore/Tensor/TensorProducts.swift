import COpenBLAS

extension Tensor {
    /// Matrix product of two rank-2 tensors, optionally transposing either operand.
    public func matmul(_ other: Tensor, transposeSelf: Bool = false, transposeOther: Bool = false) -> Tensor {
        precondition(rank == 2 && other.rank == 2, "matmul: needs rank-2 tensors, got \(shape) and \(other.shape)")
        let m = transposeSelf ? shape[1] : shape[0], k = transposeSelf ? shape[0] : shape[1]
        let k2 = transposeOther ? other.shape[1] : other.shape[0], n = transposeOther ? other.shape[0] : other.shape[1]
        precondition(k == k2, "matmul: inner dimensions differ: "
                     + "\(shape)\(transposeSelf ? "ᵀ" : "") × \(other.shape)\(transposeOther ? "ᵀ" : "")")
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

extension SmallGEMM {
    /// B [k×n] in the kernel's layout: column panels of 64 (the last one n mod 64 wide), each panel's k rows
    /// contiguous. A panel is what one block of rows reads k times over; contiguous, it spreads over all of L1's
    /// sets, where with B's own row stride (2 KB for n = 512) it would fall into a few of them and be evicted while in
    /// use.
    /// `transposed` packs B = sourceᵀ for a row-major source [n×k] (an LSTM weight [4H, in] gives B = Wᵀ).
    /// On a cache line (`AlignedFloats`), as the kernel's loads of a panel's rows are.
    public static func pack(_ source: Tensor, transposed: Bool) -> AlignedFloats {
        precondition(source.rank == 2, "SmallGEMM.pack: needs a matrix, got \(source.shape)")
        guard source.count > 0 else { return .empty }
        let (k, n) = transposed ? (source.shape[1], source.shape[0]) : (source.shape[0], source.shape[1])
        let out = AlignedFloats(uninitializedCount: k * n)   // every element written below
        // Split among the threads when large: a training step repacks every weight after its update.
        let parts = k * n >= 1 << 15 ? Parallel.threads : 1
        source.scalars.withUnsafeBufferPointer { src in
            nonisolated(unsafe) let (src, dst) = (src.baseAddress!, out.base)
            if !transposed {   // each row of B copied into its panels
                Parallel.forParts(k, parts: min(parts, k)) { rows in
                    for p in rows { packColumns(src + p * n, count: n, at: 0, n: n, into: dst, row: p, depth: k) }
                }
                return
            }
            // B = sourceᵀ: column j of B is row j of the source, read once in order and written down its panel
            // with stride w (the panel, k·w floats, stays in cache while its w source rows are read).
            let panels = (n + panelWidth - 1) / panelWidth
            Parallel.forParts(panels, parts: min(parts, panels)) { range in
                for q in range {
                    let j0 = q * panelWidth, w = min(panelWidth, n - j0), panel = dst + j0 * k
                    for jj in 0..<w {
                        let row = src + (j0 + jj) * k
                        for p in 0..<k { panel[p * w + jj] = row[p] }
                    }
                }
            }
        }
        return out
    }
}
