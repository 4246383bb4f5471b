import Foundation

/// Trains an `LSTMDetector` as `Trainer` does classifiers, through the same `TrainingLoop`: shuffled mini-batches
/// with `HungarianLoss` (schedule, clipping and optimiser from `TrainingOptions`); COCO
/// AP on the validation set each epoch, the best model by AP kept; atomic checkpoints holding the
/// weights, the optimiser state and the data position, from which `resume` continues exactly; a CSV log
/// and a PNG plot of loss and AP. A detector with a refiner trains it beside the rest on crops of the same batch
/// (`RefinerLoss`), or alone, the rest frozen (`onlyRefiner`: a second stage added to a trained detector).
public final class DetectionTrainer {
    public let model: LSTMDetector
    public let options: TrainingOptions
    public let loss: HungarianLoss
    public let refinerLoss: RefinerLoss
    /// True when only the refiner learns; the encoder, decoder and head keep their weights and are not run in training.
    public let onlyRefiner: Bool
    public let postProcessing: PostProcessing
    public let train: DetectionDataset
    /// `train.fingerprint`, computed once (hashing every pixel takes a noticeable fraction of a second).
    private lazy var trainFingerprint = train.fingerprint
    public let validation: DetectionDataset?
    /// Folder receiving `model.safetensors` (best), `last.safetensors`, `last.state.safetensors`, `log.csv`, `curves.png`.
    public let directory: String
    /// Silences the progress lines.
    public var quiet = false
    /// Stops training (after validating) once this many seconds have passed; nil trains all epochs.
    public var timeLimit: TimeInterval?
    /// Entries added to the state file's metadata (the CLI keeps its data options there, so that `train --resume`
    /// reads the same data without being told again).
    public var runMetadata: [String: String] = [:]
    /// When set, epoch e > 0 trains on `refresh(e)` instead of `train`: new synthetic canvases every epoch, so that
    /// the model cannot memorise them. It must depend on the epoch alone (a resumed run sees the same data) and
    /// give sets of `train`'s size and kind.
    public var refresh: ((Int) throws -> DetectionDataset)?
    /// The limits the state file (`resume`) is read within.
    public let limits: InputLimits

    /// The position in the run and the shared epoch/batch mechanics.
    let loop: TrainingLoop
    var optimizer: any Optimizer { loop.optimizer }
    var epoch: Int { loop.epoch }
    var step: Int { loop.step }
    var bestAP = -1.0
    var history: [EpochRecord] = []

    /// One row of the training log. `trainRecall` is the fraction of training boxes whose matched step
    /// said "object" (P > 0.5) with the right class, over the epoch.
    public struct EpochRecord: Codable, Sendable, Equatable {
        public var epoch: Int
        public var trainLoss: Double
        public var trainRecall: Double
        public var validationLoss: Double
        public var validationAP: Double
        public var validationAP50: Double
        public var learningRate: Double
        public var seconds: Double
        public var imagesPerSecond: Double

        var values: [Double] {
            [Double(epoch), trainLoss, trainRecall, validationLoss, validationAP, validationAP50, learningRate, seconds, imagesPerSecond]
        }

        /// The record of epoch `epoch` from the log row `v` (`values`).
        init(epoch: Int, _ v: [Double]) {
            self.init(epoch: epoch, trainLoss: v[1], trainRecall: v[2], validationLoss: v[3], validationAP: v[4],
                      validationAP50: v[5], learningRate: v[6], seconds: v[7], imagesPerSecond: v[8])
        }

        init(epoch: Int, trainLoss: Double, trainRecall: Double, validationLoss: Double, validationAP: Double,
             validationAP50: Double, learningRate: Double, seconds: Double, imagesPerSecond: Double) {
            self.epoch = epoch
            self.trainLoss = trainLoss
            self.trainRecall = trainRecall
            self.validationLoss = validationLoss
            self.validationAP = validationAP
            self.validationAP50 = validationAP50
            self.learningRate = learningRate
            self.seconds = seconds
            self.imagesPerSecond = imagesPerSecond
        }
    }

    public init(model: LSTMDetector, options: TrainingOptions, loss: HungarianLoss = HungarianLoss(), refinerLoss: RefinerLoss = RefinerLoss(),
                onlyRefiner: Bool = false, postProcessing: PostProcessing = PostProcessing(), train: DetectionDataset,
                validation: DetectionDataset?, directory: String, limits: InputLimits = .default) throws {
        try options.validate(limits: limits)
        self.limits = limits
        guard !onlyRefiner || model.refiner != nil else { throw TrainingError.invalidOption("the detector has no refiner to train") }
        guard refinerLoss.boxWeight >= 0, refinerLoss.boxWeight.isFinite, refinerLoss.jitteredPerObject >= 0, refinerLoss.randomPerImage >= 0,
              refinerLoss.jitteredPerObject + refinerLoss.randomPerImage > 0, refinerLoss.shiftJitter >= 0, refinerLoss.scaleJitter >= 0,
              (0...1).contains(refinerLoss.foregroundIoU) else {
            throw TrainingError.invalidOption("refiner loss settings out of range: \(refinerLoss)")
        }
        guard options.augment == nil, options.adversarial == nil else {
            throw TrainingError.invalidOption("--augment and --adversarial are for classification; the detector trains on the images as they are")
        }
        guard [loss.boxWeight, loss.classWeight, loss.iouWeight].allSatisfy({ $0 >= 0 && $0.isFinite }) else {
            throw TrainingError.invalidOption("--box-weight, --class-weight and --iou-weight must be finite and ≥ 0")
        }
        for (name, data) in [("training", train)] + (validation.map { [("validation", $0)] } ?? []) {
            guard data.count > 0 else { throw TrainingError.invalidOption("the \(name) set has no images") }
            try model.checkInput([data.count, data.height, data.width * data.channels])
            guard data.classes == model.config.classes else {
                throw TrainingError.invalidOption("the \(name) set has \(data.classes) classes, the detector \(model.config.classes)")
            }
        }
        self.model = model
        self.options = options
        self.loss = loss
        self.refinerLoss = refinerLoss
        self.onlyRefiner = onlyRefiner
        self.postProcessing = postProcessing
        self.train = train
        self.validation = validation
        self.directory = directory
        self.loop = TrainingLoop(options: options)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    public var bestModelPath: String { directory + "/model.safetensors" }
    public var lastModelPath: String { directory + "/last.safetensors" }
    public var statePath: String { directory + "/last.state.safetensors" }
    public var logPath: String { directory + "/log.csv" }
    public var plotPath: String { directory + "/curves.png" }

    /// Mini-batches per epoch, the last one possibly smaller.
    var batchesPerEpoch: Int { (train.count + options.batchSize - 1) / options.batchSize }

    /// The sample order of `epoch`, a function of (seed, epoch) alone, so a resumed run sees the same batches.
    func order(epoch: Int) -> [Int] {
        var idx = Array(0..<train.count)
        var g = SeededGenerator(seed: options.seed &+ UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15)
        idx.shuffle(using: &g)
        return idx
    }

    /// The training images of `epoch`: `train`, or `refresh(epoch)` after the first epoch.
    func trainingSet(epoch: Int) throws -> DetectionDataset {
        guard epoch > 0, let refresh else { return train }
        let data = try refresh(epoch)
        guard data.count == train.count, data.height == train.height, data.width == train.width, data.channels == train.channels,
              data.categoryIDs == train.categoryIDs else {
            throw TrainingError.invalidOption("the training set of epoch \(epoch + 1) differs in size or kind from the first")
        }
        return data
    }

    /// Trains to `options.epochs`, returning the log. Throws on non-finite values (unless skipping).
    @discardableResult
    public func run() throws -> [EpochRecord] {
        let batchSize = options.batchSize
        var data = train, order: [Int] = []
        let trained: Module = onlyRefiner ? Parameters(model.namedParameters.filter { $0.name.hasPrefix("refiner.") }) : model
        try loop.run(model: trained, batches: batchesPerEpoch, lastCheckpoint: lastModelPath, quiet: quiet, timeLimit: timeLimit,
                     startEpoch: { epoch in
            data = try trainingSet(epoch: epoch)
            order = self.order(epoch: epoch)
        }, batch: { index in
            let (x, targets) = data.batch(order[(index * batchSize)..<min(train.count, (index + 1) * batchSize)])
            trained.zeroGrad()
            // The refiner's crops: random, but a function of (seed, step), so that a resumed run draws the same ones.
            var g = SeededGenerator(seed: options.seed ^ (UInt64(step) &* 0xD1B5_4A32_D192_ED03))
            let refined = model.refiner.map { refiner in
                let samples = refinerLoss.samples(refiner, images: x, targets: targets, generator: &g)
                return (refinerLoss(refiner(samples.crops), samples), samples.labels.count)
            }
            if onlyRefiner, let (r, crops) = refined {
                // What counts as a hit: a crop classified right.
                return TrainingLoop.Batch(loss: r.loss, images: targets.count) { (r.correct, crops) }
            }
            let output = try model(Variable(x))
            let result = loss(output, targets: targets, config: model.config)
            return TrainingLoop.Batch(loss: refined.map { result.loss + $0.0.loss } ?? result.loss, images: targets.count) {
                (Self.found(output.value, result.matching), result.matching.matches.count)
            }
        }, checkpoint: saveLast, endEpoch: endEpoch)
        return history
    }

    /// Scores COCO AP on the validation set (keeping the best model by AP), logs and checkpoints after an epoch, or
    /// after the part of one that the time limit left.
    func endEpoch(_ f: TrainingLoop.EpochFigures) throws {
        var record = EpochRecord(epoch: f.epoch, trainLoss: f.trainLoss, trainRecall: f.hitRate, validationLoss: .nan, validationAP: .nan,
                                 validationAP50: .nan, learningRate: f.learningRate, seconds: f.seconds, imagesPerSecond: f.imagesPerSecond)
        if let validation {
            let e = try DetectionEvaluation.run(model, on: validation, loss: loss, postProcessing: postProcessing)
            record.validationLoss = e.loss
            record.validationAP = e.metrics.AP
            record.validationAP50 = e.metrics.AP50
            if e.metrics.AP > bestAP {
                bestAP = e.metrics.AP
                try DetectorFile.save(model, to: bestModelPath, metadata: ["AP": String(e.metrics.AP), "AP50": String(e.metrics.AP50), "step": String(step)])
            }
            if !quiet {
                print(String(format: "epoch %d%@: validation AP %.4f, AP50 %.4f, loss %.4f (%.1f s, %.0f img/s)%@", record.epoch,
                             f.finished ? "" : " (partial)", e.metrics.AP, e.metrics.AP50, e.loss, f.seconds, f.imagesPerSecond, loop.skippedNote))
            }
        } else {
            try DetectorFile.save(model, to: bestModelPath, metadata: ["step": String(step)])
        }
        if f.finished { history.append(record) }
        try saveLast()
        try writeLog()
    }

    /// How many matched boxes of `matching` have P(object) > 0.5 and the right class as most likely at their step.
    static func found(_ output: Tensor, _ matching: HungarianLoss.Matching) -> Int {
        let B = matching.shape[1], D = matching.shape[2]
        return matching.matches.filter { m in
            let row = Array(output.scalars[((m.step * B + m.cell) * D)..<((m.step * B + m.cell + 1) * D)])
            let classes = row[6...]
            return row[5] > row[4] && classes.indices.max(by: { classes[$0] < classes[$1] }) == 6 + m.classIndex
        }.count
    }

    /// State-file metadata keys: the refiner's loss settings, and whether only the refiner trains.
    public static let refinerLossKey = "refiner_loss", onlyRefinerKey = "only_refiner"

    /// Writes the state needed to resume (`TrainingState`: optimiser, position, history, the weights, the loss
    /// weights and what identifies the training set) as one atomic file, then the latest model alone for users;
    /// a crash at any moment leaves a consistent state.
    func saveLast() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var extra = runMetadata
        extra["best_ap"] = String(bestAP)
        extra["loss"] = String(decoding: try encoder.encode(loss), as: UTF8.self)
        if model.refiner != nil { extra[Self.refinerLossKey] = String(decoding: try encoder.encode(refinerLoss), as: UTF8.self) }
        if onlyRefiner { extra[Self.onlyRefinerKey] = "true" }
        let state = TrainingState(epoch: loop.epoch, batch: loop.batchIndex, step: loop.step, skipped: loop.skipped, history: history.map(\.values),
                                  extra: extra)
        try state.write(to: statePath, model: model.stateDict(), optimizer: optimizer, options: options, configKey: DetectorFile.configKey,
                        config: model.config.json(), dataCount: train.count, dataFingerprint: trainFingerprint, columns: 9)
        try DetectorFile.save(model, to: lastModelPath, metadata: ["epoch": String(epoch), "step": String(step)])
    }

    /// Continues from the state file in `directory`, written by an earlier run of the same detector on the same
    /// data with the same batch size and seed (see `TrainingState.read`).
    public func resume() throws {
        let (state, meta) = try TrainingState.read(statePath, model: model, configKey: DetectorFile.configKey, config: model.config.json(),
                                                   optimizer: optimizer, options: options, batchesPerEpoch: batchesPerEpoch,
                                                   dataCount: train.count, dataFingerprint: trainFingerprint,
                                                   columns: 9, limits: limits)
        (loop.epoch, loop.batchIndex, loop.step, loop.skipped) = (state.epoch, state.batch, state.step, state.skipped)
        bestAP = meta["best_ap"].flatMap(Double.init) ?? -1
        history = state.history.enumerated().map { EpochRecord(epoch: $0.offset + 1, $0.element) }
        if !quiet { print("resumed from \(statePath) at epoch \(loop.epoch + 1), batch \(loop.batchIndex + 1) (step \(loop.step))") }
    }

    /// Writes `log.csv` and `curves.png` (loss above AP).
    func writeLog() throws {
        var csv = "epoch,train_loss,train_recall,val_loss,val_AP,val_AP50,learning_rate,seconds,images_per_second\n"
        for r in history { csv += ([String(r.epoch)] + r.values.dropFirst().map { String($0) }).joined(separator: ",") + "\n" }
        try AtomicFile.write(Data(csv.utf8), to: logPath)
        try TrainingPlot.write(trainLoss: history.map(\.trainLoss), validationLoss: history.map(\.validationLoss),
                               lowerTitle: "Average precision",
                               lower: [("validation AP %", history.map { $0.validationAP * 100 }),
                                       ("validation AP50 %", history.map { $0.validationAP50 * 100 })], to: plotPath)
    }
}
