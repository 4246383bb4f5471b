import Foundation
import Testing
@testable import LSTMVision
@testable import LSTMVisionCore

/// A resumed run continues only the run it belongs to: other training data, another order of it, a damaged or
/// hostile state file, and tensors holding NaN or infinity are each refused with one clear error, on every
/// path that loads weights (model files, detector files, both trainers' state files).
@Suite(.serialized) struct ResumeSafetyTests {
    static let config = ModelConfig(kind: .row, height: 8, width: 8, hidden: 6, classes: 4)

    func tempDir(_ name: String) -> String { freshTemporaryPath("resume-\(name)") }

    func options() -> TrainingOptions { twoEpochOptions() }

    /// A classifier trainer on `data` in `dir`, quiet.
    func trainer(_ dir: String, data: ImageDataset = TrainingTests.bars(64, seed: 1), options: TrainingOptions? = nil,
                 settings: ClassificationTask.Settings = .init()) throws -> Trainer<ClassificationTask> {
        let t = try Trainer<ClassificationTask>(model: try makeClassifier(Self.config, seed: 2),
                                                options: options ?? self.options(),
                                                settings: settings, train: data, validation: nil, directory: dir)
        t.quiet = true
        return t
    }

    /// The message of the error `body` throws ("" and an issue when it throws none).
    func message(_ body: () throws -> Void) -> String {
        do { try body() } catch { return "\(error)" }
        Issue.record("no error thrown")
        return ""
    }

    /// A state file after one epoch (4 batches of 16), and a resumed trainer on the same data: no error.
    func trainedState(_ name: String) throws -> String {
        let dir = tempDir(name)
        var o = options()
        o.epochs = 1
        try trainer(dir, options: o).run()
        try trainer(dir).resume()
        return dir
    }

    @Test func resumeRefusesOtherDataOrOrder() throws {
        let dir = try trainedState("data")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let state = dir + "/last.state.safetensors"
        let fingerprint = TrainingTests.bars(64, seed: 1).fingerprint
        #expect(try SafeTensors.read(state).metadata["train_fingerprint"] == fingerprint)
        let other = TrainingTests.bars(64, seed: 5)
        #expect(message { try trainer(dir, data: other).resume() }
                == "\(state): the run was trained on 64 images (fingerprint \(fingerprint)), this training set has 64 "
                + "(fingerprint \(other.fingerprint)): resume with the data the run began with")
        #expect(message { try trainer(dir, data: TrainingTests.bars(64, seed: 1).prefix(48)).resume() }
                    .contains("this training set has 48"))
        var o = options()
        o.batchSize = 32
        o.seed = 7
        #expect(message { try trainer(dir, options: o).resume() }
                == "\(state): the run was trained with batch size 16, seed 1, not batch size 32, seed 7:"
                    + " a resumed run must keep the order of its data")
        var shifted = ClassificationTask.Settings()
        shifted.augment = "shift=1"
        #expect(message { try trainer(dir, settings: shifted).resume() }
                    .contains("trained with augmentation none, not shift=1"))
        // Options that do not decide the data may change: a longer run with another learning rate resumes.
        o = options()
        o.epochs = 3
        o.learningRate = 1e-4
        let longer = try trainer(dir, options: o)
        try longer.resume()
        #expect(longer.epoch == 1 && longer.step == 4)
    }

    /// Rewrites the state file in `dir` through `change`, then resumes it, returning the error message.
    func resumeAltered(_ dir: String,
                       _ change: (inout [String: Tensor], inout [String: String]) -> Void) throws -> String {
        let path = dir + "/last.state.safetensors"
        var (tensors, meta) = try SafeTensors.read(path)
        let original = try Data(contentsOf: URL(fileURLWithPath: path))
        defer { try? original.write(to: URL(fileURLWithPath: path)) }
        change(&tensors, &meta)
        try SafeTensors.write(tensors, metadata: meta, to: path)
        return message { try trainer(dir).resume() }
    }

    @Test func hostileStateFilesAreRefusedNotTrappedOn() throws {
        let dir = try trainedState("hostile")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let state = dir + "/last.state.safetensors"
        // The log's epoch numbers must be whole numbers, one record per finished epoch, in order.
        for bad in ["nan", "1e30", "1.5", "\"1\""] {
            let m = try resumeAltered(dir) { _, m in
                m["history"] = m["history"]!.replacingOccurrences(of: "\"epoch\":1", with: "\"epoch\":\(bad)")
            }
            #expect(m == "\(state): its log ('history') is not a list of epoch records", "\(bad): \(m)")
        }
        #expect(try resumeAltered(dir) { _, m in
                    m["history"] = m["history"]!.replacingOccurrences(of: "\"epoch\":1", with: "\"epoch\":2")
                }
                == "\(state): record 1 of its log is for epoch 2")
        #expect(try resumeAltered(dir) { _, m in m["history"] = "[]" }
                == "\(state): its log has 0 records for 1 finished epochs")
        #expect(try resumeAltered(dir) { _, m in m["history"] = nil } == "\(state): no log ('history') in its metadata")
        // Positions that are not counts, or do not fit the data, are refused.
        #expect(try resumeAltered(dir) { _, m in m["epoch"] = "-1" } == "\(state): 'epoch' metadata is not a count: -1")
        #expect(try resumeAltered(dir) { _, m in m["step"] = "1e300" }
                == "\(state): 'step' metadata is not a count: 1e300")
        #expect(try resumeAltered(dir) { _, m in m["batch"] = "9" }
                == "\(state): position epoch 1, batch 9, step 4 does not fit 4 batches an epoch")
        #expect(try resumeAltered(dir) { _, m in m["step"] = "5" }
                == "\(state): position epoch 1, batch 0, step 5 does not fit 4 batches an epoch")
        // Deeply nested JSON in the metadata (JSONDecoder would trap) is refused before decoding.
        #expect(try resumeAltered(dir) { _, m in m["options"] = String(repeating: "[", count: 600) }
                == "\(state): not valid training options JSON: nested more than 512 levels deep")
        #expect(try resumeAltered(dir) { _, m in m[ModelFile.configKey] = "{}" }.contains("saved for another model"))
        // Saved options whose step counts would overflow (epochs × batches) are refused when the trainer is made.
        let (_, meta) = try SafeTensors.read(state)
        var options = try JSONDecoder().decode(TrainingOptions.self, from: Data(meta["options"]!.utf8))
        for change: (inout TrainingOptions) -> Void in [{ $0.epochs = .max }, { $0.warmupSteps = .min },
                                                        { $0.stepEpochs = 0 }, { $0.momentum = .nan }] {
            var o = options
            change(&o)
            #expect(throws: TrainingError.self) { try o.validate() }
        }
        options.epochs = .max
        #expect(message { _ = try trainer(dir, options: options) } == "epochs must be in 1...1000000, got \(Int.max)")
        // Optimiser state that does not fit the parameters would make Adam read out of bounds.
        let w = "lstm.weight_hh_l0"
        #expect(try resumeAltered(dir) { t, _ in t["optimizer.exp_avg.\(w)"] = Tensor(zeros: [3]) }
                == "\(state): optimizer state 'exp_avg.\(w)' has shape [3], the parameter [24, 6]")
        #expect(try resumeAltered(dir) { t, _ in t["optimizer.exp_avg_sq.\(w)"]!.scalars[5] = -1 }
                == "\(state): optimizer state 'exp_avg_sq.\(w)' holds negative values")
        #expect(try resumeAltered(dir) { t, _ in t["optimizer.exp_avg.nothing"] = Tensor(zeros: [1]) }
                == "\(state): optimizer state 'exp_avg.nothing' names no parameter of this model")
        #expect(try resumeAltered(dir) { t, _ in t["optimizer.momentum.\(w)"] = Tensor(zeros: [24, 6]) }
                == "\(state): optimizer state 'momentum.\(w)' is not a state of this optimizer")
        #expect(try resumeAltered(dir) { t, _ in t["optimizer.step.\(w)"] = Tensor(scalar: 2.5) }
                == "\(state): optimizer state 'step.\(w)' is 2.5, not a step count")
        #expect(try resumeAltered(dir) { t, _ in t["optimizer.step.\(w)"] = Tensor(scalar: 1e30) }
                == "\(state): optimizer state 'step.\(w)' is 1e+30, not a step count")
        // NaN or infinite values in the weights or the optimiser state.
        #expect(try resumeAltered(dir) { t, _ in t["model.\(w)"]!.scalars[0] = .nan }
                == "\(state): tensor '\(w)' holds NaN or infinite values")
        #expect(try resumeAltered(dir) { t, _ in t["optimizer.exp_avg.\(w)"]!.scalars[0] = -.infinity }
                == "\(state): optimizer state 'exp_avg.\(w)' holds NaN or infinite values")
        // The untouched file still resumes.
        try trainer(dir).resume()
    }

    @Test func nonFiniteWeightsAreRefusedByEveryLoader() throws {
        let dir = tempDir("nan")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Model file.
        let classifier = try makeClassifier(Self.config, seed: 1)
        var weights = classifier.stateDict()
        weights["fc.bias"]!.scalars[1] = .infinity
        try SafeTensors.write(weights, metadata: [ModelFile.configKey: Self.config.json()],
                              to: dir + "/model.safetensors")
        #expect(message { _ = try ModelFile.load(dir + "/model.safetensors") }
                == "\(dir)/model.safetensors: tensor 'fc.bias' holds NaN or infinite values")
        // Detector file.
        let detector = try LSTMDetector.make(DetectorTests.small, seed: 1)
        var dweights = detector.stateDict()
        dweights["head.weight"]!.scalars[0] = .nan
        try SafeTensors.write(dweights, metadata: [DetectorFile.configKey: DetectorTests.small.json()],
                              to: dir + "/detector.safetensors")
        #expect(message { _ = try DetectorFile.load(dir + "/detector.safetensors") }
                == "\(dir)/detector.safetensors: tensor 'head.weight' holds NaN or infinite values")
        // Detection training state.
        let data = DetectorTests.canvases(4, seed: 1)
        var o = options()
        o.epochs = 1
        o.batchSize = 2
        let first = try Trainer<DetectionTask>(model: detector, options: o, train: data, validation: nil,
                                               directory: dir + "/det")
        first.quiet = true
        try first.run()
        let path = dir + "/det/last.state.safetensors"
        var (tensors, meta) = try SafeTensors.read(path)
        tensors["model.decoder.lstm.weight_hh_l0"]!.scalars[3] = .nan
        try SafeTensors.write(tensors, metadata: meta, to: path)
        let resumed = try Trainer<DetectionTask>(model: try LSTMDetector.make(DetectorTests.small, seed: 5), options: o,
                                                 train: data, validation: nil,
                                           directory: dir + "/det")
        #expect(message { try resumed.resume() }
                == "\(path): tensor 'decoder.lstm.weight_hh_l0' holds NaN or infinite values")
        // Detection state: other training data is refused as for classifiers.
        tensors["model.decoder.lstm.weight_hh_l0"]!.scalars[3] = 0
        meta["train_fingerprint"] = "0123456789abcdef"
        try SafeTensors.write(tensors, metadata: meta, to: path)
        #expect(message { try resumed.resume() }
                    .contains("the run was trained on 4 images (fingerprint 0123456789abcdef), "
                              + "this training set has 4"))
    }

    @Test func detectorSettingsClaimingMoreWeightsThanTheFileAreRefused() throws {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("resume-claim-\(getpid()).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let huge = DetectorConfig(height: 64, width: 64, convWidths: [4096, 4096, 4096, 4096], hidden: 8192)
        try SafeTensors.write(["head.weight": Tensor(zeros: [2, 2])], metadata: [DetectorFile.configKey: huge.json()],
                              to: path)
        #expect(message { _ = try DetectorFile.load(path) }
                    .contains("need at least 721457152 weights, the file holds 4 values"))
        try SafeTensors.write(["head.weight": Tensor(zeros: [2, 2])],
                              metadata: [DetectorFile.configKey: String(repeating: "{\"a\":", count: 1000)], to: path)
        #expect(message { _ = try DetectorFile.load(path) }
                == "\(path): not valid lstmvision.detector metadata JSON: nested more than 512 levels deep")
    }

    /// The safetensors header is checked for deep nesting too, before JSONSerialization sees it.
    @Test func deeplyNestedSafetensorsHeaderIsRefused() throws {
        var json = Data("{\"a\":".utf8) + Data(repeating: UInt8(ascii: "["), count: 5000)
        while json.count % 8 != 0 { json.append(0x20) }
        var file = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { file.append(contentsOf: $0) }
        file.append(json)
        #expect(message { _ = try SafeTensors.decode(file, source: "deep.safetensors") }
                == "deep.safetensors: not valid safetensors header JSON: nested more than 512 levels deep")
    }

    /// A plot of a log with extreme values (a hostile state file's, or a diverging run's) is drawn, not trapped on.
    @Test func plotsOfExtremeValuesDraw() {
        let chart = Plot.lineChart(series: [("a", [3e38, -3e38, .infinity, 1]), ("b", [.greatestFiniteMagnitude, 0])],
                                   title: "t", width: 200, height: 120)
        #expect(chart.width == 200 && chart.height == 120)
    }
}
