import Foundation
import Synchronization
import Testing
@testable import LSTMVision
@testable import LSTMVisionCore

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

    /// Every strategy of the LSTM against the plain `LSTMReference`, on small random layers of one direction and of
    /// two (forward and reverse), from a zero h0 (whose first recurrent product is skipped) and a random one: the plan
    /// `LSTMPlan.choose` picks, and each forced one, on 1 and 2 threads, with the directions one after the other and
    /// concurrent, the backward's products on SmallGEMM and on OpenBLAS, and each forward strategy the shape allows.
    /// The outputs and final states, and in training every gradient, match the reference's. The shapes: one sequence
    /// (the lockstep halves), few rows (the inputs up front), 8–16 rows per chain (fused step products), an input
    /// wide enough that SmallGEMM slices the fused product (180 + 16), a width SmallGEMM does not take (H = 6), one it
    /// takes in the forward but not the backward (H = 20), many chains (136) and many rows on one thread's chain
    /// (300). Up to 128 rows, 5 steps: the backward's weight-gradient products then run in several chunks, the last
    /// one partial.
    @Test(arguments: [(1, 7, 32), (2, 5, 16), (20, 16, 16), (32, 12, 16), (16, 180, 16), (32, 5, 6), (9, 20, 20),
                      (136, 7, 16), (300, 16, 16)])
    func everyStrategyMatchesReference(_ size: (n: Int, inputs: Int, hidden: Int)) {
        let (T, N, I, H) = (size.n > 128 ? 3 : 5, size.n, size.inputs, size.hidden)
        for D in [1, 2] {
            for zeroStart in [false, true] {
                let layer = RandomLayer(T: T, N: N, I: I, H: H, directions: D, zeroStart: zeroStart, seed: 40)
                let expected = layer.reference()
                for training in [true, false] {
                    var worst = (values: Float(0), grads: Float(0))
                    for plan in [nil] + forcedPlans(N: N, H: H, directions: D, training: training) {
                        let got = layer.run(plan: plan, training: training)
                        let what = "N=\(N) I=\(I) H=\(H) D=\(D) h0 \(zeroStart ? "zero" : "random") "
                            + "training \(training): \(plan.map { "\($0)" } ?? "chosen plan")"
                        let values = largestDifference(got.values, expected.values)
                        #expect(values < 1e-5, "\(what): outputs and states differ by \(values)")
                        worst.values = max(worst.values, values)
                        if training {
                            let grads = largestDifference(got.grads, expected.grads, relative: true)
                            #expect(grads < 1e-4, "\(what): gradients differ by \(grads) (relative)")
                            worst.grads = max(worst.grads, grads)
                        }
                    }
                    print("  LSTM strategies N=\(N) I=\(I) H=\(H) D=\(D) h0 \(zeroStart ? "zero" : "random") "
                          + "\(training ? "training" : "inference") against the reference: largest difference "
                          + "\(worst.values)" + (training ? ", gradients \(worst.grads) (relative)" : ""))
                }
            }
        }
    }

    /// The plans `LSTMPlan.choose` picks for the shapes the fast paths were made for (the default is part of the
    /// behaviour: each path's results are bit for bit those of the path it replaced), with two threads.
    @Test func planChoices() {
        func plan(_ N: Int, _ H: Int, _ training: [Bool], kernel: LSTMKernel = .smallGEMM) -> LSTMPlan {
            LSTMPlan.choose(rows: N, hidden: H, training: training, threads: 2, kernel: kernel)
        }
        // One sequence in inference: the lockstep halves; in training, the inputs up front.
        #expect(plan(1, 128, [false]).strategies == [Lockstep.available ? .lockstepHalves : .smallGEMMInputUpFront])
        #expect(plan(1, 128, [true]).strategies == [.smallGEMMInputUpFront])
        // A bidirectional layer: concurrent in training up to 128 rows, and in inference under 16 rows.
        #expect(plan(64, 128, [true, true]) == LSTMPlan(concurrentDirections: true, threads: 2,
                                                            strategies: [.smallGEMMFused, .smallGEMMFused],
                                                            backwardKernel: .smallGEMM))
        #expect(!plan(64, 128, [false, false]).concurrentDirections)
        #expect(plan(8, 128, [false, false]).concurrentDirections)
        #expect(!plan(136, 128, [true, true]).concurrentDirections)
        // Fused from 8 rows per chain (on two threads: one chain up to 15 rows, then two), the inputs up front below,
        // at any batch; OpenBLAS for widths SmallGEMM does not take, and when the kernel is OpenBLAS.
        #expect(plan(16, 128, [true]).strategies == [.smallGEMMFused])
        #expect(plan(4, 128, [true]).strategies == [.smallGEMMInputUpFront])
        #expect(plan(256, 128, [false]).strategies == [.smallGEMMFused])
        #expect(plan(1024, 128, [false]).strategies == [.smallGEMMFused])
        #expect(plan(1024, 128, [true]).strategies == [.smallGEMMFused])
        #expect(plan(64, 6, [true]).strategies == [.openBLAS])
        #expect(plan(64, 128, [true], kernel: .openBLAS).strategies == [.openBLAS])
    }

    /// The batch-1 lockstep forward (two threads, half of the units each) and the single-thread path give the
    /// reference's states; parallel regions nested in a lockstep (which fall back to other threads), inference rows run
    /// as chains on two threads and large copies split among them give the right results.
    @Test func lockstepForwardAndNestedParallelRegions() throws {
        let (T, I, H) = (5, 9, 32)
        let d = LSTMDirection(h0: Variable(randomTensor([1, H], seed: 50)),
                              c0: Variable(randomTensor([1, H], seed: 51)),
                              weightIH: Variable(randomTensor([4 * H, I], seed: 52, scale: 0.3)),
                              weightHH: Variable(randomTensor([4 * H, H], seed: 53, scale: 0.3)),
                              biasIH: Variable(randomTensor([4 * H], seed: 54)),
                              biasHH: Variable(randomTensor([4 * H], seed: 55)), reverse: false)
        let x = randomTensor([T, 1, I], seed: 56)
        let expected = LSTMReference.forward(x, d)
        let single = LSTMForward(x, d, strategy: .smallGEMMInputUpFront, keepForBackward: false, threads: 1)
        // Other tests may hold the lockstep for a moment: try until this one runs.
        var both: (hs: AlignedFloats, cs: AlignedFloats)?
        for _ in 0..<10_000 where both == nil { both = LSTMForward.lockstep(x, d); if both == nil { usleep(1000) } }
        let (hs, cs) = try #require(both)
        // Inference keeps two blocks of c: compare the outputs, h_T and c_T.
        let (output, one) = (LSTMForward.outputs([single]), single.finalStates())
        let reference = expected.output.scalars + expected.c.scalars
        let worst = (lockstep: zip(Array(hs[H...]) + Array(cs[(T * H)...]), reference).map { abs($0 - $1) }.max()!,
                     single: zip(output.scalars + one.c.scalars, reference).map { abs($0 - $1) }.max()!)
        print("  lockstep and one thread against the reference: largest differences \(worst)")
        #expect(worst.lockstep < 1e-5 && worst.single < 1e-5)
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
                st[p] = LSTMForward(x, d, strategy: .lockstepHalves, keepForBackward: false, threads: 2).hs.array()
            }
        } }
        #expect(sums == [499_500, 500_500])
        #expect(states.allSatisfy { zip($0, single.hs).allSatisfy { abs($0 - $1) < 1e-6 } })
        // Inference runs the rows as chains on two threads, each step on whichever thread claims it; the states are
        // one thread's, bit for bit, run after run.
        let n = 40
        let wide = LSTMDirection(h0: Variable(randomTensor([n, H], seed: 59)),
                                 c0: Variable(randomTensor([n, H], seed: 60)), weightIH: d.weightIH,
                                 weightHH: d.weightHH, biasIH: d.biasIH, biasHH: d.biasHH, reverse: true)
        func forward(threads: Int, outputs: Bool = true) -> LSTMForward {
            let plan = LSTMPlan.choose(rows: n, hidden: H, training: [false], threads: threads)
            return LSTMForward(xs, wide, strategy: plan.strategies[0], keepForBackward: false, outputs: outputs,
                               threads: threads)
        }
        let xs = randomTensor([T, n, I], seed: 61), alone = forward(threads: 1)
        for run in 0..<3 {
            let split = forward(threads: 2)
            #expect(split.hs == alone.hs && split.cs == alone.cs, "run \(run)")
        }
        // Without outputs, h and c keep two blocks each (b mod 2); the final states are the same, bit for bit.
        let ring = forward(threads: 2, outputs: false)
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

    /// `Parallel.chainBlocks` covers the rows in blocks of 16 (32 from 128 rows, two under 32) on multiples of 4;
    /// `forChains` runs every step of every chain once, each chain's steps in order, and a thread whose own chains are
    /// done takes over steps of the other's: here the thread that starts chain 0 sleeps in each of its steps, so the
    /// other must take some of them. (Without the takeover this test fails.)
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
    /// autograd node; its outputs, final states and every gradient (x summed over both directions) match the
    /// reference's, as do those of each direction run alone through `lstmSequence`, which splits the rows between the
    /// threads instead.
    @Test func bidirectionalDirectionsConcurrentInTraining() {
        let (T, N, I, H) = (6, 20, 7, 16)
        let layer = RandomLayer(T: T, N: N, I: I, H: H, directions: 2, zeroStart: false, seed: 70)
        if Parallel.threads > 1 {
            #expect(LSTMPlan.choose(rows: N, hidden: H, training: [true, true]).concurrentDirections)
        }
        let (together, expected) = (layer.run(plan: nil, training: true), layer.reference())
        // Each direction alone, its loss on its own outputs; x's gradient summed.
        var alone = (values: [Tensor](), grads: [Tensor]()), dx = Tensor(zeros: [T, N, I])
        let (x, dirs) = layer.variables(requiringGrad: true)
        for (k, d) in dirs.enumerated() {
            x.zeroGrad()
            let r = lstmSequence(x, h0: d.h0, c0: d.c0, weightIH: d.weightIH, weightHH: d.weightHH, biasIH: d.biasIH,
                                 biasHH: d.biasHH, reverse: d.reverse)
            let w = layer.lossWeights[k].map { Variable($0) }
            ((r.output * w[0]).sum() + (r.h * w[1]).sum() + (r.c * w[2]).sum()).backward()
            alone.values += [r.output.value, r.h.value, r.c.value]
            alone.grads += [d.h0, d.c0, d.weightIH, d.weightHH, d.biasIH, d.biasHH].map { $0.grad! }
            dx.add(x.grad!)
        }
        alone.grads.insert(dx, at: 0)
        let worst = [largestDifference(together.values, expected.values),
                     largestDifference(alone.values, expected.values),
                     largestDifference(together.grads, expected.grads, relative: true),
                     largestDifference(alone.grads, expected.grads, relative: true)]
        print("  bidirectional, directions concurrent and one at a time against the reference: "
              + "largest differences \(worst)")
        #expect(worst[0] < 1e-5 && worst[1] < 1e-5 && worst[2] < 1e-4 && worst[3] < 1e-4)
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

/// The plans a test can force on a layer of `directions` over N rows with H units: on 1 and 2 threads, the
/// directions one after the other and (with two of each) concurrent, each forward strategy the shape allows for
/// every direction, and in training the backward's products on SmallGEMM and on OpenBLAS.
private func forcedPlans(N: Int, H: Int, directions D: Int, training: Bool) -> [LSTMPlan] {
    var strategies: [LSTMStrategy] = [.openBLAS]
    if SmallGEMM.supports(n: 4 * H) { strategies += [.smallGEMMFused, .smallGEMMInputUpFront] }
    if !training && N == 1 && H % 32 == 0 { strategies.append(.lockstepHalves) }
    var plans: [LSTMPlan] = []
    for threads in [1, 2] {
        for concurrent in D > 1 && threads > 1 ? [false, true] : [false] {
            for kernel in training ? [LSTMKernel.smallGEMM, .openBLAS] : [.smallGEMM] {
                for s in strategies {
                    plans.append(LSTMPlan(concurrentDirections: concurrent, threads: threads,
                                          strategies: Array(repeating: s, count: D), backwardKernel: kernel))
                }
            }
        }
    }
    return plans
}

/// A random LSTM layer of `directions` (forward, then reverse) over an input [T, N, I], with H units (h0 zero when
/// `zeroStart`), and a loss on all its outputs: Σ output·w + h_T·w′ + c_T·w″ with random weights.
private struct RandomLayer {
    let T: Int, N: Int, H: Int
    let x: Tensor
    /// Each direction's h0, c0, W_ih, W_hh, b_ih, b_hh.
    let directions: [[Tensor]]
    /// Each direction's loss weights of its output [T, N, H], h_T and c_T [N, H].
    let lossWeights: [[Tensor]]

    init(T: Int, N: Int, I: Int, H: Int, directions D: Int, zeroStart: Bool, seed: UInt64) {
        (self.T, self.N, self.H) = (T, N, H)
        x = randomTensor([T, N, I], seed: seed)
        directions = (0..<D).map { k in
            let s = seed + 10 * UInt64(k + 1)
            return [zeroStart ? Tensor(zeros: [N, H]) : randomTensor([N, H], seed: s),
                    randomTensor([N, H], seed: s + 1), randomTensor([4 * H, I], seed: s + 2, scale: 0.3),
                    randomTensor([4 * H, H], seed: s + 3, scale: 0.3), randomTensor([4 * H], seed: s + 4, scale: 0.3),
                    randomTensor([4 * H], seed: s + 5, scale: 0.3)]
        }
        lossWeights = (0..<D).map { k in
            let s = seed + 100 + 10 * UInt64(k)
            return [randomTensor([T, N, H], seed: s), randomTensor([N, H], seed: s + 1),
                    randomTensor([N, H], seed: s + 2)]
        }
    }

    func variables(requiringGrad: Bool) -> (x: Variable, directions: [LSTMDirection]) {
        let v = { Variable($0, requiresGrad: requiringGrad) }
        return (v(x), directions.enumerated().map { k, t in
            LSTMDirection(h0: v(t[0]), c0: v(t[1]), weightIH: v(t[2]), weightHH: v(t[3]), biasIH: v(t[4]),
                          biasHH: v(t[5]), reverse: k == 1)
        })
    }

    /// Each direction's output, h_T and c_T from `lstmSequences` under `plan` (nil: the one it chooses), and in
    /// training the loss's gradients of x, then of each direction's h0, c0, W_ih, W_hh, b_ih, b_hh.
    func run(plan: LSTMPlan?, training: Bool) -> (values: [Tensor], grads: [Tensor]) {
        let (x, dirs) = variables(requiringGrad: training)
        let r = lstmSequences(x, dirs, outputs: .perDirection, plan: plan)
        let values = (0..<dirs.count).flatMap { k in [r.outputs[k].value, r.states[k].h.value, r.states[k].c.value] }
        guard training else { return (values, []) }
        var loss = Variable(Tensor(scalar: 0))
        for k in dirs.indices {
            let w = lossWeights[k].map { Variable($0) }
            loss = loss + (r.outputs[k] * w[0]).sum() + (r.states[k].h * w[1]).sum() + (r.states[k].c * w[2]).sum()
        }
        loss.backward()
        let params = dirs.flatMap { d in [d.h0, d.c0, d.weightIH, d.weightHH, d.biasIH, d.biasHH] }
        return (values, [x.grad!] + params.map { $0.grad! })
    }

    /// The same from `LSTMReference`, x's gradient summed over the directions.
    func reference() -> (values: [Tensor], grads: [Tensor]) {
        let (x, dirs) = variables(requiringGrad: false)
        var values: [Tensor] = [], dx = Tensor(zeros: x.shape), grads: [Tensor] = []
        for (k, d) in dirs.enumerated() {
            let f = LSTMReference.forward(x.value, d)
            values += [f.output, f.h, f.c]
            let g = LSTMReference.backward(x.value, d, f, dy: lossWeights[k][0], dh: lossWeights[k][1],
                                           dc: lossWeights[k][2])
            dx.add(g.x)
            grads += [g.h0, g.c0, g.weightIH, g.weightHH, g.biasIH, g.biasHH]
        }
        return (values, [dx] + grads)
    }
}

/// The largest difference between corresponding tensors of the same shapes; `relative`: each tensor's difference over
/// the larger of 1 and its largest reference value (a weight gradient sums over every step and row).
private func largestDifference(_ a: [Tensor], _ b: [Tensor], relative: Bool = false) -> Float {
    precondition(a.count == b.count && zip(a, b).allSatisfy { $0.shape == $1.shape }, "the results differ in shape")
    return zip(a, b).map { a, b in
        a.maxAbsDifference(b) / (relative ? max(1, b.scalars.map(abs).max() ?? 0) : 1)
    }.max() ?? 0
}
