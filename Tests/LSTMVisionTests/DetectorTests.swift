import Foundation
import Testing
@testable import LSTMVision
@testable import LSTMVisionCore

/// The LSTM detector: its shape ops, the Hungarian loss (gradient and matching), post-processing,
/// a tiny training run that learns, checkpoints with exact resume, and bad input.
@Suite(.serialized) struct DetectorTests {
    /// A small detector for 32×32 grey canvases: a 4×4 grid of 8-pixel cells, 2 boxes per cell.
    static let small = DetectorConfig(height: 32, width: 32, convWidths: [8, 16, 16], hidden: 24, maxBoxes: 2)

    /// Synthetic 32×32 canvases with 1–2 digits from MNIST's test digits (only 0s and 1s with `easy`).
    static func canvases(_ n: Int, seed: UInt64, easy: Bool = false) -> DetectionDataset {
        var digits = MultiDigitDetectionTests.digits
        if easy {
            let keep = digits.labels.indices.filter { digits.labels[$0] < 2 }.prefix(200)
            digits = ImageDataset(height: 28, width: 28, channels: 1,
                                  pixels: keep.flatMap { digits.pixels[($0 * 784)..<(($0 + 1) * 784)] },
                                  labels: keep.map { digits.labels[$0] }, classNames: digits.classNames)
        }
        return DetectionDataset(samples: MultiDigitDetection.generate(from: digits, count: n, canvas: 32, maxDigits: 2,
                                                                      seed: seed))
    }

    func tempDir(_ name: String) -> String { freshTemporaryPath("det-\(name)") }

    // MARK: - Shape ops

    @Test func swapTrailingAxesAndRepeatLeading() {
        let x = Tensor(shape: [2, 2, 3], scalars: (0..<12).map(Float.init))
        #expect(swapTrailingAxes(x) == Tensor(shape: [2, 3, 2], scalars: [0, 3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11]))
        let v = Variable(randomTensor([2, 3, 4], seed: 1), requiresGrad: true)
        let w = randomTensor([2, 4, 3], seed: 2)
        checkGradients([v]) { (swapTrailingAxes(v) * Variable(w)).sum() }

        let r = repeatLeading(Variable(Tensor(shape: [2, 2], scalars: [1, 2, 3, 4])), count: 3)
        #expect(r.value == Tensor(shape: [3, 2, 2], scalars: [1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4]))
        let u = Variable(randomTensor([3, 5], seed: 3), requiresGrad: true)
        let m = randomTensor([4, 3, 5], seed: 4)
        checkGradients([u]) { (repeatLeading(u, count: 4) * Variable(m)).sum() }
    }

    @Test func cellBlocksAreTheFineMapUnderEachCell() throws {
        // 2×2 cells
        let model = try LSTMDetector.make(DetectorConfig(height: 16, width: 16, convWidths: [1, 1, 1]), seed: 0)
        let x = Variable(Tensor(shape: [1, 1, 4, 4], scalars: (0..<16).map(Float.init)))
        // Per cell (row-major), the pixels (x, y) of its 2×2 block in the order (0, 0), (0, 1), (1, 0), (1, 1).
        #expect(model.cellBlocks(x).value
                == Tensor(shape: [4, 4], scalars: [0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15]))
    }

    // MARK: - Hungarian loss

    /// A raw output [K, cells, 6 + classes] for one 64×64 image whose every step predicts `boxes[k]`
    /// (centre offset, size as the detector's outputs), with zero logits.
    func output(steps boxes: [[Float]], config c: DetectorConfig, cell: Int) -> Tensor {
        var t = Tensor(zeros: [c.maxBoxes, c.cells, c.outputsPerStep])
        for (k, b) in boxes.enumerated() {
            for i in 0..<4 { t.scalars[(k * c.cells + cell) * c.outputsPerStep + i] = b[i] }
        }
        return t
    }

    @Test func matchingPrefersOverlapThenEarlierSteps() {
        let c = DetectorConfig()   // 64×64, stride 8, K = 3
        // A 16×16 box centred at (20, 28): cell (2, 3), whose centre is (20, 28), so the exact box is
        // (0, 0, 0.25, 0.25).
        let truth = DetectionTarget(boxes: [Box(centerX: 20, centerY: 28, width: 16, height: 16)], classes: [7])
        let cell = 3 * 8 + 2
        let exact: [Float] = [0, 0, 0.25, 0.25], near: [Float] = [0.3, 0, 0.25, 0.25], far: [Float] = [3, 3, 0.25, 0.25]
        // Only the last step overlaps: it wins although it comes last.
        var m = HungarianLoss.match(output(steps: [far, far, near], config: c, cell: cell), targets: [truth], config: c)
        #expect(m.matches.map(\.step) == [2] && m.matches[0].cell == cell && m.matches[0].classIndex == 7)
        #expect(m.matches[0].target.enumerated().allSatisfy { abs($0.element - exact[$0.offset]) < 1e-6 })
        // Steps 1 and 2 overlap, step 2 exactly: the earlier overlapping step wins.
        m = HungarianLoss.match(output(steps: [far, near, exact], config: c, cell: cell), targets: [truth], config: c)
        #expect(m.matches.map(\.step) == [1])
        // Two boxes in one cell, every step overlapping both: the first two steps, paired by L1 distance.
        let two = DetectionTarget(boxes: [Box(centerX: 22.4, centerY: 28, width: 16, height: 16),
                                          Box(centerX: 20, centerY: 28, width: 16, height: 16)],
                                  classes: [1, 2])
        m = HungarianLoss.match(output(steps: [exact, near, exact], config: c, cell: cell), targets: [two], config: c)
        #expect(Set(m.matches.map(\.step)) == [0, 1])
        #expect(m.matches.first { $0.classIndex == 1 }?.step == 1 && m.matches.first { $0.classIndex == 2 }?.step == 0)
        // Four centres in one cell: K = 3 are kept, one is dropped; a box in another cell is matched there.
        let crowd = DetectionTarget(boxes: (0..<4).map {
                                        Box(centerX: 17 + Double($0), centerY: 25, width: 10, height: 10)
                                    } + [Box(centerX: 60, centerY: 60, width: 8, height: 8)],
                                    classes: [0, 1, 2, 3, 4])
        m = HungarianLoss.match(Tensor(zeros: [3, 64, 16]), targets: [crowd], config: c)
        #expect(m.dropped == 1 && m.matches.count == 4)
        #expect(m.matches.contains { $0.cell == 63 && $0.classIndex == 4 })
        // The numerical cost orders (overlap, step, L1) lexicographically.
        #expect(HungarianLoss.cost(iou: 0, step: 0, l1: 0) > HungarianLoss.cost(iou: 0.01, step: 2, l1: 50))
        #expect(HungarianLoss.cost(iou: 0.01, step: 1, l1: 0) > HungarianLoss.cost(iou: 0.9, step: 0, l1: 50))
    }

    @Test func lossGradientMatchesFiniteDifferences() {
        let c = DetectorConfig(height: 16, width: 24, stride: 8, convWidths: [4, 4, 4], maxBoxes: 2,
                               classNames: ["a", "b", "c"])
        let targets = [DetectionTarget(boxes: [Box(x: 1, y: 2, width: 10, height: 9),
                                               Box(x: 3, y: 1, width: 4, height: 5),
                                               Box(x: 14, y: 6, width: 9, height: 9)],
                                       classes: [0, 2, 1]),
                       DetectionTarget(boxes: [Box(x: 8, y: 8, width: 8, height: 8)], classes: [1])]
        var x = randomTensor([2, 2 * c.cells, c.outputsPerStep], seed: 5, scale: 0.5)
        let matching = HungarianLoss.match(x, targets: targets, config: c)
        #expect(matching.matches.count == 4 && matching.dropped == 0)
        // Keep every box output away from its target, where the L1 term has a kink.
        for m in matching.matches {
            for i in 0..<4 {
                let at = (m.step * 2 * c.cells + m.cell) * c.outputsPerStep + i
                if abs(x.scalars[at] - m.target[i]) < 0.1 { x.scalars[at] += 0.2 }
            }
        }
        let v = Variable(x, requiresGrad: true)
        let loss = HungarianLoss(boxWeight: 3, classWeight: 0.7, iouWeight: 2)
        checkGradients([v], samples: 60, epsilon: 1e-2, tolerance: 1e-2) { loss.loss(v, matching: matching).loss }
        let r = loss.loss(v, matching: matching)
        #expect(abs(Double(r.loss.value.scalar) - (r.confidence + r.box + r.classification)) < 1e-4)
    }

    @Test func giouLossValuesAndGradient() {
        // Identical boxes: GIoU 1. Half overlapping 2×2 squares: I = 2, U = 6, hull 6 → GIoU 1/3. Disjoint with a
        // gap of 2: I = 0, U = 8, hull 12 → GIoU −1/3.
        #expect(abs(HungarianLoss.giouLoss([1, 2, 3, 4], [1, 2, 3, 4]).loss) < 1e-12)
        #expect(abs(HungarianLoss.giouLoss([0, 0, 2, 2], [1, 0, 2, 2]).loss - 2.0 / 3) < 1e-12)
        #expect(abs(HungarianLoss.giouLoss([0, 0, 2, 2], [4, 0, 2, 2]).loss - 4.0 / 3) < 1e-12)
        // Shifting and scaling each axis leaves it unchanged (the loss works in output units relative to the cell).
        let moved = HungarianLoss.giouLoss([5, -1, 6, 1], [8, -1, 6, 1]).loss   // x ↦ 3x + 5, y ↦ y/2 − 1
        #expect(abs(moved - 2.0 / 3) < 1e-12)
        // The analytic gradient against central differences, for overlapping, nested, disjoint and zero-width
        // predictions.
        let cases: [([Double], [Double])] = [([0.3, -0.2, 2.1, 1.7], [0, 0, 2, 2]),
                                             ([0.1, 0.05, 0.8, 0.9], [0, 0, 2, 2]),
                                             ([3.2, 0.4, 1.3, 2.2], [0, 0, 2, 2.5]),
                                             ([0.2, 0.3, 0, 1.1], [0, 0, 1.5, 2])]
        for (p, t) in cases {
            let g = HungarianLoss.giouLoss(p, t).gradient
            for i in 0..<4 where i < 2 || p[i] > 0 {
                var up = p, down = p
                up[i] += 1e-6; down[i] -= 1e-6
                let numeric = (HungarianLoss.giouLoss(up, t).loss - HungarianLoss.giouLoss(down, t).loss) / 2e-6
                #expect(abs(numeric - g[i]) < 1e-6,
                        "giou gradient \(i) of \(p) vs \(t): \(g[i]) analytic, \(numeric) numeric")
            }
        }
    }

    @Test func detectorGradientsMatchFiniteDifferences() throws {
        let c = DetectorConfig(height: 16, width: 16, channels: 3, convWidths: [3, 4, 4, 5], hidden: 6, maxBoxes: 2,
                               classNames: ["a", "b", "c"])
        let model = try LSTMDetector.make(c, seed: 8)
        let targets = [DetectionTarget(boxes: [Box(x: 1, y: 2, width: 6, height: 9),
                                               Box(x: 8, y: 8, width: 7, height: 7)], classes: [0, 2]),
                       DetectionTarget(boxes: [Box(x: 2, y: 9, width: 5, height: 6)], classes: [1])]
        var g = SeededGenerator(seed: 9)
        let x = Variable(Tensor.uniform([2, 16, 48], low: 0, high: 1, generator: &g), requiresGrad: true)
        try checkLossGradients(model, x, targets, name: "detector")
    }

    /// The Hungarian loss's gradients through `model` (input and every parameter) against finite differences,
    /// with the matching of `targets` (three boxes) held fixed.
    func checkLossGradients(_ model: LSTMDetector, _ x: Variable, _ targets: [DetectionTarget], name: String) throws {
        let loss = HungarianLoss()
        let matching = HungarianLoss.match(try model(x).value, targets: targets, config: model.config)
        #expect(matching.matches.count == 3)
        let worst = checkGradients([x] + model.parameters, samples: 6, epsilon: 1e-3, tolerance: 3e-2) {
            loss.loss(try! model(x), matching: matching).loss
        }
        print("  \(name) gradients: worst relative error \(worst)")
    }

    /// Two 16×24 RGB images x [2, 16, 72] through `model`'s encoder (6 cells each, `width` features per cell): the
    /// first cell's `features` depend on the far corner of the first image and on nothing of the second.
    func expectFirstCellSeesItsWholeImage(_ model: LSTMDetector, _ x: Variable, features: Range<Int>, of width: Int) {
        let cells = model.encode(x).cells                                          // [2·6, width]
        #expect(cells.shape == [12, width])
        let first = Variable(Tensor(shape: [12, width],
                                    scalars: (0..<(12 * width)).map { features.contains($0) ? 1 : 0 }))
        (cells * first).sum().backward()
        let dx = x.grad!.scalars
        #expect(dx[(15 * 72 + 71)] != 0, "the first cell's feature should depend on the far corner's pixel")
        #expect(dx[(16 * 72)...].allSatisfy { $0 == 0 }, "the second image must not affect the first image's cells")
    }

    @Test func renetEncoderGradientsNamesAndConfig() throws {
        let c = DetectorConfig(height: 16, width: 24, channels: 3, stride: 8, encoder: .renet, renetWidths: [3, 4],
                               hidden: 5, maxBoxes: 2, classNames: ["a", "b"])
        #expect(!c.fineFeatures && c.convWidths.isEmpty && c.featureSize == 8 && c.headInputSize == 5 + 8)
        let model = try LSTMDetector.make(c, seed: 3)
        let names = model.namedParameters.map(\.name)
        #expect(names.prefix(5) == ["encoder.0.vertical.weight_ih_l0", "encoder.0.vertical.weight_hh_l0",
                                    "encoder.0.vertical.bias_ih_l0", "encoder.0.vertical.bias_hh_l0",
                                    "encoder.0.vertical.weight_ih_l0_reverse"])
        #expect(model.lstm.cells[0][0].weightIH.shape == [20, 8])
        #expect(model.sweeps[0].vertical.cells[0][0].weightIH.shape == [12, 8 * 8 * 3])   // one 8×8 RGB patch per cell
        // Every cell's feature depends on the whole image (the sweeps cross the grid), unlike a 3×3 stack's.
        var g = SeededGenerator(seed: 4)
        let x = Variable(Tensor.uniform([2, 16, 72], low: 0, high: 1, generator: &g), requiresGrad: true)
        expectFirstCellSeesItsWholeImage(model, x, features: 0..<8, of: 8)
        // Loss gradients against finite differences, encoder included.
        x.zeroGrad()
        let targets = [DetectionTarget(boxes: [Box(x: 1, y: 2, width: 6, height: 9)], classes: [1]),
                       DetectionTarget(boxes: [Box(x: 10, y: 3, width: 7, height: 8),
                                               Box(x: 2, y: 9, width: 5, height: 6)], classes: [0, 1])]
        try checkLossGradients(model, x, targets, name: "ReNet detector")
        // The config survives its JSON form; one saved before encoders existed (no `encoder` key) reads as
        // convolutional.
        #expect(try JSONDecoder().decode(DetectorConfig.self, from: Data(c.json().utf8)) == c)
        var old = try JSONSerialization.jsonObject(with: Data(DetectorConfig().json().utf8)) as! [String: Any]
        old["encoder"] = nil
        old["renetWidths"] = nil
        #expect(try JSONDecoder().decode(DetectorConfig.self, from: try JSONSerialization.data(withJSONObject: old))
                == DetectorConfig())
        // A ReNet encoder with a fine-feature map, or with no layers, is refused.
        #expect(throws: ModelError.self) {
            try LSTMDetector.make(DetectorConfig(encoder: .renet, fineFeatures: true), seed: 0)
        }
        #expect(throws: ModelError.self) {
            try LSTMDetector.make(DetectorConfig(encoder: .renet, renetWidths: []), seed: 0)
        }
    }

    @Test func convRenetEncoderGradientsNamesAndConfig() throws {
        let c = DetectorConfig(height: 16, width: 24, channels: 3, stride: 8, encoder: .convRenet,
                               convWidths: [3, 4, 4], renetWidths: [3], hidden: 5, maxBoxes: 2, classNames: ["a", "b"])
        // A cell's feature: the last convolution's 4 channels beside both directions of the sweep (6); fine block 4·4.
        #expect(c.fineFeatures && c.featureSize == 4 + 6 && c.headInputSize == 5 + 10 + 16)
        #expect(c.encoderDescription == "conv [3, 4, 4] + ReNet [3]")
        let model = try LSTMDetector.make(c, seed: 5)
        let names = model.namedParameters.map(\.name)
        #expect(names.prefix(7) == ["encoder.0.weight", "encoder.0.bias", "encoder.3.weight", "encoder.3.bias",
                                    "encoder.6.weight", "encoder.6.bias", "context.0.vertical.weight_ih_l0"])
        // A cell's pixels beside its conv feature.
        #expect(model.sweeps[0].vertical.cells[0][0].weightIH.shape == [12, 8 * 8 * 3 + 4])
        // The sweeps give every cell the whole image; the 3×3 stack alone (three pooled convolutions) sees 22 pixels.
        var g = SeededGenerator(seed: 6)
        let x = Variable(Tensor.uniform([2, 16, 72], low: 0, high: 1, generator: &g), requiresGrad: true)
        expectFirstCellSeesItsWholeImage(model, x, features: 4..<10, of: 10)   // the sweeps' part
        x.zeroGrad()
        let targets = [DetectionTarget(boxes: [Box(x: 1, y: 2, width: 6, height: 9)], classes: [1]),
                       DetectionTarget(boxes: [Box(x: 10, y: 3, width: 7, height: 8),
                                               Box(x: 2, y: 9, width: 5, height: 6)], classes: [0, 1])]
        try checkLossGradients(model, x, targets, name: "conv-ReNet detector")
        #expect(try JSONDecoder().decode(DetectorConfig.self, from: Data(c.json().utf8)) == c)
        #expect(throws: ModelError.self) {
            try LSTMDetector.make(DetectorConfig(encoder: .convRenet, renetWidths: []), seed: 0)
        }
        #expect(throws: ModelError.self) {
            try LSTMDetector.make(DetectorConfig(encoder: .convRenet, convWidths: [8]), seed: 0)
        }
    }

    // MARK: - Post-processing

    @Test func proposalsDecodeScoresAndBoxes() {
        let c = DetectorConfig(height: 16, width: 16, stride: 8, convWidths: [2, 2, 2], maxBoxes: 1,
                               classNames: ["a", "b"])
        var out = Tensor(zeros: [1, 4, 8])
        // Cell 3 (column 1, row 1, centre (12, 12)): P(object) = σ(2), classes 0.2 / 0.8 (logit difference ln 4).
        out.scalars.replaceSubrange(24..<32, with: [-0.25, -0.5, 0.5, 0.25, 0, 2, 0, Float(log(4.0))])
        let proposals = PostProcessing(scoreThreshold: 0.3).proposals(out, config: c)
        #expect(proposals.count == 1 && proposals[0].count == 1)
        let p = proposals[0][0]
        #expect(p.classIndex == 1 && abs(p.score - 0.8 / (1 + exp(-2))) < 1e-5)
        // Centre (12 − 2, 12 − 4), size 8 × 4.
        #expect(abs(p.box.x - 6) < 1e-5 && abs(p.box.y - 6) < 1e-5 && abs(p.box.width - 8) < 1e-5
                && abs(p.box.height - 4) < 1e-5)
        // The other cells score 0.5 · 0.5 = 0.25, under the threshold; at 0.2 they come too.
        #expect(PostProcessing(scoreThreshold: 0.2).proposals(out, config: c)[0].count == 4)
        // A box output that overflowed gives no proposal (drawing a NaN box would convert NaN to Int and trap).
        out.scalars[26] = .infinity
        out.scalars[1] = .nan
        #expect(PostProcessing(scoreThreshold: 0.2).proposals(out, config: c)[0].count == 2)
    }

    @Test func mergingAndSuppression() {
        let post = PostProcessing(scoreThreshold: 0.1, mergeIoU: 0.5, nmsIoU: 0.3)
        let a = ScoredBox(box: Box(x: 10, y: 10, width: 10, height: 10), classIndex: 3, score: 0.9)
        let b = ScoredBox(box: Box(x: 11, y: 10, width: 10, height: 10), classIndex: 3, score: 0.3)   // IoU 0.82 with a
        let other = ScoredBox(box: Box(x: 11, y: 10, width: 10, height: 10), classIndex: 5,
                              score: 0.5)                                                      // another class
        let apart = ScoredBox(box: Box(x: 40, y: 40, width: 10, height: 10), classIndex: 3, score: 0.6)
        let merged = post.merge([b, apart, other, a])
        #expect(merged.count == 3)
        let m = merged.first { $0.classIndex == 3 && $0.score == 0.9 }
        #expect(m != nil && abs(m!.box.x - 10.25) < 1e-9 && m!.box.width == 10)   // (0.9·10 + 0.3·11) / 1.2
        #expect(merged.contains(apart) && merged.contains(other))
        // NMS: IoU 0.43 (> 0.3) with a better box of its class drops a box; other classes stay.
        let c = ScoredBox(box: Box(x: 14, y: 10, width: 10, height: 10), classIndex: 3, score: 0.4)
        #expect(post.suppress([c, a, other]) == [a, other])
        // The whole pipeline: sorted by score, at most maxDetections.
        var capped = post
        capped.maxDetections = 2
        #expect(capped.process([b, apart, other, a]).map(\.score) == [0.9, 0.6])
        #expect(post.process([]).isEmpty)
    }

    // MARK: - Training, checkpoints, bad input

    func options(epochs: Int) -> TrainingOptions {
        var o = TrainingOptions()
        o.epochs = epochs
        o.batchSize = 4
        o.learningRate = 1e-2
        o.warmupSteps = 5
        o.clipNorm = 5
        return o
    }

    @Test func tinyTrainingRunLearns() throws {
        let data = Self.canvases(16, seed: 3, easy: true)
        let model = try LSTMDetector.make(Self.small, seed: 2)
        model.setForgetBias(1)
        let before = try DetectionEvaluation.run(model, on: data)
        let dir = tempDir("learn")
        let trainer = try Trainer<DetectionTask>(model: model, options: options(epochs: 30), train: data,
                                                 validation: nil, directory: dir)
        trainer.quiet = true
        let log = try trainer.run()
        let after = try DetectionEvaluation.run(model, on: data)
        print("  tiny detector: loss \(log.first!.trainLoss) → \(log.last!.trainLoss), "
              + "training AP50 \(before.metrics.AP50) → \(after.metrics.AP50)")
        #expect(log.last!.trainLoss < 0.5 * log.first!.trainLoss)
        #expect(after.metrics.AP50 > before.metrics.AP50 + 0.3, "AP50 \(before.metrics.AP50) → \(after.metrics.AP50)")
        #expect(FileManager.default.fileExists(atPath: trainer.folder.plot))
        #expect(try String(contentsOfFile: trainer.folder.log, encoding: .utf8).split(separator: "\n").count == 31)
        try? FileManager.default.removeItem(atPath: dir)
    }

    @Test func checkpointRoundTripAndExactResume() throws {
        let data = Self.canvases(12, seed: 4)
        let model = try LSTMDetector.make(Self.small, seed: 1)
        let names = model.namedParameters.map(\.name)
        #expect(names.prefix(6) == ["encoder.0.weight", "encoder.0.bias", "encoder.3.weight", "encoder.3.bias",
                                    "encoder.6.weight", "encoder.6.bias"])
        #expect(names.suffix(6) == ["decoder.lstm.weight_ih_l0", "decoder.lstm.weight_hh_l0", "decoder.lstm.bias_ih_l0",
                                    "decoder.lstm.bias_hh_l0", "head.weight", "head.bias"])
        // Uninterrupted: 3 epochs (validating each, which writes the best model).
        let dirA = tempDir("a")
        // Later epochs train on new canvases, as the command line's synthetic data does.
        let refresh = { (epoch: Int) in Self.canvases(12, seed: 100 + UInt64(epoch)) }
        let a = try Trainer<DetectionTask>(model: model, options: options(epochs: 3), train: data,
                                           validation: data.prefix(4), directory: dirA)
        a.quiet = true
        a.task.refresh = refresh
        try a.run()
        let loaded = try DetectorFile.load(a.folder.lastModel)
        #expect(loaded.config == Self.small)
        let x = data.batch(0..<3).images
        let y1 = try Autograd.withoutGradients { try model(Variable(x)).value },
            y2 = try Autograd.withoutGradients { try loaded(Variable(x)).value }
        #expect(y1 == y2)
        #expect(try DetectorFile.load(a.folder.bestModel).config == Self.small)
        // Stopped after every batch and resumed by a fresh trainer until done: the same weights.
        let dirB = tempDir("b")
        var o = options(epochs: 3)
        o.checkpointEvery = 1
        var stops = 0
        while true {
            let b = try Trainer<DetectionTask>(model: try LSTMDetector.make(Self.small, seed: stops == 0 ? 1 : 77),
                                               options: o, train: data,
                                         validation: nil, directory: dirB)
            b.quiet = true
            b.task.refresh = refresh
            if stops > 0 { try b.resume() }
            if b.epoch >= 3 {
                for ((name, p), (_, q)) in zip(model.namedParameters, b.task.model.namedParameters) {
                    #expect(p.value == q.value, "\(name) differs after resume: \(p.value.maxAbsDifference(q.value))")
                }
                break
            }
            b.timeLimit = 0
            try b.run()
            stops += 1
            if stops > 20 { Issue.record("resume did not finish"); break }
        }
        #expect(stops == 9)   // 3 batches of 4 per epoch, 3 epochs
        try? FileManager.default.removeItem(atPath: dirA)
        try? FileManager.default.removeItem(atPath: dirB)
    }

    @Test func badInputThrowsClearErrors() throws {
        let model = try LSTMDetector.make(DetectorConfig(), seed: 0)   // 64×64
        #expect { try model(Variable(Tensor(zeros: [2, 32, 32]))) } throws: {
            "\($0)".contains("needs 64×64 images") && "\($0)".contains("32×32")
        }
        #expect(throws: ModelError.self) { try model.detect(Tensor(zeros: [1, 64, 63])) }
        #expect(throws: ModelError.self) { try LSTMDetector.make(DetectorConfig(height: 60), seed: 0) }
        #expect(throws: ModelError.self) { try LSTMDetector.make(DetectorConfig(convWidths: [8, 8]), seed: 0) }
        // A training set of another size or class count is refused before training.
        #expect(throws: ModelError.self) {
            try Trainer<DetectionTask>(model: model, options: options(epochs: 1), train: Self.canvases(2, seed: 1),
                                       validation: nil, directory: tempDir("bad"))
        }
        // Negative or NaN loss weights are refused; a checkpoint's loss from before the GIoU term reads as
        // iouWeight 0.
        for bad in [HungarianLoss(iouWeight: -1), HungarianLoss(boxWeight: .nan)] {
            #expect {
                try Trainer<DetectionTask>(model: try LSTMDetector.make(Self.small, seed: 0),
                                           options: options(epochs: 1), loss: bad,
                                     train: Self.canvases(4, seed: 1), validation: nil, directory: tempDir("weights"))
            } throws: { "\($0)".contains("IoU loss weights must be finite and ≥ 0") }
        }
        let old = try JSONDecoder().decode(HungarianLoss.self, from: Data(#"{"boxWeight":5,"classWeight":3}"#.utf8))
        #expect(old == HungarianLoss(boxWeight: 5, classWeight: 3, iouWeight: 0))
        // New canvases of another count are refused when their epoch begins.
        let small = try Trainer<DetectionTask>(model: try LSTMDetector.make(Self.small, seed: 0),
                                               options: options(epochs: 2), train: Self.canvases(4, seed: 1),
                                         validation: nil, directory: tempDir("refresh"))
        small.quiet = true
        small.task.refresh = { _ in Self.canvases(3, seed: 2) }
        #expect { try small.run() } throws: { "\($0)".contains("epoch 2 differs in size or kind") }
        // A classifier checkpoint is not a detector.
        let classifier = FileManager.default.temporaryDirectory
            .appendingPathComponent("det-classifier-\(getpid()).safetensors").path
        try ModelFile.save(try makeClassifier(ModelConfig(hidden: 4), seed: 0), to: classifier)
        #expect { try DetectorFile.load(classifier) } throws: { "\($0)".contains("not a detector checkpoint") }
        try? FileManager.default.removeItem(atPath: classifier)
        // A COCO folder whose images differ in size names the odd file.
        let dir = tempDir("sizes")
        try MultiDigitDetection.write(MultiDigitDetection.generate(from: MultiDigitDetectionTests.digits, count: 2,
                                                                   canvas: 32, seed: 1),
                                      to: dir, split: "test")
        try ImageCodecs.writePNG(Image(width: 30, height: 32, channels: 1), to: dir + "/test/images/000002.png")
        #expect { try DetectionDataset.load(directory: dir, split: "test") } throws: {
            "\($0)".contains("000002.png: 30×32 image")
        }
        try? FileManager.default.removeItem(atPath: dir)
    }

    @Test func cocoFolderLoadsAsGenerated() throws {
        let samples = MultiDigitDetection.generate(from: MultiDigitDetectionTests.digits, count: 5, canvas: 32, seed: 2)
        let dir = tempDir("coco")
        try MultiDigitDetection.write(samples, to: dir, split: "train")
        let loaded = try DetectionDataset.load(directory: dir, split: "train")
        let memory = DetectionDataset(samples: samples)
        #expect(loaded.targets == memory.targets && loaded.imageIDs == memory.imageIDs
                && loaded.categoryIDs == memory.categoryIDs)
        #expect(zip(loaded.pixels, memory.pixels).allSatisfy { abs($0 - $1) <= 0.5 / 255 + 1e-6 })
        #expect(loaded.groundTruth().annotations.map(\.bbox) == memory.groundTruth().annotations.map(\.bbox))
        try? FileManager.default.removeItem(atPath: dir)
    }
}

/// The detector's commands, run as the built `lstmvision` executable.
@Suite struct DetectorCLITests {
    @Test(arguments: [
        (["train", "--task", "segmentation"], "--task must be classification or detection"),
        (["train", "detection", "--augment", "shift=2"], "Unexpected argument 'shift=2'"),   // --augment is a flag
        (["train", "detection", "--conv-widths", "16,x"], "The value '16,x' is invalid for '--conv-widths <n,...>'"),
        (["train", "detection", "--train-count", "0"], "--train-count must be positive, got 0"),
        (["train", "detection", "--data", "/tmp/definitely-not-coco"], "/tmp/definitely-not-coco: no such file"),
        (["train", "--data", "/tmp/definitely-not-coco", "--task", "detection"],
         "/tmp/definitely-not-coco: no such file"),
        (["detect", "--model", CLITests.fixtures + "/row_lstm_bi.safetensors", "x.png"], "not a detector checkpoint"),
        (["train", "detection", "--add-refiner-to", "/tmp/no-such-detector.safetensors"],
         "/tmp/no-such-detector.safetensors"),
        (["train", "detection", "--add-refiner-to", CLITests.fixtures + "/row_lstm_bi.safetensors"],
         "not a detector checkpoint"),
    ])
    func badInputGivesOneLineAndFailure(_ args: [String], _ expected: String) throws {
        let r = try CLITests().run(args)
        #expect(r.code != 0, "\(args): exit code 0")
        #expect(r.err.split(separator: "\n").count == 1 && r.err.contains(expected), "\(args): stderr was \(r.err)")
    }

    /// `train detection --resume` reads the canvases the run began with unless told otherwise, and refuses others.
    @Test func resumeKeepsTheDataOptions() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("det-cli-resume-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        // `--task detection`, kept for compatibility, is `train detection`.
        let first = try CLITests().run(["train", "--task", "detection", "--train-count", "8", "--test-count", "4",
                                        "--epochs", "1",
                                        "--batch-size", "4", "--hidden", "8", "--conv-widths", "4,4,4", "--out", out])
        try #require(first.code == 0, "\(first.err)")
        let meta = try SafeTensors.read(out + "/last.state.safetensors").metadata
        #expect(meta["data"] == #"{"freshCanvases":true,"testCount":4,"trainCount":8}"#)
        let other = try CLITests().run(["train", "detection", "--resume", "--train-count", "16", "--out", out])
        #expect(other.code != 0 && other.err == "lstmvision: error: \(out)/last.state.safetensors:"
                + " the run was trained with --train-count 8, not 16:"
                + " a resumed run must read the same data"
                + " (leave the data options out to reuse the checkpoint's)\n", "\(other.err)")
        let longer = try CLITests().run(["train", "detection", "--resume", "--epochs", "2", "--out", out])
        #expect(longer.code == 0, "\(longer.err)")
        #expect(longer.out.contains("8 training, 4 validation images") && longer.out.contains("after 2 epochs"),
                "\(longer.out)")
    }

    /// `--add-refiner-to` trains a refiner on a trained detector whose other weights stay as they were, also when
    /// resumed.
    @Test func addRefinerTrainsOnlyTheRefiner() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("det-cli-refiner-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let common = ["--train-count", "8", "--test-count", "4", "--batch-size", "4"]
        let first = try CLITests().run(["train", "detection", "--epochs", "1", "--hidden", "8", "--conv-widths",
                                        "4,4,4", "--out", out] + common)
        try #require(first.code == 0, "\(first.err)")
        let detector = try SafeTensors.read(out + "/model.safetensors").tensors
        let refined = try CLITests().run(["train", "detection", "--add-refiner-to", out + "/model.safetensors",
                                          "--refiner-hidden", "6",
                                          "--epochs", "1", "--out", out + "/r"] + common)
        try #require(refined.code == 0, "\(refined.err)")
        #expect(refined.out.contains("refiner 32² crops, hidden 6 (trained alone)"), "\(refined.out)")
        let resumed = try CLITests().run(["train", "detection", "--resume", "--epochs", "2", "--out", out + "/r"])
        try #require(resumed.code == 0, "\(resumed.err)")
        #expect(resumed.out.contains("(trained alone)") && resumed.out.contains("after 2 epochs"), "\(resumed.out)")
        let model = try DetectorFile.load(out + "/r/last.safetensors")
        #expect(model.refiner?.config.hidden == 6)
        for (name, value) in model.stateDict() where !name.hasPrefix("refiner.") {
            #expect(value == detector[name], "\(name) changed")
        }
    }

    @Test func detectWritesImagesAndCOCOResultsThatEvaluate() throws {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("lstmvision-detect-cli-\(getpid())").path
        try? FileManager.default.removeItem(atPath: dir)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let annotations = try MultiDigitDetection.write(
            MultiDigitDetection.generate(from: MultiDigitDetectionTests.digits, count: 2, canvas: 32, seed: 5),
            to: dir, split: "test")
        let model = dir + "/detector.safetensors"
        try DetectorFile.save(try LSTMDetector.make(DetectorTests.small, seed: 1), to: model)
        var r = try CLITests().run(["detect", "--model", model, "--annotations", annotations, "--out", dir + "/out",
                                    "--threshold", "0"])
        #expect(r.code == 0, "stderr: \(r.err)")
        #expect(FileManager.default.fileExists(atPath: dir + "/out/000002_detections.png"))
        let image = try ImageCodecs.read(dir + "/out/000001_detections.png")
        #expect(image.width == 32 && image.height == 32 && image.channels == 3)   // the image's own size
        let truth = try COCODataset.read(annotations)
        let found = try COCODetection.read(dir + "/out/detections.json", for: truth)
        #expect(Set(found.map(\.imageID)) == [1, 2] && found.count <= 2 * 16 * 2)   // at most one per (cell, step)
        r = try CLITests().run(["evaluate", "--gt", annotations, "--detections", dir + "/out/detections.json",
                                "--json"])
        #expect(r.code == 0 && r.out.contains("\"AP50\""), "stderr: \(r.err)")
        // An image of another size is letterboxed; --zoom enlarges the drawing.
        try ImageCodecs.writePNG(Image(width: 20, height: 32, channels: 1), to: dir + "/odd.png")
        r = try CLITests().run(["detect", "--model", model, dir + "/odd.png", "--out", dir + "/out2", "--zoom", "4"])
        #expect(r.code == 0, "stderr: \(r.err)")
        let odd = try ImageCodecs.read(dir + "/out2/odd_detections.png")
        #expect(odd.width == 80 && odd.height == 128)   // 20×32 drawn ×4
    }
}
