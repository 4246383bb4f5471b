import Foundation
import Testing
@testable import LSTMVision
@testable import LSTMVisionCore

/// The detector's second stage: crops and their geometry, the refiner's loss and gradients, what `refine` makes of
/// its outputs, its place in configs and checkpoints, and training it alone on a frozen detector.
@Suite(.serialized) struct RefinerTests {
    /// DetectorTests' small detector with a small refiner: 6×6 crops, hidden 5.
    static let config: DetectorConfig = {
        var c = DetectorTests.small
        c.refiner = BoxRefiner.Config(cropSize: 6, context: 1.5, hidden: 5)
        return c
    }()

    @Test func cropsSampleTheWindowBilinearly() throws {
        let model = try LSTMDetector.make(Self.config, seed: 1)
        let refiner = try #require(model.refiner)
        // Two 8×8 grey images whose pixel (x, y) is 10·y + x (+ 100 in the second).
        var image = [Float](repeating: 0, count: 128)
        for n in 0..<2 { for y in 0..<8 { for x in 0..<8 { image[n * 64 + y * 8 + x] = Float(100 * n + 10 * y + x) } } }
        let images = Tensor(shape: [2, 8, 8], scalars: image)
        // A 4×4 box at (2, 3) in the second image: its window is exactly the 6×6 pixels from (1, 2), and the crop is
        // them; each point is followed by the mask, 1 on the box's 4×4 points.
        let aligned = refiner.crops(images, owners: [1], boxes: [Box(x: 2, y: 3, width: 4, height: 4)])
        #expect(aligned.windows == [Box(x: 1, y: 2, width: 6, height: 6)])
        #expect(aligned.byRows.shape == [6, 1, 12] && aligned.byColumns.shape == [6, 1, 12])
        for y in 0..<6 {
            for x in 0..<6 {
                let expected = Float(100 + 10 * (y + 2) + x + 1),
                    mask: Float = (1...4).contains(x) && (1...4).contains(y) ? 1 : 0
                #expect(aligned.byRows.scalars[y * 12 + 2 * x] == expected
                        && aligned.byRows.scalars[y * 12 + 2 * x + 1] == mask)
                // Read by columns: the same crop transposed.
                #expect(aligned.byColumns.scalars[x * 12 + 2 * y] == expected
                        && aligned.byColumns.scalars[x * 12 + 2 * y + 1] == mask)
            }
        }
        // Half a pixel to the right: the mean of neighbours (the image is linear, so exact); past the edge, zeros come
        // in.
        let shifted = refiner.crops(images, owners: [0], boxes: [Box(x: 3.5, y: 1, width: 4, height: 4)])
        #expect(shifted.byRows.scalars[0] == 2.5)
        #expect(shifted.byRows.scalars[10] == 0.5 * 7)   // between x = 7 and the zero outside
        // A window twice the size starts between pixels: (0.5, 0.5) is the mean of pixels 0, 1, 10 and 11.
        let large = refiner.crops(images, owners: [0], boxes: [Box(x: 2, y: 2, width: 8, height: 8)])
        let corner: Float = (0 + 1 + 10 + 11) / 4
        #expect(large.byRows.scalars[0] == corner)
        // Windows are squares around the box, `context` times its longer side.
        #expect(refiner.window(for: Box(x: 10, y: 20, width: 4, height: 8)) == Box(x: 6, y: 18, width: 12, height: 12))
    }

    /// Crops, outputs, loss and every parameter's gradient against PyTorch (`tools/make_reference.py`: `F.grid_sample`
    /// crops, `nn.LSTM`s, `nn.Linear`, `cross_entropy` + L1).
    @Test func matchesPyTorch() throws {
        let (t, meta) = try fixture("refiner.safetensors")
        var g = SeededGenerator(seed: 0)
        let refiner = BoxRefiner(BoxRefiner.Config(cropSize: 6, context: 1.5, hidden: 5), classes: 3, channels: 3,
                                 generator: &g)
        #expect(meta["crop_size"] == "6" && meta["hidden"] == "5" && meta["channels"] == "3" && meta["classes"] == "3")
        try refiner.loadStateDict(Dictionary(uniqueKeysWithValues: refiner.namedParameters.map {
            ($0.name, t["param." + $0.name]!)
        }))
        let b = try #require(t["boxes"]).scalars.map { Double($0) },
            owners = try #require(t["owners"]).scalars.map { Int($0) }
        let boxes = (0..<4).map { Box(x: b[4 * $0], y: b[4 * $0 + 1], width: b[4 * $0 + 2], height: b[4 * $0 + 3]) }
        let crops = refiner.crops(try #require(t["images"]), owners: owners, boxes: boxes)
        expectClose(crops.byRows, t["crops.by_rows"], 1e-6, "refiner crops")
        let out = refiner(crops)
        expectClose(out.value, t["output"], 1e-5, "refiner output")
        let moves = try #require(t["moves"]).scalars, hasBox = try #require(t["has_box"]).scalars
        let samples = RefinerLoss.Samples(crops: crops, labels: try #require(t["labels"]).scalars.map { Int($0) },
                                          moves: (0..<4).map {
                                              hasBox[$0] > 0 ? Array(moves[(4 * $0)..<(4 * $0 + 4)]) : nil
                                          })
        let loss = RefinerLoss(boxWeight: 2)(out, samples).loss
        expectClose(loss.value.reshaped([1]), t["loss"], 1e-5, "refiner loss")
        loss.backward()
        for (name, p) in refiner.namedParameters {
            expectClose(p.grad!, t["grad." + name], 1e-5, "refiner grad \(name)")
        }
    }

    @Test func edgesAndBoxesAreInverse() {
        let window = Box(x: 10, y: 20, width: 30, height: 30), box = Box(x: 16, y: 23, width: 12, height: 21)
        let e = BoxRefiner.edges(of: box, in: window)
        #expect(e == [0.2, 0.1, 0.6, 0.8].map { Float($0) })
        let back = BoxRefiner.box(edges: e[...], in: window)
        #expect(abs(back.x - 16) < 1e-5 && abs(back.y - 23) < 1e-5 && abs(back.width - 12) < 1e-5
                && abs(back.height - 21) < 1e-5)
        // Edges the wrong way round give an empty box, not a negative one.
        #expect(BoxRefiner.box(edges: [0.6, 0.1, 0.2, 0.8][...], in: window).width == 0)
    }

    /// Training crops: a jittered crop carries its object's class and edges, a crop far from every object is
    /// background.
    @Test func trainingSamplesAreLabelledByOverlap() throws {
        let model = try LSTMDetector.make(Self.config, seed: 1)
        let refiner = try #require(model.refiner)
        let data = DetectorTests.canvases(3, seed: 5)
        let (x, targets) = data.batch(0..<3)
        var g = SeededGenerator(seed: 3)
        let loss = RefinerLoss(jitteredPerObject: 4, randomPerImage: 2)
        let s = loss.samples(refiner, images: x, targets: targets, generator: &g)
        let objects = targets.reduce(0) { $0 + $1.boxes.count }
        #expect(s.labels.count == 4 * objects + 6 && s.crops.byRows.shape == [6, 4 * objects + 6, 12])
        var k = 0
        for t in targets {
            for (b, c) in zip(t.boxes, t.classes) {
                for _ in 0..<4 {
                    let w = s.crops.windows[k]
                    if s.labels[k] == c, let moves = s.moves[k] {
                        // The target moves take the crop's box to the object's own when that is the one
                        // overlapping most.
                        let e = zip(BoxRefiner.edges(of: s.crops.boxes[k], in: w), moves).map { $0 + $1 }
                        let back = BoxRefiner.box(edges: e[...], in: w)
                        if t.boxes.allSatisfy({ $0 == b || $0.iou(back) < 0.99 }) {
                            #expect(abs(back.x - b.x) < 1e-3 && abs(back.maxY - b.maxY) < 1e-3)
                        }
                    } else {
                        #expect(s.labels[k] == refiner.background || t.classes.contains(s.labels[k]))
                    }
                    k += 1
                }
            }
            k += 2
        }
        for (label, moves) in zip(s.labels, s.moves) { #expect((label == refiner.background) == (moves == nil)) }
        #expect(s.labels.filter { $0 != refiner.background }.count >= 2 * objects,
                "most jittered crops should still show their object")
    }

    /// The loss's value on known outputs, and its gradients through the whole refiner against finite differences.
    @Test func lossValueAndGradients() throws {
        let model = try LSTMDetector.make(Self.config, seed: 2)
        let refiner = try #require(model.refiner)
        // Value: two crops, 3 logits-worth of classes (10 + background here), edges off by 0.1 each on the object crop.
        let loss = RefinerLoss(boxWeight: 2)
        var out = [Float](repeating: 0, count: 2 * 15)
        out[11...14] = [0.3, 0.3, 0.7, 0.7]
        out[15 + 10] = 2   // the second crop says background, strongly
        let box = Box(x: 0, y: 0, width: 4, height: 4)
        let samples = RefinerLoss.Samples(crops: refiner.crops(Tensor(zeros: [1, 8, 8]), owners: [0, 0],
                                                               boxes: [box, box]),
                                          labels: [3, 10], moves: [[0.2, 0.4, 0.8, 0.6], nil])
        let (value, correct) = loss(Variable(Tensor(shape: [2, 15], scalars: out)), samples)
        let ce1 = log(11.0), ce2 = -log(exp(2.0) / (exp(2.0) + 10))
        #expect(abs(Double(value.value.scalar) - (ce1 + ce2 + 2 * 0.4) / 2) < 1e-5)
        #expect(correct == 1)   // the first crop's logits tie: its max is class 0, not 3

        let data = DetectorTests.canvases(2, seed: 6)
        let (x, targets) = data.batch(0..<2)
        var g = SeededGenerator(seed: 4)
        let s = RefinerLoss(jitteredPerObject: 2, randomPerImage: 1).samples(refiner, images: x, targets: targets,
                                                                             generator: &g)
        let worst = checkGradients(refiner.parameters, samples: 6, epsilon: 1e-3, tolerance: 3e-2) {
            loss(refiner(s.crops), s).loss
        }
        print("  refiner gradients: worst relative error \(worst)")
    }

    /// With its head's weights zeroed, the refiner's outputs are its bias: known classes and moves, so `refine`'s
    /// boxes, classes and scores can be computed by hand.
    /// classes and scores can be computed by hand.
    @Test func refineRescoresAndMovesBoxes() throws {
        let model = try LSTMDetector.make(Self.config, seed: 3)
        let refiner = try #require(model.refiner)
        refiner.head.weight.value = Tensor(zeros: refiner.head.weight.shape)
        var bias = [Float](repeating: 0, count: 15)
        bias[7] = 3; bias[2] = 2; bias[5] = 1.5; bias[10] = 1     // classes 7, 2, 5 likeliest; background below them
        bias[11...14] = [0.25, 0, 0, 0.25]                         // left and bottom edges move a quarter of the window
        refiner.head.bias!.value = Tensor(shape: [15], scalars: bias)
        let found = [[ScoredBox(box: Box(x: 8, y: 8, width: 8, height: 4), classIndex: 1, score: 0.5)], []]
        let out = refiner.refine(Tensor(zeros: [2, 32, 32]), detections: found, postProcessing: PostProcessing())
        let z = exp(3.0) + exp(2.0) + exp(1.5) + exp(1.0) + 7
        // Every class is proposed (each P(class) ≥ 1/42, so every score passes the 0.001 threshold), best first.
        #expect(out[1].isEmpty && out[0].count == 10)
        #expect(out[0].prefix(3).map(\.classIndex) == [7, 2, 5])
        #expect(abs(out[0][9].score - 0.5.squareRoot() / z) < 1e-6)
        for (k, logit) in [3.0, 2.0, 1.5].enumerated() {
            #expect(abs(out[0][k].score - 0.5.squareRoot() * exp(logit) / z) < 1e-6)
        }
        // Window: 12×12 around the box (8, 8)–(16, 12), so a quarter of it is 3 pixels: (11, 8)–(16, 15).
        let b = out[0][0].box
        #expect(abs(b.x - 11) < 1e-5 && abs(b.y - 8) < 1e-5 && abs(b.width - 5) < 1e-5 && abs(b.height - 7) < 1e-5)
        // More detections than `cropsAtOnce` are refined in parts, to the same result: 300 copies per image merge
        // into one per class.
        let many = [[ScoredBox]](repeating: [ScoredBox](repeating: found[0][0], count: 300), count: 2)
        let parts = refiner.refine(Tensor(zeros: [2, 32, 32]), detections: many, postProcessing: PostProcessing())
        #expect(2 * 300 > BoxRefiner.cropsAtOnce && parts.count == 2)
        for part in parts {
            #expect(part.map(\.classIndex) == out[0].map(\.classIndex) && part.map(\.score) == out[0].map(\.score))
            for (p, q) in zip(part, out[0]) {   // a mean of equal boxes
                #expect(abs(p.box.x - q.box.x) + abs(p.box.maxY - q.box.maxY) < 1e-9)
            }
        }
    }

    @Test func configNamesAndCheckpoints() throws {
        let model = try LSTMDetector.make(Self.config, seed: 1)
        let plain = try LSTMDetector.make(DetectorTests.small, seed: 1)
        // The refiner's weights come last, so the rest is the same detector as without one.
        for ((name, p), (_, q)) in zip(plain.namedParameters, model.namedParameters) {
            #expect(p.value == q.value, "\(name)")
        }
        let names = model.namedParameters.map(\.name).filter { $0.hasPrefix("refiner.") }
        #expect(names == ["rows", "columns"].flatMap { lstm in
            ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_ih_l0_reverse", "weight_hh_l0_reverse",
             "bias_ih_l0_reverse", "bias_hh_l0_reverse"].map { "refiner.\(lstm).\($0)" }
        } + ["refiner.head.weight", "refiner.head.bias"])
        #expect(model.refiner!.head.weight.shape == [15, 20])
        // JSON round trip; a config without the key has no refiner.
        let decoded = try JSONDecoder().decode(DetectorConfig.self, from: Data(Self.config.json().utf8))
        #expect(decoded == Self.config)
        #expect(!DetectorTests.small.json().contains("refiner"))
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("lstmvision-refiner-\(getpid()).safetensors").path
        try DetectorFile.save(model, to: path)
        let loaded = try DetectorFile.load(path)
        #expect(loaded.config == Self.config && loaded.stateDict() == model.stateDict())
        try? FileManager.default.removeItem(atPath: path)
        var bad = Self.config
        bad.refiner?.cropSize = 1
        #expect(throws: ModelError.self) { try LSTMDetector.make(bad, seed: 0) }
    }

    /// Training only the refiner leaves every other weight as it was and lowers the refiner's loss.
    @Test func trainingOnlyTheRefinerFreezesTheRest() throws {
        let model = try LSTMDetector.make(Self.config, seed: 4)
        let before = model.stateDict()
        let data = DetectorTests.canvases(8, seed: 7)
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("lstmvision-refiner-train-\(getpid())").path
        var o = TrainingOptions()
        o.epochs = 20
        o.batchSize = 4
        o.learningRate = 1e-2
        o.warmupSteps = 2
        // λ = 10: on 8 canvases the edge term is what 40 steps can learn most of.
        let trainer = try Trainer<DetectionTask>(model: model, options: o, refinerLoss: RefinerLoss(boxWeight: 10),
                                                 onlyRefiner: true, train: data,
                                           validation: nil, directory: dir)
        trainer.quiet = true
        let log = try trainer.run()
        print("  refiner alone: loss \(log.first!.trainLoss) → \(log.last!.trainLoss)")
        #expect(log.last!.trainLoss < 0.7 * log.first!.trainLoss)
        for (name, value) in model.stateDict() {
            if name.hasPrefix("refiner.") {
                #expect(value != before[name], "\(name) did not train")
            } else {
                #expect(value == before[name], "\(name) changed")
            }
        }
        try? FileManager.default.removeItem(atPath: dir)
        #expect(throws: TrainingError.self) {
            try Trainer<DetectionTask>(model: try LSTMDetector.make(DetectorTests.small, seed: 0), options: o,
                                       onlyRefiner: true, train: data,
                                 validation: nil, directory: dir)
        }
    }

    /// Without `onlyRefiner`, the detector and its refiner train together: every weight moves.
    @Test func trainingTogetherMovesEveryWeight() throws {
        let model = try LSTMDetector.make(Self.config, seed: 5)
        let before = model.stateDict()
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("lstmvision-refiner-joint-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var o = TrainingOptions()
        o.epochs = 1
        o.batchSize = 4
        let trainer = try Trainer<DetectionTask>(model: model, options: o, train: DetectorTests.canvases(4, seed: 8),
                                                 validation: nil, directory: dir)
        trainer.quiet = true
        try trainer.run()
        for (name, value) in model.stateDict() { #expect(value != before[name], "\(name) did not train") }
    }
}
