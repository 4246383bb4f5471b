/// An LSTM layer's forward in inference with its gate weights in bf16 or int8 (`LSTM.precision`): per direction the
/// input products of every step up front, then per step the recurrent product into the gates and the fp32 cell update
/// (`LSTMKernels.cellForward`, as the fp32 forward). The batch's rows are independent chains: they are split among
/// the threads, and a bidirectional layer's directions run side by side.
struct ReducedLSTMDirection: Sendable {
    let weightIH: ReducedPrecisionWeights, weightHH: ReducedPrecisionWeights
    /// b_ih + b_hh [4H].
    let bias: [Float]
    let hidden: Int

    init(weightIH wih: Tensor, weightHH whh: Tensor, biasIH: Tensor, biasHH: Tensor, precision: Precision) {
        let (h, inputs) = (whh.shape[1], wih.shape[1])
        hidden = h
        weightIH = wih.scalars.withUnsafeBufferPointer {
            ReducedPrecisionWeights($0.baseAddress!, rows: 4 * h, columns: inputs, precision: precision)
        }
        weightHH = whh.scalars.withUnsafeBufferPointer {
            ReducedPrecisionWeights($0.baseAddress!, rows: 4 * h, columns: h, precision: precision)
        }
        bias = zip(biasIH.scalars, biasHH.scalars).map { $0 + $1 }
    }

    /// Rows `rows` of x [T, N, I] from h0, c0 [N, H]: writes each step's h into `output` [T, N, D·H] at column
    /// `column` (when given), the final h and c into `h`, `c` [N, H].
    func forward(_ x: UnsafePointer<Float>, steps T: Int, batch N: Int, rows: Range<Int>, reverse: Bool,
                 h0: UnsafePointer<Float>, c0: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>?,
                 outputWidth: Int, column: Int, h: UnsafeMutablePointer<Float>, c: UnsafeMutablePointer<Float>) {
        let (H, I, n) = (hidden, weightIH.columns, rows.count)
        guard n > 0 else { return }
        // [T, n, 4H] gates: bias, plus the input products of every step.
        var gates = [Float](repeating: 0, count: T * n * 4 * H)
        var state = [Float](repeating: 0, count: 4 * n * H)   // h, c, next c, next h
        gates.withUnsafeMutableBufferPointer { gp in state.withUnsafeMutableBufferPointer { sp in
            let g = gp.baseAddress!, s = sp.baseAddress!
            bias.withUnsafeBufferPointer { b in
                for r in 0..<(T * n) { (g + r * 4 * H).update(from: b.baseAddress!, count: 4 * H) }
            }
            for t in 0..<T {
                weightIH.multiply(x + (t * N + rows.lowerBound) * I, count: n, ldx: I, into: g + t * n * 4 * H,
                                  ldy: 4 * H, accumulate: true)
            }
            var (hp, cp, cn, hn) = (s, s + n * H, s + 2 * n * H, s + 3 * n * H)
            hp.update(from: h0 + rows.lowerBound * H, count: n * H)
            cp.update(from: c0 + rows.lowerBound * H, count: n * H)
            for step in 0..<T {
                let t = reverse ? T - 1 - step : step, gt = g + t * n * 4 * H
                weightHH.multiply(hp, count: n, ldx: H, into: gt, ldy: 4 * H, accumulate: true)
                LSTMKernels.cellForward(gates: gt, cPrev: cp, c: cn, tanhC: nil, h: hn, batch: n, hidden: H)
                swap(&cp, &cn)
                swap(&hp, &hn)
                if let output {
                    for r in 0..<n {
                        (output + (t * N + rows.lowerBound + r) * outputWidth + column).update(from: hp + r * H,
                                                                                                count: H)
                    }
                }
            }
            (h + rows.lowerBound * H).update(from: hp, count: n * H)
            (c + rows.lowerBound * H).update(from: cp, count: n * H)
        } }
    }
}

/// One layer's directions over x [T, N, I] from their initial states [N, H]: the joined outputs [T, N, D·H] (when
/// `outputs`) and each direction's final h, c.
func reducedLSTMLayer(_ x: Tensor, _ directions: [ReducedLSTMDirection], h0: [Tensor], c0: [Tensor], outputs: Bool)
    -> (output: Tensor?, h: [Tensor], c: [Tensor]) {
    let (T, N, D, H) = (x.shape[0], x.shape[1], directions.count, directions[0].hidden)
    var out = [Float](repeating: 0, count: outputs ? T * N * D * H : 0)
    var finals = [Float](repeating: 0, count: 2 * D * N * H)   // h of each direction, then c of each
    let starts = (h0 + c0).flatMap(\.scalars)                   // the same layout
    // Parts: each direction's rows in up to `threads / D` chunks (at least one per direction).
    let chunks = max(1, min(N, Parallel.threads / D)), parts = D * chunks
    x.scalars.withUnsafeBufferPointer { xp in out.withUnsafeMutableBufferPointer { op in
        finals.withUnsafeMutableBufferPointer { fp in starts.withUnsafeBufferPointer { sp in
            nonisolated(unsafe) let (xb, ob, fb, sb) = (xp.baseAddress!, op.baseAddress, fp.baseAddress!,
                                                        sp.baseAddress!)
            Parallel.forParts(parts, parts: parts) { range in
                for part in range {
                    let d = part / chunks, k = part % chunks
                    directions[d].forward(xb, steps: T, batch: N, rows: (k * N / chunks)..<((k + 1) * N / chunks),
                                          reverse: d == 1, h0: sb + d * N * H, c0: sb + (D + d) * N * H,
                                          output: outputs ? ob : nil, outputWidth: D * H, column: d * H,
                                          h: fb + d * N * H, c: fb + (D + d) * N * H)
                }
            }
        } }
    } }
    let state = { (k: Int) in Tensor(shape: [N, H], scalars: Array(finals[(k * N * H)..<((k + 1) * N * H)])) }
    return (outputs ? Tensor(shape: [T, N, D * H], scalars: out) : nil, (0..<D).map(state), (D..<(2 * D)).map(state))
}
