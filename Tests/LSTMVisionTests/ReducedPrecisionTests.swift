import Foundation
import Testing
@testable import LSTMVision
@testable import LSTMVisionCore
@testable import LSTMVisionKernels

/// bf16 and int8 weight products (CReducedPrecision) against PyTorch's rounding and quantization, the AVX-512 kernels
/// against their plain C references, and the LSTM's reduced-precision inference against its fp32 forward.
@Suite struct ReducedPrecisionTests {
    /// y = x·Wᵀ [n × m] through packed weights, fast or reference.
    static func product(_ w: Tensor, _ x: Tensor, _ precision: Precision, reference: Bool = false,
                        accumulateOnto start: Tensor? = nil, ldy pad: Int = 0) -> Tensor {
        let (m, k, n) = (w.shape[0], w.shape[1], x.shape[0]), ldy = m + pad
        let packed = w.scalars.withUnsafeBufferPointer {
            ReducedPrecisionWeights($0.baseAddress!, rows: m, columns: k, precision: precision)
        }
        var y = [Float](repeating: 7, count: n * ldy)
        if let start { for r in 0..<n { for j in 0..<m { y[r * ldy + j] = start.scalars[r * m + j] } } }
        x.scalars.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            packed.multiply(xp.baseAddress!, count: n, ldx: k, into: yp.baseAddress!, ldy: ldy,
                            accumulate: start != nil, reference: reference)
        } }
        return Tensor(shape: [n, m], scalars: (0..<n).flatMap { r in y[(r * ldy)..<(r * ldy + m)] })
    }

    /// The CPU flags /proc/cpuinfo lists.
    static var cpuFlags: Set<String> {
        let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let line = info.split(separator: "\n").first { $0.hasPrefix("flags") } ?? ""
        return Set(line.split(separator: " ").map(String.init))
    }

    @Test func detectsTheInstructions() {
        let flags = Self.cpuFlags
        #expect(Precision.bf16.hasInstructions == (flags.contains("avx512_bf16") && flags.contains("avx512bw")))
        #expect(Precision.int8.hasInstructions == (flags.contains("avx512_vnni") && flags.contains("avx512bw")))
        print("reduced precision: bf16 instructions \(Precision.bf16.hasInstructions),"
              + " int8 \(Precision.int8.hasInstructions)")
    }

    @Test func matchesPyTorchRoundingAndQuantization() throws {
        let (t, _) = try fixture("precision.safetensors")
        let (w, x) = (try #require(t["w"]), try #require(t["x"]))
        for reference in [false, true] {
            expectClose(Self.product(w, x, .bf16, reference: reference), t["y_bf16"], 2e-6, "bf16 x·wᵀ")
            expectClose(Self.product(w, x, .int8, reference: reference), t["y_int8"], 2e-6, "int8 x·wᵀ")
        }
        // The packed int8 weights and scales are PyTorch's quantize_per_channel.
        let packed = w.scalars.withUnsafeBufferPointer {
            ReducedPrecisionWeights($0.baseAddress!, rows: 37, columns: 29, precision: .int8)
        }
        #expect(packed.scales == t["w_scales"]!.scalars)
        let quads = 32 / 4, expected = t["w_int8"]!.scalars
        for row in 0..<37 {
            for col in 0..<29 {
                let q = packed.int8[((row / 16 * quads + col / 4) * 16 + row % 16) * 4 + col % 4]
                #expect(Float(q) == expected[row * 29 + col], "w[\(row)][\(col)]")
            }
        }
    }

    @Test(arguments: [Precision.bf16, .int8])
    func kernelsMatchTheirReferences(_ precision: Precision) {
        // Sizes around the 16-row blocks, the 4×4 tiles, odd and 4-unaligned inputs, one row and many.
        for (i, (n, m, k)) in [(1, 512, 128), (3, 37, 29), (5, 64, 1), (64, 512, 156), (9, 80, 4099)].enumerated() {
            let w = randomTensor([m, k], seed: UInt64(10 + i), scale: 0.2)
            let x = randomTensor([n, k], seed: UInt64(20 + i))
            let start = randomTensor([n, m], seed: UInt64(30 + i))
            for (onto, pad) in [(nil, 0), (start, 3)] as [(Tensor?, Int)] {
                let fast = Self.product(w, x, precision, accumulateOnto: onto, ldy: pad)
                let plain = Self.product(w, x, precision, reference: true, accumulateOnto: onto, ldy: pad)
                #expect(fast.scalars == plain.scalars, "\(precision) \(n)×\(m)×\(k) accumulate \(onto != nil)")
                // And near the fp32 product: bf16 keeps 8 bits of each operand, int8 about 7.
                var exact = onto ?? Tensor(zeros: [n, m])
                for r in 0..<n { for j in 0..<m {
                    exact.scalars[r * m + j] += (0..<k).reduce(0) { $0 + x.scalars[r * k + $1] * w.scalars[j * k + $1] }
                } }
                let scale = exact.scalars.map(abs).max()!, worst = fast.maxAbsDifference(exact) / scale
                #expect(worst < (precision == .bf16 ? 0.02 : 0.05), "\(precision) \(n)×\(m)×\(k): \(worst)")
            }
        }
    }

    /// One sequence on two threads in lockstep, each half of the units packed alone: the same values, bit for bit, as
    /// the whole direction on one thread (each row is packed and scaled on its own), forwards and reversed.
    @Test(arguments: [Precision.bf16, .int8])
    func lockstepHalvesMatchTheWholeDirection(_ precision: Precision) throws {
        try #require(Lockstep.available)
        let (T, I, H) = (9, 28, 64)
        let d = ReducedLSTMDirection(weightIH: randomTensor([4 * H, I], seed: 40, scale: 0.3),
                                     weightHH: randomTensor([4 * H, H], seed: 41, scale: 0.3),
                                     biasIH: randomTensor([4 * H], seed: 42), biasHH: randomTensor([4 * H], seed: 43),
                                     precision: precision)
        let x = randomTensor([T, 1, I], seed: 44), start = randomTensor([2, H], seed: 45, scale: 0.5)
        for reverse in [false, true] {
            var (out1, h1, c1) = ([Float](repeating: 0, count: T * 3 * H), [Float](repeating: 0, count: H),
                                  [Float](repeating: 0, count: H))
            var (out2, h2, c2) = (out1, h1, c1)
            var ran = false
            x.scalars.withUnsafeBufferPointer { xp in start.scalars.withUnsafeBufferPointer { sp in
                let (xb, sb) = (xp.baseAddress!, sp.baseAddress!)
                d.forward(xb, steps: T, batch: 1, rows: 0..<1, reverse: reverse, h0: sb, c0: sb + H, output: &out1,
                          outputWidth: 3 * H, column: H, h: &h1, c: &c1)
                // One lockstep runs at a time (other tests may hold it): try again until this one has run.
                for _ in 0..<10_000 where !ran {
                    ran = Parallel.$threads.withValue(2) {
                        d.forwardHalves(xb, steps: T, reverse: reverse, h0: sb, c0: sb + H, output: &out2,
                                        outputWidth: 3 * H, column: H, h: &h2, c: &c2)
                    }
                    if !ran { usleep(1_000) }
                }
            } }
            #expect(ran)
            #expect(out1 == out2 && h1 == h2 && c1 == c2, "\(precision) reverse \(reverse)")
            #expect(out1[H..<(2 * H)].contains { $0 != 0 } && !out1[0..<H].contains { $0 != 0 })
        }
        // Through the layer: a 2-layer LSTM on one sequence, 2 threads (lockstep) against 1.
        var g = SeededGenerator(seed: 46)
        let lstm = LSTM(inputSize: I, hiddenSize: H, numLayers: 2, generator: &g)
        lstm.precision = precision
        let seq = Variable(randomTensor([1, T, I], seed: 47))
        let two = Parallel.$threads.withValue(2) { Autograd.withoutGradients { lstm(seq) } }
        let one = Parallel.$threads.withValue(1) { Autograd.withoutGradients { lstm(seq) } }
        #expect(two.output.value == one.output.value && two.h.value == one.h.value && two.c.value == one.c.value)
    }

    /// Many rows run through the time loop in blocks (`ReducedLSTMDirection.blockRows`): the same values, bit for bit,
    /// as each row run alone, the last block partial, forwards and reversed.
    @Test(arguments: [Precision.bf16, .int8])
    func rowBlocksMatchRowsAlone(_ precision: Precision) {
        let (T, N, I, H) = (4, 2 * ReducedLSTMDirection.blockRows + 5, 12, 16)
        let d = ReducedLSTMDirection(weightIH: randomTensor([4 * H, I], seed: 60, scale: 0.3),
                                     weightHH: randomTensor([4 * H, H], seed: 61, scale: 0.3),
                                     biasIH: randomTensor([4 * H], seed: 62), biasHH: randomTensor([4 * H], seed: 63),
                                     precision: precision)
        let x = randomTensor([T, N, I], seed: 64), start = randomTensor([2 * N, H], seed: 65, scale: 0.5)
        for reverse in [false, true] {
            var (out1, h1, c1) = ([Float](repeating: 0, count: T * N * H), [Float](repeating: 0, count: N * H),
                                  [Float](repeating: 0, count: N * H))
            var (out2, h2, c2) = (out1, h1, c1)
            x.scalars.withUnsafeBufferPointer { xp in start.scalars.withUnsafeBufferPointer { sp in
                let (xb, sb) = (xp.baseAddress!, sp.baseAddress!)
                d.forward(xb, steps: T, batch: N, rows: 0..<N, reverse: reverse, h0: sb, c0: sb + N * H,
                          output: &out1, outputWidth: H, column: 0, h: &h1, c: &c1)
                for r in 0..<N {
                    d.forward(xb, steps: T, batch: N, rows: r..<(r + 1), reverse: reverse, h0: sb, c0: sb + N * H,
                              output: &out2, outputWidth: H, column: 0, h: &h2, c: &c2)
                }
            } }
            #expect(out1 == out2 && h1 == h2 && c1 == c2, "\(precision) reverse \(reverse)")
            #expect(!out1.contains(0) && !h1.contains(0))
        }
    }

    /// A 2-layer bidirectional LSTM with an initial state: the reduced forward near the fp32 one (a misplaced
    /// direction, step or row would be off by far more), the same on one thread and two, fp32 again when set back.
    @Test(arguments: [Precision.bf16, .int8])
    func lstmInferenceNearFP32(_ precision: Precision) {
        var g = SeededGenerator(seed: 5)
        let lstm = LSTM(inputSize: 6, hiddenSize: 20, numLayers: 2, bidirectional: true, generator: &g)
        let x = Variable(randomTensor([5, 7, 6], seed: 6))
        let h0 = Variable(randomTensor([4, 5, 20], seed: 7, scale: 0.5))
        let c0 = Variable(randomTensor([4, 5, 20], seed: 8, scale: 0.5))
        let exact = Autograd.withoutGradients { lstm(x, initialState: (h0, c0)) }
        lstm.precision = precision
        let reduced = Autograd.withoutGradients { lstm(x, initialState: (h0, c0)) }
        let one = Parallel.$threads.withValue(1) { Autograd.withoutGradients { lstm(x, initialState: (h0, c0)) } }
        for (name, a, b) in [("output", exact.output, reduced.output), ("h", exact.h, reduced.h),
                             ("c", exact.c, reduced.c)] {
            #expect(a.shape == b.shape, "\(name)")
            let worst = a.value.maxAbsDifference(b.value)
            print("LSTM \(precision) \(name): max |Δ| \(worst) against fp32")
            #expect(worst < (precision == .bf16 ? 0.005 : 0.01) && worst > 0, "\(name): \(worst)")
        }
        #expect(one.output.value == reduced.output.value && one.c.value == reduced.c.value)
        // Gradients recorded: the fp32 forward, whatever the precision.
        let trained = lstm(Variable(x.value, requiresGrad: true), initialState: (h0, c0))
        #expect(trained.output.value.maxAbsDifference(exact.output.value) <= 1e-6)
        lstm.precision = .fp32
        #expect(Autograd.withoutGradients { lstm(x, initialState: (h0, c0)) }.output.value == exact.output.value)
    }
}
