/// One direction of one LSTM layer over a whole sequence as a single fused operation, with its
/// hand-written backpropagation through time. Gate order is PyTorch's (i, f, g, o):
///   gates = x_t·W_ihᵀ + b_ih + h_{t−1}·W_hhᵀ + b_hh
///   c_t = σ(f)·c_{t−1} + σ(i)·tanh(g),   h_t = σ(o)·tanh(c_t)
/// `LSTMReference` computes the same in plain loops; this file is its fast paths, chosen by `LSTMPlan.choose`.
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
    public init(h0: Variable, c0: Variable, weightIH: Variable, weightHH: Variable, biasIH: Variable,
                biasHH: Variable, reverse: Bool) {
        self.h0 = h0; self.c0 = c0; self.weightIH = weightIH; self.weightHH = weightHH
        self.biasIH = biasIH; self.biasHH = biasHH; self.reverse = reverse
    }

    /// True when h0 is all zeros (the usual start): the first step's recurrent product adds nothing and is skipped.
    var startsAtZero: Bool { h0.value.scalars.allSatisfy { $0 == 0 } }
}

/// `lstmSequence` for several directions over the same input (a bidirectional layer), run as `LSTMPlan.choose` says:
/// concurrently, one direction per thread, or one after the other, each split by rows.
public func lstmSequences(_ x: Variable, _ directions: [LSTMDirection])
    -> [(output: Variable, h: Variable, c: Variable)] {
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
/// `plan` forces how the layer runs (tests); by default `LSTMPlan.choose` picks it.
func lstmSequences(_ x: Variable, _ directions: [LSTMDirection], outputs: LSTMOutputs, plan forced: LSTMPlan? = nil)
    -> (outputs: [Variable], states: [(h: Variable, c: Variable)]) {
    precondition(x.value.rank == 3, "LSTM: input must be time-major [steps, batch, features], got \(x.shape)")
    precondition(!directions.isEmpty, "LSTM: no directions")
    let (N, H) = (x.shape[1], directions[0].weightHH.shape[0] / 4)
    // Inference keeps only the outputs: each chain's step gates live in scratch, activations and tanh(c) are not kept.
    let keep = directions.map { d in Autograd.records([x, d.h0, d.c0, d.weightIH, d.weightHH, d.biasIH, d.biasHH]) }
    let plan = forced ?? LSTMPlan.choose(rows: N, hidden: H, training: keep)
    plan.check(rows: N, hidden: H, training: keep)
    var states = [LSTMForward?](repeating: nil, count: directions.count)
    func forward(_ d: Int) -> LSTMForward {
        LSTMForward(x.value, directions[d], strategy: plan.strategies[d], keepForBackward: keep[d],
                    outputs: outputs != .none, threads: plan.threadsPerDirection)
    }
    if plan.concurrentDirections {
        states.withUnsafeMutableBufferPointer { out in
            nonisolated(unsafe) let out = out
            Parallel.forParts(directions.count, parts: min(plan.threads, directions.count)) { r in
                for d in r { out[d] = forward(d) }
            }
        }
    } else {
        for d in directions.indices { states[d] = forward(d) }
    }
    return lstmNode(x, directions, states.map { $0! }, outputs: outputs, plan: plan)
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

    init(_ xv: Tensor, _ d: LSTMDirection, strategy: LSTMStrategy, keepForBackward keep: Bool, outputs: Bool = true,
         threads: Int) {
        let (weightIH, weightHH, biasIH, biasHH) = (d.weightIH, d.weightHH, d.biasIH, d.biasHH)
        let T = xv.shape[0], N = xv.shape[1], I = xv.shape[2]
        let H4 = weightHH.shape[0], H = H4 / 4
        precondition(H4 == 4 * H && weightHH.shape == [4 * H, H],
                     "LSTM: weight_hh must be [4H, H], got \(weightHH.shape)")
        precondition(weightIH.shape == [4 * H, I],
                     "LSTM: weight_ih \(weightIH.shape) does not match input size \(I) (expects [\(4 * H), \(I)])")
        precondition(biasIH.shape == [4 * H] && biasHH.shape == [4 * H],
                     "LSTM: biases must be [\(4 * H)], got \(biasIH.shape) and \(biasHH.shape)")
        precondition(d.h0.shape == [N, H] && d.c0.shape == [N, H],
                     "LSTM: initial state must be [\(N), \(H)], got \(d.h0.shape) and \(d.c0.shape)")
        precondition(T > 0, "LSTM: sequence has no steps")
        (self.T, self.N, self.I, self.H, self.reverse) = (T, N, I, H, d.reverse)
        if strategy == .lockstepHalves, let (hs, cs) = LSTMForward.lockstep(xv, d) {
            (gates, tanhC, self.hs, self.cs, ringH, ringC) = (.empty, .empty, hs, cs, false, false)
            return
        }
        let strategy = strategy == .lockstepHalves ? .smallGEMMInputUpFront : strategy
        let (ringH, ringC) = (!keep && !outputs, !keep)   // inference: less memory, and the states stay in cache
        (self.ringH, self.ringC) = (ringH, ringC)
        let chains = LSTMForward.rowChains(N, threads: threads)
        let allGates = keep || strategy != .smallGEMMFused   // else each chain's step gates go to a scratch block
        let step = N * H
        // Every element of gates is written by the input products (or each step's fused product), of tanhC by the
        // steps; the initial blocks of hs and cs are copied in, each step writes the next.
        let gates = AlignedFloats(uninitializedCount: allGates ? T * N * H4 : 0)
        let hs = AlignedFloats(uninitializedCount: (ringH ? 2 : T + 1) * step)
        let cs = AlignedFloats(uninitializedCount: (ringC ? 2 : T + 1) * step)
        let tanhC = AlignedFloats(uninitializedCount: keep ? T * step : 0)
        let initialBlock = d.reverse ? T : 0
        hs.write(d.h0.value.scalars, at: LSTMForward.block(initialBlock, ring: ringH) * step)
        cs.write(d.c0.value.scalars, at: LSTMForward.block(initialBlock, ring: ringC) * step)
        let (bi, bh) = (biasIH.value.scalars, biasHH.value.scalars), bias = AlignedFloats(uninitializedCount: H4)
        for j in 0..<H4 { bias.base[j] = bi[j] + bh[j] }
        let packed = strategy.usesSmallGEMM   // W_ihᵀ and W_hhᵀ in SmallGEMM's layout, packed once per weight update
        let (wihT, whhT) = packed ? (weightIH.packedForSmallGEMM(transposed: true),
                                     weightHH.packedForSmallGEMM(transposed: true)) : (.empty, .empty)
        let owners = (gates, hs, cs, tanhC, bias, wihT, whhT)
        withBaseAddresses([xv.scalars, weightIH.value.scalars, weightHH.value.scalars], keeping: owners) { arrays in
            let pass = LSTMForwardPass(
                T: T, N: N, I: I, H: H, reverse: d.reverse, strategy: strategy, ringH: ringH, ringC: ringC,
                zeroStart: d.startsAtZero, allGates: allGates, keep: keep,
                p: LSTMForwardPointers(x: arrays[0]!, weightIH: arrays[1]!, weightHH: arrays[2]!, bias: bias.base,
                                       weightIHT: packed ? wihT.base : nil, weightHHT: packed ? whhT.base : nil,
                                       gates: allGates ? gates.base : nil, h: hs.base, c: cs.base,
                                       tanhC: keep ? tanhC.base : nil))
            pass.inputProducts(threads: threads)
            // Each chain's step gates in its own scratch block (when not all kept), on a cache line.
            let each = (chains.map(\.count).max()! * H4 + 15) / 16 * 16
            let scratch = AlignedFloats.allocate(allGates ? 0 : chains.count * each)
            defer { scratch.deallocate() }
            nonisolated(unsafe) let gScratch = allGates ? nil : scratch
            // The time loop: batch rows are independent, so the rows run as chains (`rowChains`), each core every
            // step of its own with single-threaded products (one synchronisation per sequence instead of one per
            // step), and a core that is done taking over steps of the other's.
            Parallel.forChains(chains.count, steps: T, threads: threads) { chain, s in
                pass.step(chains[chain], s, scratch: gScratch.map { $0 + chain * each })
            }
        }
        (self.gates, self.hs, self.cs, self.tanhC) = (gates, hs, cs, tanhC)
    }

    /// The blocks of rows the time loops run as `Parallel.forChains` chains, forward and backward:
    /// `Parallel.chainBlocks` on several threads, all rows in one on one thread. The backward sums its weight
    /// gradients per chain, so that they do not depend on which core ran which step.
    static func rowChains(_ rows: Int, threads: Int) -> [Range<Int>] {
        threads > 1 ? Parallel.chainBlocks(rows) : [0..<rows]
    }

    /// Inference on one sequence with two threads in `Lockstep` (`LSTMStrategy.lockstepHalves`): each takes half of
    /// the hidden units, computes the four gates of its units (b + x_t·W_ihᵀ + h_{t−1}·W_hhᵀ, from weights
    /// packed per half) and their cell update, and the two meet after every step, when h_t is whole. Each core then
    /// reads half of the weights from its own L2, where one core alone is bound by reading all of W_hhᵀ every step.
    /// Returns hs, cs, or nil when another lockstep is running (then the caller runs the sequence on one thread).
    static func lockstep(_ xv: Tensor, _ d: LSTMDirection) -> (hs: AlignedFloats, cs: AlignedFloats)? {
        let T = xv.shape[0], I = xv.shape[2], H = d.weightHH.shape[1], half = H / 2
        // Blocks as in `init`.
        let hs = AlignedFloats(uninitializedCount: (T + 1) * H), cs = AlignedFloats(uninitializedCount: (T + 1) * H)
        let initialBlock = d.reverse ? T : 0, zeroStart = d.startsAtZero
        hs.write(d.h0.value.scalars, at: initialBlock * H)
        cs.write(d.c0.value.scalars, at: initialBlock * H)
        // Part p's gate rows, in the order i, f, g, o of its units: row q·H + p·H/2 + u of the weights and biases.
        func rows(_ p: Int, _ w: Tensor) -> Tensor {
            let width = w.count / (4 * H)
            var out = uninitializedFloats(4 * half * width)
            for q in 0..<4 {
                let from = (q * H + p * half) * width
                out.replaceSubrange((q * half * width)..<((q + 1) * half * width),
                                    with: w.scalars[from..<(from + half * width)])
            }
            return Tensor(shape: [4 * half, width], scalars: out)
        }
        let (bi, bh) = (d.biasIH.value.scalars, d.biasHH.value.scalars)
        let parts = (0..<2).map { p in
            let bias = AlignedFloats(uninitializedCount: 4 * half)   // b_ih + b_hh of the same rows
            for q in 0..<4 {
                for u in 0..<half { bias.base[q * half + u] = bi[q * H + p * half + u] + bh[q * H + p * half + u] }
            }
            return (wi: d.weightIH.derived("Lockstep.\(p)") { SmallGEMM.pack(rows(p, $0), transposed: true) },
                    wh: d.weightHH.derived("Lockstep.\(p)") { SmallGEMM.pack(rows(p, $0), transposed: true) },
                    bias: bias)
        }
        let ran = withBaseAddresses([xv.scalars], keeping: (hs, cs, parts)) { arrays in
            nonisolated(unsafe) let (x, h, c) = (arrays[0]!, hs.base, cs.base)
            return Lockstep.run { p in
                // This part's gates (i, f, g, o of its units) for every step: b + x_t·W_ihᵀ up front, then per step
                // += h_{t−1}·W_hhᵀ.
                let gates = AlignedFloats.allocate(T * 4 * half)
                defer { gates.deallocate() }
                let (wi, wh, b) = (parts[p].wi.base, parts[p].wh.base, parts[p].bias.base)
                SmallGEMM.multiply(m: T, n: 4 * half, .init(a: x, lda: I, b: wi, k: I), bias: b,
                                   c: gates, ldc: 4 * half, accumulate: false)
                for s in 0..<T {
                    let t = d.reverse ? T - 1 - s : s
                    let prev = d.reverse ? t + 1 : t, cur = d.reverse ? t : t + 1, gt = gates + t * 4 * half
                    if s > 0 || !zeroStart {   // h_{−1} = 0 adds nothing
                        SmallGEMM.multiply(m: 1, n: 4 * half, k: H, a: h + prev * H, lda: H, b: wh, c: gt,
                                           ldc: 4 * half, accumulate: true)
                    }
                    LSTMKernels.cellForward(gates: gt, cPrev: c + prev * H + p * half, c: c + cur * H + p * half,
                                            tanhC: nil, h: h + cur * H + p * half, batch: 1, hidden: half)
                    Lockstep.barrier()   // h_t whole before either part starts step t + 1
                }
            }
        }
        return ran ? (hs, cs) : nil
    }
}

/// The raw pointers of one direction's forward pass, taken once by `withBaseAddresses` in `LSTMForward.init`: valid
/// only while its body runs, which keeps every buffer alive and in place.
struct LSTMForwardPointers: @unchecked Sendable {
    /// x [T·N, I], W_ih [4H, I], W_hh [4H, H] (read by OpenBLAS), b_ih + b_hh [4H].
    let x, weightIH, weightHH, bias: UnsafePointer<Float>
    /// W_ihᵀ and W_hhᵀ packed for SmallGEMM (nil with OpenBLAS).
    let weightIHT, weightHHT: UnsafePointer<Float>?
    /// The gates of all steps [T·N, 4H] (nil when each chain's step gates go to its scratch block).
    let gates: UnsafeMutablePointer<Float>?
    /// The blocks of h and c (`LSTMForward.hs`, `cs`).
    let h, c: UnsafeMutablePointer<Float>
    /// tanh(c_t) [T·N, H] (nil in inference).
    let tanhC: UnsafeMutablePointer<Float>?
}

/// One direction's forward time loop: the products of `strategy` and the cell update, on the buffers of `p`.
struct LSTMForwardPass: @unchecked Sendable {
    let T: Int, N: Int, I: Int, H: Int, reverse: Bool
    /// `.smallGEMMFused`, `.smallGEMMInputUpFront` or `.openBLAS` (a lockstep runs on its own).
    let strategy: LSTMStrategy
    let ringH: Bool, ringC: Bool
    /// h0 is all zeros: step 0's recurrent product is skipped.
    let zeroStart: Bool
    /// The gates of every step are kept in `p.gates` (training, or the input products computed up front).
    let allGates: Bool
    /// Training: the activations and tanh(c) are kept for the backward.
    let keep: Bool
    let p: LSTMForwardPointers

    /// The input products of all steps at once, for the strategies that compute them up front.
    func inputProducts(threads: Int) {
        let H4 = 4 * H
        switch strategy {
        case .smallGEMMInputUpFront:   // [T·N, I] · W_ihᵀ + b → gates, all steps at once
            SmallGEMM.multiply(m: T * N, n: H4, .init(a: p.x, lda: I, b: p.weightIHT!, k: I), bias: p.bias,
                               c: p.gates!, ldc: H4, accumulate: false)
        case .openBLAS:   // gates start as the bias (one write, no zeroing pass), then += X · W_ihᵀ
            for r in 0..<(T * N) { (p.gates! + r * H4).update(from: p.bias, count: H4) }
            BLAS.gemm(transA: false, transB: true, m: T * N, n: H4, k: I, a: p.x, lda: I,
                      b: p.weightIH, ldb: I, beta: 1, c: p.gates!, ldc: H4, threads: threads)
        case .smallGEMMFused, .lockstepHalves:
            break
        }
    }

    /// Step `s` (in the direction's order) of the chain of `rows`, its products single-threaded; `scratch` holds the
    /// chain's step gates when not all are kept.
    func step(_ rows: Range<Int>, _ s: Int, scratch: UnsafeMutablePointer<Float>?) {
        let H4 = 4 * H, step = N * H, lo = rows.lowerBound, n = rows.count
        let t = reverse ? T - 1 - s : s
        let prev = reverse ? t + 1 : t, cur = reverse ? t : t + 1
        let (hPrevBlock, cPrevBlock) = (LSTMForward.block(prev, ring: ringH), LSTMForward.block(prev, ring: ringC))
        let (hBlock, cBlock) = (LSTMForward.block(cur, ring: ringH), LSTMForward.block(cur, ring: ringC))
        let gt = allGates ? p.gates! + t * N * H4 + lo * H4 : scratch!, hPrev = p.h + hPrevBlock * step + lo * H
        let recurrent = s > 0 || !zeroStart   // h_{−1} = 0 adds nothing
        switch strategy {
        case .smallGEMMFused:   // gates_t = b + x_t · W_ihᵀ + h_{t−1} · W_hhᵀ
            SmallGEMM.multiply(m: n, n: H4, .init(a: p.x + (t * N + lo) * I, lda: I, b: p.weightIHT!, k: I),
                               recurrent ? .init(a: hPrev, lda: H, b: p.weightHHT!, k: H) : nil, bias: p.bias,
                               c: gt, ldc: H4, accumulate: false)
        case .smallGEMMInputUpFront, .lockstepHalves:   // gates_t += h_{t−1} · W_hhᵀ
            if recurrent {
                SmallGEMM.multiply(m: n, n: H4, k: H, a: hPrev, lda: H, b: p.weightHHT!, c: gt, ldc: H4,
                                   accumulate: true)
            }
        case .openBLAS:
            if recurrent {
                BLAS.gemm(transA: false, transB: true, m: n, n: H4, k: H, a: hPrev, lda: H,
                          b: p.weightHH, ldb: H, beta: 1, c: gt, ldc: H4, threads: 1)
            }
        }
        LSTMKernels.cellForward(gates: gt, cPrev: p.c + cPrevBlock * step + lo * H, c: p.c + cBlock * step + lo * H,
                                tanhC: keep ? p.tanhC! + t * step + lo * H : nil, h: p.h + hBlock * step + lo * H,
                                batch: n, hidden: H)
    }
}

/// Wraps the forward passes of a layer's directions as one autograd node (the outputs `outputs` asks for, then h_T and
/// c_T of each direction), whose backward runs each direction's backpropagation through time as `plan` says.
func lstmNode(_ x: Variable, _ directions: [LSTMDirection], _ forwards: [LSTMForward], outputs: LSTMOutputs,
              plan: LSTMPlan) -> (outputs: [Variable], states: [(h: Variable, c: Variable)]) {
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
            return lstmBackward(x, directions[k], forwards[k], dy: dy, dhT: grads[first + 2 * k],
                                dcT: grads[first + 2 * k + 1], kernel: plan.backwardKernel, threads: threads)
        }
        var results = [[Tensor?]](repeating: [], count: D)
        if plan.concurrentDirections {
            results.withUnsafeMutableBufferPointer { out in
                nonisolated(unsafe) let out = out
                Parallel.forParts(D, parts: min(plan.threads, D)) { r in
                    for k in r { out[k] = backward(k, threads: 1) }
                }
            }
        } else {
            for k in 0..<D { results[k] = backward(k, threads: plan.threads) }
        }
        // x feeds every direction: its gradient is their sum.
        var dx: Tensor? = nil
        for r in results { if let d = r[0] { if dx == nil { dx = d } else { dx!.add(d) } } }
        return [dx] + results.flatMap { $0.dropFirst() }
    }
    return (Array(outs[..<first]), (0..<D).map { k in (outs[first + 2 * k], outs[first + 2 * k + 1]) })
}

extension LSTMForward {
    /// The outputs [T, N, D·H] of the directions `forwards` (D of them, over the same input), side by side: direction
    /// k's h_t in columns k·H..<(k+1)·H. Each direction's rows are copied once, shared among the threads.
    static func outputs(_ forwards: [LSTMForward]) -> Tensor {
        let (T, N, H) = (forwards[0].T, forwards[0].N, forwards[0].H), width = forwards.count * H
        var out = uninitializedFloats(T * N * width)   // every direction's columns copied below
        out.withUnsafeMutableBufferPointer { o in
            for (k, f) in forwards.enumerated() {
                precondition(!f.ringH && f.T == T && f.N == N && f.H == H,
                             "LSTMForward: the outputs were not kept, or differ in shape")
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

/// Backpropagation through time of one direction: the gradients of x, h0, c0, W_ih, W_hh, b_ih and b_hh from those of
/// the outputs (`dy`: row r of the [T·N, H] gradient at values[r·stride + offset ..< + H]) and of the final states;
/// nil for each when no gradient arrived, and for x and h0 when they need none. The products dh_{t−1} = dgates·W_hh
/// and dx_t = dgates·W_ih run on `kernel`, the time loop on `threads`.
func lstmBackward(_ x: Variable, _ d: LSTMDirection, _ f: LSTMForward,
                  dy dyT: (values: Tensor, stride: Int, offset: Int)?, dhT: Tensor?, dcT: Tensor?, kernel: LSTMKernel,
                  threads: Int) -> [Tensor?] {
    guard dyT != nil || dhT != nil || dcT != nil else { return [Tensor?](repeating: nil, count: 7) }
    let (T, N, I, H, H4, step) = (f.T, f.N, f.I, f.H, 4 * f.H, f.N * f.H)
    let dh = dhT.map { AlignedFloats($0.scalars) } ?? AlignedFloats(repeating: 0, count: step)
    let dc = dcT.map { AlignedFloats($0.scalars) } ?? AlignedFloats(repeating: 0, count: step)
    // The weight gradients accumulate inside the time loop, per block of rows, as one product
    // [dW_ih | dW_hh | db] += dgatesᵀ · [x_t | h_{t−1} | 1] over chunks of steps of about 128 rows (a slice of
    // SmallGEMM's depth): each chunk of dgates is used while in cache and never stored for the whole sequence.
    let wide = (I + H + 1 + 15) / 16 * 16                 // [x | h | 1], padded with zero columns to a multiple of 16
    let chains = LSTMForward.rowChains(N, threads: threads)
    let sums = AlignedFloats(uninitializedCount: chains.count * H4 * wide)   // each chain's first chunk writes its sum
    let (packIH, packHH) = (x.needsGrad && kernel.usesSmallGEMM(columns: I), kernel.usesSmallGEMM(columns: H))
    let wIHPacked = packIH ? d.weightIH.packedForSmallGEMM(transposed: false) : .empty
    let wHHPacked = packHH ? d.weightHH.packedForSmallGEMM(transposed: false) : .empty
    // Each chain's steps per weight-gradient product, its dgates [chunk·n, 4H] and its packed [x_t | h_{t−1} | 1]
    // rows [chunk·n, wide].
    let chunks = chains.map { max(1, min(T, SmallGEMM.sliceDepth / $0.count)) }
    let scratch = zip(chains, chunks).map { rows, chunk in
        LSTMBackwardPass.Chain(rows: rows, chunk: chunk, dgates: AlignedFloats.allocate(chunk * rows.count * H4),
                               inputs: AlignedFloats.allocate(chunk * rows.count * wide))
    }
    let ones = AlignedFloats(repeating: 0, count: wide - I - H)   // the rows' tail: 1, then padding
    ones.base[0] = 1
    defer { for c in scratch { c.dgates.deallocate(); c.inputs.deallocate() } }
    var written = [uninitializedFloats(x.needsGrad ? T * N * I : 0)]   // dx: every step writes its rows
    let owners = (f.gates, f.hs, f.cs, f.tanhC, sums, dh, dc, wIHPacked, wHHPacked, ones)
    let reading = [x.value.scalars, dyT?.values.scalars ?? [], d.weightIH.value.scalars, d.weightHH.value.scalars]
    withBaseAddresses(reading, writing: &written, keeping: owners) { arrays, outputs in
        let pass = LSTMBackwardPass(
            T: T, N: N, I: I, H: H, reverse: d.reverse, wide: wide, wantsDh0: d.h0.needsGrad,
            dyStride: dyT?.stride ?? H, dyOffset: dyT?.offset ?? 0,
            p: LSTMBackwardPointers(gates: f.gates.base, c: f.cs.base, tanhC: f.tanhC.base, h: f.hs.base, x: arrays[0]!,
                                    dy: arrays[1], weightIH: arrays[2]!, weightHH: arrays[3]!,
                                    weightIHPacked: packIH ? wIHPacked.base : nil,
                                    weightHHPacked: packHH ? wHHPacked.base : nil, ones: ones.base,
                                    dx: outputs[0], dh: dh.base, dc: dc.base, sums: sums.base))
        Parallel.forChains(chains.count, steps: T, threads: threads) { chain, s in
            pass.step(chain: chain, scratch[chain], s)
        }
    }
    let dx = written[0]
    // The chains' sums, added and split in one pass into dW_ih [4H, I], dW_hh [4H, H] and db [4H].
    var totals = [uninitializedFloats(H4 * I), uninitializedFloats(H4 * H), uninitializedFloats(H4)]
    withBaseAddresses([], writing: &totals, keeping: sums) { _, outputs in
        nonisolated(unsafe) let (sp, wi, wh, db) = (sums.base, outputs[0]!, outputs[1]!, outputs[2]!)
        let blocks = chains.count
        func total(_ to: UnsafeMutablePointer<Float>, _ from: Int, _ count: Int) {   // Σ over blocks of sums[from...]
            to.update(from: sp + from, count: count)
            for b in 1..<max(blocks, 1) {
                let other = sp + b * H4 * wide + from
                for j in 0..<count { to[j] += other[j] }
            }
        }
        // Shared among the threads by gate rows.
        Parallel.forItems(H4, size: wide, threads: threads) { rows in
            for r in rows {
                total(wi + r * I, r * wide, I)
                total(wh + r * H, r * wide + I, H)
                total(db + r, r * wide + I + H, 1)
            }
        }
    }
    let dbias = Tensor(shape: [H4], scalars: totals[2])   // db_ih = db_hh = Σ_rows dgates
    return [x.needsGrad ? Tensor(shape: [T, N, I], scalars: dx) : nil,
            d.h0.needsGrad ? Tensor(shape: [N, H], scalars: dh.array()) : nil,
            Tensor(shape: [N, H], scalars: dc.array()),
            Tensor(shape: [H4, I], scalars: totals[0]), Tensor(shape: [H4, H], scalars: totals[1]), dbias, dbias]
}

/// The raw pointers of one direction's backward pass, taken once by `withBaseAddresses` in `lstmBackward`: valid only
/// while its body runs, which keeps every buffer alive and in place.
struct LSTMBackwardPointers: @unchecked Sendable {
    /// The forward's activations [T·N, 4H], c blocks, tanh(c_t) [T·N, H] and h blocks (`LSTMForward`).
    let gates, c, tanhC, h: UnsafePointer<Float>
    /// x [T·N, I]; the outputs' gradient (nil when none arrived).
    let x: UnsafePointer<Float>, dy: UnsafePointer<Float>?
    /// W_ih [4H, I] and W_hh [4H, H] (read by OpenBLAS), and packed for SmallGEMM (nil with OpenBLAS).
    let weightIH, weightHH: UnsafePointer<Float>, weightIHPacked, weightHHPacked: UnsafePointer<Float>?
    /// The tail of each [x_t | h_{t−1} | 1] row: 1, then zeros to `wide`.
    let ones: UnsafePointer<Float>
    /// dx [T·N, I] (nil when x needs no gradient); dh, dc [N, H] of the step being run, updated in place; each chain's
    /// weight-gradient sums [4H, wide].
    let dx: UnsafeMutablePointer<Float>?, dh, dc, sums: UnsafeMutablePointer<Float>
}

/// One direction's backward time loop, on the buffers of `p`.
struct LSTMBackwardPass: @unchecked Sendable {
    /// A chain of rows, its steps per weight-gradient product and its scratch: dgates [chunk·n, 4H] and the packed
    /// [x_t | h_{t−1} | 1] rows [chunk·n, wide].
    struct Chain: @unchecked Sendable {
        let rows: Range<Int>, chunk: Int, dgates: UnsafeMutablePointer<Float>, inputs: UnsafeMutablePointer<Float>
    }

    let T: Int, N: Int, I: Int, H: Int, reverse: Bool
    /// The width of the [x | h | 1] rows, padded to a multiple of 16.
    let wide: Int
    /// h0 wants a gradient: the last step computes dh_{−1} too.
    let wantsDh0: Bool
    /// Row r of the outputs' gradient is at dy[r·dyStride + dyOffset ..< + H].
    let dyStride: Int, dyOffset: Int
    let p: LSTMBackwardPointers

    /// Step `s` of the backward (the forward's last step first) of chain number `index`, `c`.
    func step(chain index: Int, _ c: Chain, _ s: Int) {
        let (H4, step, lo, n, chunk) = (4 * H, N * H, c.rows.lowerBound, c.rows.count, c.chunk)
        let t = reverse ? s : T - 1 - s
        let prev = reverse ? t + 1 : t
        let slot = s % chunk, depth = min(chunk, T - (s - slot)) * n
        if let dy = p.dy {   // this step's rows of the outputs' gradient, read in place (a joined output's columns)
            for i in lo..<(lo + n) {
                let from = dy + (t * N + i) * dyStride + dyOffset, to = p.dh + i * H
                for j in 0..<H { to[j] += from[j] }
            }
        }
        let dg = c.dgates + slot * n * H4                                                  // [n, 4H]
        LSTMKernels.cellBackward(gates: p.gates + t * N * H4 + lo * H4, cPrev: p.c + prev * step + lo * H,
                                 tanhC: p.tanhC + t * step + lo * H, dh: p.dh + lo * H, dc: p.dc + lo * H,
                                 dgates: dg, batch: n, hidden: H)
        // dh_{t−1} = dgates_t · W_hh   ([n, 4H] · [4H, H]); dh_{−1} only when h0 wants a gradient.
        if s < T - 1 || wantsDh0 {
            if let packed = p.weightHHPacked {
                SmallGEMM.multiply(m: n, n: H, k: H4, a: dg, lda: H4, b: packed, c: p.dh + lo * H, ldc: H,
                                   accumulate: false)
            } else {
                BLAS.gemm(transA: false, transB: false, m: n, n: H, k: H4, a: dg, lda: H4, b: p.weightHH, ldb: H,
                          beta: 0, c: p.dh + lo * H, ldc: H, threads: 1)
            }
        }
        // dx_t = dgates_t · W_ih   ([n, 4H] · [4H, I]).
        if let dx = p.dx {
            let out = dx + (t * N + lo) * I
            if let packed = p.weightIHPacked {
                SmallGEMM.multiply(m: n, n: I, k: H4, a: dg, lda: H4, b: packed, c: out, ldc: I, accumulate: false)
            } else {
                BLAS.gemm(transA: false, transB: false, m: n, n: I, k: H4, a: dg, lda: H4, b: p.weightIH, ldb: I,
                          beta: 0, c: out, ldc: I, threads: 1)
            }
        }
        // This step's rows of [x_t | h_{t−1} | 1], packed piece by piece, then at the chunk's end its
        // weight-gradient product.
        for i in 0..<n {
            let r = slot * n + i
            SmallGEMM.packColumns(p.x + (t * N + lo + i) * I, count: I, at: 0, n: wide, into: c.inputs, row: r,
                                  depth: depth)
            SmallGEMM.packColumns(p.h + prev * step + (lo + i) * H, count: H, at: I, n: wide, into: c.inputs, row: r,
                                  depth: depth)
            SmallGEMM.packColumns(p.ones, count: wide - I - H, at: I + H, n: wide, into: c.inputs, row: r, depth: depth)
        }
        if (slot + 1) * n == depth {
            SmallGEMM.multiply(m: H4, n: wide, .init(transposed: c.dgates, lda: H4, b: c.inputs, k: depth),
                               c: p.sums + index * H4 * wide, ldc: wide, accumulate: s >= chunk)
        }
    }
}

/// Runs `body` with the base address of each array of `reading` and of `writing` (nil for an empty one), keeping
/// `owners` (the `AlignedFloats` whose `base` the pass uses, in any value: a tuple, an array) alive: the one place a
/// pass's raw pointers come from. Every such pointer is valid only while `body` runs. The arrays of `writing` should
/// not be shared (else each is copied first).
func withBaseAddresses<R, Owners>(_ reading: [[Float]], writing: inout [[Float]], keeping owners: Owners,
                                  _ body: (_ reading: UnsafeBufferPointer<UnsafePointer<Float>?>,
                                           _ writing: UnsafeBufferPointer<UnsafeMutablePointer<Float>?>) -> R) -> R {
    withExtendedLifetime(owners) {
        writing.withUnsafeMutableBufferPointer { out in
        withUnsafeTemporaryAllocation(of: UnsafePointer<Float>?.self, capacity: reading.count) { read in
        withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<Float>?.self, capacity: out.count) { written in
            // One array at a time, each pinned while the rest are and `body` runs.
            func pin(_ i: Int) -> R {
                if i < reading.count {
                    return reading[i].withUnsafeBufferPointer { a in
                        read.initializeElement(at: i, to: a.isEmpty ? nil : a.baseAddress)
                        return pin(i + 1)
                    }
                }
                if i - reading.count < out.count {
                    return out[i - reading.count].withUnsafeMutableBufferPointer { a in
                        written.initializeElement(at: i - reading.count, to: a.isEmpty ? nil : a.baseAddress)
                        return pin(i + 1)
                    }
                }
                return body(UnsafeBufferPointer(read), UnsafeBufferPointer(written))
            }
            return pin(0)
        } } }
    }
}

/// `withBaseAddresses` for arrays that are only read.
func withBaseAddresses<R, Owners>(_ reading: [[Float]], keeping owners: Owners,
                                  _ body: (_ reading: UnsafeBufferPointer<UnsafePointer<Float>?>) -> R) -> R {
    var none: [[Float]] = []
    return withBaseAddresses(reading, writing: &none, keeping: owners) { read, _ in body(read) }
}
