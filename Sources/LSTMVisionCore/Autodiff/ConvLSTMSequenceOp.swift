import Foundation

/// One ConvLSTM layer over a whole sequence as a single fused operation with its hand-written backpropagation
/// through time (Shi et al. 2015, without peepholes, as the PyTorch `ConvLSTMCell` of issue 23). Per step:
///   gates = conv2d([x_t, h_{t−1}], W, b, padding k/2)           [N, 4H, rows, cols], gate order i, f, g, o
///   c_t = σ(f)·c_{t−1} + σ(i)·tanh(g),   h_t = σ(o)·tanh(c_t)
/// Shapes: x [T, N, C, rows, cols] (time-major), W [4H, C + H, k, k] with k odd, b [4H], h0 and c0 [N, H, rows, cols].
/// Returns h_t of every step [T, N, H, rows, cols] and the final h, c. Each step's convolution is one im2col and one
/// GEMM per image (the code of `conv2d`); the backward unfolds [x_t, h_{t−1}] again rather than keep every column
/// matrix. `ConvLSTMReference` computes the same in plain loops, the tests' oracle.
public func convLSTMSequence(_ x: Variable, h0: Variable, c0: Variable, weight: Variable, bias: Variable)
    -> (output: Variable, h: Variable, c: Variable) {
    let s = ConvLSTMShape(x: x.shape, weight: weight.shape, bias: bias.shape, h0: h0.shape, c0: c0.shape)
    let keep = Autograd.records([x, h0, c0, weight, bias])
    let f = ConvLSTMForward(x.value, h0: h0.value, c0: c0.value, weight: weight.value, bias: bias.value, shape: s,
                            keep: keep)
    let step = s.N * s.H * s.L
    let output = Tensor(shape: [s.T, s.N, s.H, s.rows, s.cols], scalars: Array(f.hs[step...]))
    let hT = Tensor(shape: h0.shape, scalars: Array(f.hs[(s.T * step)...]))
    let cT = Tensor(shape: c0.shape, scalars: Array(f.cs[(s.T * step)...]))
    let outs = Autograd.results([output, hT, cT], inputs: [x, h0, c0, weight, bias]) { grads in
        let g = f.backward(x.value, weight: weight.value, dy: grads[0], dh: grads[1], dc: grads[2],
                           wantX: x.needsGrad)
        return [x.needsGrad ? g.x : nil, g.h0, g.c0, g.weight, g.bias]
    }
    return (outs[0], outs[1], outs[2])
}

/// The sizes of a ConvLSTM pass, checked once: steps T, images N, input channels C, hidden channels H, kernel k,
/// frame rows × cols (L positions).
struct ConvLSTMShape {
    let T: Int, N: Int, C: Int, H: Int, k: Int, rows: Int, cols: Int
    var L: Int { rows * cols }
    /// The geometry of one image's [x_t, h_{t−1}] unfolding ('same' padding).
    var geometry: ConvGeometry {
        ConvGeometry(channels: C + H, height: rows, width: cols, kernelH: k, kernelW: k, stride: 1, padding: k / 2)
    }

    init(x: [Int], weight: [Int], bias: [Int], h0: [Int], c0: [Int]) {
        precondition(x.count == 5, "ConvLSTM: input must be [steps, batch, channels, rows, cols], got \(x)")
        precondition(weight.count == 4 && weight[0] % 4 == 0 && weight[0] > 0,
                     "ConvLSTM: weight must be [4·hidden, channels + hidden, k, k], got \(weight)")
        (T, N, C, rows, cols, H, k) = (x[0], x[1], x[2], x[3], x[4], weight[0] / 4, weight[2])
        precondition(weight == [4 * H, C + H, k, k],
                     "ConvLSTM: weight \(weight) does not match input \(x) (expects [\(4 * H), \(C + H), k, k])")
        precondition(k % 2 == 1, "ConvLSTM: the kernel must be odd for 'same' padding, got \(k)")
        precondition(bias == [4 * H], "ConvLSTM: bias must be [\(4 * H)], got \(bias)")
        precondition(h0 == [N, H, rows, cols] && c0 == h0,
                     "ConvLSTM: initial state must be [\(N), \(H), \(rows), \(cols)], got \(h0) and \(c0)")
        precondition(T > 0 && N > 0 && rows > 0 && cols > 0, "ConvLSTM: empty input \(x)")
    }
}

/// The forward pass of `convLSTMSequence`: h and c of every step, and (when kept for the backward) the gate
/// activations and tanh(c_t).
struct ConvLSTMForward {
    let s: ConvLSTMShape
    /// h and c [(T+1)·N, H, L]: block 0 the initial state, block t+1 the state after step t.
    let hs: [Float], cs: [Float]
    /// σ(i), σ(f), tanh(g), σ(o) [T·N, 4H, L] and tanh(c_t) [T·N, H, L] (empty when not kept).
    let acts: [Float], tanhC: [Float]

    init(_ x: Tensor, h0: Tensor, c0: Tensor, weight: Tensor, bias: Tensor, shape s: ConvLSTMShape, keep: Bool) {
        self.s = s
        let (T, N, C, H, L) = (s.T, s.N, s.C, s.H, s.L), g = s.geometry, K = g.patch, step = N * H * L
        var hs = [Float](repeating: 0, count: (T + 1) * step), cs = hs
        hs.replaceSubrange(0..<step, with: h0.scalars)
        cs.replaceSubrange(0..<step, with: c0.scalars)
        var acts = [Float](repeating: 0, count: keep ? T * N * 4 * H * L : 0)
        var tanhC = [Float](repeating: 0, count: keep ? T * step : 0)
        // One image's [x_t, h_{t−1}], its unfolding and its gates, reused by every step.
        var z = [Float](repeating: 0, count: (C + H) * L), colsBuf = [Float](repeating: 0, count: K * L)
        var gatesBuf = [Float](repeating: 0, count: 4 * H * L), tcBuf = [Float](repeating: 0, count: H * L)
        x.scalars.withUnsafeBufferPointer { xp in
        weight.scalars.withUnsafeBufferPointer { wp in
        bias.scalars.withUnsafeBufferPointer { bp in
        hs.withUnsafeMutableBufferPointer { hp in
        cs.withUnsafeMutableBufferPointer { cp in
        acts.withUnsafeMutableBufferPointer { ap in
        tanhC.withUnsafeMutableBufferPointer { tp in
        z.withUnsafeMutableBufferPointer { zp in
        colsBuf.withUnsafeMutableBufferPointer { colp in
        gatesBuf.withUnsafeMutableBufferPointer { gbp in
        tcBuf.withUnsafeMutableBufferPointer { tcp in
            let (z, cols) = (zp.baseAddress!, colp.baseAddress!)
            for t in 0..<T {
                for n in 0..<N {
                    let state = (t * N + n) * H * L, next = state + step   // h_{t−1}, c_{t−1} / h_t, c_t of image n
                    z.update(from: xp.baseAddress! + (t * N + n) * C * L, count: C * L)
                    (z + C * L).update(from: hp.baseAddress! + state, count: H * L)
                    im2col(z, g, cols)
                    let gates = keep ? ap.baseAddress! + (t * N + n) * 4 * H * L : gbp.baseAddress!
                    for o in 0..<(4 * H) { (gates + o * L).update(repeating: bp[o], count: L) }
                    // gates [4H, L] = W [4H, K] · cols [K, L] + b
                    BLAS.gemm(transA: false, transB: false, m: 4 * H, n: L, k: K, a: wp.baseAddress!, lda: K,
                              b: cols, ldb: L, beta: 1, c: gates, ldc: L)
                    // Each gate is a contiguous block of H·L: the activations in place, vectorised (as the LSTM's).
                    let HL = H * L, c = cp.baseAddress! + next, h = hp.baseAddress! + next
                    VectorMath.map(gates, gates, 2 * HL, VectorMath.sigmoid)                    // i, f
                    VectorMath.map(gates + 2 * HL, gates + 2 * HL, HL, VectorMath.tanh)         // g
                    VectorMath.map(gates + 3 * HL, gates + 3 * HL, HL, VectorMath.sigmoid)      // o
                    for u in 0..<HL { c[u] = gates[HL + u] * cp[state + u] + gates[u] * gates[2 * HL + u] }
                    let tc = keep ? tp.baseAddress! + (t * N + n) * HL : tcp.baseAddress!
                    VectorMath.map(c, tc, HL, VectorMath.tanh)
                    for u in 0..<HL { h[u] = gates[3 * HL + u] * tc[u] }
                }
            }
        } } } } } } } } } } }
        (self.hs, self.cs, self.acts, self.tanhC) = (hs, cs, acts, tanhC)
    }

    /// The gradients of a pass's inputs in their shapes (h0 and c0 as [N, H, rows, cols]).
    struct Gradients {
        var x: Tensor, h0: Tensor, c0: Tensor, weight: Tensor, bias: Tensor
    }

    /// Backpropagation through time from the gradients of the outputs `dy` [T, N, H, rows, cols] and of the final
    /// states `dh`, `dc` (nil: zero). The input gradient is computed only with `wantX` (else zeros).
    func backward(_ x: Tensor, weight: Tensor, dy: Tensor?, dh dhT: Tensor?, dc dcT: Tensor?, wantX: Bool)
        -> Gradients {
        let (T, N, C, H, L) = (s.T, s.N, s.C, s.H, s.L), g = s.geometry, K = g.patch, step = N * H * L
        let hGeometry = ConvGeometry(channels: H, height: s.rows, width: s.cols, kernelH: s.k, kernelW: s.k, stride: 1,
                                     padding: s.k / 2)
        var dh = dhT?.scalars ?? [Float](repeating: 0, count: step)   // of h_t [N, H, L], then of h_{t−1}
        var dc = dcT?.scalars ?? [Float](repeating: 0, count: step)   // of c_t, then of c_{t−1}
        var dx = [Float](repeating: 0, count: wantX ? T * N * C * L : 0)
        var dw = [Float](repeating: 0, count: 4 * H * K), db = [Float](repeating: 0, count: 4 * H)
        var z = [Float](repeating: 0, count: (C + H) * L), colsBuf = [Float](repeating: 0, count: K * L)
        var dcols = colsBuf, dz = z, dgatesBuf = [Float](repeating: 0, count: 4 * H * L)
        x.scalars.withUnsafeBufferPointer { xp in
        weight.scalars.withUnsafeBufferPointer { wp in
        hs.withUnsafeBufferPointer { hp in
        cs.withUnsafeBufferPointer { cp in
        acts.withUnsafeBufferPointer { ap in
        tanhC.withUnsafeBufferPointer { tp in
        dh.withUnsafeMutableBufferPointer { dhp in
        dc.withUnsafeMutableBufferPointer { dcp in
        dx.withUnsafeMutableBufferPointer { dxp in
        dw.withUnsafeMutableBufferPointer { dwp in
        z.withUnsafeMutableBufferPointer { zp in
        colsBuf.withUnsafeMutableBufferPointer { colp in
        dcols.withUnsafeMutableBufferPointer { dcolp in
        dz.withUnsafeMutableBufferPointer { dzp in
        dgatesBuf.withUnsafeMutableBufferPointer { dgp in
            let (z, cols, dcolsP, dzP, dgates) = (zp.baseAddress!, colp.baseAddress!, dcolp.baseAddress!,
                                                  dzp.baseAddress!, dgp.baseAddress!)
            var first = true
            for t in (0..<T).reversed() {
                if let dy { dy.scalars.withUnsafeBufferPointer { d in
                    for u in 0..<step { dhp[u] += d[t * step + u] }
                } }
                for n in 0..<N {
                    let state = (t * N + n) * H * L, a = ap.baseAddress! + (t * N + n) * 4 * H * L
                    let dhn = dhp.baseAddress! + n * H * L, dcn = dcp.baseAddress! + n * H * L
                    for u in 0..<(H * L) {
                        let (i, f, gg, o) = (a[u], a[H * L + u], a[2 * H * L + u], a[3 * H * L + u])
                        let tc = tp[state + u]
                        let dcTotal = dcn[u] + dhn[u] * o * (1 - tc * tc)   // through h_t and through c_{t+1}
                        dgates[u] = dcTotal * gg * i * (1 - i)
                        dgates[H * L + u] = dcTotal * cp[state + u] * f * (1 - f)
                        dgates[2 * H * L + u] = dcTotal * i * (1 - gg * gg)
                        dgates[3 * H * L + u] = dhn[u] * tc * o * (1 - o)
                        dcn[u] = dcTotal * f                                  // of c_{t−1}
                    }
                    for r in 0..<(4 * H) {
                        var sum: Float = 0
                        for u in 0..<L { sum += dgates[r * L + u] }
                        db[r] += sum
                    }
                    // dW [4H, K] += dgates [4H, L] · colsᵀ [L, K], cols the unfolding of [x_t, h_{t−1}] again.
                    z.update(from: xp.baseAddress! + (t * N + n) * C * L, count: C * L)
                    (z + C * L).update(from: hp.baseAddress! + state, count: H * L)
                    im2col(z, g, cols)
                    BLAS.gemm(transA: false, transB: true, m: 4 * H, n: K, k: L, a: dgates, lda: L, b: cols, ldb: L,
                              beta: first ? 0 : 1, c: dwp.baseAddress!, ldc: K)
                    first = false
                    // d[x_t, h_{t−1}] = col2im(Wᵀ [K, 4H] · dgates [4H, L]); without wantX only the h_{t−1} rows
                    // of Wᵀ (the last H·k² of K), folded back with the geometry of h alone.
                    let skip = wantX ? 0 : C * s.k * s.k
                    BLAS.gemm(transA: true, transB: false, m: K - skip, n: L, k: 4 * H, a: wp.baseAddress! + skip,
                              lda: K, b: dgates, ldb: L, beta: 0, c: dcolsP, ldc: L)
                    if wantX {
                        dzP.update(repeating: 0, count: (C + H) * L)
                        col2im(dcolsP, g, dzP)
                        (dxp.baseAddress! + (t * N + n) * C * L).update(from: dzP, count: C * L)
                        dhn.update(from: dzP + C * L, count: H * L)            // of h_{t−1}
                    } else {
                        dhn.update(repeating: 0, count: H * L)
                        col2im(dcolsP, hGeometry, dhn)
                    }
                }
            }
        } } } } } } } } } } } } } } }
        let stateShape = [N, H, s.rows, s.cols]
        if !wantX { dx = [Float](repeating: 0, count: T * N * C * L) }
        return Gradients(x: Tensor(shape: [T, N, C, s.rows, s.cols], scalars: dx),
                         h0: Tensor(shape: stateShape, scalars: dh), c0: Tensor(shape: stateShape, scalars: dc),
                         weight: Tensor(shape: [4 * H, C + H, s.k, s.k], scalars: dw),
                         bias: Tensor(shape: [4 * H], scalars: db))
    }
}
