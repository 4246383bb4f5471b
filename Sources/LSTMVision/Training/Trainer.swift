import Foundation

/// Trains a classifier: shuffled mini-batches (augmented, adversarial when asked) with cross-entropy, through
/// `TrainingLoop` (schedule, backward, clipping, optimiser step, progress); validation each epoch; the best model
/// kept; atomic checkpoints with the optimiser state and the data position, from which `resume` continues
/// exactly; a CSV log and a PNG plot of the curves.
public final class Trainer {
    public let model: any Classifier
    public let options: TrainingOptions
    public let train: ImageDataset
    /// `train.fingerprint`, computed once (hashing every pixel takes a noticeable fraction of a second).
    private lazy var trainFingerprint = train.fingerprint
    public let validation: ImageDataset?
    /// Folder receiving `model.safetensors` (best), `last.safetensors`, `last.state.safetensors`, `log.csv`, `curves.png`.
    public let directory: String
    /// Where progress goes (lines are printed; set `quiet` to silence).
    public var quiet = false
    /// Stops training (after validating) once this many seconds have passed; nil trains all epochs.
    public var timeLimit: TimeInterval?
    /// Entries added to the state file's metadata (the CLI keeps its data options there, so that `train --resume`
    /// reads the same data without being told again).
    public var runMetadata: [String: String] = [:]
    /// The limits the state file (`resume`) and the augmentation's sizes are held to.
    public let limits: InputLimits

    /// The position in the run and the shared epoch/batch mechanics.
    let loop: TrainingLoop
    var optimizer: any Optimizer { loop.optimizer }
    var epoch: Int { loop.epoch }
    var step: Int { loop.step }
    var skipped: Int { loop.skipped }
    var bestAccuracy = -1.0
    var history: [EpochRecord] = []

    /// One row of the training log.
    public struct EpochRecord: Codable, Sendable {
        public var epoch: Int
        public var trainLoss: Double
        public var trainAccuracy: Double
        public var validationLoss: Double
        public var validationAccuracy: Double
        public var learningRate: Double
        public var seconds: Double
        public var imagesPerSecond: Double
    }

    public init(model: any Classifier, options: TrainingOptions, train: ImageDataset, validation: ImageDataset?,
                directory: String, limits: InputLimits = .default) throws {
        try options.validate(limits: limits)
        self.limits = limits
        self.model = model
        self.options = options
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

    /// Trains to `options.epochs`, returning the log. Throws on non-finite values (unless skipping).
    @discardableResult
    public func run() throws -> [EpochRecord] {
        let loader = DataLoader(train, batchSize: options.batchSize, shuffle: true, seed: options.seed)
        let attack = try options.makeAttack()
        let augmentation = try options.augment.map { try ImagePipeline(spec: $0, limits: limits) }
        model.training = true
        var order: [Int] = []
        try loop.run(model: model, batches: loader.batchesPerEpoch, lastCheckpoint: lastModelPath, quiet: quiet, timeLimit: timeLimit,
                     startEpoch: { order = loader.order(epoch: $0) },
                     batch: { index in
            var (x, y) = loader.batch(index, of: order)
            if let augmentation { x = try augment(x, with: augmentation) }
            // The attack's random start depends on the step alone, so a resumed run repeats it exactly.
            var attackGenerator = SeededGenerator(seed: options.seed ^ (UInt64(loop.step) &* 0x9E37_79B9_7F4A_7C15))
            let adversarial = attack.map { $0.perturb(model, x, labels: y, generator: &attackGenerator) }
            model.zeroGrad()
            let logits = model(Variable(x))
            var loss = crossEntropy(logits, labels: y, labelSmoothing: options.labelSmoothing)
            if let adversarial {
                loss = (loss + crossEntropy(model(Variable(adversarial)), labels: y, labelSmoothing: options.labelSmoothing)) * 0.5
            }
            return TrainingLoop.Batch(loss: loss, images: y.count) { (zip(logits.value.argmaxRows(), y).filter { $0 == $1 }.count, y.count) }
        }, checkpoint: saveLast, endEpoch: endEpoch)
        return history
    }

    /// Validates (keeping the best model), logs and checkpoints after an epoch, or after the part of one that the time
    /// limit left.
    func endEpoch(_ f: TrainingLoop.EpochFigures) throws {
        var record = EpochRecord(epoch: f.epoch, trainLoss: f.trainLoss, trainAccuracy: f.hitRate, validationLoss: .nan,
                                 validationAccuracy: .nan, learningRate: f.learningRate, seconds: f.seconds, imagesPerSecond: f.imagesPerSecond)
        if let validation {
            let e = Evaluation.run(model, on: validation)
            model.training = true
            record.validationLoss = e.loss
            record.validationAccuracy = e.accuracy
            if e.accuracy > bestAccuracy {
                bestAccuracy = e.accuracy
                try ModelFile.save(model, to: bestModelPath, metadata: ["accuracy": String(e.accuracy), "step": String(step)])
            }
            if !quiet {
                print(String(format: "epoch %d%@: validation accuracy %.2f%%, loss %.4f (%.1f s, %.0f img/s)%@", record.epoch,
                             f.finished ? "" : " (partial)", e.accuracy * 100, e.loss, f.seconds, f.imagesPerSecond, loop.skippedNote))
            }
        } else {
            try ModelFile.save(model, to: bestModelPath, metadata: ["step": String(step)])
        }
        if f.finished { history.append(record) }
        try saveLast()
        try writeLog()
    }

    /// Applies the augmentation pipeline to every image of a batch [n, H, W·C]; the randomness depends on
    /// the step alone, so a resumed run draws the same augmentations.
    func augment(_ x: Tensor, with pipeline: ImagePipeline) throws -> Tensor {
        var g = SeededGenerator(seed: options.seed &+ 0x5DEECE66D &+ UInt64(step))
        let h = train.height, w = train.width, c = train.channels, size = h * w * c
        var out = x
        for i in 0..<x.shape[0] {
            let image = Image(width: w, height: h, channels: c, pixels: Array(x.scalars[(i * size)..<((i + 1) * size)]))
            let a = try pipeline.apply(image, generator: &g)
            guard a.width == w, a.height == h, a.channels == c else {
                throw TrainingError.invalidOption("--augment must keep the image size \(w)×\(h)×\(c); '\(pipeline)' gives \(a.width)×\(a.height)×\(a.channels)")
            }
            out.scalars.replaceSubrange((i * size)..<((i + 1) * size), with: a.pixels)
        }
        return out
    }

    /// Writes the state needed to resume (`TrainingState`: optimiser, position, history, a copy of the weights and
    /// what identifies the training set) as one atomic file, then the latest model alone for users; a crash at any
    /// moment leaves a consistent state.
    func saveLast() throws {
        var extra = runMetadata
        extra["best_accuracy"] = String(bestAccuracy)
        let state = TrainingState(epoch: loop.epoch, batch: loop.batchIndex, step: loop.step, skipped: loop.skipped, history: history.map {
            [Double($0.epoch), $0.trainLoss, $0.trainAccuracy, $0.validationLoss, $0.validationAccuracy, $0.learningRate, $0.seconds, $0.imagesPerSecond]
        }, extra: extra)
        try state.write(to: statePath, model: model.stateDict(), optimizer: optimizer, options: options, configKey: ModelFile.configKey,
                        config: model.config.json(), dataCount: train.count, dataFingerprint: trainFingerprint, columns: 8)
        try ModelFile.save(model, to: lastModelPath, metadata: ["epoch": String(epoch), "step": String(step)])
    }

    /// Continues from the state file in `directory`, written by an earlier run of the same model on the same
    /// data with the same batch size, seed and augmentation (see `TrainingState.read`).
    public func resume() throws {
        let (state, meta) = try TrainingState.read(statePath, model: model, configKey: ModelFile.configKey, config: model.config.json(),
                                                   optimizer: optimizer, options: options,
                                                   batchesPerEpoch: DataLoader(train, batchSize: options.batchSize, shuffle: true).batchesPerEpoch,
                                                   dataCount: train.count, dataFingerprint: trainFingerprint,
                                                   columns: 8, limits: limits)
        (loop.epoch, loop.batchIndex, loop.step, loop.skipped) = (state.epoch, state.batch, state.step, state.skipped)
        bestAccuracy = meta["best_accuracy"].flatMap(Double.init) ?? -1
        history = state.history.enumerated().map { r, v in
            EpochRecord(epoch: r + 1, trainLoss: v[1], trainAccuracy: v[2], validationLoss: v[3],
                        validationAccuracy: v[4], learningRate: v[5], seconds: v[6], imagesPerSecond: v[7])
        }
        if !quiet { print("resumed from \(statePath) at epoch \(loop.epoch + 1), batch \(loop.batchIndex + 1) (step \(loop.step))") }
    }

    /// Writes `log.csv` and `curves.png`.
    func writeLog() throws {
        var csv = "epoch,train_loss,train_accuracy,val_loss,val_accuracy,learning_rate,seconds,images_per_second\n"
        for r in history {
            csv += "\(r.epoch),\(r.trainLoss),\(r.trainAccuracy),\(r.validationLoss),\(r.validationAccuracy),\(r.learningRate),\(r.seconds),\(r.imagesPerSecond)\n"
        }
        try AtomicFile.write(Data(csv.utf8), to: logPath)
        try TrainingPlot.write(trainLoss: history.map(\.trainLoss), validationLoss: history.map(\.validationLoss),
                               lowerTitle: "Accuracy",
                               lower: [("train accuracy %", history.map { $0.trainAccuracy * 100 }),
                                       ("validation accuracy %", history.map { $0.validationAccuracy * 100 })], to: plotPath)
    }
}

extension Dictionary {
    func mapKeys<K: Hashable>(_ f: (Key) -> K) -> [K: Value] {
        Dictionary<K, Value>(uniqueKeysWithValues: map { (f($0.key), $0.value) })
    }
}
