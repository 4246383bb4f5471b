import Foundation

/// Training an `LSTMDetector`: `HungarianLoss` on shuffled mini-batches; COCO AP on the validation set picks the best
/// model. A detector with a refiner trains it beside the rest on crops of the same batch (`RefinerLoss`), or alone,
/// the rest frozen (`onlyRefiner`: a second stage added to a trained detector).
public final class DetectionTask: TrainingTask {
    public let model: LSTMDetector
    public let loss: HungarianLoss
    public let refinerLoss: RefinerLoss
    /// True when only the refiner learns; the encoder, decoder and head keep their weights and are not run in training.
    public let onlyRefiner: Bool
    public let postProcessing: PostProcessing
    public let train: DetectionDataset
    public let validation: DetectionDataset?
    /// When set, epoch e > 0 trains on `refresh(e)` instead of `train`: new synthetic canvases every epoch, so that
    /// the model cannot memorise them. It must depend on the epoch alone (a resumed run sees the same data) and
    /// give sets of `train`'s size and kind.
    public var refresh: ((Int) throws -> DetectionDataset)?
    /// Random changes to each training batch (none by default); the state file keeps them.
    public let augmentation: DetectionAugmentation
    /// The run's seed, which with the step decides the refiner's crops and the augmentation.
    let seed: UInt64
    public let trainable: any Module

    /// State-file metadata keys: the loss weights, the refiner's loss settings, and whether only the refiner trains.
    public static let lossKey = "loss", refinerLossKey = "refiner_loss", onlyRefinerKey = "only_refiner"

    public init(model: LSTMDetector, train: DetectionDataset, validation: DetectionDataset?,
                loss: HungarianLoss = HungarianLoss(), refinerLoss: RefinerLoss = RefinerLoss(),
                onlyRefiner: Bool = false, postProcessing: PostProcessing = PostProcessing(),
                augmentation: DetectionAugmentation = DetectionAugmentation(), seed: UInt64) throws {
        try augmentation.validate()
        guard !onlyRefiner || model.refiner != nil else {
            throw TrainingError.invalidOption("the detector has no refiner to train")
        }
        guard refinerLoss.boxWeight >= 0, refinerLoss.boxWeight.isFinite, refinerLoss.jitteredPerObject >= 0,
              refinerLoss.randomPerImage >= 0, refinerLoss.jitteredPerObject + refinerLoss.randomPerImage > 0,
              refinerLoss.shiftJitter >= 0, refinerLoss.scaleJitter >= 0,
              (0...1).contains(refinerLoss.foregroundIoU) else {
            throw TrainingError.invalidOption("refiner loss settings out of range: \(refinerLoss)")
        }
        guard [loss.boxWeight, loss.classWeight, loss.iouWeight].allSatisfy({ $0 >= 0 && $0.isFinite }) else {
            throw TrainingError.invalidOption("the box, class and IoU loss weights must be finite and ≥ 0")
        }
        for (name, data) in [("training", train)] + (validation.map { [("validation", $0)] } ?? []) {
            guard data.count > 0 else { throw TrainingError.invalidOption("the \(name) set has no images") }
            try model.checkInput([data.count, data.height, data.width * data.channels])
            guard data.classes == model.config.classes else {
                throw TrainingError.invalidOption("the \(name) set has \(data.classes) classes,"
                                                  + " the detector \(model.config.classes)")
            }
        }
        self.model = model
        self.loss = loss
        self.refinerLoss = refinerLoss
        self.onlyRefiner = onlyRefiner
        self.postProcessing = postProcessing
        self.train = train
        self.validation = validation
        self.augmentation = augmentation
        self.seed = seed
        trainable = onlyRefiner ? Parameters(model.namedParameters.filter { $0.name.hasPrefix("refiner.") }) : model
    }

    public var checkpointed: any Module { model }
    public var configKey: String { DetectorFile.configKey }
    public var configJSON: String { model.config.json() }

    /// `train`, or `refresh(epoch)` after the first epoch.
    public func trainingSet(epoch: Int) throws -> DetectionDataset {
        guard epoch > 0, let refresh else { return train }
        let data = try refresh(epoch)
        guard data.count == train.count, data.height == train.height, data.width == train.width,
              data.channels == train.channels, data.categoryIDs == train.categoryIDs else {
            throw TrainingError.invalidOption("the training set of epoch \(epoch + 1) differs in size or kind"
                                              + " from the first")
        }
        return data
    }

    public func batch(images: Tensor, targets: [DetectionTarget], step: Int, shard: Int) throws -> TrainingBatch {
        trainable.zeroGrad()
        // The augmentation: random, but a function of (seed, step, shard) as well.
        let shardMix = UInt64(shard) &* 0xBF58_476D_1CE4_E5B9
        var a = SeededGenerator(seed: seed ^ (UInt64(step) &* 0x9E37_79B9_7F4A_7C15) ^ 0xA076_1D64_78BD_642F ^ shardMix)
        let (x, targets) = augmentation.apply(images, targets: targets, width: train.width, height: train.height,
                                              channels: train.channels, generator: &a)
        // The refiner's crops: random, but a function of (seed, step), so that a resumed run draws the same ones.
        var g = SeededGenerator(seed: seed ^ (UInt64(step) &* 0xD1B5_4A32_D192_ED03) ^ shardMix)
        let refined = model.refiner.map { refiner in
            let samples = refinerLoss.samples(refiner, images: x, targets: targets, generator: &g)
            return (refinerLoss(refiner(samples.crops), samples), samples.labels.count)
        }
        if onlyRefiner, let (r, crops) = refined {
            // What counts as a hit: a crop classified right.
            return TrainingBatch(loss: r.loss, images: targets.count) { (r.correct, crops) }
        }
        let output = try model(Variable(x))
        let result = loss(output, targets: targets, config: model.config)
        return TrainingBatch(loss: refined.map { result.loss + $0.0.loss } ?? result.loss, images: targets.count) {
            (Self.found(output.value, result.matching), result.matching.matches.count)
        }
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

    /// Under MPI rank 0 alone validates (the default `validate(communicator:)`): COCO AP needs every detection.
    public func validate() throws -> DetectionEvaluation? {
        guard let validation else { return nil }
        return try DetectionEvaluation.run(model, on: validation, loss: loss, postProcessing: postProcessing)
    }

    public func record(_ f: EpochFigures, validation e: DetectionEvaluation?) -> Record {
        Record(epoch: f.epoch, trainLoss: f.trainLoss, trainRecall: f.hitRate, validationLoss: e?.loss ?? .nan,
               validationAP: e?.metrics.AP ?? .nan, validationAP50: e?.metrics.AP50 ?? .nan,
               learningRate: f.learningRate, seconds: f.seconds, imagesPerSecond: f.imagesPerSecond)
    }

    public func saveModel(to path: String, metadata: [String: String]) throws {
        try DetectorFile.save(model, to: path, metadata: metadata)
    }

    public func stateMetadata() throws -> [String: String] {
        var meta = [Self.lossKey: try jsonString(loss)]
        if model.refiner != nil { meta[Self.refinerLossKey] = try jsonString(refinerLoss) }
        if onlyRefiner { meta[Self.onlyRefinerKey] = "true" }
        if augmentation.isEnabled { meta[DetectionAugmentation.key] = try jsonString(augmentation) }
        return meta
    }

    /// The augmentation saved in a state file's metadata (none when absent).
    public static func augmentation(in metadata: [String: String], source: String) throws -> DetectionAugmentation {
        guard let json = metadata[DetectionAugmentation.key] else { return DetectionAugmentation() }
        return try InputLimits.decodeJSON(DetectionAugmentation.self, from: Data(json.utf8), source: source,
                                          what: "detection augmentation")
    }

    /// A resumed run must draw the same augmented batches; the loss settings are the command line's (`train --resume`
    /// reads them back).
    public func checkResume(_ metadata: [String: String], source: String) throws {
        let saved = try Self.augmentation(in: metadata, source: source)
        guard saved == augmentation else {
            throw TrainingError.resume("\(source): the run was trained with augmentation \(saved), not \(augmentation):"
                                       + " a resumed run must draw the same batches")
        }
    }

    /// One row of the training log. `trainRecall` is the fraction of training boxes whose matched step said "object"
    /// (P > 0.5) with the right class, over the epoch.
    public struct Record: EpochRecord {
        public var epoch: Int
        public var trainLoss: Double
        public var trainRecall: Double
        public var validationLoss: Double
        public var validationAP: Double
        public var validationAP50: Double
        public var learningRate: Double
        public var seconds: Double
        public var imagesPerSecond: Double

        public static let csvHeader = ["epoch", "train_loss", "train_recall", "val_loss", "val_AP", "val_AP50",
                                       "learning_rate", "seconds", "images_per_second"]
        public var csvValues: [String] {
            [String(epoch)] + [trainLoss, trainRecall, validationLoss, validationAP, validationAP50, learningRate,
                               seconds, imagesPerSecond].map { String($0) }
        }
        public static let qualityTitle = "Average precision"
        public static func qualitySeries(_ history: [Record]) -> [(name: String, values: [Double])] {
            [("validation AP %", history.map { $0.validationAP * 100 }),
             ("validation AP50 %", history.map { $0.validationAP50 * 100 })]
        }
    }
}

extension DetectionEvaluation: ValidationMetrics {
    public var score: Double { metrics.AP }
    public var summary: String {
        String(format: "validation AP %.4f, AP50 %.4f, loss %.4f", metrics.AP, metrics.AP50, loss)
    }
    public var modelMetadata: [String: String] { ["AP": String(metrics.AP), "AP50": String(metrics.AP50)] }
}

extension Trainer where Task == DetectionTask {
    /// A trainer of `model` on `train`, validating on `validation`, writing into `directory`.
    public convenience init(model: LSTMDetector, options: TrainingOptions, loss: HungarianLoss = HungarianLoss(),
                            refinerLoss: RefinerLoss = RefinerLoss(), onlyRefiner: Bool = false,
                            postProcessing: PostProcessing = PostProcessing(),
                            augmentation: DetectionAugmentation = DetectionAugmentation(), train: DetectionDataset,
                            validation: DetectionDataset?, directory: String) throws {
        try self.init(DetectionTask(model: model, train: train, validation: validation,
                                    loss: loss, refinerLoss: refinerLoss, onlyRefiner: onlyRefiner,
                                    postProcessing: postProcessing, augmentation: augmentation, seed: options.seed),
                      options: options, folder: RunFolder(directory))
    }
}
