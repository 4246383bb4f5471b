import Foundation
import Testing
@testable import LSTMVision
@testable import LSTMVisionCore

/// The ConvLSTM layer and the frame predictor: PyTorch fixtures (tools/make_convlstm_reference.py; outputs to 1e-5,
/// gradients to 1e-4), the fused op against the plain-loop reference, and finite differences.
@Suite struct ConvLSTMTests {
    /// Parameters of a fixture (`param.<name>`) under their names.
    static func parameters(_ t: [String: Tensor]) -> [String: Tensor] {
        Dictionary(uniqueKeysWithValues: t.filter { $0.key.hasPrefix("param.") }
            .map { (String($0.key.dropFirst("param.".count)), $0.value) })
    }

    @Test func cellMatchesPyTorch() throws {
        print("convlstm_cell:")
        let (t, meta) = try fixture("convlstm_cell.safetensors")
        var g = SeededGenerator(seed: 0)
        let cell = ConvLSTMCell(Int(meta["in_channels"]!)!, hidden: Int(meta["hidden"]!)!,
                                kernelSize: Int(meta["kernel_size"]!)!, generator: &g)
        try cell.loadStateDict(Self.parameters(t))
        let x = Variable(try #require(t["input"]), requiresGrad: true)
        let h0 = Variable(try #require(t["h0"]), requiresGrad: true)
        let c0 = Variable(try #require(t["c0"]), requiresGrad: true)
        let r = cell.sequence(x, initial: (h0, c0))
        expectClose(r.output.value, t["output"], 1e-5, "output")
        expectClose(r.h.value, t["h_n"], 1e-5, "h_n")
        expectClose(r.c.value, t["c_n"], 1e-5, "c_n")
        let loss = (r.output * Variable(t["loss_weight.output"]!)).sum() + (r.h * Variable(t["loss_weight.h_n"]!)).sum()
            + (r.c * Variable(t["loss_weight.c_n"]!)).sum()
        expectClose(loss.value.reshaped([1]), t["loss"], 1e-4, "loss")
        loss.backward()
        expectClose(x.grad!, t["grad.input"], 1e-4, "grad input")
        expectClose(h0.grad!, t["grad.h0"], 1e-4, "grad h0")
        expectClose(c0.grad!, t["grad.c0"], 1e-4, "grad c0")
        expectClose(cell.conv.weight.grad!, t["grad.param.conv.weight"], 1e-4, "grad conv.weight")
        expectClose(cell.conv.bias!.grad!, t["grad.param.conv.bias"], 1e-4, "grad conv.bias")
    }

    /// (T, N, C, H, k, rows, cols): 1×1 and 5×5 kernels, one step, one image, non-square frames.
    static let geometries: [[Int]] = [[3, 2, 2, 3, 3, 5, 4], [1, 1, 1, 2, 1, 3, 3], [2, 2, 3, 2, 5, 4, 6],
                                      [4, 1, 2, 1, 3, 2, 7]]

    @Test(arguments: geometries)
    func fusedMatchesReference(_ c: [Int]) {
        let (T, N, C, H, k, R, S) = (c[0], c[1], c[2], c[3], c[4], c[5], c[6])
        let x = randomTensor([T, N, C, R, S], seed: 1), h0 = randomTensor([N, H, R, S], seed: 2)
        let c0 = randomTensor([N, H, R, S], seed: 3), w = randomTensor([4 * H, C + H, k, k], seed: 4, scale: 0.3)
        let b = randomTensor([4 * H], seed: 5), dy = randomTensor([T, N, H, R, S], seed: 6)
        let dh = randomTensor([N, H, R, S], seed: 7), dc = randomTensor([N, H, R, S], seed: 8)
        let ref = ConvLSTMReference.forward(x, h0: h0, c0: c0, weight: w, bias: b)
        let refGrads = ConvLSTMReference.backward(x, weight: w, ref, dy: dy, dh: dh, dc: dc)
        let vars = [x, h0, c0, w, b].map { Variable($0, requiresGrad: true) }
        let r = convLSTMSequence(vars[0], h0: vars[1], c0: vars[2], weight: vars[3], bias: vars[4])
        print("fused vs reference \(c):")
        expectClose(r.output.value, ref.output, 1e-5, "output")
        expectClose(r.h.value, ref.h, 1e-5, "h")
        expectClose(r.c.value, ref.c, 1e-5, "c")
        let loss = (r.output * Variable(dy)).sum() + (r.h * Variable(dh)).sum() + (r.c * Variable(dc)).sum()
        loss.backward()
        for (v, (e, name)) in zip(vars, [(refGrads.x, "x"), (refGrads.h0, "h0"), (refGrads.c0, "c0"),
                                         (refGrads.weight, "weight"), (refGrads.bias, "bias")]) {
            expectClose(v.grad!, e, 1e-4, "grad \(name)")
        }
        // With an input that wants no gradient, the backward computes only h's part of the unfolded gradient.
        let rest = [h0, c0, w, b].map { Variable($0, requiresGrad: true) }
        let q = convLSTMSequence(Variable(x), h0: rest[0], c0: rest[1], weight: rest[2], bias: rest[3])
        ((q.output * Variable(dy)).sum() + (q.h * Variable(dh)).sum() + (q.c * Variable(dc)).sum()).backward()
        for (v, (e, name)) in zip(rest, [(refGrads.h0, "h0"), (refGrads.c0, "c0"), (refGrads.weight, "weight"),
                                         (refGrads.bias, "bias")]) {
            expectClose(v.grad!, e, 1e-4, "grad \(name), input without gradient")
        }
    }

    /// Images unfolded and multiplied in groups (a column budget of 1 and 2 images' columns) as all at once.
    @Test(arguments: [1, 2])
    func groupedImagesMatchReference(_ images: Int) {
        let (T, N, C, H, k, R, S) = (3, 5, 2, 3, 3, 4, 5), K = (C + H) * k * k
        let x = randomTensor([T, N, C, R, S], seed: 11), h0 = randomTensor([N, H, R, S], seed: 12)
        let c0 = randomTensor([N, H, R, S], seed: 13), w = randomTensor([4 * H, C + H, k, k], seed: 14, scale: 0.3)
        let b = randomTensor([4 * H], seed: 15), dy = randomTensor([T, N, H, R, S], seed: 16)
        let ref = ConvLSTMReference.forward(x, h0: h0, c0: c0, weight: w, bias: b)
        let refGrads = ConvLSTMReference.backward(x, weight: w, ref, dy: dy, dh: nil, dc: nil)
        let shape = ConvLSTMShape(x: x.shape, weight: w.shape, bias: b.shape, h0: h0.shape, c0: c0.shape)
        let f = ConvLSTMForward(x, h0: h0, c0: c0, weight: w, bias: b, shape: shape, keep: true,
                                columnBudget: images * K * R * S)
        #expect(f.group == images)
        expectClose(Tensor(shape: [T, N, H, R, S], scalars: f.imageMajor(f.hs, blocks: 1...T)), ref.output, 1e-5,
                    "output, \(images) images per product")
        let g = f.backward(x, weight: w, dy: dy, dh: nil, dc: nil, wantX: true)
        for (v, (e, name)) in zip([g.x, g.h0, g.c0, g.weight, g.bias],
                                  [(refGrads.x, "x"), (refGrads.h0, "h0"), (refGrads.c0, "c0"),
                                   (refGrads.weight, "weight"), (refGrads.bias, "bias")]) {
            expectClose(v, e, 1e-4, "grad \(name), \(images) images per product")
        }
    }

    @Test func stackedGradientsMatchFiniteDifferences() {
        var g = SeededGenerator(seed: 11)
        let layer = ConvLSTM(inChannels: 2, hidden: [3, 2], kernelSize: 3, generator: &g)
        let x = Variable(randomTensor([3, 2, 2, 4, 5], seed: 12), requiresGrad: true)
        let h0 = Variable(randomTensor([2, 3, 4, 5], seed: 13), requiresGrad: true)
        let c0 = Variable(randomTensor([2, 3, 4, 5], seed: 14), requiresGrad: true)
        let w = Variable(randomTensor([3, 2, 2, 4, 5], seed: 15)), wh = Variable(randomTensor([2, 2, 4, 5], seed: 16))
        let worst = checkGradients([x, h0, c0] + layer.parameters, samples: 8) {
            let r = layer(x, initial: [(h0, c0), (Variable(Tensor(zeros: [2, 2, 4, 5])),
                                                   Variable(Tensor(zeros: [2, 2, 4, 5])))])
            return (r.output * w).sum() + (r.states[1].c * wh).sum()
        }
        print("stacked ConvLSTM: worst relative finite-difference error \(worst)")
        #expect(layer.namedParameters.map(\.name)
                == ["cells.0.conv.weight", "cells.0.conv.bias", "cells.1.conv.weight", "cells.1.conv.bias"])
        #expect(layer.cells[1].conv.weight.shape == [8, 5, 3, 3])
    }

    @Test func framePredictorMatchesPyTorch() throws {
        print("frame_predictor:")
        let (t, meta) = try fixture("frame_predictor.safetensors")
        let model = try FramePredictorFile.model(from: Self.parameters(t), source: "frame_predictor.safetensors")
        #expect(model.hidden == [4, 4] && model.kernelSize == 3 && model.patch == 2)
        let context = Int(meta["context"]!)!, frames = try #require(t["frames"])
        let y = model(Variable(frames), context: context)
        expectClose(y.value, t["prediction"], 1e-5, "prediction")
        let target = MovingMNIST.future(frames, context: context)
        let loss = mseLoss(y, target)
        expectClose(loss.value.reshaped([1]), t["loss"], 1e-5, "loss")
        loss.backward()
        for (name, v) in model.namedParameters {
            // The MSE gradients are small (≤ 0.013): also relative to the largest of each, to 1e-4.
            let expected = try #require(t["grad.param.\(name)"]), scale = 1 / expected.scalars.map(abs).max()!
            expectClose(v.grad!, expected, 1e-4, "grad \(name)")
            expectClose(v.grad! * scale, expected * scale, 1e-4, "grad \(name) / max |grad|")
        }
    }

    /// Frames `range` of the time axis of [N, T, 1, rows, cols].
    static func frames(_ y: Tensor, _ range: Range<Int>) -> Tensor {
        let (n, t, plane) = (y.shape[0], y.shape[1], y.shape[3] * y.shape[4])
        let scalars = (0..<n).flatMap { i in
            y.scalars[((i * t + range.lowerBound) * plane)..<((i * t + range.upperBound) * plane)]
        }
        return Tensor(shape: [n, range.count, 1, y.shape[3], y.shape[4]], scalars: scalars)
    }

    /// Scheduled sampling's forward against the inference forward (checked against PyTorch above): reading the
    /// predictions it is the inference forward; reading the true frames, prediction k is the inference forward's
    /// first with context k + 1; the truth flags apply per sequence; the gradients match finite differences.
    @Test func scheduledSamplingMatchesInference() throws {
        let (t, meta) = try fixture("frame_predictor.safetensors")
        let model = try FramePredictorFile.model(from: Self.parameters(t), source: "frame_predictor.safetensors")
        let context = Int(meta["context"]!)!, x = Variable(try #require(t["frames"]))
        let (n, steps) = (x.shape[0], x.shape[1])
        #expect(n >= 2 && steps > context + 1)
        let flags = { (v: [Bool]) in [[Bool]](repeating: v, count: steps - 1 - context) }
        let predicted = model.nextFrames(x, context: context, truth: flags([Bool](repeating: false, count: n)))
        #expect(predicted.shape == [n, steps - 1, 1, x.shape[3], x.shape[4]])
        expectClose(Self.frames(predicted.value, (context - 1)..<(steps - 1)), model(x, context: context).value, 1e-6,
                    "reading predictions")
        let forced = model.nextFrames(x, context: context, truth: flags([Bool](repeating: true, count: n)))
        for k in 0..<(steps - 1) {
            expectClose(Self.frames(forced.value, k..<(k + 1)), Self.frames(model(x, context: k + 1).value, 0..<1),
                        1e-6, "teacher-forced frame \(k + 1)")
        }
        // Sequence 0 reads the truth, the others their predictions.
        let mixed = model.nextFrames(x, context: context, truth: flags((0..<n).map { $0 == 0 }))
        let size = mixed.value.count / n
        expectClose(Tensor(shape: [size], scalars: Array(mixed.value.scalars[..<size])),
                    Tensor(shape: [size], scalars: Array(forced.value.scalars[..<size])), 1e-6, "sequence 0")
        expectClose(Tensor(shape: [size * (n - 1)], scalars: Array(mixed.value.scalars[size...])),
                    Tensor(shape: [size * (n - 1)], scalars: Array(predicted.value.scalars[size...])), 1e-6, "others")
        let w = Variable(randomTensor(mixed.shape, seed: 21))
        let worst = checkGradients(model.parameters, samples: 8) {
            (model.nextFrames(x, context: context, truth: flags((0..<n).map { $0 == 0 })) * w).sum()
        }
        print("scheduled sampling: worst relative finite-difference error \(worst)")
    }

    @Test func pyTorchStateDictLoads() throws {
        let url = try #require(Bundle.module.url(forResource: "frame_predictor_state.safetensors", withExtension: nil,
                                                 subdirectory: "Fixtures"))
        let model = try FramePredictorFile.load(url.path)
        let (t, _) = try fixture("frame_predictor.safetensors")
        expectClose(model(Variable(t["frames"]!), context: 3).value, t["prediction"], 1e-5, "prediction from state")
        // Saved here, read back: the same model.
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("fp-\(UUID()).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try FramePredictorFile.save(model, to: path)
        #expect(try FramePredictorFile.load(path).stateDict() == model.stateDict())
    }

    @Test func badStateDictsAreRefused() throws {
        var g = SeededGenerator(seed: 3)
        let state = FramePredictor(hidden: [3, 2], kernelSize: 3, patch: 2, generator: &g).stateDict()
        func message(_ s: [String: Tensor]) -> String {
            do { _ = try FramePredictorFile.model(from: s, source: "m.safetensors"); return "loaded" } catch {
                return "\(error)"
            }
        }
        var noHead = state; noHead["head.weight"] = nil
        #expect(message(noHead) == "m.safetensors: not a FramePredictor state dict: no tensor 'head.weight'")
        var badHead = state; badHead["head.weight"] = Tensor(zeros: [3, 2, 1, 1])
        #expect(message(badHead).contains("not the square of a patch size"))
        var wrongIn = state; wrongIn["cells.1.conv.weight"] = Tensor(zeros: [8, 4, 3, 3])
        #expect(message(wrongIn).contains("'cells.1.conv.weight' reads 4 channels, expected 3 + 2"))
        var evenK = state; evenK["cells.0.conv.weight"] = Tensor(zeros: [12, 7, 2, 2])
        #expect(message(evenK).contains("k odd"))
        var extra = state; extra["cells.0.conv.extra"] = Tensor(zeros: [1])
        #expect(message(extra).contains("unexpected tensor 'cells.0.conv.extra'"))
        #expect(message(state) == "loaded")
    }

    @Test func permuteRoundTrips() {
        let x = randomTensor([2, 3, 4, 5], seed: 21)
        let y = permute(x, [2, 0, 3, 1])
        #expect(y.shape == [4, 2, 5, 3] && y[1, 0, 2, 2] == x[0, 2, 1, 2])
        #expect(permute(y, [1, 3, 0, 2]) == x)
    }
}
