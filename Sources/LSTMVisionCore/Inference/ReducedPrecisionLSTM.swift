/// An LSTM layer's forward in inference with its gate weights in bf16 or int8 (`LSTM.precision`): per direction the
/// input products of every step up front, then per step the recurrent product into the gates and the fp32 cell update
/// (`LSTMKernels.cellForward`, as the fp32 forward). The batch's rows are independent chains: they are split among
/// the threads, and a bidirectional layer's directions run side by side; one sequence of one direction runs on two
/// threads in `Lockstep`, each on half of the hidden units (`forwardHalves`).
struct ReducedLSTMDirection: Sendable {
    let weightIH: ReducedPrecisionWeights, weightHH: ReducedPrecisionWeights
    /// b_ih + b_hh [4H].
    let bias: [Float]
    let hidden: Int
    /// Per half of the hidden units (H a multiple of 32): the gate rows i, f, g, o of its units, packed alone.
    let halves: [(weightIH: ReducedPrecisionWeights, weightHH: ReducedPrecisionWeights, bias: [Float])]

    init(weightIH wih: Tensor, weightHH whh: Tensor, biasIH: Tensor, biasHH: Tensor, precision: Precision) {
        let (h, inputs) = (whh.shape[1], wih.shape[1])
        hidden = h
        func pack(_ w: [Float], rows: Int, columns: Int) -> ReducedPrecisionWeights {
            w.withUnsafeBufferPointer {
                ReducedPrecisionWeights($0.baseAddress!, rows: rows, columns: columns, precision: precision)
            }
        }
        weightIH = pack(wih.scalars, rows: 4 * h, columns: inputs)
        weightHH = pack(whh.scalars, rows: 4 * h, columns: h)
        let b = zip(biasIH.scalars, biasHH.scalars).map { $0 + $1 }
        bias = b
        // Half p's rows: row q·H + p·H/2 + u of the weights and biases, in the order q, u. Each row is packed and
        // scaled on its own, so a half's products are the whole matrix's rows, bit for bit.
        let half = h / 2
        func rows(_ p: Int, _ w: [Float], width: Int) -> [Float] {
            var out: [Float] = []
            for q in 0..<4 {
                let from = (q * h + p * half) * width
                out += w[from..<(from + half * width)]
            }
            return out
        }
        halves = h % 32 != 0 ? [] : (0..<2).map { p in
            (pack(rows(p, wih.scalars, width: inputs), rows: 4 * half, columns: inputs),
             pack(rows(p, whh.scalars, width: h), rows: 4 * half, columns: h), rows(p, b, width: 1))
        }
    }

    /// One sequence x [T, 1, I] from h0, c0 [1, H] on two threads in `Lockstep`, each computing the gates and the cell
    /// update of its half of the units and reading only its half of the weights; they meet after every step, when h_t
    /// is whole. Writes as `forward` does; returns false, having written nothing, when no lockstep could start.
    func forwardHalves(_ x: UnsafePointer<Float>, steps T: Int, reverse: Bool, h0: UnsafePointer<Float>,
                       c0: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>?, outputWidth: Int, column: Int,
                       h: UnsafeMutablePointer<Float>, c: UnsafeMutablePointer<Float>) -> Bool {
        let (H, I, half) = (hidden, weightIH.columns, hidden / 2)
        // h_{t−1} and h_t of the whole layer, alternating: read by both halves, each writing its own units.
        let shared = AlignedFloats(uninitializedCount: 2 * H)
        shared.base.update(from: h0, count: H)
        nonisolated(unsafe) let (x, c0, output, h, c, hb) = (x, c0, output, h, c, shared.base)
        return withExtendedLifetime(shared) {
            Lockstep.run { p in
                let part = halves[p], units = p * half
                var gates = [Float](repeating: 0, count: T * 4 * half), cells = [Float](repeating: 0, count: 2 * half)
                gates.withUnsafeMutableBufferPointer { gp in cells.withUnsafeMutableBufferPointer { cb in
                    let g = gp.baseAddress!
                    part.bias.withUnsafeBufferPointer { b in
                        for t in 0..<T { (g + t * 4 * half).update(from: b.baseAddress!, count: 4 * half) }
                    }
                    part.weightIH.multiply(x, count: T, ldx: I, into: g, ldy: 4 * half, accumulate: true)
                    var (cp, cn) = (cb.baseAddress!, cb.baseAddress! + half)
                    cp.update(from: c0 + units, count: half)
                    for step in 0..<T {
                        let t = reverse ? T - 1 - step : step, gt = g + t * 4 * half
                        let hp = hb + (step % 2) * H, hn = hb + ((step + 1) % 2) * H
                        part.weightHH.multiply(hp, count: 1, ldx: H, into: gt, ldy: 4 * half, accumulate: true)
                        LSTMKernels.cellForward(gates: gt, cPrev: cp, c: cn, tanhC: nil, h: hn + units, batch: 1,
                                                hidden: half)
                        swap(&cp, &cn)
                        output.map { ($0 + t * outputWidth + column + units).update(from: hn + units, count: half) }
                        Lockstep.barrier()   // h_t whole before either half starts step t + 1
                    }
                    (h + units).update(from: hb + (T % 2) * H + units, count: half)
                    (c + units).update(from: cp, count: half)
                } }
            }
        }
    }

    /// The most rows `forward` runs through the time loop at once.
    static let blockRows = 32

    /// Rows `rows` of x [T, N, I] from h0, c0 [N, H]: writes each step's h into `output` [T, N, D·H] at column
    /// `column` (when given), the final h and c into `h`, `c` [N, H].
    func forward(_ x: UnsafePointer<Float>, steps T: Int, batch N: Int, rows: Range<Int>, reverse: Bool,
                 h0: UnsafePointer<Float>, c0: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>?,
                 outputWidth: Int, column: Int, h: UnsafeMutablePointer<Float>, c: UnsafeMutablePointer<Float>) {
        let (H, I) = (hidden, weightIH.columns), most = min(rows.count, ReducedLSTMDirection.blockRows)
        guard most > 0 else { return }
        // The rows in blocks of at most `blockRows`, one after the other, in one set of buffers: a block's gates
        // stay in cache (the ReNet's 896 rows at batch 64 made them 6.4 MB). Each row is scaled and computed alone,
        // so the blocks give the values of all rows at once.
        var gates = [Float](repeating: 0, count: T * most * 4 * H)   // [T, n, 4H]: bias + every step's input product
        var state = [Float](repeating: 0, count: 4 * most * H)       // h, c, next c, next h
        gates.withUnsafeMutableBufferPointer { gp in state.withUnsafeMutableBufferPointer { sp in
            let g = gp.baseAddress!, s = sp.baseAddress!
            for lo in stride(from: rows.lowerBound, to: rows.upperBound, by: most) {
                let n = min(most, rows.upperBound - lo)
                bias.withUnsafeBufferPointer { b in
                    for r in 0..<(T * n) { (g + r * 4 * H).update(from: b.baseAddress!, count: 4 * H) }
                }
                for t in 0..<T {
                    weightIH.multiply(x + (t * N + lo) * I, count: n, ldx: I, into: g + t * n * 4 * H, ldy: 4 * H,
                                      accumulate: true)
                }
                var (hp, cp, cn, hn) = (s, s + n * H, s + 2 * n * H, s + 3 * n * H)
                hp.update(from: h0 + lo * H, count: n * H)
                cp.update(from: c0 + lo * H, count: n * H)
                for step in 0..<T {
                    let t = reverse ? T - 1 - step : step, gt = g + t * n * 4 * H
                    weightHH.multiply(hp, count: n, ldx: H, into: gt, ldy: 4 * H, accumulate: true)
                    LSTMKernels.cellForward(gates: gt, cPrev: cp, c: cn, tanhC: nil, h: hn, batch: n, hidden: H)
                    swap(&cp, &cn)
                    swap(&hp, &hn)
                    if let output {
                        for r in 0..<n {
                            (output + (t * N + lo + r) * outputWidth + column).update(from: hp + r * H, count: H)
                        }
                    }
                }
                (h + lo * H).update(from: hp, count: n * H)
                (c + lo * H).update(from: cp, count: n * H)
            }
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
    // One sequence of one direction: its two halves in lockstep when there are two threads.
    let halves = N == 1 && D == 1 && Parallel.threads >= 2 && !directions[0].halves.isEmpty && Lockstep.available
    x.scalars.withUnsafeBufferPointer { xp in out.withUnsafeMutableBufferPointer { op in
        finals.withUnsafeMutableBufferPointer { fp in starts.withUnsafeBufferPointer { sp in
            nonisolated(unsafe) let (xb, ob, fb, sb) = (xp.baseAddress!, op.baseAddress, fp.baseAddress!,
                                                        sp.baseAddress!)
            if halves, directions[0].forwardHalves(xb, steps: T, reverse: false, h0: sb, c0: sb + H,
                                                    output: outputs ? ob : nil, outputWidth: H, column: 0, h: fb,
                                                    c: fb + H) {
                return
            }
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
