/// One direction of one LSTM layer over a whole sequence as a single fused operation, with its
/// hand-written backpropagation through time. Gate order is PyTorch's (i, f, g, o):
///   gates = x_t·W_ihᵀ + b_ih + h_{t−1}·W_hhᵀ + b_hh
///   c_t = σ(f)·c_{t−1} + σ(i)·tanh(g),   h_t = σ(o)·tanh(c_t)
///
/// Everything is time-major ([T, N, ·]) so each time step is a contiguous block: each step's gates are
/// one fused product, the weight gradients are one product per chunk of steps inside the backward loop,
/// and the time loop allocates nothing.
public func lstmSequence(_ x: Variable, h0: Variable, c0: Variable,
                         weightIH: Variable, weightHH: Variable, biasIH: Variable, biasHH: Variable,
                         reverse: Bool) -> (output: Variable, h: Variable, c: Variable) {
    lstmSequences(x, [LSTMDirection(h0: h0, c0: c0, weightIH: weightIH, weightHH: weightHH, biasIH: biasIH,
                                    biasHH: biasHH, reverse: reverse)])[0]
}

/// The weights, initial state and direction of one `lstmSequence` over an input.
public struct LSTMDirection {
    public var h0, c0, weightIH, weightHH, biasIH, biasHH: Variable
    public var reverse: Bool
    public init(h0: Variable, c0: Variable, weightIH: Variable, weightHH: Variable, biasIH: Variable, biasHH: Variable, reverse: Bool) {
        self.h0 = h0; self.c0 = c0; self.weightIH = weightIH; self.weightHH = weightHH
        self.biasIH = biasIH; self.biasHH = biasHH; self.reverse = reverse
    }

    /// True when h0 is all zeros (the usual start): the first step's recurrent product adds nothing and is skipped.
    var startsAtZero: Bool { h0.value.scalars.allSatisfy { $0 == 0 } }
}

/// `lstmSequence` for several directions over the same input (a bidirectional layer). The directions run
/// concurrently, one per thread, when the batch is too small to split by rows, and in training up to 128 rows (each
/// thread then runs its direction's forward and backward on all rows, reading back from its own cache what it wrote,
/// with one weight-gradient sum per direction); otherwise one after the other, each split by rows.
public func lstmSequences(_ x: Variable, _ directions: [LSTMDirection]) -> [(output: Variable, h: Variable, c: Variable)] {
    let r = lstmSequences(x, directions, outputs: .perDirection)
    return zip(r.outputs, r.states).map { ($0, $1.h, $1.c) }
}

/// Which outputs a layer's forward returns besides each direction's final states.
enum LSTMOutputs {
    /// None (only the final states are wanted: a classifier's last layer).
    case none
    /// Each direction's [T, N, H].
    case perDirection
    /// One [T, N, D·H], the directions side by side (what the next layer reads), written once from their states; each
    /// direction's backward reads its columns of the gradient in place. Saves `concatLast`'s copy and its backward's.
    case joined
}

/// `lstmSequences` with the outputs `outputs` asks for: `outputs` holds none, one per direction, or the joined one.
func lstmSequences(_ x: Variable, _ directions: [LSTMDirection], outputs: LSTMOutputs)
    -> (outputs: [Variable], states: [(h: Variable, c: Variable)]) {
    precondition(x.value.rank == 3, "LSTM: input must be time-major [steps, batch, features], got \(x.shape)")
    let N = x.shape[1]
    // Inference keeps only the outputs: each chain's step gates live in scratch, activations and tanh(c) are not stored.
    let keep = directions.map { d in Autograd.records([x, d.h0, d.c0, d.weightIH, d.weightHH, d.biasIH, d.biasHH]) }
    let concurrent = directions.count > 1 && Parallel.threads > 1
        && (Parallel.rowBlocks(N) <= 1 || (keep.contains(true) && SmallGEMM.pays(rows: N, threads: 1)))
    var states = [LSTMForward?](repeating: nil, count: directions.count)
    if concurrent {
        states.withUnsafeMutableBufferPointer { out in
            nonisolated(unsafe) let out = out
            Parallel.forParts(directions.count, parts: min(Parallel.threads, directions.count)) { r in
                for d in r { out[d] = LSTMForward(x.value, directions[d], keepForBackward: keep[d], outputs: outputs != .none, threads: 1) }
            }
        }
    } else {
        for d in directions.indices {
            states[d] = LSTMForward(x.value, directions[d], keepForBackward: keep[d], outputs: outputs != .none, threads: Parallel.threads)
        }
    }
    return lstmNode(x, directions, states.map { $0! }, outputs: outputs, concurrent: concurrent)
}

/// The forward pass of one direction: the outputs, and (when `keepForBackward`) the activations the
/// backward reads.
struct LSTMForward {
    let T: Int, N: Int, I: Int, H: Int, reverse: Bool
    /// gates [T·N, 4H]: the activations (i, f, g, o) of every step (empty when not kept).
    let gates: AlignedFloats
    /// h and c [(T+1)·N, H] of every step plus the initial one. Forward keeps h_t at block t+1 (initial
    /// at 0); reverse keeps h_t at block t (initial at T). Either way the T "previous" blocks and the T
    /// output blocks are each contiguous. In inference, c (and h, when the outputs are not wanted) keep only two
    /// blocks, b mod 2 (`block`): a step's state is written over the one before last, in cache.
    let hs: AlignedFloats, cs: AlignedFloats
    let ringH: Bool, ringC: Bool
    /// Where block `b` of h (`ring` = ringH) or c (ringC) is.
    static func block(_ b: Int, ring: Bool) -> Int { ring ? b & 1 : b }
    /// tanh(c_t) [T·N, H] (empty when not kept).
    let tanhC: AlignedFloats

    init(_ xv: Tensor, _ d: LSTMDirection, keepForBackward keep: Bool, outputs: Bool = true, threads: Int) {
        let (h0, c0, weightIH, weightHH, biasIH, biasHH, reverse) = (d.h0, d.c0, d.weightIH, d.weightHH, d.biasIH, d.biasHH, d.reverse)
        let T = xv.shape[0], N = xv.shape[1], I = xv.shape[2]
        let H4 = weightHH.shape[0], H = H4 / 4
        precondition(H4 == 4 * H && weightHH.shape == [4 * H, H], "LSTM: weight_hh must be [4H, H], got \(weightHH.shape)")
        precondition(weightIH.shape == [4 * H, I], "LSTM: weight_ih \(weightIH.shape) does not match input size \(I) (expects [\(4 * H), \(I)])")
        precondition(biasIH.shape == [4 * H] && biasHH.shape == [4 * H], "LSTM: biases must be [\(4 * H)], got \(biasIH.shape) and \(biasHH.shape)")
        precondition(h0.shape == [N, H] && c0.shape == [N, H], "LSTM: initial state must be [\(N), \(H)], got \(h0.shape) and \(c0.shape)")
        precondition(T > 0, "LSTM: sequence has no steps")
        (self.T, self.N, self.I, self.H, self.reverse) = (T, N, I, H, reverse)
        let step = N * H
        // Fast path: each step's gates in one SmallGEMM call, b + x_t·W_ihᵀ + h_{t−1}·W_hhᵀ, reading the
        // transposed weights (packed once per weight update) in place; each gate block is written once
        // and used while it is in cache. All steps' input projections are one GEMM up front instead when
        // there are fewer than 8 rows per chain (reading W_ih every step costs more than it saves): SmallGEMM's
        // for the few rows of small batches, OpenBLAS's when SmallGEMM does not pay. A wide input (a bidirectional
        // layer's 2H) is fused as well: SmallGEMM cuts the deep product into slices whose panels fit in L1
        // (measured: 2×128-bi inference 1.05–1.09× faster than with its input product up front through OpenBLAS).
        // With more than 128 rows per thread (measured) or an odd width, OpenBLAS adds the recurrent product per step.
        let fast = SmallGEMM.supports(n: H4) && SmallGEMM.pays(rows: N, threads: threads)
        if !keep && N == 1 && threads >= 2 && H % 32 == 0 && fast && Lockstep.available, let (hs, cs) = LSTMForward.lockstep(xv, d) {
            (gates, tanhC, self.hs, self.cs, ringH, ringC) = (.empty, .empty, hs, cs, false, false)
            return
        }
        let (ringH, ringC) = (!keep && !outputs, !keep)   // measured in-process: inference 1.01–1.02×, and less memory
        (self.ringH, self.ringC) = (ringH, ringC)
        func hb(_ b: Int) -> Int { LSTMForward.block(b, ring: ringH) }
        func cb(_ b: Int) -> Int { LSTMForward.block(b, ring: ringC) }
        let chains = LSTMForward.rowChains(N, threads: threads), rowsPerProduct = chains[0].count
        let fuseInput = fast && rowsPerProduct >= 8
        let smallUpFront = fast && rowsPerProduct < 8
        let allGates = keep || !fuseInput   // else each chain's step gates go to a scratch block
        let gates = AlignedFloats(uninitializedCount: allGates ? T * N * H4 : 0)   // every element written by the gate products below
        let hs = AlignedFloats(uninitializedCount: (ringH ? 2 : T + 1) * step)   // initial block copied in, the rest written by each step
        let cs = AlignedFloats(uninitializedCount: (ringC ? 2 : T + 1) * step)
        let tanhC = AlignedFloats(uninitializedCount: keep ? T * step : 0)
        let initialBlock = reverse ? T : 0
        let zeroStart = d.startsAtZero
        hs.write(h0.value.scalars, at: hb(initialBlock) * step)
        cs.write(c0.value.scalars, at: cb(initialBlock) * step)

        xv.scalars.withUnsafeBufferPointer { xp in
        weightIH.value.scalars.withUnsafeBufferPointer { wih in
        weightHH.value.scalars.withUnsafeBufferPointer { whh in
        gates.withUnsafeMutableBufferPointer { g in
        hs.withUnsafeMutableBufferPointer { hp in
        cs.withUnsafeMutableBufferPointer { cp in
        tanhC.withUnsafeMutableBufferPointer { tc in
            nonisolated(unsafe) let (g, h, c, tc) = (g.baseAddress, hp.baseAddress!, cp.baseAddress!, tc.baseAddress)
            let (bi, bh) = (biasIH.value.scalars, biasHH.value.scalars)
            let bias = (0..<H4).map { bi[$0] + bh[$0] }
            let wihT = fuseInput || smallUpFront ? weightIH.packedForSmallGEMM(transposed: true) : .empty
            let whhT = fast ? weightHH.packedForSmallGEMM(transposed: true) : .empty
            nonisolated(unsafe) let (x, w) = (xp.baseAddress!, whh.baseAddress!)
            bias.withUnsafeBufferPointer { b in
            wihT.withUnsafeBufferPointer { wiT in
            whhT.withUnsafeBufferPointer { whT in
            nonisolated(unsafe) let b = b.baseAddress!, whT = fast ? whT.baseAddress : nil
            if smallUpFront {   // [T·N, I] · W_ihᵀ + b → gates, all steps at once
                SmallGEMM.multiply(m: T * N, n: H4, .init(a: x, lda: I, b: wiT.baseAddress!, k: I), bias: b, c: g!, ldc: H4,
                                   accumulate: false)
            } else if !fuseInput {   // gates start as the bias (one write, no zeroing pass), then += X · W_ihᵀ
                for r in 0..<(T * N) { (g! + r * H4).update(from: b, count: H4) }
                BLAS.gemm(transA: false, transB: true, m: T * N, n: H4, k: I, a: x, lda: I,
                          b: wih.baseAddress!, ldb: I, beta: 1, c: g!, ldc: H4, threads: threads)
            }
            nonisolated(unsafe) let wiT = fuseInput ? wiT.baseAddress : nil
            // The time loop: batch rows are independent, so the rows run as chains (`rowChains`), each core every step
            // of its own with single-threaded products (one synchronisation per sequence instead of one per step), and a
            // core that is done taking over steps of the other's.
            func run(_ rows: Range<Int>, step s: Int, scratch gScratch: UnsafeMutablePointer<Float>?) {   // scratch: when !allGates
                let lo = rows.lowerBound, n = rows.count
                let t = reverse ? T - 1 - s : s
                let prev = reverse ? t + 1 : t, cur = reverse ? t : t + 1
                let gt = allGates ? g! + t * N * H4 + lo * H4 : gScratch!, hPrev = h + hb(prev) * step + lo * H
                let recurrent = s > 0 || !zeroStart   // h_{−1} = 0 adds nothing
                if let wiT, let whT {
                    SmallGEMM.multiply(m: n, n: H4, .init(a: x + (t * N + lo) * I, lda: I, b: wiT, k: I),
                                       recurrent ? .init(a: hPrev, lda: H, b: whT, k: H) : nil, bias: b, c: gt, ldc: H4, accumulate: false)
                } else if recurrent, let whT {   // gates_t += h_{t−1} · W_hhᵀ
                    SmallGEMM.multiply(m: n, n: H4, k: H, a: hPrev, lda: H, b: whT, c: gt, ldc: H4, accumulate: true)
                } else if recurrent {
                    BLAS.gemm(transA: false, transB: true, m: n, n: H4, k: H, a: hPrev, lda: H,
                              b: w, ldb: H, beta: 1, c: gt, ldc: H4, threads: 1)
                }
                LSTMKernels.cellForward(gates: gt, cPrev: c + cb(prev) * step + lo * H, c: c + cb(cur) * step + lo * H,
                                        tanhC: keep ? tc! + t * step + lo * H : nil, h: h + hb(cur) * step + lo * H,
                                        batch: n, hidden: H)
            }
            // Each chain's step gates in its own scratch block (when not all kept), on a cache line.
            let each = (chains.map(\.count).max()! * H4 + 15) / 16 * 16
            let scratch = AlignedFloats.allocate(allGates ? 0 : chains.count * each)
            defer { scratch.deallocate() }
            nonisolated(unsafe) let gScratch = allGates ? nil : scratch
            Parallel.forChains(chains.count, steps: T, threads: threads) { chain, s in
                run(chains[chain], step: s, scratch: gScratch.map { $0 + chain * each })
            }
            } } }
        } } } } } } }

        (self.gates, self.hs, self.cs, self.tanhC) = (gates, hs, cs, tanhC)
    }

    /// The blocks of rows the time loops run as `Parallel.forChains` chains, forward and backward: `Parallel.chainBlocks`
    /// on several threads, all rows in one on one thread. The backward sums its weight gradients per chain, so that they
    /// do not depend on which core ran which step (measured in-process against one block of rows per thread, shared by
    /// the cores' measured speeds in inference: training 1.03–1.08×, inference at batch 256 1.05–1.07×, at 64 1.00–1.03×).
    static func rowChains(_ rows: Int, threads: Int) -> [Range<Int>] {
        threads > 1 ? Parallel.chainBlocks(rows) : [0..<rows]
    }

    /// Inference on one sequence with two threads in `Lockstep`: each takes half of the hidden units, computes the
    /// four gates of its units (b + x_t·W_ihᵀ + h_{t−1}·W_hhᵀ, from weights packed per half) and their cell update,
    /// and the two meet after every step, when h_t is whole. Each core then reads half of the weights from its own
    /// L2, where one core alone was bound by reading all of W_hhᵀ (256 KB for H = 128) every step. Returns hs, cs, or
    /// nil when another lockstep is running (then the caller runs the sequence on one thread).
    static func lockstep(_ xv: Tensor, _ d: LSTMDirection) -> (hs: AlignedFloats, cs: AlignedFloats)? {
        let T = xv.shape[0], I = xv.shape[2], H = d.weightHH.shape[1], half = H / 2
        let hs = AlignedFloats(uninitializedCount: (T + 1) * H), cs = AlignedFloats(uninitializedCount: (T + 1) * H)   // blocks as in `init`
        let initialBlock = d.reverse ? T : 0, zeroStart = d.startsAtZero
        hs.write(d.h0.value.scalars, at: initialBlock * H)
        cs.write(d.c0.value.scalars, at: initialBlock * H)
        // Part p's gate rows, in the order i, f, g, o of its units: row q·H + p·H/2 + u of the weights and biases.
        func rows(_ p: Int, _ w: Tensor) -> Tensor {
            let width = w.count / (4 * H)
            var out = uninitializedFloats(4 * half * width)
            for q in 0..<4 {
                let from = (q * H + p * half) * width
                out.replaceSubrange((q * half * width)..<((q + 1) * half * width), with: w.scalars[from..<(from + half * width)])
            }
            return Tensor(shape: [4 * half, width], scalars: out)
        }
        let parts = (0..<2).map { p in
            (wi: d.weightIH.derived("Lockstep.\(p)") { SmallGEMM.pack(rows(p, $0), transposed: true) },
             wh: d.weightHH.derived("Lockstep.\(p)") { SmallGEMM.pack(rows(p, $0), transposed: true) },
             bias: zip(rows(p, d.biasIH.value.reshaped([4 * H, 1])).scalars, rows(p, d.biasHH.value.reshaped([4 * H, 1])).scalars).map(+))
        }
        var ran = false
        xv.scalars.withUnsafeBufferPointer { xp in
        hs.withUnsafeMutableBufferPointer { hp in
        cs.withUnsafeMutableBufferPointer { cp in
            nonisolated(unsafe) let (x, h, c) = (xp.baseAddress!, hp.baseAddress!, cp.baseAddress!)
            ran = Lockstep.run { p in
                // This part's gates (i, f, g, o of its units) for every step: b + x_t·W_ihᵀ up front, then per step += h_{t−1}·W_hhᵀ.
                let gates = AlignedFloats.allocate(T * 4 * half)
                defer { gates.deallocate() }
                parts[p].wi.withUnsafeBufferPointer { wi in
                parts[p].wh.withUnsafeBufferPointer { wh in
                parts[p].bias.withUnsafeBufferPointer { b in
                    SmallGEMM.multiply(m: T, n: 4 * half, .init(a: x, lda: I, b: wi.baseAddress!, k: I), bias: b.baseAddress!,
                                       c: gates, ldc: 4 * half, accumulate: false)
                    for s in 0..<T {
                        let t = d.reverse ? T - 1 - s : s
                        let prev = d.reverse ? t + 1 : t, cur = d.reverse ? t : t + 1, gt = gates + t * 4 * half
                        if s > 0 || !zeroStart {   // h_{−1} = 0 adds nothing
                            SmallGEMM.multiply(m: 1, n: 4 * half, k: H, a: h + prev * H, lda: H, b: wh.baseAddress!, c: gt, ldc: 4 * half,
                                               accumulate: true)
                        }
                        LSTMKernels.cellForward(gates: gt, cPrev: c + prev * H + p * half, c: c + cur * H + p * half,
                                                tanhC: nil, h: h + cur * H + p * half, batch: 1, hidden: half)
                        Lockstep.barrier()   // h_t whole before either part starts step t + 1
                    }
                } } }
            }
        } } }
        return ran ? (hs, cs) : nil
    }
}

/// Wraps the forward passes of a layer's directions as one autograd node (the outputs `outputs` asks for, then h_T and c_T
/// of each direction), whose backward runs each direction's backpropagation through time, concurrently when the forward did.
func lstmNode(_ x: Variable, _ directions: [LSTMDirection], _ forwards: [LSTMForward], outputs: LSTMOutputs, concurrent: Bool)
    -> (outputs: [Variable], states: [(h: Variable, c: Variable)]) {
    let D = forwards.count, H = forwards[0].H
    let outputValues: [Tensor]
    switch outputs {
    case .none: outputValues = []
    case .perDirection: outputValues = forwards.map { LSTMForward.outputs([$0]) }
    case .joined: outputValues = [LSTMForward.outputs(forwards)]
    }
    let finals = forwards.map { $0.finalStates() }
    let inputs = [x] + directions.flatMap { [$0.h0, $0.c0, $0.weightIH, $0.weightHH, $0.biasIH, $0.biasHH] }
    let first = outputValues.count   // where the final states' gradients start
    let outs = Autograd.results(outputValues + finals.flatMap { [$0.h, $0.c] }, inputs: inputs) { grads in
        func backward(_ k: Int, threads: Int) -> [Tensor?] {
            let dy: (values: Tensor, stride: Int, offset: Int)?
            switch outputs {
            case .none: dy = nil
            case .perDirection: dy = grads[k].map { ($0, H, 0) }
            case .joined: dy = grads[0].map { ($0, D * H, k * H) }
            }
            return lstmBackward(x, directions[k], forwards[k], dy: dy, dhT: grads[first + 2 * k], dcT: grads[first + 2 * k + 1],
                                threads: threads)
        }
        var results = [[Tensor?]](repeating: [], count: D)
        if concurrent {
            results.withUnsafeMutableBufferPointer { out in
                nonisolated(unsafe) let out = out
                Parallel.forParts(D, parts: min(Parallel.threads, D)) { r in
                    for k in r { out[k] = backward(k, threads: 1) }
                }
            }
        } else {
            for k in 0..<D { results[k] = backward(k, threads: Parallel.threads) }
        }
        // x feeds every direction: its gradient is their sum.
        var dx: Tensor? = nil
        for r in results { if let d = r[0] { if dx == nil { dx = d } else { dx!.add(d) } } }
        return [dx] + results.flatMap { $0.dropFirst() }
    }
    return (Array(outs[..<first]), (0..<D).map { k in (outs[first + 2 * k], outs[first + 2 * k + 1]) })
}

extension LSTMForward {
    /// The outputs [T, N, D·H] of the directions `forwards` (D of them, over the same input), side by side: direction k's
    /// h_t in columns k·H..<(k+1)·H. Each direction's rows are copied once, shared among the threads.
    static func outputs(_ forwards: [LSTMForward]) -> Tensor {
        let (T, N, H) = (forwards[0].T, forwards[0].N, forwards[0].H), width = forwards.count * H
        var out = uninitializedFloats(T * N * width)   // every direction's columns copied below
        out.withUnsafeMutableBufferPointer { o in
            for (k, f) in forwards.enumerated() {
                precondition(!f.ringH && f.T == T && f.N == N && f.H == H, "LSTMForward: the outputs were not kept, or differ in shape")
                f.hs.withUnsafeBufferPointer {   // forward: h_t at block t + 1; reverse: at block t
                    Parallel.copyRows(T * N, width: H, from: $0.baseAddress! + (f.reverse ? 0 : N * H), stride: H,
                                      to: o.baseAddress! + k * H, stride: width)
                }
            }
        }
        return Tensor(shape: [T, N, width], scalars: out)
    }

    /// The final states h_T, c_T [N, H].
    func finalStates() -> (h: Tensor, c: Tensor) {
        let step = N * H, lastBlock = reverse ? 0 : T
        let (hLast, cLast) = (LSTMForward.block(lastBlock, ring: ringH), LSTMForward.block(lastBlock, ring: ringC))
        return (Tensor(shape: [N, H], scalars: hs.array((hLast * step)..<((hLast + 1) * step))),
                Tensor(shape: [N, H], scalars: cs.array((cLast * step)..<((cLast + 1) * step))))
    }
}

/// Backpropagation through time of one direction: the gradients of x, h0, c0, W_ih, W_hh, b_ih and b_hh from those of the
/// outputs (`dy`: row r of the [T·N, H] gradient at values[r·stride + offset ..< + H]) and of the final states; nil for each
/// when no gradient arrived, and for x and h0 when they need none. Products run on `threads`.
func lstmBackward(_ x: Variable, _ d: LSTMDirection, _ f: LSTMForward, dy dyT: (values: Tensor, stride: Int, offset: Int)?,
                  dhT: Tensor?, dcT: Tensor?, threads: Int) -> [Tensor?] {
    guard dyT != nil || dhT != nil || dcT != nil else { return [Tensor?](repeating: nil, count: 7) }
    let (weightIH, weightHH, reverse) = (d.weightIH, d.weightHH, d.reverse)
    let (T, N, I, H, H4, step) = (f.T, f.N, f.I, f.H, 4 * f.H, f.N * f.H)
    let (gates, hs, cs, tanhC) = (f.gates, f.hs, f.cs, f.tanhC)
    let (dyStride, dyOffset) = (dyT?.stride ?? H, dyT?.offset ?? 0)
    let wantsDh0 = d.h0.needsGrad
    let dh = dhT.map { AlignedFloats($0.scalars) } ?? AlignedFloats(repeating: 0, count: step)
    let dc = dcT.map { AlignedFloats($0.scalars) } ?? AlignedFloats(repeating: 0, count: step)
    var dx = uninitializedFloats(x.needsGrad ? T * N * I : 0)   // every step writes its rows
    // The weight gradients accumulate inside the time loop, per block of rows, as one product
    // [dW_ih | dW_hh | db] += dgatesᵀ · [x_t | h_{t−1} | 1] over chunks of steps of about 128 rows (a slice of
    // SmallGEMM's depth): each chunk of dgates is used while in cache and never stored for the whole sequence.
    let wide = (I + H + 1 + 15) / 16 * 16                 // [x | h | 1], padded with zero columns to a multiple of 16
    let chains = LSTMForward.rowChains(N, threads: threads), blocks = chains.count
    let sums = AlignedFloats(uninitializedCount: blocks * H4 * wide)   // each chain's first chunk writes its sum, later ones add
    let wIHPacked = x.needsGrad && SmallGEMM.supports(n: I) ? weightIH.packedForSmallGEMM(transposed: false) : .empty
    let wHHPacked = SmallGEMM.supports(n: H) ? weightHH.packedForSmallGEMM(transposed: false) : .empty
    gates.withUnsafeBufferPointer { gp in
    cs.withUnsafeBufferPointer { cp in
    tanhC.withUnsafeBufferPointer { tcp in
    hs.withUnsafeBufferPointer { hp in
    x.value.scalars.withUnsafeBufferPointer { xp in
    (dyT?.values.scalars ?? []).withUnsafeBufferPointer { dyp in
    dx.withUnsafeMutableBufferPointer { dxp in
    sums.withUnsafeMutableBufferPointer { sp in
    dh.withUnsafeMutableBufferPointer { dhp in
    dc.withUnsafeMutableBufferPointer { dcp in
    weightIH.value.scalars.withUnsafeBufferPointer { wih in
    weightHH.value.scalars.withUnsafeBufferPointer { whh in
    wIHPacked.withUnsafeBufferPointer { wIHp in
    wHHPacked.withUnsafeBufferPointer { wHHp in
        nonisolated(unsafe) let (gb, cb, tcb, hb, xb) = (gp.baseAddress!, cp.baseAddress!, tcp.baseAddress!, hp.baseAddress!, xp.baseAddress!)
        // (An empty array's buffer may still have an address, so emptiness decides.)
        nonisolated(unsafe) let (sums, dhs, dcs) = (sp.baseAddress!, dhp.baseAddress!, dcp.baseAddress!)
        nonisolated(unsafe) let dxs = dxp.isEmpty ? nil : dxp.baseAddress, dys = dyp.isEmpty ? nil : dyp.baseAddress
        nonisolated(unsafe) let (wi, wh) = (wih.baseAddress!, whh.baseAddress!)
        nonisolated(unsafe) let wIHPacked = wIHp.isEmpty ? nil : wIHp.baseAddress, wHHPacked = wHHp.isEmpty ? nil : wHHp.baseAddress
        // Each chain's steps per weight-gradient product, its dgates [chunk·n, 4H] and its packed [x_t | h_{t−1} | 1] rows
        // [chunk·n, wide]; the rows' tail: 1, then padding.
        let chunks = chains.map { max(1, min(T, SmallGEMM.sliceDepth / $0.count)) }
        nonisolated(unsafe) let scratch = zip(chains, chunks).map { rows, chunk in
            (dgates: AlignedFloats.allocate(chunk * rows.count * H4), inputs: AlignedFloats.allocate(chunk * rows.count * wide))
        }
        nonisolated(unsafe) let ones = UnsafeMutablePointer<Float>.allocate(capacity: wide - I - H)
        defer { for (d, i) in scratch { d.deallocate(); i.deallocate() }; ones.deallocate() }
        ones.initialize(repeating: 0, count: wide - I - H)
        ones[0] = 1
        Parallel.forChains(blocks, steps: T, threads: threads) { block, s in
            let lo = chains[block].lowerBound, n = chains[block].count, chunk = chunks[block], (dgates, inputs) = scratch[block]
            let t = reverse ? s : T - 1 - s
            let prev = reverse ? t + 1 : t
            let slot = s % chunk, depth = min(chunk, T - (s - slot)) * n
            if let dys {   // this step's rows of the outputs' gradient, read in place (a joined output's columns)
                for i in lo..<(lo + n) {
                    let from = dys + (t * N + i) * dyStride + dyOffset, to = dhs + i * H
                    for j in 0..<H { to[j] += from[j] }
                }
            }
            let dg = dgates + slot * n * H4                                                  // [n, 4H]
            LSTMKernels.cellBackward(gates: gb + t * N * H4 + lo * H4, cPrev: cb + prev * step + lo * H,
                                     tanhC: tcb + t * step + lo * H, dh: dhs + lo * H, dc: dcs + lo * H,
                                     dgates: dg, batch: n, hidden: H)
            // dh_{t−1} = dgates_t · W_hh   ([n, 4H] · [4H, H]); dh_{−1} only when h0 wants a gradient.
            let recurrent = s < T - 1 || wantsDh0
            if recurrent, let wHHPacked {
                SmallGEMM.multiply(m: n, n: H, k: H4, a: dg, lda: H4, b: wHHPacked, c: dhs + lo * H, ldc: H, accumulate: false)
            } else if recurrent {
                BLAS.gemm(transA: false, transB: false, m: n, n: H, k: H4, a: dg, lda: H4, b: wh, ldb: H,
                          beta: 0, c: dhs + lo * H, ldc: H, threads: 1)
            }
            // dx_t = dgates_t · W_ih   ([n, 4H] · [4H, I]).
            if let dxs {
                let out = dxs + (t * N + lo) * I
                if let wIHPacked {
                    SmallGEMM.multiply(m: n, n: I, k: H4, a: dg, lda: H4, b: wIHPacked, c: out, ldc: I, accumulate: false)
                } else {
                    BLAS.gemm(transA: false, transB: false, m: n, n: I, k: H4, a: dg, lda: H4, b: wi, ldb: I,
                              beta: 0, c: out, ldc: I, threads: 1)
                }
            }
            // This step's rows of [x_t | h_{t−1} | 1], packed piece by piece, then at the chunk's end its
            // weight-gradient product.
            for i in 0..<n {
                let r = slot * n + i
                SmallGEMM.packColumns(xb + (t * N + lo + i) * I, count: I, at: 0, n: wide, into: inputs, row: r, depth: depth)
                SmallGEMM.packColumns(hb + prev * step + (lo + i) * H, count: H, at: I, n: wide, into: inputs, row: r, depth: depth)
                SmallGEMM.packColumns(ones, count: wide - I - H, at: I + H, n: wide, into: inputs, row: r, depth: depth)
            }
            if (slot + 1) * n == depth {
                SmallGEMM.multiply(m: H4, n: wide, .init(transposed: dgates, lda: H4, b: inputs, k: depth),
                                   c: sums + block * H4 * wide, ldc: wide, accumulate: s >= chunk)
            }
        }
    } } } } } } } } } } } } } }
    // The blocks' sums, added and split in one pass into dW_ih [4H, I], dW_hh [4H, H] and db [4H].
    var dwih = uninitializedFloats(H4 * I), dwhh = uninitializedFloats(H4 * H), db = uninitializedFloats(H4)
    sums.withUnsafeBufferPointer { sp in
    dwih.withUnsafeMutableBufferPointer { wi in dwhh.withUnsafeMutableBufferPointer { wh in db.withUnsafeMutableBufferPointer { dbp in
        nonisolated(unsafe) let (sp, wi, wh, dbp) = (sp.baseAddress!, wi.baseAddress!, wh.baseAddress!, dbp.baseAddress!)
        func total(_ to: UnsafeMutablePointer<Float>, _ from: Int, _ count: Int) {   // Σ over blocks of sums[from..<from+count]
            to.update(from: sp + from, count: count)
            for b in 1..<max(blocks, 1) {
                let other = sp + b * H4 * wide + from
                for j in 0..<count { to[j] += other[j] }
            }
        }
        // Shared among the threads by gate rows (a serial pass over 2 × 320 KB was 0.4% of a 1×128 training step).
        Parallel.forItems(H4, size: wide, threads: threads) { rows in
            for r in rows {
                total(wi + r * I, r * wide, I)
                total(wh + r * H, r * wide + I, H)
                total(dbp + r, r * wide + I + H, 1)
            }
        }
    } } } }
    let dbias = Tensor(shape: [H4], scalars: db)   // db_ih = db_hh = Σ_rows dgates
    return [x.needsGrad ? Tensor(shape: [T, N, I], scalars: dx) : nil,
            wantsDh0 ? Tensor(shape: [N, H], scalars: dh.array()) : nil, Tensor(shape: [N, H], scalars: dc.array()),
            Tensor(shape: [H4, I], scalars: dwih), Tensor(shape: [H4, H], scalars: dwhh), dbias, dbias]
}
