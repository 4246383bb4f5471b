/// The LSTM cell's elementwise work for one time step of a batch, in loops the compiler vectorises,
/// next to plain scalar references that the tests compare it with.
public enum LSTMKernels {
    // Each loop below writes one array and reads at most four, so the compiler's runtime alias checks
    // stay few and every loop vectorises (one fused loop with seven pointers does not).

    /// Turns the pre-activations `gates` [N, 4H] into activations in place (σ(i), σ(f), tanh(g), σ(o)),
    /// and writes c = f·cPrev + i·g, tanh(c) and h = o·tanh(c), each [N, H].
    public static func cellForward(gates: UnsafeMutablePointer<Float>, cPrev: UnsafePointer<Float>,
                                   c: UnsafeMutablePointer<Float>, tanhC: UnsafeMutablePointer<Float>,
                                   h: UnsafeMutablePointer<Float>, batch: Int, hidden H: Int) {
        for n in 0..<batch {
            let gi = gates + n * 4 * H, gf = gi + H, gg = gi + 2 * H, go = gi + 3 * H
            let cp = cPrev + n * H, cn = c + n * H, tn = tanhC + n * H, hn = h + n * H
            VectorMath.map(gi, gi, 2 * H, VectorMath.sigmoid)
            VectorMath.map(gg, gg, H, VectorMath.tanh)
            VectorMath.map(go, go, H, VectorMath.sigmoid)
            for j in 0..<H { cn[j] = gf[j] * cp[j] + gi[j] * gg[j] }
            VectorMath.map(cn, tn, H, VectorMath.tanh)
            for j in 0..<H { hn[j] = go[j] * tn[j] }
        }
    }

    /// From the activations of a step and the incoming dh, dc (both [N, H], dc updated in place to
    /// dc_{t−1}), writes the pre-activation gradients `dgates` [N, 4H].
    public static func cellBackward(gates: UnsafePointer<Float>, cPrev: UnsafePointer<Float>,
                                    tanhC: UnsafePointer<Float>, dh: UnsafePointer<Float>,
                                    dc: UnsafeMutablePointer<Float>, dgates: UnsafeMutablePointer<Float>,
                                    batch: Int, hidden H: Int) {
        for n in 0..<batch {
            let gi = gates + n * 4 * H, gf = gi + H, gg = gi + 2 * H, go = gi + 3 * H
            let di = dgates + n * 4 * H, df = di + H, dg = di + 2 * H, dout = di + 3 * H
            let tc = tanhC + n * H, dhn = dh + n * H, dcn = dc + n * H, cp = cPrev + n * H
            for j in 0..<H { dcn[j] += dhn[j] * go[j] * (1 - tc[j] * tc[j]) }       // dc_t, total
            for j in 0..<H { di[j] = dcn[j] * gg[j] * gi[j] * (1 - gi[j]) }
            for j in 0..<H { df[j] = dcn[j] * cp[j] * gf[j] * (1 - gf[j]) }
            for j in 0..<H { dg[j] = dcn[j] * gi[j] * (1 - gg[j] * gg[j]) }
            for j in 0..<H { dout[j] = dhn[j] * tc[j] * go[j] * (1 - go[j]) }
            for j in 0..<H { dcn[j] *= gf[j] }                                       // dc_{t−1}
        }
    }

    /// Scalar reference of `cellForward`, through libm.
    public static func cellForwardReference(gates: inout [Float], cPrev: [Float], c: inout [Float],
                                            tanhC: inout [Float], h: inout [Float], batch: Int, hidden H: Int) {
        for n in 0..<batch {
            for j in 0..<H {
                let b = n * 4 * H
                let i = VectorMath.sigmoidReference(gates[b + j]), f = VectorMath.sigmoidReference(gates[b + H + j])
                let g = VectorMath.tanhReference(gates[b + 2 * H + j]), o = VectorMath.sigmoidReference(gates[b + 3 * H + j])
                let cv = f * cPrev[n * H + j] + i * g
                gates[b + j] = i; gates[b + H + j] = f; gates[b + 2 * H + j] = g; gates[b + 3 * H + j] = o
                c[n * H + j] = cv; tanhC[n * H + j] = VectorMath.tanhReference(cv); h[n * H + j] = o * tanhC[n * H + j]
            }
        }
    }

    /// Scalar reference of `cellBackward`.
    public static func cellBackwardReference(gates: [Float], cPrev: [Float], tanhC: [Float], dh: [Float],
                                             dc: inout [Float], dgates: inout [Float], batch: Int, hidden H: Int) {
        for n in 0..<batch {
            for j in 0..<H {
                let b = n * 4 * H, k = n * H + j
                let i = gates[b + j], f = gates[b + H + j], g = gates[b + 2 * H + j], o = gates[b + 3 * H + j]
                let dcv = dc[k] + dh[k] * o * (1 - tanhC[k] * tanhC[k])
                dgates[b + j] = dcv * g * i * (1 - i)
                dgates[b + H + j] = dcv * cPrev[k] * f * (1 - f)
                dgates[b + 2 * H + j] = dcv * i * (1 - g * g)
                dgates[b + 3 * H + j] = dh[k] * tanhC[k] * o * (1 - o)
                dc[k] = dcv * f
            }
        }
    }
}
