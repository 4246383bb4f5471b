import Foundation
import Testing
@testable import LSTMVision
@testable import LSTMVisionCore

/// The models under models/ load by name and give the figures models/README.md publishes for them.
@Suite struct PretrainedModelsTests {
    let cli = CLITests()

    /// Name, how many of MNIST's first test images, and the accuracy on them that models/README.md publishes (a
    /// debug build is slow: about a minute per 1,000 images for the 1×128 model and ReNet, five for the 2×128 one;
    /// the whole test split is re-scored with a release build, `lstmvision eval --model NAME`).
    static let classifiers: [(String, Int, Double)] = [("row-1x128", 500, 0.988), ("row-2x128-bi", 100, 0.99),
                                                       ("renet", 300, 299.0 / 300)]

    @Test(arguments: classifiers)
    func classifierRescoresItsPublishedTestAccuracy(_ name: String, _ images: Int, _ published: Double) throws {
        let r = try cli.run(["eval", "--model", name, "--limit", String(images), "--json"])
        #expect(r.code == 0, "\(r.err)")
        let e = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
        #expect(e["count"] as? Int == images)
        // Within one image: the figure was measured by a release build, whose sums may round differently.
        let accuracy = try #require(e["accuracy"] as? Double)
        #expect(abs(accuracy - published) <= 1.0001 / Double(images), "\(name): \(accuracy), published \(published)")
    }

    /// Name, the `detect-data` command whose test split it is scored on, and the AP and AP50 a release build
    /// measured there (`detect --model NAME --annotations …`, then `evaluate --json`; models/README.md gives the
    /// figures of the full test splits).
    static let detectors: [(String, [String], Double, Double)] = [
        ("digits", ["--train", "0", "--test", "20"], 0.7232, 0.9329),
        ("scenes", ["scenes", "--train", "0", "--test", "20"], 0.1486, 0.3880),
    ]

    @Test(arguments: detectors)
    func detectorRescoresItsMeasuredAP(_ name: String, _ data: [String], _ ap: Double, _ ap50: Double) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("models-\(name)-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let made = try cli.run(["detect-data"] + data + ["--out", dir])
        #expect(made.code == 0, "\(made.err)")
        let gt = dir + "/test/annotations.json"
        let found = try cli.run(["detect", "--model", name, "--annotations", gt, "--out", dir + "/det"])
        #expect(found.code == 0, "\(found.err)")
        let scored = try cli.run(["evaluate", "--gt", gt, "--detections", dir + "/det/detections.json", "--json"])
        let e = try #require(try JSONSerialization.jsonObject(with: Data(scored.out.utf8)) as? [String: Any],
                             "\(scored.err)")
        // A debug build's sums may round differently from the release build's: a few detections' scores may move.
        let gotAP = try #require(e["AP"] as? Double), gotAP50 = try #require(e["AP50"] as? Double)
        #expect(abs(gotAP - ap) <= 0.002 && abs(gotAP50 - ap50) <= 0.002, "\(name): AP \(gotAP), AP50 \(gotAP50)")
    }

    /// The frame predictor, by name, on the first test sequence of `moving-mnist --seed 1` cut to 12 frames (10
    /// given, 2 predicted: a debug build takes about 30 s a sequence), against the figures a release build measured
    /// (`evaluate-frames --json`; models/README.md gives those of the 10,000 test sequences).
    @Test func framePredictorRescoresItsMeasuredFigures() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("models-frames-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let made = try cli.run(["moving-mnist", "--train", "0", "--test", "1", "--frames", "12", "--seed", "1",
                                "--out", dir])
        #expect(made.code == 0, "\(made.err)")
        let r = try cli.run(["evaluate-frames", "--model", "moving-mnist", "--data", dir + "/test.npy", "--json"])
        let e = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any], "\(r.err)")
        let mse = try #require(e["mse_per_frame"] as? [Double]), ssim = try #require(e["ssim_per_frame"] as? [Double])
        let (publishedMSE, publishedSSIM) = ([123.0734764, 125.7616473], [0.0413236215, 0.0377006111])
        #expect(mse.count == 2 && zip(mse, publishedMSE).allSatisfy { abs($0 - $1) <= 1e-4 * $1 }, "MSE \(mse)")
        #expect(ssim.count == 2 && zip(ssim, publishedSSIM).allSatisfy { abs($0 - $1) <= 1e-5 }, "SSIM \(ssim)")
        let list = try cli.run(["models"])
        #expect(list.out.contains("moving-mnist: frame predictor (ConvLSTM), hidden 64,64, kernel 5, 4×4 patches"),
                "\(list.out)")
    }

    @Test func modelsListsAndPredictTakesANameAndAnyImage() throws {
        let list = try cli.run(["models"])
        #expect(list.code == 0 && list.out.contains("row-1x128: row classifier 28×28×1, hidden 128"), "\(list.out)")
        // An MNIST test digit (a 7), written larger and in colour: the model's preprocessing makes it 28×28 grey.
        let test = try MNIST.load(directory: CLITests.root + "/data/mnist", split: .test).prefix(1)
        var big = test.image(0).scaled(by: 255).resized(width: 84, height: 84)
        big = Image(width: 84, height: 84, channels: 3, pixels: big.pixels.flatMap { [$0, $0, $0] })
        let file = CLITests.tempFile("seven.png", Data())
        try ImageCodecs.writePNG(big, to: file)
        let r = try cli.run(["predict", "--model", "row-1x128", file])
        #expect(r.code == 0 && r.out.hasPrefix(file + ": 7 "), "\(r.out) \(r.err)")
        let missing = try cli.run(["predict", "--model", "row-9x9", file])
        #expect(missing.code != 0 && missing.err.contains("row-9x9: no such model file, nor a model of that name"))
    }
}
