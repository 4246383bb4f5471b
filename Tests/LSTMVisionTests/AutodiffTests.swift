import Foundation
import Synchronization
import Testing
@testable import LSTMVision

/// Finite-difference checks of every differentiable operation.
@Suite struct AutodiffTests {
    @Test func matmulAndLinear() {
        let a = Variable(randomTensor([3, 4], seed: 1), requiresGrad: true)
        let b = Variable(randomTensor([4, 2], seed: 2), requiresGrad: true)
        let w = Variable(randomTensor([5, 4], seed: 3), requiresGrad: true)
        let bias = Variable(randomTensor([5], seed: 4), requiresGrad: true)
        let r1 = randomTensor([3, 2], seed: 5), r2 = randomTensor([3, 5], seed: 6)
        checkGradients([a, b]) { (matmul(a, b) * Variable(r1)).sum() }
        checkGradients([a, w, bias]) { (linear(a, weight: w, bias: bias) * Variable(r2)).sum() }
    }

    @Test func elementwiseActivations() {
        let x = Variable(randomTensor([4, 5], seed: 7, scale: 1.5), requiresGrad: true)
        let y = Variable(randomTensor([4, 5], seed: 8), requiresGrad: true)
        let r = Variable(randomTensor([4, 5], seed: 9))
        checkGradients([x]) { (tanh(x) * r).sum() }
        checkGradients([x]) { (sigmoid(x) * r).sum() }
        checkGradients([x], epsilon: 1e-3) { (relu(x) * r).sum() }
        checkGradients([x, y]) { ((x + y) * (x * y) * 0.5).sum() }
    }

    @Test func shapeOperations() {
        let x = Variable(randomTensor([2, 3, 4], seed: 10), requiresGrad: true)
        let y = Variable(randomTensor([2, 3, 2], seed: 11), requiresGrad: true)
        checkGradients([x]) { (swapLeadingAxes(x) * Variable(randomTensor([3, 2, 4], seed: 12))).sum() }
        checkGradients([x, y]) { (concatLast([x, y]) * Variable(randomTensor([2, 3, 6], seed: 13))).sum() }
        checkGradients([x]) { (select(x, -1) * Variable(randomTensor([3, 4], seed: 14))).sum() }
        checkGradients([x]) { (stack([x, x]) * Variable(randomTensor([2, 2, 3, 4], seed: 15))).sum() }
        checkGradients([x]) { (reshape(x, [6, 4]) * Variable(randomTensor([6, 4], seed: 16))).sum() }
    }

    @Test func losses() {
        let p = Variable(randomTensor([3, 4], seed: 17, scale: 2), requiresGrad: true)
        let t = randomTensor([3, 4], seed: 18)
        checkGradients([p]) { crossEntropy(p, labels: [0, 3, 1]) }
        checkGradients([p]) { crossEntropy(p, labels: [2, 2, 1], labelSmoothing: 0.2) }
        checkGradients([p]) { mseLoss(p, t) }
        checkGradients([p], epsilon: 1e-3) { l1Loss(p, t) }
        checkGradients([p], epsilon: 1e-3) { smoothL1Loss(p, t) }
    }

    @Test(arguments: [false, true])
    func lstmSequenceOperation(reverse: Bool) {
        let T = 4, N = 3, I = 5, H = 6
        let x = Variable(randomTensor([T, N, I], seed: 20), requiresGrad: true)
        let h0 = Variable(randomTensor([N, H], seed: 21), requiresGrad: true)
        let c0 = Variable(randomTensor([N, H], seed: 22), requiresGrad: true)
        let wih = Variable(randomTensor([4 * H, I], seed: 23, scale: 0.4), requiresGrad: true)
        let whh = Variable(randomTensor([4 * H, H], seed: 24, scale: 0.4), requiresGrad: true)
        let bih = Variable(randomTensor([4 * H], seed: 25, scale: 0.4), requiresGrad: true)
        let bhh = Variable(randomTensor([4 * H], seed: 26, scale: 0.4), requiresGrad: true)
        let ry = Variable(randomTensor([T, N, H], seed: 27)), rh = Variable(randomTensor([N, H], seed: 28))
        let rc = Variable(randomTensor([N, H], seed: 29))
        checkGradients([x, h0, c0, wih, whh, bih, bhh], samples: 20) {
            let r = lstmSequence(x, h0: h0, c0: c0, weightIH: wih, weightHH: whh, biasIH: bih, biasHH: bhh,
                                 reverse: reverse)
            return (r.output * ry).sum() + (r.h * rh).sum() + (r.c * rc).sum()
        }
    }

    /// Every way the LSTM forward can compute its gates, in training and in inference, against a plain scalar
    /// loop: inputs projected up front by SmallGEMM (few rows per thread), fused into each step's product (16 rows
    /// per thread on 2 threads), the same with an input wide enough that SmallGEMM cuts the fused product into
    /// slices (200 + 16), OpenBLAS throughout (a width SmallGEMM does not take), and for one sequence in inference
    /// the two threads in lockstep (1×7×32). Each also runs reversed, on the inputs in reverse order, and from a
    /// zero h0 (whose first recurrent product is skipped) as well as a random one.
    @Test(arguments: [(2, 5, 16), (32, 12, 16), (32, 200, 16), (32, 5, 6), (1, 7, 32)], [false, true])
    func lstmForwardPathsMatchScalarLoop(_ size: (n: Int, inputs: Int, hidden: Int), zeroStart: Bool) {
        let (T, N, I, H) = (3, size.n, size.inputs, size.hidden)
        let x = randomTensor([T, N, I], seed: 40), c0 = randomTensor([N, H], seed: 42)
        let h0 = zeroStart ? Tensor(zeros: [N, H]) : randomTensor([N, H], seed: 41)
        let wih = randomTensor([4 * H, I], seed: 43, scale: 0.3), whh = randomTensor([4 * H, H], seed: 44, scale: 0.3)
        let bih = randomTensor([4 * H], seed: 45, scale: 0.3), bhh = randomTensor([4 * H], seed: 46, scale: 0.3)
        var h = h0.scalars, c = c0.scalars, outputs: [Float] = []
        func sigmoid(_ v: Float) -> Float { 1 / (1 + Foundation.exp(-v)) }
        for t in 0..<T {
            var hNext = h, cNext = c
            for b in 0..<N {
                for j in 0..<H {
                    var g = [Float](repeating: 0, count: 4)
                    for q in 0..<4 {
                        let row = q * H + j
                        var v = bih.scalars[row] + bhh.scalars[row]
                        for k in 0..<I { v += wih.scalars[row * I + k] * x.scalars[(t * N + b) * I + k] }
                        for k in 0..<H { v += whh.scalars[row * H + k] * h[b * H + k] }
                        g[q] = v
                    }
                    let cv = sigmoid(g[1]) * c[b * H + j] + sigmoid(g[0]) * Foundation.tanh(g[2])
                    cNext[b * H + j] = cv
                    hNext[b * H + j] = sigmoid(g[3]) * Foundation.tanh(cv)
                }
            }
            (h, c) = (hNext, cNext)
            outputs += h
        }
        for training in [true, false] {
            let vars = [x, h0, c0, wih, whh, bih, bhh].map { Variable($0, requiresGrad: training) }
            let r = lstmSequence(vars[0], h0: vars[1], c0: vars[2], weightIH: vars[3], weightHH: vars[4],
                                 biasIH: vars[5], biasHH: vars[6], reverse: false)
            let worst = [r.output.value.maxAbsDifference(Tensor(shape: [T, N, H], scalars: outputs)),
                         r.h.value.maxAbsDifference(Tensor(shape: [N, H], scalars: h)),
                         r.c.value.maxAbsDifference(Tensor(shape: [N, H], scalars: c))].max()!
            print("  LSTM forward N=\(N) I=\(I) H=\(H) h0 \(zeroStart ? "zero" : "random") "
                  + "\(training ? "training" : "inference"): largest difference \(worst)")
            #expect(worst < 2e-5, "N=\(N) I=\(I) H=\(H) training \(training): \(worst)")
            // Reversed: the same sequence read backwards gives the same states, the outputs in reverse order.
            let block = N * I,
                flipped = Tensor(shape: [T, N, I],
                                 scalars: (0..<T).reversed().flatMap { x.scalars[($0 * block)..<(($0 + 1) * block)] })
            let back = lstmSequence(Variable(flipped, requiresGrad: training), h0: vars[1], c0: vars[2],
                                    weightIH: vars[3], weightHH: vars[4], biasIH: vars[5], biasHH: vars[6],
                                    reverse: true)
            let outBlock = N * H
            let expected = (0..<T).reversed().flatMap { outputs[($0 * outBlock)..<(($0 + 1) * outBlock)] }
            let worstBack = [back.output.value.maxAbsDifference(Tensor(shape: [T, N, H], scalars: expected)),
                             back.h.value.maxAbsDifference(Tensor(shape: [N, H], scalars: h)),
                             back.c.value.maxAbsDifference(Tensor(shape: [N, H], scalars: c))].max()!
            #expect(worstBack < 2e-5, "reversed N=\(N) I=\(I) H=\(H) training \(training): \(worstBack)")
        }
    }

    /// The batch-1 lockstep forward (two threads, half of the units each) gives the single-thread path's states;
    /// parallel regions nested in a lockstep (which fall back to other threads), inference rows run as chains on two
    /// threads and large copies split among them give the right results.
    @Test func lockstepForwardAndNestedParallelRegions() throws {
        let (T, I, H) = (5, 9, 32)
        let d = LSTMDirection(h0: Variable(randomTensor([1, H], seed: 50)),
                              c0: Variable(randomTensor([1, H], seed: 51)),
                              weightIH: Variable(randomTensor([4 * H, I], seed: 52, scale: 0.3)),
                              weightHH: Variable(randomTensor([4 * H, H], seed: 53, scale: 0.3)),
                              biasIH: Variable(randomTensor([4 * H], seed: 54)),
                              biasHH: Variable(randomTensor([4 * H], seed: 55)),
                              reverse: false)
        let x = randomTensor([T, 1, I], seed: 56)
        let single = LSTMForward(x, d, keepForBackward: false, threads: 1)
        // Other tests may hold the lockstep for a moment: try until this one runs.
        var both: (hs: AlignedFloats, cs: AlignedFloats)?
        for _ in 0..<10_000 where both == nil { both = LSTMForward.lockstep(x, d); if both == nil { usleep(1000) } }
        let (hs, cs) = try #require(both)
        // Inference keeps two blocks of c: compare the outputs, h_T and c_T.
        let (output, one) = (LSTMForward.outputs([single]), single.finalStates())
        let worst = zip(Array(hs[H...]) + Array(cs[(T * H)...]), output.scalars + one.c.scalars)
            .map { abs($0 - $1) }.max()!
        print("  lockstep against one thread: largest difference \(worst)")
        #expect(worst < 1e-6)
        // Each part of a two-part region starts two-part regions and a batch-1 forward of its own.
        var sums = [Float](repeating: 0, count: 2), states = [[Float]](repeating: [], count: 2)
        sums.withUnsafeMutableBufferPointer { sp in states.withUnsafeMutableBufferPointer { st in
            nonisolated(unsafe) let (sp, st) = (sp, st)
            Parallel.forIndexedParts(2, parts: 2) { p, _ in
                var inner = [Float](repeating: 0, count: 1000)
                inner.withUnsafeMutableBufferPointer { ip in
                    nonisolated(unsafe) let ip = ip
                    Parallel.forParts(1000, parts: 2) { r in for i in r { ip[i] = Float(i + p) } }
                }
                sp[p] = inner.reduce(0, +)
                st[p] = LSTMForward(x, d, keepForBackward: false, threads: 2).hs.array()
            }
        } }
        #expect(sums == [499_500, 500_500])
        #expect(states.allSatisfy { zip($0, single.hs).allSatisfy { abs($0 - $1) < 1e-6 } })
        // Inference runs the rows as chains on two threads, each step on whichever thread claims it; the states are
        // one thread's, bit for bit, run after run.
        let n = 40
        let wide = LSTMDirection(h0: Variable(randomTensor([n, H], seed: 59)),
                                 c0: Variable(randomTensor([n, H], seed: 60)),
                                 weightIH: d.weightIH, weightHH: d.weightHH, biasIH: d.biasIH, biasHH: d.biasHH,
                                 reverse: true)
        let xs = randomTensor([T, n, I], seed: 61), alone = LSTMForward(xs, wide, keepForBackward: false, threads: 1)
        for run in 0..<3 {
            let split = LSTMForward(xs, wide, keepForBackward: false, threads: 2)
            #expect(split.hs == alone.hs && split.cs == alone.cs, "run \(run)")
        }
        // Without outputs, h and c keep two blocks each (b mod 2); the final states are the same, bit for bit.
        let ring = LSTMForward(xs, wide, keepForBackward: false, outputs: false, threads: 2)
        #expect(ring.ringH && ring.ringC && ring.hs.count == 2 * n * H && ring.cs.count == 2 * n * H)
        let (r, full) = (ring.finalStates(), alone.finalStates())
        #expect(r.h.scalars == full.h.scalars && r.c.scalars == full.c.scalars)
        // Copies large enough to be split among the threads: a layer's outputs, the two directions side by side.
        let big = randomTensor([300, 2, 128], seed: 57), other = randomTensor([300, 2, 64], seed: 58)
        #expect(big.scalars.withUnsafeBufferPointer {
            Parallel.copy(600, width: 128, from: $0.baseAddress!, stride: 128)
        } == big.scalars)
        let joined = concatLast([Variable(big), Variable(other)]).value
        #expect(joined.shape == [300, 2, 192])
        #expect((0..<600).allSatisfy { r in
            Array(joined.scalars[(r * 192)..<(r * 192 + 128)]) == Array(big.scalars[(r * 128)..<((r + 1) * 128)])
                && Array(joined.scalars[(r * 192 + 128)..<((r + 1) * 192)])
                    == Array(other.scalars[(r * 64)..<((r + 1) * 64)])
        })
    }

    /// `Parallel.threads` is the caller's (`withThreads`) on the helper threads of two-part (lockstep) and wider
    /// (dispatch) regions too, and every core again outside.
    @Test func threadCountIsScopedAndReachesHelperThreads() {
        let n = Parallel.cores + 1   // not the default, so that the helpers must be handed it
        var seen = [Int](repeating: 0, count: 6)
        seen.withUnsafeMutableBufferPointer { sp in
            nonisolated(unsafe) let sp = sp
            Parallel.withThreads(n) {
                Parallel.forIndexedParts(2, parts: 2) { p, _ in sp[p] = Parallel.threads }
                Parallel.forIndexedParts(4, parts: 4) { p, _ in sp[2 + p] = Parallel.threads }
            }
        }
        #expect(seen == [Int](repeating: n, count: 6))
        #expect(Parallel.threads == Parallel.cores)
        #expect(Parallel.withThreads(0) { BLAS.threads } == 1)
    }

    /// `Parallel.chainBlocks` covers the rows in blocks of 16 (32 from 128 rows, two under 32) on multiples of 4; `forChains` runs every
    /// step of every chain once, each chain's steps in order, and a thread whose own chains are done takes over steps of
    /// the other's: here the thread that starts chain 0 sleeps in each of its steps, so the other must take some of them.
    /// (Without the takeover this test fails.)
    @Test func chainsRunEveryStepInOrderAndShareTheWork() throws {
        for rows in [1, 7, 15, 16, 20, 31, 32, 64, 100, 128, 256, 257] {
            let blocks = Parallel.chainBlocks(rows)
            #expect(blocks.count == (rows >= 128 ? rows / 32 : rows >= 32 ? rows / 16 : max(1, min(2, rows / 8))),
                    "\(rows) rows")
            #expect(blocks.first?.lowerBound == 0 && blocks.last?.upperBound == rows, "\(rows) rows")
            #expect(zip(blocks, blocks.dropFirst()).allSatisfy {
                $0.upperBound == $1.lowerBound && $1.lowerBound % 4 == 0 && !$0.isEmpty
            })
        }
        let (chains, steps) = (4, 30)
        var log = [(stamp: Int, thread: pthread_t)](repeating: (-1, 0), count: chains * steps)
        let stamp = Atomic<Int>(0), slow = Atomic<pthread_t>(0)
        log.withUnsafeMutableBufferPointer { log in
            nonisolated(unsafe) let log = log
            Parallel.forChains(chains, steps: steps, threads: 2) { c, s in
                if c == 0 && s == 0 { slow.store(pthread_self(), ordering: .relaxed) }
                if pthread_self() == slow.load(ordering: .relaxed) { usleep(300) }
                #expect(log[c * steps + s].stamp == -1, "chain \(c) step \(s) ran twice")
                log[c * steps + s] = (stamp.add(1, ordering: .relaxed).oldValue, pthread_self())
            }
        }
        for c in 0..<chains {
            let stamps = (0..<steps).map { log[c * steps + $0].stamp }
            #expect(stamps.allSatisfy { $0 >= 0 } && zip(stamps, stamps.dropFirst()).allSatisfy { $0 < $1 },
                    "chain \(c): \(stamps)")
        }
        // Checked when the other thread ran from the start (the parts may run one after the other when the test suite
        // keeps the lockstep and the dispatch workers busy): it finishes its own chains within a few of the slow steps.
        let slowThread = slow.load(ordering: .relaxed), slowChains = log[..<(2 * steps)]
        let slowStamps = log.filter { $0.thread == slowThread }.map(\.stamp).sorted()
        if let otherFirst = log.filter({ $0.thread != slowThread }).map(\.stamp).min(), slowStamps.count > 4,
           otherFirst < slowStamps[4] {
            #expect(slowChains.contains { $0.thread != slowThread },
                    "no step of the slowed thread's chains was taken over")
        }
    }

    /// A bidirectional layer trained at 20 rows runs its two directions concurrently, forward and backward, in one
    /// autograd node; its outputs, final states and every gradient (x summed over both directions) match each direction
    /// run alone through `lstmSequence`, which splits the rows between the threads instead.
    @Test func bidirectionalDirectionsConcurrentInTraining() {
        let (T, N, I, H) = (6, 20, 7, 16)
        let x = Variable(randomTensor([T, N, I], seed: 70), requiresGrad: true)
        let dirs = randomDirections(N: N, I: I, H: H, seed: 71)
        let weights = (0..<6).map { Variable(randomTensor($0 % 3 == 0 ? [T, N, H] : [N, H], seed: 90 + UInt64($0))) }
        func loss(_ r: [(output: Variable, h: Variable, c: Variable)]) -> Variable {
            var total = Variable(Tensor(scalar: 0))
            for (k, r) in r.enumerated() {
                for (j, v) in [r.output, r.h, r.c].enumerated() { total = total + (v * weights[3 * k + j]).sum() }
            }
            return total
        }
        let params = [x] + dirs.flatMap { [$0.h0, $0.c0, $0.weightIH, $0.weightHH, $0.biasIH, $0.biasHH] }
        func run(_ together: Bool) -> (values: [Tensor], grads: [Tensor]) {
            params.forEach { $0.zeroGrad() }
            let r = together ? lstmSequences(x, dirs)
                : dirs.map { d in
                    lstmSequence(x, h0: d.h0, c0: d.c0, weightIH: d.weightIH, weightHH: d.weightHH, biasIH: d.biasIH,
                                 biasHH: d.biasHH, reverse: d.reverse)
                }
            loss(r).backward()
            return (r.flatMap { [$0.output.value, $0.h.value, $0.c.value] }, params.map { $0.grad! })
        }
        let (together, alone) = (run(true), run(false))
        var worst: Float = 0
        for (a, b) in zip(together.values + together.grads, alone.values + alone.grads) {
            #expect(a.shape == b.shape)
            worst = max(worst, zip(a.scalars, b.scalars).map { abs($0 - $1) }.max()!)
        }
        print("  bidirectional, directions concurrent against one at a time: largest difference \(worst)")
        #expect(worst < 1e-5)
        #expect(together.grads[0].scalars.contains { $0 != 0 } && together.grads.count == 13)
    }

    /// A layer's outputs joined in the forward (the directions side by side, their gradient read in place by each
    /// direction's backward) give `concatLast` of the per-direction outputs, and the same gradients, bit for bit:
    /// with the directions concurrent (20 rows in training) and one after the other, split by rows (136), and in
    /// inference.
    @Test(arguments: [(20, true), (136, true), (20, false), (136, false)])
    func joinedOutputsMatchConcatenation(_ N: Int, _ training: Bool) {
        let (T, I, H) = (5, 7, 16)
        let x = Variable(randomTensor([T, N, I], seed: 80), requiresGrad: true)
        let dirs = randomDirections(N: N, I: I, H: H, seed: 81)
        let weight = Variable(randomTensor([T, N, 2 * H], seed: 93)), hWeight = Variable(randomTensor([N, H], seed: 94))
        let params = [x] + dirs.flatMap { [$0.h0, $0.c0, $0.weightIH, $0.weightHH, $0.biasIH, $0.biasHH] }
        func forward(_ joined: Bool) -> (output: Variable, loss: Variable) {
            let r = lstmSequences(x, dirs, outputs: joined ? .joined : .perDirection)
            let output = joined ? r.outputs[0] : concatLast(r.outputs)
            return (output, (output * weight).sum() + (r.states[1].h * hWeight).sum())
        }
        func run(_ joined: Bool) -> [Tensor] {
            params.forEach { $0.zeroGrad() }
            guard training else { return [Autograd.withoutGradients { forward(joined).output }.value] }
            let (output, loss) = forward(joined)
            loss.backward()
            return [output.value] + params.map { $0.grad! }
        }
        let (joined, separate) = (run(true), run(false))
        #expect(joined.count == (training ? 14 : 1) && joined[0].shape == [T, N, 2 * H])
        #expect(zip(joined, separate).allSatisfy { $0.shape == $1.shape && $0.scalars == $1.scalars })
        if training { #expect(joined[1].scalars.contains { $0 != 0 } && joined[2].scalars.contains { $0 != 0 }) }
    }

    @Test func gradientsAccumulateAcrossUses() {
        let x = Variable(Tensor(shape: [2], scalars: [1, 2]), requiresGrad: true)
        ((x * x) + x).sum().backward()
        #expect(x.grad?.scalars == [3, 5])
        let y = Autograd.withoutGradients { (x * x).sum() }
        #expect(!y.needsGrad)
    }
}

/// A bidirectional layer's two directions (forward, then reverse) over N rows, input I, hidden H: random initial
/// states, weights (scaled by 0.3) and biases, each requiring a gradient; tensor i of direction k from seed
/// `seed` + 10k + i.
private func randomDirections(N: Int, I: Int, H: Int, seed: UInt64) -> [LSTMDirection] {
    (0..<2).map { k in
        func v(_ shape: [Int], _ i: Int, scale: Float = 1) -> Variable {
            Variable(randomTensor(shape, seed: seed + UInt64(10 * k + i), scale: scale), requiresGrad: true)
        }
        return LSTMDirection(h0: v([N, H], 0), c0: v([N, H], 1), weightIH: v([4 * H, I], 2, scale: 0.3),
                             weightHH: v([4 * H, H], 3, scale: 0.3), biasIH: v([4 * H], 4), biasHH: v([4 * H], 5),
                             reverse: k == 1)
    }
}
