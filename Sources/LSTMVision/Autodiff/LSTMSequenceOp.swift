/// One direction of one LSTM layer over a whole sequence as a single fused operation, with its
/// hand-written backpropagation through time. Gate order is PyTorch's (i, f, g, o):
///   gates = x_t·W_ihᵀ + b_ih + h_{t−1}·W_hhᵀ + b_hh
///   c_t = σ(f)·c_{t−1} + σ(i)·tanh(g),   h_t = σ(o)·tanh(c_t)
///
/// Everything is time-major ([T, N, ·]) so each time step is a contiguous block: the input projection
/// of all steps is one GEMM, the recurrent weight gradient is one GEMM after the loop, and the time loop
/// allocates nothing.
public func lstmSequence(_ x: Variable, h0: Variable, c0: Variable,
                         weightIH: Variable, weightHH: Variable, biasIH: Variable, biasHH: Variable,
                         reverse: Bool) -> (output: Variable, h: Variable, c: Variable) {
    precondition(x.value.rank == 3, "LSTM: input must be time-major [steps, batch, features], got \(x.shape)")
    let T = x.shape[0], N = x.shape[1], I = x.shape[2]
    let H4 = weightHH.shape[0], H = H4 / 4
    precondition(H4 == 4 * H && weightHH.shape == [4 * H, H], "LSTM: weight_hh must be [4H, H], got \(weightHH.shape)")
    precondition(weightIH.shape == [4 * H, I], "LSTM: weight_ih \(weightIH.shape) does not match input size \(I) (expects [\(4 * H), \(I)])")
    precondition(biasIH.shape == [4 * H] && biasHH.shape == [4 * H], "LSTM: biases must be [\(4 * H)], got \(biasIH.shape) and \(biasHH.shape)")
    precondition(h0.shape == [N, H] && c0.shape == [N, H], "LSTM: initial state must be [\(N), \(H)], got \(h0.shape) and \(c0.shape)")
    precondition(T > 0, "LSTM: sequence has no steps")

    let step = N * H
    // gates [T·N, 4H]: pre-activations, then activations (i, f, g, o) kept for the backward.
    var gates = uninitializedFloats(T * N * H4)          // every element written by the GEMM below
    // states [(T+1)·N, H]: h and c of every step plus the initial one. Forward keeps h_t at block t+1
    // (initial at 0); reverse keeps h_t at block t (initial at T). Either way the T "previous" blocks
    // and the T output blocks are each contiguous.
    var hs = uninitializedFloats((T + 1) * step)         // initial block copied in, the rest written by each step
    var cs = uninitializedFloats((T + 1) * step)
    var tanhC = uninitializedFloats(T * step)
    let initialBlock = reverse ? T : 0
    hs.replaceSubrange((initialBlock * step)..<((initialBlock + 1) * step), with: h0.value.scalars)
    cs.replaceSubrange((initialBlock * step)..<((initialBlock + 1) * step), with: c0.value.scalars)

    x.value.scalars.withUnsafeBufferPointer { xp in
    weightIH.value.scalars.withUnsafeBufferPointer { wih in
    weightHH.value.scalars.withUnsafeBufferPointer { whh in
    gates.withUnsafeMutableBufferPointer { g in
    hs.withUnsafeMutableBufferPointer { hp in
    cs.withUnsafeMutableBufferPointer { cp in
    tanhC.withUnsafeMutableBufferPointer { tc in
        nonisolated(unsafe) let (g, h, c, tc) = (g.baseAddress!, hp.baseAddress!, cp.baseAddress!, tc.baseAddress!)
        // All steps' input projections in one GEMM: [T·N, I] · W_ihᵀ → [T·N, 4H], plus both biases.
        BLAS.gemm(transA: false, transB: true, m: T * N, n: H4, k: I, a: xp.baseAddress!, lda: I,
                  b: wih.baseAddress!, ldb: I, beta: 0, c: g, ldc: H4)
        var bias = [Float](repeating: 0, count: H4)
        for j in 0..<H4 { bias[j] = biasIH.value.scalars[j] + biasHH.value.scalars[j] }
        bias.withUnsafeBufferPointer { b in
            for r in 0..<(T * N) { let row = g + r * H4; for j in 0..<H4 { row[j] += b[j] } }
        }
        // W_hhᵀ [H, 4H], laid out once per weight update so the per-step kernel reads it in place (see
        // SmallGEMM). Measured: it beats OpenBLAS up to 64 rows per core; for more, OpenBLAS wins.
        let fast = SmallGEMM.supports(n: H4) && SmallGEMM.pays(rows: N)
        let whhT = fast ? weightHH.transposedScalars : []
        nonisolated(unsafe) let w = whh.baseAddress!
        whhT.withUnsafeBufferPointer { wT in
        nonisolated(unsafe) let wT = wT.baseAddress!
        // The time loop: batch rows are independent, so each core runs every step on its own rows with
        // single-threaded GEMMs (one synchronisation per sequence instead of one per step).
        Parallel.forRowBlocks(N) { rows in
            let lo = rows.lowerBound, n = rows.count
            for s in 0..<T {
                let t = reverse ? T - 1 - s : s
                let prev = reverse ? t + 1 : t, cur = reverse ? t : t + 1
                let gt = g + t * N * H4 + lo * H4
                // Recurrent projection added in place: gates_t += h_{t−1} · W_hhᵀ.
                if fast {
                    SmallGEMM.multiply(m: n, n: H4, k: H, a: h + prev * step + lo * H, lda: H, b: wT,
                                       c: gt, ldc: H4, accumulate: true)
                } else {
                    BLAS.gemm(transA: false, transB: true, m: n, n: H4, k: H, a: h + prev * step + lo * H, lda: H,
                              b: w, ldb: H, beta: 1, c: gt, ldc: H4, threads: 1)
                }
                LSTMKernels.cellForward(gates: gt, cPrev: c + prev * step + lo * H, c: c + cur * step + lo * H,
                                        tanhC: tc + t * step + lo * H, h: h + cur * step + lo * H, batch: n, hidden: H)
            }
        }
        }
    } } } } } } }

    let outStart = reverse ? 0 : step
    let output = Tensor(shape: [T, N, H], scalars: Array(hs[outStart..<(outStart + T * step)]))
    let lastBlock = reverse ? 0 : T
    let hT = Tensor(shape: [N, H], scalars: Array(hs[(lastBlock * step)..<((lastBlock + 1) * step)]))
    let cT = Tensor(shape: [N, H], scalars: Array(cs[(lastBlock * step)..<((lastBlock + 1) * step)]))

    let inputs = [x, h0, c0, weightIH, weightHH, biasIH, biasHH]
    let outs = Autograd.results([output, hT, cT], inputs: inputs) { grads in
        // Backward through time. dgates [T·N, 4H] holds the pre-activation gradients of every step.
        var dgates = uninitializedFloats(T * N * H4)      // every step writes its block
        var dh = grads[1]?.scalars ?? [Float](repeating: 0, count: step)
        var dc = grads[2]?.scalars ?? [Float](repeating: 0, count: step)
        let dy = grads[0]?.scalars
        var dx = uninitializedFloats(x.needsGrad ? T * N * I : 0)
        var dwih = uninitializedFloats(H4 * I)
        var dwhh = uninitializedFloats(H4 * H)
        gates.withUnsafeBufferPointer { gp in
        cs.withUnsafeBufferPointer { cp in
        tanhC.withUnsafeBufferPointer { tcp in
        hs.withUnsafeBufferPointer { hp in
        dgates.withUnsafeMutableBufferPointer { dgp in
        dh.withUnsafeMutableBufferPointer { dhp in
        dc.withUnsafeMutableBufferPointer { dcp in
        weightHH.value.scalars.withUnsafeBufferPointer { whh in
            let dg = dgp.baseAddress!, dhb = dhp.baseAddress!, dcb = dcp.baseAddress!
            nonisolated(unsafe) let (gb, cb, tcb, w) = (gp.baseAddress!, cp.baseAddress!, tcp.baseAddress!, whh.baseAddress!)
            nonisolated(unsafe) let (dgs, dhs, dcs) = (dg, dhb, dcb)
            Parallel.forRowBlocks(N) { rows in
                let lo = rows.lowerBound, n = rows.count
                for s in (0..<T).reversed() {
                    let t = reverse ? T - 1 - s : s
                    let prev = reverse ? t + 1 : t
                    if let dy {
                        dy.withUnsafeBufferPointer { d in
                            for k in (lo * H)..<((lo + n) * H) { dhs[k] += d[t * step + k] }
                        }
                    }
                    let rowGates = t * N * H4 + lo * H4
                    LSTMKernels.cellBackward(gates: gb + rowGates, cPrev: cb + prev * step + lo * H,
                                             tanhC: tcb + t * step + lo * H, dh: dhs + lo * H, dc: dcs + lo * H,
                                             dgates: dgs + rowGates, batch: n, hidden: H)
                    // dh_{t−1} = dgates_t · W_hh   ([n, 4H] · [4H, H]).
                    if SmallGEMM.supports(n: H) && SmallGEMM.pays(rows: N) {
                        SmallGEMM.multiply(m: n, n: H, k: H4, a: dgs + rowGates, lda: H4, b: w, c: dhs + lo * H, ldc: H,
                                           accumulate: false)
                    } else {
                        BLAS.gemm(transA: false, transB: false, m: n, n: H, k: H4, a: dgs + rowGates, lda: H4,
                                  b: w, ldb: H, beta: 0, c: dhs + lo * H, ldc: H, threads: 1)
                    }
                }
            }
            // dW_hh = dgatesᵀ · H_prev over all steps in one GEMM ([4H, T·N] · [T·N, H]).
            let prevStart = reverse ? step : 0
            dwhh.withUnsafeMutableBufferPointer { w in
                BLAS.gemm(transA: true, transB: false, m: H4, n: H, k: T * N, a: dg, lda: H4,
                          b: hp.baseAddress! + prevStart, ldb: H, beta: 0, c: w.baseAddress!, ldc: H)
            }
            x.value.scalars.withUnsafeBufferPointer { xp in
            weightIH.value.scalars.withUnsafeBufferPointer { wih in
                if x.needsGrad {   // dX = dgates · W_ih   ([T·N, 4H] · [4H, I])
                    dx.withUnsafeMutableBufferPointer { d in
                        BLAS.gemm(transA: false, transB: false, m: T * N, n: I, k: H4, a: dg, lda: H4,
                                  b: wih.baseAddress!, ldb: I, beta: 0, c: d.baseAddress!, ldc: I)
                    }
                }
                dwih.withUnsafeMutableBufferPointer { w in   // dW_ih = dgatesᵀ · X
                    BLAS.gemm(transA: true, transB: false, m: H4, n: I, k: T * N, a: dg, lda: H4,
                              b: xp.baseAddress!, ldb: I, beta: 0, c: w.baseAddress!, ldc: I)
                }
            } }
        } } } } } } } }
        let db = Tensor(shape: [T * N, H4], scalars: dgates).sumRows()   // db_ih = db_hh = Σ_rows dgates
        return [x.needsGrad ? Tensor(shape: [T, N, I], scalars: dx) : nil,
                Tensor(shape: [N, H], scalars: dh), Tensor(shape: [N, H], scalars: dc),
                Tensor(shape: [H4, I], scalars: dwih), Tensor(shape: [H4, H], scalars: dwhh), db, db]
    }
    return (outs[0], outs[1], outs[2])
}
