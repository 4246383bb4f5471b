import Foundation
import Testing
@testable import LSTMVision
@testable import LSTMVisionCore

/// `train frames` with resume, and `evaluate-frames`, through the built executable on a small Moving MNIST set.
@Suite(.serialized) struct FramesTrainingTests {
    static func temporaryFolder() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("frames-\(UUID())").path
    }

    @Test func trainsResumesAndEvaluates() throws {
        let root = Self.temporaryFolder(), data = root + "/data", out = root + "/run"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let cli = CLITests()
        var r = try cli.run(["moving-mnist", "--out", data, "--train", "20", "--test", "3", "--frames", "6"])
        #expect(r.code == 0, "\(r.err)")
        func command(context: Int = 3) -> [String] {
            // A constant learning rate: the schedule of a 1-epoch run would otherwise differ from a 2-epoch run's.
            ["train", "--task", "frames", "--data", data, "--validation", "4", "--hidden", "4", "--kernel", "3",
             "--context", String(context), "--batch-size", "8", "--schedule", "constant", "--out", out,
             "--no-tensorboard"]
        }
        let train = command()
        r = try cli.run(train + ["--epochs", "1"])
        #expect(r.code == 0 && r.out.contains("16 training, 4 validation sequences of 6 frames"), "\(r.out)\(r.err)")
        r = try cli.run(train + ["--epochs", "2", "--resume"])
        #expect(r.code == 0, "\(r.err)")
        let log = try String(contentsOfFile: out + "/log.csv", encoding: .utf8).split(separator: "\n")
        #expect(log.count == 3 && log[0].hasPrefix("epoch,train_loss,val_loss,val_mse_per_frame"), "\(log)")
        #expect(log.dropFirst().map { $0.split(separator: ",")[0] } == ["1", "2"])
        // The loss went down over the two epochs (the learning rate is large enough for 4 steps to show it).
        let losses = log.dropFirst().map { Double($0.split(separator: ",")[1])! }
        #expect(losses[1] < losses[0], "\(losses)")
        // The resumed run ends where an uninterrupted one does.
        let straight = command().map { $0 == out ? root + "/straight" : $0 } + ["--epochs", "2"]
        r = try cli.run(straight)
        #expect(r.code == 0, "\(r.err)")
        let a = try FramePredictorFile.load(out + "/last.safetensors").stateDict()
        let b = try FramePredictorFile.load(root + "/straight/last.safetensors").stateDict()
        let drift = a.keys.map { a[$0]!.maxAbsDifference(b[$0]!) }.max()!
        print("resumed vs uninterrupted: max |Δweight| = \(drift)")
        #expect(drift <= 1e-6)
        // Resuming with other frame settings is refused.
        r = try cli.run(command(context: 2) + ["--epochs", "3", "--resume"])
        #expect(r.code != 0 && r.err.contains("the run was trained with Settings(frames: 6, context: 3"), "\(r.err)")

        // evaluate-frames --json: the metrics FrameMetrics gives in-process with the same model and data.
        r = try cli.run(["evaluate-frames", "--model", out + "/model.safetensors", "--data", data + "/test.npy",
                         "--context", "3", "--json"])
        #expect(r.code == 0, "\(r.err)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
        let model = try FramePredictorFile.load(out + "/model.safetensors")
        #expect(model.hidden == [4] && model.kernelSize == 3 && model.patch == 4)
        let frames = MovingMNIST.batch(try MovingMNIST.read(data + "/test.npy"), 0..<3)
        var m = FrameMetrics(frames: 3)
        m.add(prediction: Autograd.withoutGradients { model(Variable(frames), context: 3).value },
              truth: MovingMNIST.future(frames, context: 3))
        for (key, value) in [("mse", m.mse), ("mae", m.mae), ("ssim", m.ssim)] {
            let reported = try #require(json[key] as? Double)
            #expect(abs(reported - value) <= 1e-9 * max(1, abs(value)), "\(key): \(reported) vs \(value)")
        }
        #expect((json["ssim_per_frame"] as? [Double])?.count == 3 && (json["mse_per_frame"] as? [Double])?.count == 3)
        #expect(m.mse > 0 && m.ssim > -1 && m.ssim < 1)

        // forecast: one strip per sequence, rows of 3 given frames, the 3 true ones, the prediction and the error.
        r = try cli.run(["forecast", "--model", out + "/model.safetensors", "--data", data + "/test.npy",
                         "--context", "3", "--count", "2", "--out", root + "/strips"])
        #expect(r.code == 0, "\(r.err)")
        let strip = try ImageCodecs.read(root + "/strips/forecast-000002.png")
        #expect(strip.width == 3 * 66 - 2 && strip.height == 4 * 66 - 2 && strip.channels == 1)
        let truthRow = MovingMNIST.future(frames, context: 3)   // the second sequence's frame 4: row 1, column 0
        for (y, x) in [(10, 10), (30, 31), (50, 20), (63, 63)] {
            #expect(abs(strip[x: x, y: 66 + y, c: 0] - truthRow.scalars[1 * 3 * 4096 + y * 64 + x] * 255) <= 0.5)
        }
        #expect(FileManager.default.fileExists(atPath: root + "/strips/forecast-000001.png"))
        #expect(!FileManager.default.fileExists(atPath: root + "/strips/forecast-000003.png"))

        // Bad input: --context not below the frame count, frames the patches do not divide, another dtype.
        r = try cli.run(["evaluate-frames", "--model", out + "/model.safetensors", "--data", data + "/test.npy",
                         "--context", "6"])
        #expect(r.code != 0 && r.err.contains("--context must be in 1..<6"), "\(r.err)")
        let odd = root + "/odd.npy"
        try NPY.write(NPY.Array(shape: [6, 1, 30, 30], uint8: [UInt8](repeating: 9, count: 6 * 900)), to: odd)
        r = try cli.run(["evaluate-frames", "--model", out + "/model.safetensors", "--data", odd, "--context", "3"])
        #expect(r.code != 0 && r.err.contains("frames of 30×30 do not fit"), "\(r.err)")
        r = try cli.run(["train", "--task", "frames", "--data", root, "--out", root + "/x"])
        #expect(r.code != 0 && r.err.contains("/train.npy: no such file"), "\(r.err)")
        r = try cli.run(command() + ["--epochs", "1", "--max-dataset-bytes", "100000"])
        #expect(r.code != 0 && r.err.contains("over the dataset limit of 100000 bytes (maxDatasetBytes)"), "\(r.err)")
        let tiny = root + "/tiny"
        try FileManager.default.createDirectory(atPath: tiny, withIntermediateDirectories: true)
        try NPY.write(NPY.Array(shape: [6, 8, 4, 4], uint8: [UInt8](repeating: 9, count: 6 * 8 * 16)),
                      to: tiny + "/train.npy")
        r = try cli.run(["train", "frames", "--data", tiny, "--validation", "2", "--context", "3",
                         "--out", root + "/y"])
        #expect(r.code != 0 && r.err.contains("frames of 4×4 are smaller than SSIM's 7×7 window"), "\(r.err)")
    }

    /// Scheduled sampling over 3 steps (the truth flags change from step to step, then stay off): the loss covers
    /// every next frame, and a run stopped after epoch 1 and resumed ends where an uninterrupted one does.
    @Test func scheduledSamplingResumes() throws {
        let root = Self.temporaryFolder(), data = root + "/data"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let cli = CLITests()
        var r = try cli.run(["moving-mnist", "--out", data, "--train", "20", "--test", "3", "--frames", "6"])
        #expect(r.code == 0, "\(r.err)")
        func command(_ out: String, sampling: String = "3") -> [String] {
            ["train", "frames", "--data", data, "--validation", "4", "--hidden", "4", "--kernel", "3", "--context", "3",
             "--batch-size", "4", "--schedule", "constant", "--scheduled-sampling=" + sampling,
             "--out", root + "/" + out, "--no-tensorboard"]
        }
        r = try cli.run(command("run") + ["--epochs", "1"])
        #expect(r.code == 0, "\(r.err)")
        r = try cli.run(command("run") + ["--epochs", "2", "--resume"])
        #expect(r.code == 0, "\(r.err)")
        r = try cli.run(command("straight") + ["--epochs", "2"])
        #expect(r.code == 0, "\(r.err)")
        let a = try FramePredictorFile.load(root + "/run/last.safetensors").stateDict()
        let b = try FramePredictorFile.load(root + "/straight/last.safetensors").stateDict()
        #expect(a.keys.map { a[$0]!.maxAbsDifference(b[$0]!) }.max()! <= 1e-6)
        // Without scheduled sampling the same seed trains other weights: the option is used.
        r = try cli.run(command("plain", sampling: "0") + ["--epochs", "2"])
        #expect(r.code == 0, "\(r.err)")
        let c = try FramePredictorFile.load(root + "/plain/last.safetensors").stateDict()
        #expect(a.keys.map { a[$0]!.maxAbsDifference(c[$0]!) }.max()! > 1e-4)
        r = try cli.run(command("bad", sampling: "-1"))
        #expect(r.code != 0 && r.err.contains("--scheduled-sampling must be ≥ 0 steps, got -1"), "\(r.err)")
    }
}
