import Foundation
import Testing
@testable import LSTMVision
@testable import LSTMVisionCore

/// Files PyTorch wrote (python/lstmvision_torch.py's modules, `state_dict` only, no LSTMVision metadata; made by
/// tools/make_torch_fixtures.py) load here with the settings they were made with and give PyTorch's outputs on the
/// same inputs, to 1e-5.
@Suite struct TorchModelTests {
    static let tolerance: Float = 1e-5

    static func path(_ name: String) throws -> String {
        try #require(Bundle.module.url(forResource: name + ".safetensors", withExtension: nil,
                                       subdirectory: "Fixtures/torch"), "missing fixture torch/\(name)").path
    }

    /// The io file: tensors, the settings the model was made with, and the image size [W, H, C] of its data.
    static func io(_ name: String) throws -> (tensors: [String: Tensor], config: [String: Any], size: [Int]) {
        let (t, meta) = try SafeTensors.read(try path(name + "_io"))
        func json(_ key: String) throws -> Any {
            try JSONSerialization.jsonObject(with: Data((meta[key] ?? "null").utf8), options: .fragmentsAllowed)
        }
        let config = try #require(try json("config") as? [String: Any], "\(name): no config")
        let size = try #require(try json("imageSize") as? [Int], "\(name): no image size")
        return (t, config, size)
    }

    static func hints(_ size: [Int]) -> ModelFileHints {
        ModelFileHints(width: size[0], height: size[1], channels: size[2])
    }

    /// Row- and patch-LSTMs and ReNets, told the data's image size: the settings they were made with, and the logits.
    @Test(arguments: ["row_1layer", "row_2layer_bi", "patch_grey", "patch_rgb", "renet_fc1", "renet_rgb_nofc1"])
    func classifierLoadsWithoutMetadata(_ name: String) throws {
        let (t, want, size) = try Self.io(name)
        let model = try ModelFile.load(try Self.path(name), hints: Self.hints(size))
        let c = model.config
        #expect(c.kind.rawValue == want["kind"] as? String)
        #expect([c.height, c.width, c.channels, c.hidden, c.layers, c.classes, c.fcHidden]
                == ["height", "width", "channels", "hidden", "layers", "classes", "fcHidden"].map { want[$0] as? Int })
        #expect(c.bidirectional == want["bidirectional"] as? Bool)
        if c.kind != .row { #expect(c.patch == want["patch"] as? Int) }
        let logits = Autograd.withoutGradients { model(Variable(t["input"]!)) }
        expectClose(logits.value, t["output"], Self.tolerance, "\(name) logits")
    }

    /// Without the image size: row-LSTMs of square grey images and ReNets of square images still load as made.
    @Test(arguments: ["row_1layer", "row_2layer_bi", "renet_fc1", "renet_rgb_nofc1"])
    func squareClassifierLoadsWithoutHints(_ name: String) throws {
        let (t, want, _) = try Self.io(name)
        let model = try ModelFile.load(try Self.path(name))
        #expect([model.config.height, model.config.width, model.config.channels]
                == ["height", "width", "channels"].map { want[$0] as? Int })
        let logits = Autograd.withoutGradients { model(Variable(t["input"]!)) }
        expectClose(logits.value, t["output"], Self.tolerance, "\(name) logits without hints")
    }

    /// The three encoders (grey and RGB, K = 2 and 3, with and without fine features and the refiner): the
    /// settings, the raw outputs, the refiner's crops around the digits and its outputs.
    @Test(arguments: ["detector_conv", "detector_renet_rgb", "detector_conv_renet"])
    func detectorLoadsWithoutMetadata(_ name: String) throws {
        let (t, want, size) = try Self.io(name)
        var hints = Self.hints(size)
        hints.boxesPerCell = try #require(want["maxBoxes"] as? Int)
        let model = try DetectorFile.load(try Self.path(name), hints: hints)
        let c = model.config
        #expect(c.encoder.rawValue == want["encoder"] as? String)
        #expect([c.height, c.width, c.channels, c.stride, c.hidden, c.maxBoxes, c.classes]
                == ["height", "width", "channels", "stride", "hidden", "maxBoxes", "classes"].map { want[$0] as? Int })
        #expect(c.convWidths == want["convWidths"] as? [Int] && c.renetWidths == want["renetWidths"] as? [Int])
        #expect(c.skipFeatures == want["skipFeatures"] as? Bool && c.fineFeatures == want["fineFeatures"] as? Bool)
        let output = try Autograd.withoutGradients { try model(Variable(t["input"]!)) }
        expectClose(output.value, t["output"], Self.tolerance, "\(name) raw outputs")
        let refinerWanted = want["refiner"] as? [String: Any]
        #expect((c.refiner == nil) == (refinerWanted == nil))
        guard let refiner = model.refiner, let r = refinerWanted else { return }
        #expect(refiner.config.cropSize == r["cropSize"] as? Int && refiner.config.hidden == r["hidden"] as? Int)
        #expect(refiner.config.context == r["context"] as? Double)
        // The crops python/lstmvision_torch.py's `crops` made are the ones made here.
        let b = try #require(t["boxes"]).scalars, m = b.count / 5
        let boxes = (0..<m).map { Box(x: Double(b[5 * $0 + 1]), y: Double(b[5 * $0 + 2]), width: Double(b[5 * $0 + 3]),
                                      height: Double(b[5 * $0 + 4])) }
        let crops = refiner.crops(t["input"]!, owners: (0..<m).map { Int(b[5 * $0]) }, boxes: boxes)
        expectClose(crops.byRows, t["crops_by_rows"], Self.tolerance, "\(name) crops by rows")
        expectClose(crops.byColumns, t["crops_by_columns"], Self.tolerance, "\(name) crops by columns")
        let fixtureCrops = BoxRefiner.Crops(byRows: t["crops_by_rows"]!, byColumns: t["crops_by_columns"]!,
                                            boxes: boxes, windows: crops.windows)
        let refined = Autograd.withoutGradients { refiner(fixtureCrops) }
        expectClose(refined.value, t["refiner_output"], Self.tolerance, "\(name) refiner outputs")
    }

    /// A detector brought back from PyTorch saves here under the very names and values PyTorch wrote.
    @Test func detectorRoundTripKeepsPyTorchNames() throws {
        let source = try Self.path("detector_conv_renet")
        let model = try DetectorFile.load(source, hints: ModelFileHints(width: 32, height: 32))
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("torchdet-\(getpid()).safetensors")
        defer { try? FileManager.default.removeItem(at: tmp) }
        try DetectorFile.save(model, to: tmp.path)
        #expect(try SafeTensors.read(tmp.path).tensors == (try SafeTensors.read(source).tensors))
        #expect(try DetectorFile.load(tmp.path).config == model.config)
    }

    /// `eval` and `predict` on a PyTorch-trained ReNet: the library calls the commands make, on MNIST's first 64 test
    /// digits, give PyTorch's logits, accuracy and top classes.
    @Test func evalAndPredictGivePyTorchsPredictions() throws {
        let (t, _, _) = try Self.io("renet_mnist")
        let (_, meta) = try SafeTensors.read(try Self.path("renet_mnist_io"))
        let test = try MNIST.load(directory: FileFormatTests.repoRoot + "/data/mnist", split: .test).prefix(64)
        // eval: the data's image size is the hint.
        let model = try ModelFile.load(try Self.path("renet_mnist"),
                                       hints: ModelFileHints(width: test.width, height: test.height,
                                                             channels: test.channels))
        let logits = Autograd.withoutGradients {
            model(Variable(Tensor(shape: [64, 28, 28], scalars: test.pixels)))
        }
        expectClose(logits.value, t["output"], Self.tolerance, "renet_mnist logits")
        #expect(test.labels == t["labels"]!.scalars.map { Int($0) })
        let evaluation = Evaluation.run(model, on: test)
        #expect(abs(evaluation.accuracy - Double(try #require(meta["accuracy"].flatMap(Double.init)))) < 1e-6)
        #expect(evaluation.accuracy > 0.8)
        // predict: no hint; the image files are decoded to 0...255.
        let predictor = try Predictor.load(try Self.path("renet_mnist"))
        let images = (0..<64).map { i in
            Image(width: 28, height: 28, channels: 1, pixels: test.pixels[(i * 784)..<((i + 1) * 784)].map { $0 * 255 })
        }
        let top = try predictor.predict(images, topK: 1).map { $0[0].classIndex }
        let out = t["output"]!.scalars
        let torchTop = (0..<64).map { i in (0..<10).max { out[i * 10 + $0] < out[i * 10 + $1] }! }
        #expect(top == torchTop)
    }

    /// The commands themselves on PyTorch-written files: `eval` (image size from the data), `predict` (none given:
    /// the ReNet's square) and `detect` (told the input size and K).
    @Test func commandsReadPyTorchFiles() throws {
        let (t, _, _) = try Self.io("renet_mnist")
        let (_, meta) = try SafeTensors.read(try Self.path("renet_mnist_io"))
        let renet = try Self.path("renet_mnist")
        let eval = try CLITests().run(["eval", "--model", renet, "--limit", "64", "--json"])
        #expect(eval.code == 0, "\(eval.err)")
        let e = try #require(try JSONSerialization.jsonObject(with: Data(eval.out.utf8)) as? [String: Any])
        #expect(abs((e["accuracy"] as? Double ?? -1) - Double(meta["accuracy"].flatMap(Double.init) ?? -2)) < 1e-6)
        // predict on PNGs of the first three test digits.
        let test = try MNIST.load(directory: FileFormatTests.repoRoot + "/data/mnist", split: .test).prefix(3)
        let files = try (0..<3).map { i in
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("torch-\(getpid())-\(i).png").path
            let pixels = test.pixels[(i * 784)..<((i + 1) * 784)].map { ($0 * 255).rounded() }
            try ImageCodecs.writePNG(Image(width: 28, height: 28, channels: 1, pixels: pixels), to: path)
            return path
        }
        defer { for f in files { try? FileManager.default.removeItem(atPath: f) } }
        let predict = try CLITests().run(["predict", "--model", renet, "--top-k", "1", "--json"] + files)
        #expect(predict.code == 0, "\(predict.err)")
        let classes = predict.out.split(separator: "\n").compactMap { line -> Int? in
            let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            return ((o?["predictions"] as? [[String: Any]])?.first?["classIndex"]) as? Int
        }
        let out = t["output"]!.scalars
        #expect(classes == (0..<3).map { i in (0..<10).max { out[i * 10 + $0] < out[i * 10 + $1] }! })
        // detect with the settings the shapes leave open.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("torch-detect-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let detect = try CLITests().run(["detect", "--model", try Self.path("detector_renet_rgb"), "--image-size",
                                         "48x32", "--boxes-per-cell", "2", "--out", dir, "--json", files[0]])
        #expect(detect.code == 0 && detect.out.contains("\"detections\""), "\(detect.err)")
    }

    /// Files that do not fit what they are read as: one error naming the file, no trap.
    @Test func misfitsGiveOneClearError() throws {
        func message(_ body: () throws -> Void) -> String {
            do { try body() } catch { return "\(error)" }
            return "no error"
        }
        let renet = try Self.path("renet_fc1"), detector = try Self.path("detector_conv"),
            row = try Self.path("row_1layer")
        let wrongSize = message { _ = try ModelFile.load(renet, hints: ModelFileHints(width: 20, height: 20)) }
        #expect(wrongSize.hasPrefix(renet) && wrongSize.contains("does not fit 20×20×?"), "\(wrongSize)")
        let notDetector = message { _ = try DetectorFile.load(row) }
        #expect(notDetector.hasPrefix(row) && notDetector.contains("not a detector checkpoint"), "\(notDetector)")
        let notClassifier = message { _ = try ModelFile.load(detector) }
        #expect(notClassifier.hasPrefix(detector) && notClassifier.contains("not a classifier"), "\(notClassifier)")
        let stride = message { _ = try DetectorFile.load(detector, hints: ModelFileHints(stride: 4)) }
        #expect(stride.hasPrefix(detector) && stride.contains("stride 4 does not fit"), "\(stride)")
        let size = message { _ = try DetectorFile.load(detector, hints: ModelFileHints(width: 36, height: 36)) }
        #expect(size.hasPrefix(detector) && size.contains("not a multiple"), "\(size)")
        let patch = message { _ = try ModelFile.load(row, hints: ModelFileHints(width: 30, height: 30, channels: 1)) }
        #expect(patch.hasPrefix(row) && patch.contains("neither a row nor"), "\(patch)")
        let noImage = message { _ = try ModelFile.load(row, hints: ModelFileHints(channels: 0)) }
        #expect(noImage.hasPrefix(row) && noImage.contains("is not one"), "\(noImage)")
    }
}
