/// The LSTM cell's elementwise work for one time step of a batch, vectorised with `SIMD16<Float>`,
/// next to plain scalar references that the tests compare it with.
public enum LSTMKernels {
    typealias V = VectorMath.V

    @inline(__always) static func load(_ p: UnsafePointer<Float>, _ w: Int) -> V {
        if w == 16 { return UnsafeRawPointer(p).loadUnaligned(as: V.self) }
        var v = V(repeating: 0)
        for k in 0..<w { v[k] = p[k] }
        return v
    }

    @inline(__always) static func store(_ v: V, _ p: UnsafeMutablePointer<Float>, _ w: Int) {
        if w == 16 { UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self); return }
        for k in 0..<w { p[k] = v[k] }
    }

    /// Turns the pre-activations `gates` [N, 4H] into activations in place (σ(i), σ(f), tanh(g), σ(o)),
    /// and writes c = f·cPrev + i·g, tanh(c) and h = o·tanh(c), each [N, H].
    public static func cellForward(gates: UnsafeMutablePointer<Float>, cPrev: UnsafePointer<Float>,
                                   c: UnsafeMutablePointer<Float>, tanhC: UnsafeMutablePointer<Float>,
                                   h: UnsafeMutablePointer<Float>, batch: Int, hidden H: Int) {
        for n in 0..<batch {
            let g = gates + n * 4 * H, o = n * H
            var j = 0
            while j < H {
                let w = min(16, H - j)
                let i = VectorMath.sigmoid(load(g + j, w))
                let f = VectorMath.sigmoid(load(g + H + j, w))
                let gg = VectorMath.tanh(load(g + 2 * H + j, w))
                let og = VectorMath.sigmoid(load(g + 3 * H + j, w))
                let cv = f * load(cPrev + o + j, w) + i * gg
                let tcv = VectorMath.tanh(cv)
                store(i, g + j, w); store(f, g + H + j, w); store(gg, g + 2 * H + j, w); store(og, g + 3 * H + j, w)
                store(cv, c + o + j, w); store(tcv, tanhC + o + j, w); store(og * tcv, h + o + j, w)
                j += w
            }
        }
    }

    /// From the activations of a step and the incoming dh, dc (both [N, H], dc updated in place to
    /// dc_{t−1}), writes the pre-activation gradients `dgates` [N, 4H].
    public static func cellBackward(gates: UnsafePointer<Float>, cPrev: UnsafePointer<Float>,
                                    tanhC: UnsafePointer<Float>, dh: UnsafePointer<Float>,
                                    dc: UnsafeMutablePointer<Float>, dgates: UnsafeMutablePointer<Float>,
                                    batch: Int, hidden H: Int) {
        for n in 0..<batch {
            let g = gates + n * 4 * H, d = dgates + n * 4 * H, o = n * H
            var j = 0
            while j < H {
                let w = min(16, H - j)
                let i = load(g + j, w), f = load(g + H + j, w), gg = load(g + 2 * H + j, w), og = load(g + 3 * H + j, w)
                let tc = load(tanhC + o + j, w), dhv = load(dh + o + j, w)
                let dcv = load(dc + o + j, w) + dhv * og * (1 - tc * tc)
                store(dcv * gg * i * (1 - i), d + j, w)
                store(dcv * load(cPrev + o + j, w) * f * (1 - f), d + H + j, w)
                store(dcv * i * (1 - gg * gg), d + 2 * H + j, w)
                store(dhv * tc * og * (1 - og), d + 3 * H + j, w)
                store(dcv * f, dc + o + j, w)
                j += w
            }
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
