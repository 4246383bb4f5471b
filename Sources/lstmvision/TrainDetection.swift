import ArgumentParser
import Foundation
import LSTMVision

/// The options of `lstmvision train --task detection` that classification does not have.
struct DetectionOptions: ParsableArguments {
    @Option(help: "Detection: synthetic training canvases made in memory from MNIST's training digits when --data is not given (default 10000).")
    var trainCount: Int?
    @Option(help: "Detection: synthetic test canvases (from MNIST's test digits), the validation set (default 1000).")
    var testCount: Int?
    @Flag(inversion: .prefixedNo, help: "Detection on synthetic canvases: new canvases every epoch (seeded by the epoch), so that the model cannot memorise them (default: on).")
    var freshCanvases: Bool?
    @Option(help: "Detection: boxes the decoder emits per grid cell.") var maxBoxes: Int = 3
    @Option(help: "Detection: the encoder, conv (3×3 convolutions and max pooling), renet (ReNet sweeps over 8×8 patches) or conv-renet (sweeps over the convolutions' grid).")
    var encoder: String = "conv"
    @Option(help: "Detection: output channels of the encoder's 3×3 convolutions (the first three are pooled; the two 8×8 ones give each cell a 54-pixel view).")
    var convWidths: String = "16,32,64,64,64"
    @Option(help: "Detection with --encoder renet or conv-renet: hidden size per direction of each ReNet sweep layer.")
    var renetWidths: String = "64,64"
    @Flag(inversion: .prefixedNo, help: "Detection: the head also reads each cell's feature (a skip connection around the LSTM).")
    var skipFeatures = true
    @Flag(inversion: .prefixedNo, help: "Detection: the head also reads the 2×2 block of the finer feature map under each cell (default: on for the conv encoder; renet has no finer map).")
    var fineFeatures: Bool?
    @Flag(help: "Detection: add a second stage, a refiner that re-reads each detection's neighbourhood (its class and edges), trained beside the detector.")
    var refiner = false
    @Option(help: "Detection: add a refiner to the trained detector in this file and train only the refiner (the rest, and the detector settings, come from the file).")
    var addRefinerTo: String?
    @Option(help: "Detection with a refiner: hidden size per direction of its two LSTMs (rows and columns).") var refinerHidden: Int = 128
    @Option(help: "Detection with a refiner: weight λ of its L1 edge loss beside the class cross-entropy.") var refinerBoxWeight: Float = 2
    @Option(help: "Detection: weight λ of the L1 box loss.") var boxWeight: Float = 5
    @Option(help: "Detection: weight of the class cross-entropy.") var classWeight: Float = 3
    @Option(help: "Detection: weight of the GIoU box loss beside L1 (0: L1 alone, as the paper).") var iouWeight: Float = 2

    /// Synthetic canvases when `--train-count`/`--test-count` are not given.
    static let defaultTrainCount = 10000, defaultTestCount = 1000

    /// The data options of this command line as checkpoints keep them (nil where not given).
    func given(data: String?, limit: Int?) -> SavedDataOptions {
        SavedDataOptions(data: data, limit: limit, trainCount: trainCount, testCount: testCount, freshCanvases: freshCanvases)
    }

    /// `options` with the synthetic-canvas defaults filled in when it names no folder, so that a checkpoint records
    /// which canvases its run was trained on.
    static func withDefaults(_ options: SavedDataOptions) -> SavedDataOptions {
        guard options.data == nil else { return options }
        var o = options
        o.trainCount = o.trainCount ?? defaultTrainCount
        o.testCount = o.testCount ?? defaultTestCount
        o.freshCanvases = o.freshCanvases ?? true
        return o
    }

    /// The detection set's training and validation splits as `options` (see `withDefaults`) describe them: `data` (a
    /// `detect-data` folder), or synthetic canvases; for synthetic canvases with `freshCanvases`, also the training
    /// set of each later epoch.
    static func load(_ options: SavedDataOptions, limits: InputLimits = .default)
        throws -> (train: DetectionDataset, test: DetectionDataset, refresh: ((Int) throws -> DetectionDataset)?) {
        let directory = options.data, limit = options.limit
        if let limit, limit <= 0 { throw CLIError("--limit must be positive, got \(limit)") }
        if let directory {
            let train = try DetectionDataset.load(directory: directory, split: "train", limits: limits)
            let test = try DetectionDataset.load(directory: directory, split: "test", limits: limits)
            guard train.height == test.height, train.width == test.width, train.channels == test.channels, train.categoryIDs == test.categoryIDs else {
                throw CLIError("\(directory): the train and test splits differ in image size or categories")
            }
            return (train.prefix(limit ?? train.count), test.prefix(limit ?? test.count), nil)
        }
        let trainCount = options.trainCount ?? defaultTrainCount, testCount = options.testCount ?? defaultTestCount
        guard trainCount > 0, testCount > 0 else { throw CLIError("--train-count and --test-count must be positive, got \(trainCount), \(testCount)") }
        let trainN = min(trainCount, limit ?? trainCount), testN = min(testCount, limit ?? testCount)
        // `lstmvision detect-data`'s default seeds (training 0, test 1), so that its test split is this validation set.
        let mnist = MNIST.defaultDirectory(), digits = try MNIST.load(directory: mnist, split: .train, limits: limits)
        let train = DetectionDataset.synthetic(from: digits, count: trainN, epoch: 0)
        let testDigits = try MNIST.load(directory: mnist, split: .test, limits: limits)
        let test = DetectionDataset(samples: MultiDigitDetection.generate(from: testDigits, count: testN, seed: 1))
        return (train, test, options.freshCanvases ?? true ? { DetectionDataset.synthetic(from: digits, count: trainN, epoch: $0) } : nil)
    }

    /// The encoder kind parsed from `--encoder`.
    func encoderKind() throws -> DetectorConfig.Encoder {
        guard let kind = DetectorConfig.Encoder(rawValue: encoder) else { throw CLIError("--encoder must be conv, renet or conv-renet, got '\(encoder)'") }
        return kind
    }

    /// The widths parsed from `--conv-widths` or `--renet-widths` (named by `option`).
    static func widths(_ text: String, option: String) throws -> [Int] {
        let parts = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !parts.isEmpty, parts.allSatisfy({ $0 != nil }) else { throw CLIError("--\(option) must be comma-separated integers, got '\(text)'") }
        return parts.map { $0! }
    }
}

extension Train {
    /// The training recipe of the detector where the command line leaves it open: small batches (many updates per
    /// image helped most in tuning), Adam at 5e-3 with warm-up and cosine decay, 10 epochs.
    static var detectionDefaults: TrainingOptions {
        var o = TrainingOptions()
        o.epochs = 10
        o.batchSize = 8
        o.learningRate = 5e-3
        o.clipNorm = 5
        return o
    }

    /// `train --task detection`: trains an `LSTMDetector`, scoring COCO AP on the test split each epoch.
    func runDetection() throws {
        if dataOptions.images != nil { throw CLIError("--images is for classification; detection reads --data DIR from detect-data") }
        let options: TrainingOptions, loss: HungarianLoss, saved: DetectorConfig?
        var refinerLoss = RefinerLoss(boxWeight: detection.refinerBoxWeight), onlyRefiner = false, startingWeights: [String: Tensor]?
        var data = detection.given(data: dataOptions.data, limit: dataOptions.limit)
        if resume {
            let (tensors, meta, savedOptions) = try resumeState()
            guard let lossJSON = meta["loss"] else { throw CLIError("\(statePath): checkpoint lacks its loss weights") }
            options = try trainingOptions(base: savedOptions)
            loss = try InputLimits.decodeJSON(HungarianLoss.self, from: Data(lossJSON.utf8), source: statePath, what: "loss weights")
            saved = try DetectorFile.config(in: meta, tensors: tensors, source: statePath)
            if let savedData = try SavedDataOptions.read(meta, source: statePath) {
                data = try savedData.completing(data, source: statePath)
            }
            if let json = meta[DetectionTrainer.refinerLossKey] {
                refinerLoss = try InputLimits.decodeJSON(RefinerLoss.self, from: Data(json.utf8), source: statePath, what: "refiner loss settings")
            }
            onlyRefiner = meta[DetectionTrainer.onlyRefinerKey] == "true"
            startingWeights = nil
        } else if let path = detection.addRefinerTo {
            // A trained detector's settings and weights; its own refiner, if any, is replaced by a fresh one.
            let (tensors, meta) = try SafeTensors.read(path, limits: limits.value)
            var config = try DetectorFile.config(in: meta, tensors: tensors, source: path)
            config.refiner = BoxRefiner.Config(hidden: detection.refinerHidden)
            options = try trainingOptions(base: Self.detectionDefaults)
            loss = HungarianLoss(boxWeight: detection.boxWeight, classWeight: detection.classWeight, iouWeight: detection.iouWeight)
            saved = config
            onlyRefiner = true
            startingWeights = tensors.filter { !$0.key.hasPrefix("refiner.") }
        } else {
            options = try trainingOptions(base: Self.detectionDefaults)
            loss = HungarianLoss(boxWeight: detection.boxWeight, classWeight: detection.classWeight, iouWeight: detection.iouWeight)
            saved = nil
            startingWeights = nil
        }
        if options.augment != nil || options.adversarial != nil { throw CLIError("--augment and --adversarial are for classification") }
        let encoder = try detection.encoderKind()
        let convWidths = try DetectionOptions.widths(detection.convWidths, option: "conv-widths")
        let renetWidths = try DetectionOptions.widths(detection.renetWidths, option: "renet-widths")
        data = DetectionOptions.withDefaults(data)
        let (train, test, refresh) = try DetectionOptions.load(data, limits: limits.value)
        let config = saved ?? DetectorConfig(height: train.height, width: train.width, channels: train.channels, encoder: encoder,
                                             convWidths: convWidths, renetWidths: renetWidths, hidden: hidden,
                                             maxBoxes: detection.maxBoxes, skipFeatures: detection.skipFeatures,
                                             fineFeatures: detection.fineFeatures, classNames: train.classNames, categoryIDs: train.categoryIDs,
                                             refiner: detection.refiner ? BoxRefiner.Config(hidden: detection.refinerHidden) : nil)
        let model = try LSTMDetector.make(config, seed: options.seed)
        if let startingWeights, let path = detection.addRefinerTo {
            try model.loadStateDict(startingWeights.merging(model.stateDict().filter { $0.key.hasPrefix("refiner.") }) { kept, _ in kept }, source: path)
        } else if !resume, let fb = options.forgetBias { model.setForgetBias(fb) }
        let c = model.config
        let second = c.refiner.map { ", refiner \($0.cropSize)² crops, hidden \($0.hidden)\(onlyRefiner ? " (trained alone)" : "")" } ?? ""
        print("LSTM detector: \(c.width)×\(c.height) → \(c.gridWidth)×\(c.gridHeight) cells, \(c.encoderDescription), hidden \(c.hidden), \(c.maxBoxes) boxes per cell\(second): \(model.parameterCount) parameters")
        print("data \(data.data ?? "synthetic canvases from the embedded MNIST\(refresh == nil ? "" : ", new ones every epoch")"): \(train.count) training, \(test.count) validation images; \(BLAS.threads) threads")
        let trainer = try DetectionTrainer(model: model, options: options, loss: loss, refinerLoss: refinerLoss, onlyRefiner: onlyRefiner,
                                           train: train, validation: test, directory: out, limits: limits.value)
        trainer.timeLimit = timeLimit
        trainer.refresh = refresh
        trainer.runMetadata[SavedDataOptions.key] = data.json
        if resume { try trainer.resume() }
        let started = Date()
        let history = try trainer.run()
        if let last = history.last {
            print(String(format: "done in %.0f s: validation AP %.4f, AP50 %.4f after %d epochs; best model %@, log %@, plot %@",
                         Date().timeIntervalSince(started), last.validationAP, last.validationAP50, last.epoch,
                         trainer.bestModelPath, trainer.logPath, trainer.plotPath))
        }
    }
}
