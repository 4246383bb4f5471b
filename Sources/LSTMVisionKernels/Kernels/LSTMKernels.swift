/// The LSTM cell's elementwise work for one time step of a batch, fused and vectorised, next to plain
/// scalar references that the tests compare it with.
public enum LSTMKernels {
    // One pass over each row, 32 hidden units at a time (then 16): the four gates, the cell update and the values
    // the backward needs stay in registers. When H is not a multiple of 16, the last units of a row go
    // through a zero-padded copy on the stack, so that each formula is written once.
    package typealias V = VectorMath.V

    /// Writes c = f·cPrev + i·g and h = o·tanh(c), each [N, H], from the pre-activations `gates` [N, 4H]. With
    /// `tanhC` (training), also turns `gates` into the activations in place (σ(i), σ(f), tanh(g), σ(o)) and writes
    /// tanh(c), which the backward reads; without (inference), leaves `gates` as they are.
    public static func cellForward(gates: UnsafeMutablePointer<Float>, cPrev: UnsafePointer<Float>,
                                   c: UnsafeMutablePointer<Float>, tanhC: UnsafeMutablePointer<Float>?,
                                   h: UnsafeMutablePointer<Float>, batch: Int, hidden H: Int) {
        let full = H - H % 16
        for n in 0..<batch {
            let g = gates + n * 4 * H, cp = cPrev + n * H, cn = c + n * H,
                tn = tanhC.map { $0 + n * H }, hn = h + n * H
            // Two vectors at a time: their operations interleave and hide each other's latency, with the same values.
            let pairs = full / 32
            forwardChunks(VectorPair.self, count: pairs, g, H, cp, cn, tn, hn)
            let j = pairs * 32
            if j < full { forwardChunks(V.self, count: 1, g + j, H, cp + j, cn + j, tn.map { $0 + j }, hn + j) }
            if full == H { continue }
            // On the stack: i, f, g, o, cPrev, c, tanh c, h.
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 8 * 16) { b in
                let p = b.baseAddress!, w = H - full
                p.initialize(repeating: 0, count: 8 * 16)
                for q in 0..<4 { (p + 16 * q).update(from: g + q * H + full, count: w) }
                (p + 64).update(from: cp + full, count: w)
                forwardChunks(V.self, count: 1, p, 16, p + 64, p + 80, tn == nil ? nil : p + 96, p + 112)
                if let tn {
                    for q in 0..<4 { (g + q * H + full).update(from: p + 16 * q, count: w) }
                    (tn + full).update(from: p + 96, count: w)
                }
                (cn + full).update(from: p + 80, count: w); (hn + full).update(from: p + 112, count: w)
            }
        }
    }

    /// `cellForward` on `count` consecutive groups of 16 or 32 units (`T` one vector or a pair): gates i, f, g, o at
    /// `g`, `g + s`, `g + 2s`, `g + 3s`; the activations and tanh(c) are stored only with `tc`. Not inlined: in one
    /// function with its callers, the compiler stops inlining the vector operations.
    @inline(never)
    package static func forwardChunks<T: Lanes>(_: T.Type, count: Int, _ g: UnsafeMutablePointer<Float>, _ s: Int,
                                        _ cp: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>,
                                        _ tc: UnsafeMutablePointer<Float>?, _ h: UnsafeMutablePointer<Float>) {
        for k in 0..<count {
            let o0 = k * T.scalarCount, g = g + o0
            let i = VectorMath.sigmoid(T.load(g)), f = VectorMath.sigmoid(T.load(g + s))
            let gg = VectorMath.tanh(T.load(g + 2 * s)), o = VectorMath.sigmoid(T.load(g + 3 * s))
            let cv = (i * gg).plusProduct(f, T.load(cp + o0))
            let t = VectorMath.tanh(cv)
            if let tc {
                i.store(g); f.store(g + s); gg.store(g + 2 * s); o.store(g + 3 * s)
                t.store(tc + o0)
            }
            cv.store(c + o0); (o * t).store(h + o0)
        }
    }

    /// From the activations of a step and the incoming dh, dc (both [N, H], dc updated in place to
    /// dc_{t−1}), writes the pre-activation gradients `dgates` [N, 4H].
    public static func cellBackward(gates: UnsafePointer<Float>, cPrev: UnsafePointer<Float>,
                                    tanhC: UnsafePointer<Float>, dh: UnsafePointer<Float>,
                                    dc: UnsafeMutablePointer<Float>, dgates: UnsafeMutablePointer<Float>,
                                    batch: Int, hidden H: Int) {
        let full = H - H % 16
        for n in 0..<batch {
            let g = gates + n * 4 * H, d = dgates + n * 4 * H, k = n * H
            var j = 0
            while j < full {
                backwardChunk(g + j, H, cPrev + k + j, tanhC + k + j, dh + k + j, dc + k + j, d + j)
                j += 16
            }
            if full == H { continue }
            // On the stack: gates, cPrev, tanh c, dh, dc, dgates.
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 12 * 16) { b in
                let p = b.baseAddress!, w = H - full, r = k + full
                p.initialize(repeating: 0, count: 12 * 16)
                for q in 0..<4 { (p + 16 * q).update(from: g + q * H + full, count: w) }
                (p + 64).update(from: cPrev + r, count: w); (p + 80).update(from: tanhC + r, count: w)
                (p + 96).update(from: dh + r, count: w); (p + 112).update(from: dc + r, count: w)
                backwardChunk(p, 16, p + 64, p + 80, p + 96, p + 112, p + 128)
                for q in 0..<4 { (d + q * H + full).update(from: p + 128 + 16 * q, count: w) }
                (dc + r).update(from: p + 112, count: w)
            }
        }
    }

    /// `cellBackward` on 16 units: gates and their gradients at offsets 0, s, 2s, 3s.
    @inline(__always)
    package static func backwardChunk(_ g: UnsafePointer<Float>, _ s: Int, _ cp: UnsafePointer<Float>,
                              _ tcp: UnsafePointer<Float>, _ dhp: UnsafePointer<Float>,
                              _ dcp: UnsafeMutablePointer<Float>, _ d: UnsafeMutablePointer<Float>) {
        let i = VectorMath.load(g), f = VectorMath.load(g + s),
            gg = VectorMath.load(g + 2 * s), o = VectorMath.load(g + 3 * s)
        let tc = VectorMath.load(tcp), dh = VectorMath.load(dhp)
        let dcv = VectorMath.load(dcp) + dh * o * (1 - tc * tc)                 // dc_t, total
        VectorMath.store(dcv * gg * i * (1 - i), d)
        VectorMath.store(dcv * VectorMath.load(cp) * f * (1 - f), d + s)
        VectorMath.store(dcv * i * (1 - gg * gg), d + 2 * s)
        VectorMath.store(dh * tc * o * (1 - o), d + 3 * s)
        VectorMath.store(dcv * f, dcp)                                            // dc_{t−1}
    }

    /// Scalar reference of `cellForward`, through libm.
    package static func cellForwardReference(gates: inout [Float], cPrev: [Float], c: inout [Float],
                                            tanhC: inout [Float], h: inout [Float], batch: Int, hidden H: Int) {
        for n in 0..<batch {
            for j in 0..<H {
                let b = n * 4 * H
                let i = VectorMath.sigmoidReference(gates[b + j]), f = VectorMath.sigmoidReference(gates[b + H + j])
                let g = VectorMath.tanhReference(gates[b + 2 * H + j]),
                    o = VectorMath.sigmoidReference(gates[b + 3 * H + j])
                let cv = f * cPrev[n * H + j] + i * g
                gates[b + j] = i; gates[b + H + j] = f; gates[b + 2 * H + j] = g; gates[b + 3 * H + j] = o
                c[n * H + j] = cv
                tanhC[n * H + j] = VectorMath.tanhReference(cv)
                h[n * H + j] = o * tanhC[n * H + j]
            }
        }
    }

    /// Scalar reference of `cellBackward`.
    package static func cellBackwardReference(gates: [Float], cPrev: [Float], tanhC: [Float], dh: [Float],
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
