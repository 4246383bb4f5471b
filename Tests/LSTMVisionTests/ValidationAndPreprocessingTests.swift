import Foundation
import Testing
@testable import LSTMVision
@testable import LSTMVisionCore

/// Honest validation (a held-out part of the training data picks the best epoch; the test split is scored once) and
/// users' image folders of mixed sizes and channels, prepared by the preprocessing that the model file records.
@Suite struct ValidationAndPreprocessingTests {
    let cli = CLITests()

    @Test func validationSplitIsDisjointFixedAndSized() throws {
        let n = 100
        let data = ImageDataset(height: 1, width: 1, channels: 1, pixels: (0..<n).map(Float.init),
                                labels: (0..<n).map { $0 % 10 }, classNames: (0...9).map(String.init))
        let (train, validation) = data.splitValidation(fraction: 0.1)
        #expect(train.count == 90 && validation.count == 10)
        let a = Set(train.pixels), b = Set(validation.pixels)
        #expect(a.isDisjoint(with: b) && a.union(b) == Set(data.pixels))
        #expect(train.pixels == train.pixels.sorted(), "the training images keep their order")
        #expect(zip(validation.pixels, validation.labels).allSatisfy { Int($0) % 10 == $1 }, "labels follow images")
        // The same draw every time, and another one for another seed.
        #expect(data.splitValidation(fraction: 0.1).validation.pixels == validation.pixels)
        #expect(data.splitValidation(fraction: 0.1, seed: 7).validation.pixels != validation.pixels)
        #expect(data.splitValidation(fraction: 0.001).validation.count == 1)
        #expect(data.splitValidation(fraction: 0.999).train.count == 1)
    }

    /// Two classes, "dark" and "light", of grey and RGB images of assorted sizes under DIR/{train,test}.
    static func mixedFolder(_ name: String, withVal: Bool = false) throws -> String {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("mixed-\(getpid())-\(name)").path
        try? FileManager.default.removeItem(atPath: root)
        let sizes = [(20, 30), (31, 17), (12, 12), (40, 25), (9, 33), (28, 28), (50, 11), (16, 40)]
        for split in ["train", "test"] + (withVal ? ["val"] : []) {
            for (label, cls) in ["dark", "light"].enumerated() {
                let folder = "\(root)/\(split)/\(cls)"
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                for (k, (w, h)) in sizes.enumerated() {
                    let channels = k % 2 == 0 ? 1 : 3
                    let value: Float = label == 0 ? Float(20 + 3 * k) : Float(230 - 3 * k)
                    var image = Image(width: w, height: h, channels: channels, repeating: value)
                    if channels == 3 {
                        for i in stride(from: 0, to: image.pixels.count, by: 3) { image.pixels[i] /= 2 }
                    }
                    try ImageCodecs.writePNG(image, to: "\(folder)/\(k).png")
                }
            }
        }
        return root
    }

    @Test func defaultPreprocessingOfMixedFolders() throws {
        let root = try Self.mixedFolder("default")
        let p = try ImageFolder.preprocessing(for: root + "/train")
        #expect(p == Preprocessing(width: 32, height: 32, channels: 3, steps: "scale"))
        let given = try ImageFolder.preprocessing(for: root + "/train", width: 10, height: 14, channels: 1)
        #expect(given == Preprocessing(width: 10, height: 14, channels: 1))
        let data = try ImageFolder.load(root + "/train", preprocessing: p, training: true)
        #expect(data.count == 16 && data.width == 32 && data.height == 32 && data.channels == 3)
        #expect(data.classNames == ["dark", "light"] && data.labels == Array(repeating: 0, count: 8)
                + Array(repeating: 1, count: 8))

        // What Predictor gives a file is exactly what training read for it.
        let model = try makeClassifier(ModelConfig(kind: .row, height: 32, width: 32, channels: 3, hidden: 4,
                                                   layers: 1, classes: 2), seed: 1)
        let predictor = Predictor(model: model, preprocessing: p, classNames: data.classNames)
        let file = root + "/train/light/3.png"
        let x = try predictor.inputs([try ImageCodecs.read(file)])
        #expect(x.scalars == data.image(11).pixels)
        #expect(x.scalars.allSatisfy { $0 >= 0 && $0 <= 1 })
        // A grey image becomes three equal channels; RGB keeps its colours.
        let grey = data.image(8).pixels
        let greyPixels: [[Float]] = stride(from: 0, to: grey.count, by: 3).map { Array(grey[$0..<($0 + 3)]) }
        #expect(greyPixels.allSatisfy { $0[0] == $0[1] && $0[1] == $0[2] })
        let rgb = data.image(9).pixels
        let halfRed: Float = rgb[0] * 2 - rgb[1]
        #expect(abs(halfRed) < 1.5 / 255 && rgb[1] == rgb[2])

        // A class folder the training split lacks, and an empty image, are one clear error each.
        try FileManager.default.createDirectory(atPath: root + "/test/other", withIntermediateDirectories: true)
        #expect(throws: DataError.invalid("\(root)/test/other: a class the training images do not have"
                                          + " (they have dark, light)")) {
            try ImageFolder.load(root + "/test", preprocessing: p, training: false, classNames: data.classNames)
        }
        let empty = CLITests.tempFile("empty.pgm", Data("P5\n0 0\n255\n".utf8))
        #expect(throws: (any Error).self) { try predictor.predict(files: [empty]) }
    }

    @Test func trainOnAMixedFolderThenEvalAndPredictByTheRecordedPreprocessing() throws {
        let root = try Self.mixedFolder("cli")
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("mixed-run-\(getpid())").path
        let r = try cli.run(["train", "--images", root, "--epochs", "2", "--hidden", "8", "--batch-size", "4",
                             "--validation-split", "0.25", "--out", out])
        #expect(r.code == 0, "\(r.err)")
        #expect(r.out.contains("12 training, 4 validation (25% of the training images), 16 test images"), "\(r.out)")
        #expect(r.out.contains("preprocessing: RGB, resized to 32×32, then scale"), "\(r.out)")
        #expect(r.out.contains("test accuracy") && r.out.contains("scored once"), "\(r.out)")

        // The model file records the preprocessing and class names; test.json the one test score.
        let (_, meta) = try SafeTensors.read(out + "/model.safetensors")
        #expect(meta[Preprocessing.metadataKey] == Preprocessing(width: 32, height: 32, channels: 3).json)
        #expect(meta[ModelFile.classNamesKey] == #"["dark","light"]"#)
        let score = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/test.json")))
            as? [String: Any]
        #expect(score?["images"] as? Int == 16)
        let accuracy = try #require(score?["accuracy"] as? Double)

        // eval --images reads the test split as training did, and gets the same accuracy.
        let e = try cli.run(["eval", "--model", out + "/model.safetensors", "--images", root, "--json"])
        #expect(e.code == 0, "\(e.err)")
        let eval = try JSONSerialization.jsonObject(with: Data(e.out.utf8)) as? [String: Any]
        #expect(eval?["count"] as? Int == 16)
        #expect(abs((eval?["accuracy"] as? Double ?? -1) - accuracy) < 1e-12)
        let refused = try cli.run(["eval", "--model", out + "/model.safetensors", "--images", root,
                                   "--transform", "grey"])
        #expect(refused.code != 0 && refused.err.contains("leave out --transform"), "\(refused.err)")

        // predict names the classes and takes any size.
        let p = try cli.run(["predict", "--model", out + "/model.safetensors", "--json", "--top-k", "2",
                             root + "/test/light/6.png", root + "/test/dark/1.png"])
        #expect(p.code == 0, "\(p.err)")
        let labels = p.out.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["predictions"]
                as? [[String: Any]]
        }.map { Set($0.compactMap { $0["label"] as? String }) }
        #expect(labels == [["dark", "light"], ["dark", "light"]])
    }

    @Test func aValFolderIsTheValidationSplit() throws {
        let root = try Self.mixedFolder("val", withVal: true)
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("mixed-val-\(getpid())").path
        let r = try cli.run(["train", "--images", root, "--epochs", "1", "--hidden", "4", "--input-size", "16x12",
                             "--channels", "1", "--out", out])
        #expect(r.code == 0, "\(r.err)")
        #expect(r.out.contains("16 training, 16 validation (\(root)/val), 16 test images"), "\(r.out)")
        #expect(r.out.contains("preprocessing: grey, resized to 16×12, then scale"), "\(r.out)")
        let both = try cli.run(["train", "--images", root, "--epochs", "1", "--validation-split", "0.2",
                                "--out", out + "-2"])
        #expect(both.code != 0 && both.err.contains("val exists"), "\(both.err)")
    }
}
