import Foundation

/// A plain ConvLSTM layer, forward and backward through time, in loops over scalars (no im2col, no BLAS): what
/// `convLSTMSequence` computes, and the tests' oracle. Shapes as there: x [T, N, C, R, S], W [4H, C + H, k, k],
/// b [4H], h0 and c0 [N, H, R, S]; channel q·H + u of the gates belongs to gate q (i, f, g, o) of hidden channel u.
///   z = [x_t, h_{t−1}] (channels)
///   a[o, y, x] = b[o] + Σ_{c, i, j} W[o, c, i, j] · z[c, y + i − k/2, x + j − k/2]
///   c_t = σ(a_f)·c_{t−1} + σ(a_i)·tanh(a_g),   h_t = σ(a_o)·tanh(c_t)      (z is 0 outside the frame)
enum ConvLSTMReference {
    /// The outputs h_t [T, N, H, R, S], the final h, c, and per step the activations [N, 4H, R, S], h_{t−1},
    /// c_{t−1} and c_t [N, H, R, S].
    struct Forward {
        var output: Tensor, h: Tensor, c: Tensor
        var activations: [[Float]], hPrev: [[Float]], cPrev: [[Float]], cNext: [[Float]]
    }

    struct Gradients {
        var x: Tensor, h0: Tensor, c0: Tensor, weight: Tensor, bias: Tensor
    }

    static func sigmoid(_ v: Float) -> Float { 1 / (1 + Foundation.exp(-v)) }

    static func forward(_ x: Tensor, h0: Tensor, c0: Tensor, weight: Tensor, bias: Tensor) -> Forward {
        let (T, N, C, R, S) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3], x.shape[4])
        let H = weight.shape[0] / 4, k = weight.shape[2], p = k / 2, Z = C + H
        var h = h0.scalars, c = c0.scalars
        var out = [Float](), acts = [[Float]](), hPrev = [[Float]](), cPrev = [[Float]](), cNext = [[Float]]()
        for t in 0..<T {
            var a = [Float](repeating: 0, count: N * 4 * H * R * S), hN = h, cN = c
            for n in 0..<N {
                // z[c, y, x]: input channel c < C, else hidden channel c − C of h_{t−1}; 0 outside the frame.
                func z(_ ch: Int, _ y: Int, _ xx: Int) -> Float {
                    guard y >= 0 && y < R && xx >= 0 && xx < S else { return 0 }
                    return ch < C ? x.scalars[(((t * N + n) * C + ch) * R + y) * S + xx]
                        : h[((n * H + ch - C) * R + y) * S + xx]
                }
                for o in 0..<(4 * H) { for y in 0..<R { for xx in 0..<S {
                    var v = bias.scalars[o]
                    for ch in 0..<Z { for i in 0..<k { for j in 0..<k {
                        v += weight.scalars[((o * Z + ch) * k + i) * k + j] * z(ch, y + i - p, xx + j - p)
                    } } }
                    a[((n * 4 * H + o) * R + y) * S + xx] = o / H == 2 ? Foundation.tanh(v) : sigmoid(v)
                } } }
                for u in 0..<H { for q in 0..<(R * S) {
                    let e = (n * H + u) * R * S + q, at = { (gate: Int) in a[(n * 4 * H + gate * H + u) * R * S + q] }
                    cN[e] = at(1) * c[e] + at(0) * at(2)
                    hN[e] = at(3) * Foundation.tanh(cN[e])
                } }
            }
            out += hN
            acts.append(a); hPrev.append(h); cPrev.append(c); cNext.append(cN)
            (h, c) = (hN, cN)
        }
        return Forward(output: Tensor(shape: [T, N, H, R, S], scalars: out), h: Tensor(shape: h0.shape, scalars: h),
                       c: Tensor(shape: c0.shape, scalars: c), activations: acts, hPrev: hPrev, cPrev: cPrev,
                       cNext: cNext)
    }

    /// Backpropagation through time of `forward` = `f` from the gradients of its outputs `dy` and final states
    /// `dh`, `dc` (nil: zero).
    static func backward(_ x: Tensor, weight: Tensor, _ f: Forward, dy: Tensor?, dh dhT: Tensor?, dc dcT: Tensor?)
        -> Gradients {
        let (T, N, C, R, S) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3], x.shape[4])
        let H = weight.shape[0] / 4, k = weight.shape[2], p = k / 2, Z = C + H, P = R * S
        func zeros(_ n: Int) -> [Float] { [Float](repeating: 0, count: n) }
        var dh = dhT?.scalars ?? zeros(N * H * P), dc = dcT?.scalars ?? zeros(N * H * P)
        var dx = zeros(T * N * C * P), dw = zeros(weight.count), db = zeros(4 * H)
        for t in (0..<T).reversed() {
            let (a, hPrev, cPrev, cNext) = (f.activations[t], f.hPrev[t], f.cPrev[t], f.cNext[t])
            if let dy { for e in 0..<(N * H * P) { dh[e] += dy.scalars[t * N * H * P + e] } }
            var dhPrev = zeros(N * H * P), da = zeros(N * 4 * H * P)
            for n in 0..<N {
                for u in 0..<H { for q in 0..<P {
                    let e = (n * H + u) * P + q, r = { (gate: Int) in (n * 4 * H + gate * H + u) * P + q }
                    let (i, fg, g, o) = (a[r(0)], a[r(1)], a[r(2)], a[r(3)]), tc = Foundation.tanh(cNext[e])
                    let dcTotal = dc[e] + dh[e] * o * (1 - tc * tc)
                    da[r(0)] = dcTotal * g * i * (1 - i)
                    da[r(1)] = dcTotal * cPrev[e] * fg * (1 - fg)
                    da[r(2)] = dcTotal * i * (1 - g * g)
                    da[r(3)] = dh[e] * tc * o * (1 - o)
                    dc[e] = dcTotal * fg
                } }
                for o in 0..<(4 * H) { for y in 0..<R { for xx in 0..<S {
                    let d = da[((n * 4 * H + o) * R + y) * S + xx]
                    db[o] += d
                    for ch in 0..<Z { for i in 0..<k { for j in 0..<k {
                        let iy = y + i - p, ix = xx + j - p
                        guard iy >= 0 && iy < R && ix >= 0 && ix < S else { continue }
                        let wi = ((o * Z + ch) * k + i) * k + j
                        if ch < C {
                            let xi = (((t * N + n) * C + ch) * R + iy) * S + ix
                            dw[wi] += d * x.scalars[xi]
                            dx[xi] += d * weight.scalars[wi]
                        } else {
                            let hi = ((n * H + ch - C) * R + iy) * S + ix
                            dw[wi] += d * hPrev[hi]
                            dhPrev[hi] += d * weight.scalars[wi]
                        }
                    } } }
                } } }
            }
            dh = dhPrev
        }
        let state = [N, H, R, S]
        return Gradients(x: Tensor(shape: x.shape, scalars: dx), h0: Tensor(shape: state, scalars: dh),
                         c0: Tensor(shape: state, scalars: dc), weight: Tensor(shape: weight.shape, scalars: dw),
                         bias: Tensor(shape: [4 * H], scalars: db))
    }
}
