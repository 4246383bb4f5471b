import Foundation

/// A plain LSTM: one direction of one layer, forward and backward through time, in loops over scalars (no threads, no
/// packed weights, no fused kernels). It is what every fast path of `lstmSequences` computes, and the tests' oracle.
/// Shapes: x [T, N, I], W_ih [4H, I], W_hh [4H, H], b_ih and b_hh [4H], h0 and c0 [N, H]. Gate order is PyTorch's:
/// row q·H + u of the weights and biases belongs to gate q (i, f, g, o) of unit u.
///   gates = x_t·W_ihᵀ + b_ih + h_{t−1}·W_hhᵀ + b_hh          [N, 4H]
///   i, f, o = σ(gates of i, f, o),   g = tanh(gates of g)
///   c_t = f·c_{t−1} + i·g,   h_t = o·tanh(c_t)
/// A reverse direction runs t = T−1 down to 0 from h0, c0; its output h_t stays at step t.
enum LSTMReference {
    /// A forward pass: the outputs h_t [T, N, H], the final states h, c [N, H], and at `steps[t]` what the backward
    /// reads of step t.
    struct Forward {
        var output: Tensor, h: Tensor, c: Tensor
        var steps: [Step]
    }
    /// The activations i, f, g, o [N, 4H] of a step, and its h_{t−1}, c_{t−1} and c_t [N, H].
    struct Step {
        var activations: [Float] = [], hPrev: [Float] = [], cPrev: [Float] = [], c: [Float] = []
    }

    /// The gradients of a pass's inputs, in their shapes.
    struct Gradients {
        var x: Tensor, h0: Tensor, c0: Tensor, weightIH: Tensor, weightHH: Tensor, biasIH: Tensor, biasHH: Tensor
    }

    static func sigmoid(_ v: Float) -> Float { 1 / (1 + Foundation.exp(-v)) }

    static func forward(_ x: Tensor, _ d: LSTMDirection) -> Forward {
        let (T, N, I, H) = (x.shape[0], x.shape[1], x.shape[2], d.weightHH.shape[1])
        let (wih, whh, bih, bhh) = (d.weightIH.value.scalars, d.weightHH.value.scalars,
                                    d.biasIH.value.scalars, d.biasHH.value.scalars)
        var h = d.h0.value.scalars, c = d.c0.value.scalars             // h_{t−1}, c_{t−1} [N, H]
        var output = [Float](repeating: 0, count: T * N * H)
        var steps = [Step](repeating: Step(), count: T)
        for s in 0..<T {
            let t = d.reverse ? T - 1 - s : s
            var a = [Float](repeating: 0, count: N * 4 * H), hNext = h, cNext = c
            for n in 0..<N {
                for r in 0..<(4 * H) {                                  // gate r / H of unit r % H
                    var v = bih[r] + bhh[r]
                    for k in 0..<I { v += x.scalars[(t * N + n) * I + k] * wih[r * I + k] }
                    for k in 0..<H { v += h[n * H + k] * whh[r * H + k] }
                    a[n * 4 * H + r] = r / H == 2 ? Foundation.tanh(v) : sigmoid(v)
                }
                for u in 0..<H {
                    let r = n * 4 * H + u
                    let (i, f, g, o) = (a[r], a[r + H], a[r + 2 * H], a[r + 3 * H])
                    cNext[n * H + u] = f * c[n * H + u] + i * g
                    hNext[n * H + u] = o * Foundation.tanh(cNext[n * H + u])
                }
            }
            output.replaceSubrange((t * N * H)..<((t + 1) * N * H), with: hNext)
            steps[t] = Step(activations: a, hPrev: h, cPrev: c, c: cNext)
            (h, c) = (hNext, cNext)
        }
        return Forward(output: Tensor(shape: [T, N, H], scalars: output), h: Tensor(shape: [N, H], scalars: h),
                       c: Tensor(shape: [N, H], scalars: c), steps: steps)
    }

    /// Backpropagation through time of `forward(x, d)` = `f`, from the gradients of its outputs `dy` [T, N, H] and of
    /// its final states `dh`, `dc` [N, H] (nil: zero).
    static func backward(_ x: Tensor, _ d: LSTMDirection, _ f: Forward, dy: Tensor?, dh dhT: Tensor?, dc dcT: Tensor?)
        -> Gradients {
        let (T, N, I, H) = (x.shape[0], x.shape[1], x.shape[2], d.weightHH.shape[1])
        let (wih, whh) = (d.weightIH.value.scalars, d.weightHH.value.scalars)
        func zeros(_ n: Int) -> [Float] { [Float](repeating: 0, count: n) }
        var dh = dhT?.scalars ?? zeros(N * H), dc = dcT?.scalars ?? zeros(N * H)   // of h_t, c_t [N, H]
        var dx = zeros(T * N * I), dwih = zeros(4 * H * I), dwhh = zeros(4 * H * H), db = zeros(4 * H)
        for s in (0..<T).reversed() {                                   // the forward's steps, last first
            let t = d.reverse ? T - 1 - s : s
            let (a, hPrev, cPrev, c) = (f.steps[t].activations, f.steps[t].hPrev, f.steps[t].cPrev, f.steps[t].c)
            if let dy { for k in 0..<(N * H) { dh[k] += dy.scalars[t * N * H + k] } }
            var dgates = zeros(N * 4 * H), dhPrev = zeros(N * H)
            for n in 0..<N {
                for u in 0..<H {
                    let (k, r) = (n * H + u, n * 4 * H + u)
                    let (i, fg, g, o) = (a[r], a[r + H], a[r + 2 * H], a[r + 3 * H]), tc = Foundation.tanh(c[k])
                    let dcTotal = dc[k] + dh[k] * o * (1 - tc * tc)      // through h_t and through c_{t+1}
                    dgates[r] = dcTotal * g * i * (1 - i)
                    dgates[r + H] = dcTotal * cPrev[k] * fg * (1 - fg)
                    dgates[r + 2 * H] = dcTotal * i * (1 - g * g)
                    dgates[r + 3 * H] = dh[k] * tc * o * (1 - o)
                    dc[k] = dcTotal * fg                                 // of c_{t−1}
                }
                for r in 0..<(4 * H) {
                    let dg = dgates[n * 4 * H + r], row = (t * N + n) * I
                    db[r] += dg
                    for k in 0..<I { dwih[r * I + k] += dg * x.scalars[row + k]; dx[row + k] += dg * wih[r * I + k] }
                    for k in 0..<H {
                        dwhh[r * H + k] += dg * hPrev[n * H + k]; dhPrev[n * H + k] += dg * whh[r * H + k]
                    }
                }
            }
            dh = dhPrev
        }
        let dbias = Tensor(shape: [4 * H], scalars: db)
        return Gradients(x: Tensor(shape: [T, N, I], scalars: dx), h0: Tensor(shape: [N, H], scalars: dh),
                         c0: Tensor(shape: [N, H], scalars: dc), weightIH: Tensor(shape: [4 * H, I], scalars: dwih),
                         weightHH: Tensor(shape: [4 * H, H], scalars: dwhh), biasIH: dbias, biasHH: dbias)
    }
}
