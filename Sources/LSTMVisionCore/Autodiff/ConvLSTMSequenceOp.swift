import Foundation

/// One ConvLSTM layer over a whole sequence as a single fused operation with its hand-written backpropagation
/// through time (Shi et al. 2015, without peepholes, as the PyTorch `ConvLSTMCell` of issue 23). Per step:
///   gates = conv2d([x_t, h_{t−1}], W, b, padding k/2)           [N, 4H, rows, cols], gate order i, f, g, o
///   c_t = σ(f)·c_{t−1} + σ(i)·tanh(g),   h_t = σ(o)·tanh(c_t)
/// Shapes: x [T, N, C, rows, cols] (time-major), W [4H, C + H, k, k] with k odd, b [4H], h0 and c0 [N, H, rows, cols].
/// Returns h_t of every step [T, N, H, rows, cols] and the final h, c. Each step's convolution is one GEMM over the
/// images side by side: [x_t, h_{t−1}] of every image unfolded (im2col) into one column matrix [C+H·k², N·L] (in
/// groups of images when that would pass `ConvLSTMForward.columnBudget` floats); the backward unfolds again rather
/// than keep every step's columns. `ConvLSTMReference` computes the same in plain loops, the tests' oracle.
public func convLSTMSequence(_ x: Variable, h0: Variable, c0: Variable, weight: Variable, bias: Variable)
    -> (output: Variable, h: Variable, c: Variable) {
    let s = ConvLSTMShape(x: x.shape, weight: weight.shape, bias: bias.shape, h0: h0.shape, c0: c0.shape)
    let keep = Autograd.records([x, h0, c0, weight, bias])
    let f = ConvLSTMForward(x.value, h0: h0.value, c0: c0.value, weight: weight.value, bias: bias.value, shape: s,
                            keep: keep)
    let output = Tensor(shape: [s.T, s.N, s.H, s.rows, s.cols], scalars: f.imageMajor(f.hs, blocks: 1...s.T))
    let hT = Tensor(shape: h0.shape, scalars: f.imageMajor(f.hs, blocks: s.T...s.T))
    let cT = Tensor(shape: c0.shape, scalars: f.imageMajor(f.cs, blocks: s.T...s.T))
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
/// activations and tanh(c_t). Inside, states and gates are channel-major, [channels, N, L] per step, so that one
/// GEMM gives the gates of every image and each gate is one contiguous block of H·N·L.
struct ConvLSTMForward {
    /// The most floats a column matrix holds (32 MB): more images than fit are unfolded and multiplied in groups.
    static let columnBudget = 1 << 23

    let s: ConvLSTMShape
    /// h and c [(T+1), H, N·L]: block 0 the initial state, block t+1 the state after step t.
    let hs: [Float], cs: [Float]
    /// σ(i), σ(f), tanh(g), σ(o) [T, 4H, N·L] and tanh(c_t) [T, H, N·L] (empty when not kept).
    let acts: [Float], tanhC: [Float]

    /// The images one column matrix holds.
    let group: Int

    init(_ x: Tensor, h0: Tensor, c0: Tensor, weight: Tensor, bias: Tensor, shape s: ConvLSTMShape, keep: Bool,
         columnBudget: Int = ConvLSTMForward.columnBudget) {
        self.s = s
        let group = max(1, min(s.N, columnBudget / (s.geometry.patch * s.L)))
        self.group = group
        let (T, N, H, NL) = (s.T, s.N, s.H, s.N * s.L), K = s.geometry.patch, step = H * NL
        var hs = [Float](repeating: 0, count: (T + 1) * step), cs = hs
        hs.withUnsafeMutableBufferPointer { ConvLSTMForward.channelMajor(h0.scalars, s, into: $0.baseAddress!) }
        cs.withUnsafeMutableBufferPointer { ConvLSTMForward.channelMajor(c0.scalars, s, into: $0.baseAddress!) }
        var acts = [Float](repeating: 0, count: (keep ? T : 1) * 4 * step)
        var tanhC = [Float](repeating: 0, count: (keep ? T : 1) * step)
        var colsBuf = [Float](repeating: 0, count: K * group * s.L)
        x.scalars.withUnsafeBufferPointer { xp in
        weight.scalars.withUnsafeBufferPointer { wp in
        bias.scalars.withUnsafeBufferPointer { bp in
        hs.withUnsafeMutableBufferPointer { hp in
        cs.withUnsafeMutableBufferPointer { cp in
        acts.withUnsafeMutableBufferPointer { ap in
        tanhC.withUnsafeMutableBufferPointer { tp in
        colsBuf.withUnsafeMutableBufferPointer { colp in
            for t in 0..<T {
                let gates = ap.baseAddress! + (keep ? t : 0) * 4 * step
                for o in 0..<(4 * H) { (gates + o * NL).update(repeating: bp[o], count: NL) }
                for first in stride(from: 0, to: N, by: group) {
                    let images = first..<min(N, first + group)
                    ConvLSTMForward.unfold(s, xp.baseAddress!, hp.baseAddress! + t * step, t: t, images: images,
                                           into: colp.baseAddress!)
                    // gates[:, images] [4H, n·L] += W [4H, K] · cols [K, n·L]
                    BLAS.gemm(transA: false, transB: false, m: 4 * H, n: images.count * s.L, k: K,
                              a: wp.baseAddress!, lda: K, b: colp.baseAddress!, ldb: images.count * s.L, beta: 1,
                              c: gates + first * s.L, ldc: NL)
                }
                let (cPrev, c) = (UnsafePointer(cp.baseAddress! + t * step), cp.baseAddress! + (t + 1) * step)
                let h = hp.baseAddress! + (t + 1) * step, tc = tp.baseAddress! + (keep ? t : 0) * step
                nonisolated(unsafe) let (g, cPrevU, cU, hU, tcU) = (gates, cPrev, c, h, tc)
                Parallel.forChunks(step, minimum: 1 << 14) { r in
                    ConvLSTMForward.cellUpdate(g + r.lowerBound, step: step, cPrev: cPrevU + r.lowerBound,
                                               c: cU + r.lowerBound, tanhC: tcU + r.lowerBound, h: hU + r.lowerBound,
                                               count: r.count)
                }
            }
        } } } } } } } }
        (self.hs, self.cs, self.acts, self.tanhC) = (hs, cs, acts, tanhC)
    }

    /// The activations in place and the new state of `count` units of each gate block (`step` floats apart):
    /// c_t = σ(f)·c_{t−1} + σ(i)·tanh(g), h_t = σ(o)·tanh(c_t).
    static func cellUpdate(_ gates: UnsafeMutablePointer<Float>, step: Int, cPrev: UnsafePointer<Float>,
                           c: UnsafeMutablePointer<Float>, tanhC: UnsafeMutablePointer<Float>,
                           h: UnsafeMutablePointer<Float>, count: Int) {
        let (i, f, g, o) = (gates, gates + step, gates + 2 * step, gates + 3 * step)
        VectorMath.map(i, i, count, VectorMath.sigmoid)
        VectorMath.map(f, f, count, VectorMath.sigmoid)
        VectorMath.map(g, g, count, VectorMath.tanh)
        VectorMath.map(o, o, count, VectorMath.sigmoid)
        for u in 0..<count { c[u] = f[u] * cPrev[u] + i[u] * g[u] }
        VectorMath.map(c, tanhC, count, VectorMath.tanh)
        for u in 0..<count { h[u] = o[u] * tanhC[u] }
    }

    /// Unfolds [x_t, h_{t−1}] of `images` into cols [K, n·L] (image j of the group at columns j·L ..< (j+1)·L):
    /// x [T, N, C, L] image-major, h_{t−1} [H, N·L] channel-major. The planes are shared among the threads.
    static func unfold(_ s: ConvLSTMShape, _ x: UnsafePointer<Float>, _ hPrev: UnsafePointer<Float>, t: Int,
                       images: Range<Int>, into cols: UnsafeMutablePointer<Float>) {
        let (N, C, L, k2) = (s.N, s.C, s.L, s.k * s.k), n = images.count, g = s.geometry
        let plane = ConvGeometry(channels: 1, height: s.rows, width: s.cols, kernelH: s.k, kernelW: s.k, stride: 1,
                                 padding: s.k / 2)
        nonisolated(unsafe) let (x, hPrev, cols) = (x, hPrev, cols)
        Parallel.forItems(g.channels * n, size: k2 * L, minimum: 1 << 15) { part in
            for item in part {
                let (ch, j) = (item / n, item % n), image = images.lowerBound + j
                let source = ch < C ? x + ((t * N + image) * C + ch) * L : hPrev + (ch - C) * N * L + image * L
                im2colPlane(source, plane, cols + ch * k2 * n * L + j * L, rowStride: n * L)
            }
        }
    }

    /// Blocks of a channel-major state array ([H, N·L] each) as one image-major array ([N, H, L] each).
    func imageMajor(_ blocks: [Float], blocks range: ClosedRange<Int>) -> [Float] {
        let (N, H, L) = (s.N, s.H, s.L), step = N * H * L
        var out = [Float](repeating: 0, count: range.count * step)
        for (b, block) in range.enumerated() {
            for n in 0..<N {
                for c in 0..<H {
                    let from = block * step + c * N * L + n * L, to = b * step + (n * H + c) * L
                    out.replaceSubrange(to..<(to + L), with: blocks[from..<(from + L)])
                }
            }
        }
        return out
    }

    /// An image-major state [N, H, L] written channel-major ([H, N·L]) at `out`.
    static func channelMajor(_ state: [Float], _ s: ConvLSTMShape, into out: UnsafeMutablePointer<Float>) {
        let (N, H, L) = (s.N, s.H, s.L)
        state.withUnsafeBufferPointer { p in
            for n in 0..<N {
                for c in 0..<H { (out + c * N * L + n * L).update(from: p.baseAddress! + (n * H + c) * L, count: L) }
            }
        }
    }

    /// The gradients of a pass's inputs in their shapes (h0 and c0 as [N, H, rows, cols]).
    struct Gradients {
        var x: Tensor, h0: Tensor, c0: Tensor, weight: Tensor, bias: Tensor
    }

    /// Backpropagation through time from the gradients of the outputs `dy` [T, N, H, rows, cols] and of the final
    /// states `dh`, `dc` (nil: zero). The input gradient is computed only with `wantX` (else zeros).
    func backward(_ x: Tensor, weight: Tensor, dy: Tensor?, dh dhT: Tensor?, dc dcT: Tensor?, wantX: Bool)
        -> Gradients {
        let (T, N, C, H, L, NL) = (s.T, s.N, s.C, s.H, s.L, s.N * s.L), K = s.geometry.patch, step = H * NL
        let (k2, group) = (s.k * s.k, self.group)
        let plane = ConvGeometry(channels: 1, height: s.rows, width: s.cols, kernelH: s.k, kernelW: s.k, stride: 1,
                                 padding: s.k / 2)
        // Of h_t and c_t, channel-major [H, N·L]; then of h_{t−1}, c_{t−1}.
        var dh = [Float](repeating: 0, count: step), dc = dh
        if let dhT { dh.withUnsafeMutableBufferPointer { Self.channelMajor(dhT.scalars, s, into: $0.baseAddress!) } }
        if let dcT { dc.withUnsafeMutableBufferPointer { Self.channelMajor(dcT.scalars, s, into: $0.baseAddress!) } }
        var dx = [Float](repeating: 0, count: T * N * C * L)
        var dw = [Float](repeating: 0, count: 4 * H * K), db = [Float](repeating: 0, count: 4 * H)
        var colsBuf = [Float](repeating: 0, count: K * group * L), dcols = colsBuf
        var dgatesBuf = [Float](repeating: 0, count: 4 * step)
        let dyScalars = dy?.scalars
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
        colsBuf.withUnsafeMutableBufferPointer { colp in
        dcols.withUnsafeMutableBufferPointer { dcolp in
        dgatesBuf.withUnsafeMutableBufferPointer { dgp in
            let (cols, dcolsP, dgates, dhP, dcP) = (colp.baseAddress!, dcolp.baseAddress!, dgp.baseAddress!,
                                                    dhp.baseAddress!, dcp.baseAddress!)
            var first = true
            for t in (0..<T).reversed() {
                if let dyScalars { dyScalars.withUnsafeBufferPointer { d in
                    for n in 0..<N {
                        for c in 0..<H {
                            let to = dhP + c * NL + n * L, from = d.baseAddress! + ((t * N + n) * H + c) * L
                            for u in 0..<L { to[u] += from[u] }
                        }
                    }
                } }
                nonisolated(unsafe) let (a, tc, cPrev) = (ap.baseAddress! + t * 4 * step, tp.baseAddress! + t * step,
                                                          cp.baseAddress! + t * step)
                nonisolated(unsafe) let (dgU, dhU, dcU) = (dgates, dhP, dcP)
                Parallel.forChunks(step, minimum: 1 << 14) { r in
                    ConvLSTMForward.gateGradients(a + r.lowerBound, step: step, tanhC: tc + r.lowerBound,
                                                  cPrev: cPrev + r.lowerBound, dh: dhU + r.lowerBound,
                                                  dc: dcU + r.lowerBound, dgates: dgU + r.lowerBound, count: r.count)
                }
                for row in 0..<(4 * H) {
                    var sum: Float = 0
                    for u in 0..<NL { sum += dgates[row * NL + u] }
                    db[row] += sum
                }
                // d h_{t−1} comes from the convolution alone: folded into dh, emptied first.
                dhP.update(repeating: 0, count: step)
                let skip = wantX ? 0 : C * k2
                for start in stride(from: 0, to: N, by: group) {
                    let images = start..<min(N, start + group), nL = images.count * L
                    ConvLSTMForward.unfold(s, xp.baseAddress!, hp.baseAddress! + t * step, t: t, images: images,
                                           into: cols)
                    // dW [4H, K] += dgates[:, images] [4H, n·L] · colsᵀ [n·L, K]
                    BLAS.gemm(transA: false, transB: true, m: 4 * H, n: K, k: nL, a: dgates + start * L, lda: NL,
                              b: cols, ldb: nL, beta: first ? 0 : 1, c: dwp.baseAddress!, ldc: K)
                    first = false
                    // d cols [K, n·L] = Wᵀ [K, 4H] · dgates[:, images]; without wantX only the h_{t−1} rows.
                    BLAS.gemm(transA: true, transB: false, m: K - skip, n: nL, k: 4 * H, a: wp.baseAddress! + skip,
                              lda: K, b: dgates + start * L, ldb: NL, beta: 0, c: dcolsP + skip * nL, ldc: nL)
                    let channels = (wantX ? 0 : C)..<(C + H)
                    nonisolated(unsafe) let (dcolsU, dxU, dhOut) = (dcolsP, dxp.baseAddress!, dhP)
                    Parallel.forItems(channels.count, size: k2 * nL, minimum: 1 << 15) { part in
                        for ci in part {
                            let ch = channels.lowerBound + ci
                            for (j, image) in images.enumerated() {
                                let target = ch < C ? dxU + ((t * N + image) * C + ch) * L
                                                    : dhOut + (ch - C) * NL + image * L
                                col2imPlane(dcolsU + ch * k2 * nL + j * L, plane, target, rowStride: nL)
                            }
                        }
                    }
                }
            }
        } } } } } } } } } } } } }
        let stateShape = [N, H, s.rows, s.cols]
        return Gradients(x: Tensor(shape: [T, N, C, s.rows, s.cols], scalars: dx),
                         h0: Tensor(shape: stateShape, scalars: imageMajor(dh, blocks: 0...0)),
                         c0: Tensor(shape: stateShape, scalars: imageMajor(dc, blocks: 0...0)),
                         weight: Tensor(shape: [4 * H, C + H, s.k, s.k], scalars: dw),
                         bias: Tensor(shape: [4 * H], scalars: db))
    }

    /// The gate gradients of `count` units of each block (`step` floats apart) from those of h_t and c_t; dc becomes
    /// that of c_{t−1}.
    static func gateGradients(_ a: UnsafePointer<Float>, step: Int, tanhC: UnsafePointer<Float>,
                              cPrev: UnsafePointer<Float>, dh: UnsafePointer<Float>, dc: UnsafeMutablePointer<Float>,
                              dgates: UnsafeMutablePointer<Float>, count: Int) {
        for u in 0..<count {
            let (i, f, gg, o) = (a[u], a[step + u], a[2 * step + u], a[3 * step + u]), tc = tanhC[u]
            let dcTotal = dc[u] + dh[u] * o * (1 - tc * tc)   // through h_t and through c_{t+1}
            dgates[u] = dcTotal * gg * i * (1 - i)
            dgates[step + u] = dcTotal * cPrev[u] * f * (1 - f)
            dgates[2 * step + u] = dcTotal * i * (1 - gg * gg)
            dgates[3 * step + u] = dh[u] * tc * o * (1 - o)
            dc[u] = dcTotal * f                                  // of c_{t−1}
        }
    }
}
