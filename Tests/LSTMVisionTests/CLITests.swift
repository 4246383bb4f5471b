import Foundation
import Testing
@testable import LSTMVision
@testable import LSTMVisionCore

/// Runs the built `lstmvision` executable: bad input gives one clear stderr line and a non-zero exit.
@Suite struct CLITests {
    static let root = FileFormatTests.repoRoot
    static let fixtures = root + "/Tests/LSTMVisionTests/Fixtures"

    /// The executable next to the test bundle (`swift build --build-tests` builds it too).
    static var executable: String {
        Bundle.module.bundleURL.deletingLastPathComponent().appendingPathComponent("lstmvision").path
    }

    func run(_ args: [String]) throws -> (code: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.executable)
        p.arguments = args
        p.currentDirectoryURL = URL(fileURLWithPath: Self.root)
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    static func tempFile(_ name: String, _ bytes: Data) -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("cli-\(getpid())-\(name)").path
        _ = FileManager.default.createFile(atPath: path, contents: bytes)
        return path
    }

    static func fileSize(_ path: String) -> Int {
        (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? -1
    }

    /// A 28×28 grey PNG in the temporary folder.
    static let digitPNG: String = {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("cli-\(getpid())-digit28.png").path
        try? ImageCodecs.writePNG(Image(width: 28, height: 28, channels: 1, repeating: 128), to: path)
        return path
    }()

    @Test(arguments: [
        (["eval", "--model", "/nonexistent.safetensors"], "/nonexistent.safetensors: no such file"),
        (["train", "--bogus"], "Unknown option '--bogus'"),
        (["train", "--epochs", "0"], "--epochs must be in 1...1000000, got 0"),
        (["train", "--model", "lstm9"],
         "The value 'lstm9' is invalid for '--model <kind>'. Please provide one of 'row', 'patch' or 'renet'."),
        (["train", "--schedule", "linear"], "The value 'linear' is invalid for '--schedule <name>'"),
        (["train", "--forget-bias", "inf"], "The value 'inf' is invalid for '--forget-bias <x|none>'"),
        (["train", "--threads", "0"], "--threads must be in 1...256, got 0"),
        (["train", "--lr=-1"], "--lr must be positive, got -1.0"),
        (["train", "--limit", "0"], "--limit must be positive, got 0"),
        (["train", "detection", "--encoder", "vit", "--train-count", "4"],
         "The value 'vit' is invalid for '--encoder <encoder>'."
            + " Please provide one of 'conv', 'renet' or 'conv-renet'."),
        (["train", "detection", "--encoder", "renet", "--fine-features", "--train-count", "4"], "has no fine features"),
        // Each task takes only its own options.
        (["train", "detection", "--transform", "x"], "Unknown option '--transform'"),
        (["train", "classification", "--encoder", "conv"], "Unknown option '--encoder'"),
        // `--task` is kept as a synonym of the subcommand.
        (["train", "--task"], "Missing value for '--task <task>'"),
        (["train", "classification", "--task", "detection"],
         "--task detection contradicts the subcommand classification"),
        (["attack", "--model", "m", "--method", "cw"],
         "The value 'cw' is invalid for '--method <method>'. Please provide one of 'fgsm' and 'pgd'."),
        (["bench", "--modes", "train,test"], "The value 'train,test' is invalid for '--modes <mode,...>'"),
        (["detect", "--model", "m", "--nms-iou", "2", "x.png"], "--nms-iou must be in [0, 1], got 2.0"),
        (["train", "--data", "/tmp/definitely-not-mnist"], "no such file"),
        (["predict", "--model", fixtures + "/row_lstm_bi.safetensors", "/nope.png"], "/nope.png: no such file"),
        (["eval", "--model", fixtures + "/lstm_1layer.safetensors"], "not a classifier checkpoint"),
        (["predict", "--model", fixtures + "/row_lstm_bi.safetensors",
          tempFile("trunc.png", Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0]))], "truncated PNG"),
        (["eval", "--model", tempFile("bad.safetensors", Data([255, 255, 255, 255, 0, 0, 0, 0, 1]))],
         "not a valid safetensors file"),
        (["eval", "--model", fixtures + "/row_lstm_bi.safetensors", "--data", "/tmp/definitely-not-mnist"],
         "no such file"),
        (["predict", "--model", fixtures + "/row_lstm_bi.safetensors", "--top-k", "0", "x.png"],
         "--top-k must be positive"),
        // The limits on outside input, set by options shared by every command that reads files.
        (["eval", "--model", fixtures + "/row_lstm_bi.safetensors", "--max-file-bytes", "100"],
         "row_lstm_bi.safetensors: \(fileSize(fixtures + "/row_lstm_bi.safetensors")) bytes, over the file-size limit"
            + " of 100 bytes (maxFileBytes); raise with --max-file-bytes"),
        (["eval", "--model", fixtures + "/row_lstm_bi.safetensors", "--max-header-bytes", "10"],
         "exceeds the header limit of 10 bytes (maxHeaderBytes); raise with --max-header-bytes"),
        (["predict", "--model", fixtures + "/row_lstm_bi.safetensors", "--max-image-side", "8", digitPNG],
         "image of 28x28 exceeds the limits of 8x8 and 100000000 pixels (maxWidth, maxHeight, maxPixels);"
            + " raise with --max-image-side"),
        (["predict", "--model", fixtures + "/row_lstm_bi.safetensors", "--max-image-pixels", "783", digitPNG],
         "exceeds the limits of 16384x16384 and 783 pixels (maxWidth, maxHeight, maxPixels);"
            + " raise with --max-image-pixels"),
        (["eval", "--model", fixtures + "/row_lstm_bi.safetensors", "--max-image-pixels", "0"],
         "--max-image-pixels must be positive, got 0"),
        (["train", "--limit", "64", "--epochs", "1", "--max-file-bytes", "1000"],
         "over the file-size limit of 1000 bytes (maxFileBytes); raise with --max-file-bytes"),
        // The augmentation's sizes are held to the limits given.
        (["train", "--limit", "64", "--epochs", "1", "--max-image-side", "8", "--augment", "shift=9"],
         "shift expects a whole number of pixels in 0...8"),
        (["train", "--threads", "0"], "--threads must be in 1...256, got 0"),
        (["train", "--epochs", "9223372036854775807"], "--epochs must be in 1...1000000"),
        (["train", "--time-limit", "1e300"], "--time-limit must be a number of seconds in 0...31536000"),
        (["demo", "--detection-seconds", "nan"], "--detection-seconds must be a number of seconds"),
        // Deeply nested JSON is refused before Foundation's JSONDecoder could trap on it.
        (["evaluate", "--gt", tempFile("deep.json", Data(repeating: UInt8(ascii: "["), count: 100_000)),
          "--detections", "x.json"],
         "deep.json: not valid COCO annotation JSON: nested more than 512 levels deep"),
    ])
    func badInputGivesOneLineAndFailure(_ args: [String], _ expected: String) throws {
        let r = try run(args)
        #expect(r.code != 0, "\(args): exit code 0")
        let lines = r.err.split(separator: "\n")
        #expect(lines.count == 1, "\(args): stderr was \(r.err)")
        #expect(r.err.contains(expected), "\(args): stderr was \(r.err)")
        #expect(!r.err.contains("Fatal error") && !r.err.contains("Stack dump"))
    }

    /// Each task's help lists its own options, without another task's.
    @Test func trainHelpShowsEachTasksOptions() throws {
        let parent = try run(["train", "--help"]), classification = try run(["train", "classification", "--help"])
        let detection = try run(["train", "detection", "--help"])
        for r in [parent, classification, detection] { #expect(r.code == 0, "\(r.err)") }
        #expect(parent.out.contains("classification (default)") && parent.out.contains("detection"), "\(parent.out)")
        #expect(classification.out.contains("--model <kind>") && classification.out.contains("--augment")
                && !classification.out.contains("--encoder") && !classification.out.contains("--max-file-bytes"))
        #expect(detection.out.contains("--encoder <encoder>") && detection.out.contains("--train-count")
                && !detection.out.contains("--label-smoothing") && !detection.out.contains("--transform")
                && !detection.out.contains("Detection:"), "\(detection.out)")
        #expect(try run(["train", "detection", "--help-hidden"]).out.contains("--max-file-bytes"))
    }

    @Test func predictAndEvalWorkOnAPyTorchModel() throws {
        // A test image written as PNG, predicted by the PyTorch-trained fixture model.
        let png = FileManager.default.temporaryDirectory.appendingPathComponent("cli-\(getpid())-digit.png").path
        try ImageCodecs.writePNG(Image(width: 28, height: 28, channels: 1, repeating: 128), to: png)
        let r = try run(["predict", "--model", Self.fixtures + "/row_lstm_bi.safetensors", "--json", "--top-k", "2",
                         png])
        #expect(r.code == 0, "\(r.err)")
        let obj = try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any]
        let preds = obj?["predictions"] as? [[String: Any]]
        #expect(preds?.count == 2)
        let e = try run(["eval", "--model", Self.fixtures + "/row_lstm_bi.safetensors", "--limit", "50", "--json"])
        #expect(e.code == 0, "\(e.err)")
        let eval = try JSONSerialization.jsonObject(with: Data(e.out.utf8)) as? [String: Any]
        #expect(eval?["count"] as? Int == 50)
        #expect((eval?["confusion"] as? [[Int]])?.count == 10)
    }
}
