import Foundation

/// Training an image classifier: cross-entropy on shuffled mini-batches, augmented or adversarial when the settings
/// say so; validation accuracy picks the best model.
public final class ClassificationTask: TrainingTask {
    /// What classification adds to `TrainingOptions`; the state file keeps it.
    public struct Settings: Codable, Sendable, Equatable {
        public var labelSmoothing: Float = 0
        /// Training augmentation: an image-pipeline spec of size-preserving steps applied to every training image each
        /// time it is drawn, e.g. `shift=2,rotate=10` (see `ImageTransform.parse`).
        public var augment: String?
        /// Adversarial training: the loss is the mean of the clean and the adversarial loss.
        public var adversarial: Attack.Method?
        public var adversarialEpsilon: Float = 0.1
        public var adversarialSteps = 7

        public init() {}

        /// The attack that adversarial training uses, if any.
        public func makeAttack() throws -> Attack? {
            guard let adversarial else { return nil }
            let attack = Attack(method: adversarial, epsilon: adversarialEpsilon, steps: adversarialSteps)
            try attack.validate()
            return attack
        }

        /// Checks the values; the message names the setting. The augmentation's sizes are held to `limits`.
        public func validate(limits: InputLimits = .default) throws {
            guard labelSmoothing >= 0, labelSmoothing < 1 else {
                throw TrainingError.invalidOption("label smoothing must be in [0, 1), got \(labelSmoothing)")
            }
            _ = try makeAttack()
            if let augment { _ = try ImagePipeline(spec: augment, limits: limits) }
        }

        /// The state file's metadata key.
        public static let key = "classification"
    }

    public let model: any Classifier
    public let train: ImageDataset
    public let validation: ImageDataset?
    public let settings: Settings
    /// How the images were prepared, which the model files record (MNIST's: its size, pixels / 255).
    public let preprocessing: Preprocessing
    let attack: Attack?
    let augmentation: ImagePipeline?
    /// The run's seed, which with the step decides each batch's augmentation and attack.
    let seed: UInt64

    public init(model: any Classifier, train: ImageDataset, validation: ImageDataset?, settings: Settings = Settings(),
                preprocessing: Preprocessing? = nil, seed: UInt64, limits: InputLimits = .default) throws {
        try settings.validate(limits: limits)
        self.model = model
        self.preprocessing = preprocessing ?? .standard(for: model.config)
        self.train = train
        self.validation = validation
        self.settings = settings
        self.seed = seed
        attack = try settings.makeAttack()
        augmentation = try settings.augment.map { try ImagePipeline(spec: $0, limits: limits) }
        model.training = true
    }

    public var trainable: any Module { model }
    public var checkpointed: any Module { model }
    public var configKey: String { ModelFile.configKey }
    public var configJSON: String { model.config.json() }

    public func batch(images: Tensor, targets y: [Int], step: Int, shard: Int) throws -> TrainingBatch {
        var x = images
        if let augmentation { x = try augment(x, with: augmentation, step: step, shard: shard) }
        // The attack's random start depends on the step and shard alone, so a resumed run repeats it exactly.
        var attackGenerator = SeededGenerator(seed: seed ^ (UInt64(step) &* 0x9E37_79B9_7F4A_7C15)
                                                  ^ (UInt64(shard) &* 0xBF58_476D_1CE4_E5B9))
        let adversarial = attack.map { $0.perturb(model, x, labels: y, generator: &attackGenerator) }
        model.zeroGrad()
        let logits = model(Variable(x))
        var loss = crossEntropy(logits, labels: y, labelSmoothing: settings.labelSmoothing)
        if let adversarial {
            loss = (loss + crossEntropy(model(Variable(adversarial)), labels: y,
                                        labelSmoothing: settings.labelSmoothing)) * 0.5
        }
        return TrainingBatch(loss: loss, images: y.count) {
            (zip(logits.value.argmaxRows(), y).filter { $0 == $1 }.count, y.count)
        }
    }

    /// Applies the augmentation pipeline to every image of a batch [n, H, W·C]; the randomness depends on the step
    /// and shard alone, so a resumed run draws the same augmentations.
    func augment(_ x: Tensor, with pipeline: ImagePipeline, step: Int, shard: Int = 0) throws -> Tensor {
        var g = SeededGenerator(seed: (seed &+ 0x5DEECE66D &+ UInt64(step)) ^ (UInt64(shard) &* 0xBF58_476D_1CE4_E5B9))
        let h = train.height, w = train.width, c = train.channels, size = h * w * c
        var out = x
        for i in 0..<x.shape[0] {
            let image = Image(width: w, height: h, channels: c, pixels: Array(x.scalars[(i * size)..<((i + 1) * size)]))
            let a = try pipeline.apply(image, generator: &g)
            guard a.width == w, a.height == h, a.channels == c else {
                throw TrainingError.invalidOption("the augmentation must keep the image size \(w)×\(h)×\(c);"
                                                  + " '\(pipeline)' gives \(a.width)×\(a.height)×\(a.channels)")
            }
            out.scalars.replaceSubrange((i * size)..<((i + 1) * size), with: a.pixels)
        }
        return out
    }

    public func validate() throws -> Evaluation? {
        guard let validation else { return nil }
        let e = Evaluation.run(model, on: validation)
        model.training = true
        return e
    }

    /// Under MPI each rank scores a contiguous part of the validation set; the confusion matrices and loss sums are
    /// added in rank order, so every rank gets the one-process accuracy.
    public func validate(communicator c: any Communicator) throws -> Evaluation? {
        guard c.size > 1 else { return try validate() }
        guard let validation else { return nil }
        let count = validation.count, k = model.config.classes
        let part = Evaluation.run(model, on: validation.subset(Array((c.rank * count / c.size)..<((c.rank + 1) * count
                                                                                                  / c.size))))
        model.training = true
        var sums = part.confusion.flatMap { $0.map(Double.init) } + [part.loss * Double(part.count)]
        try c.sumInRankOrder(&sums)
        let confusion = (0..<k).map { t in (0..<k).map { Int(sums[t * k + $0]) } }
        return Evaluation(confusion: confusion, lossSum: sums[k * k], classNames: part.classNames)
    }

    public func record(_ f: EpochFigures, validation e: Evaluation?) -> Record {
        Record(epoch: f.epoch, trainLoss: f.trainLoss, trainAccuracy: f.hitRate, validationLoss: e?.loss ?? .nan,
               validationAccuracy: e?.accuracy ?? .nan, learningRate: f.learningRate, seconds: f.seconds,
               imagesPerSecond: f.imagesPerSecond)
    }

    /// The model file also records the preprocessing and the class names, which `Predictor` reads.
    public func saveModel(to path: String, metadata: [String: String]) throws {
        var meta = metadata
        meta[Preprocessing.metadataKey] = preprocessing.json
        meta[ModelFile.classNamesKey] = try jsonString(train.classNames)
        try ModelFile.save(model, to: path, metadata: meta)
    }

    public func stateMetadata() throws -> [String: String] { [Settings.key: try jsonString(settings)] }

    /// A resumed run must draw the same augmented images.
    public func checkResume(_ metadata: [String: String], source: String) throws {
        guard let json = metadata[Settings.key] else {
            throw TrainingError.resume("\(source): no classification settings in its metadata")
        }
        let saved = try InputLimits.decodeJSON(Settings.self, from: Data(json.utf8), source: source,
                                               what: "classification settings")
        guard saved.augment == settings.augment else {
            throw TrainingError.resume("\(source): the run was trained with augmentation \(saved.augment ?? "none"),"
                                       + " not \(settings.augment ?? "none"): a resumed run must draw the same images")
        }
    }

    /// One row of the training log.
    public struct Record: EpochRecord {
        public var epoch: Int
        public var trainLoss: Double
        public var trainAccuracy: Double
        public var validationLoss: Double
        public var validationAccuracy: Double
        public var learningRate: Double
        public var seconds: Double
        public var imagesPerSecond: Double

        public static let csvHeader = ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
                                       "learning_rate", "seconds", "images_per_second"]
        public var csvValues: [String] {
            [String(epoch)] + [trainLoss, trainAccuracy, validationLoss, validationAccuracy, learningRate, seconds,
                               imagesPerSecond].map { "\($0)" }
        }
        public static let qualityTitle = "Accuracy"
        public static func qualitySeries(_ history: [Record]) -> [(name: String, values: [Double])] {
            [("train accuracy %", history.map { $0.trainAccuracy * 100 }),
             ("validation accuracy %", history.map { $0.validationAccuracy * 100 })]
        }
    }
}

extension Evaluation: ValidationMetrics {
    public var score: Double { accuracy }
    public var summary: String { String(format: "validation accuracy %.2f%%, loss %.4f", accuracy * 100, loss) }
    public var modelMetadata: [String: String] { ["accuracy": String(accuracy)] }
}

/// JSON with sorted keys, as the state file keeps settings.
func jsonString<T: Encodable>(_ value: T) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}

extension Trainer where Task == ClassificationTask {
    /// A trainer of `model` on `train`, validating on `validation`, writing into `directory`.
    public convenience init(model: any Classifier, options: TrainingOptions,
                            settings: ClassificationTask.Settings = .init(),
                            train: ImageDataset, validation: ImageDataset?, directory: String) throws {
        try self.init(ClassificationTask(model: model, train: train, validation: validation, settings: settings,
                                         seed: options.seed),
                      options: options, folder: RunFolder(directory))
    }
}
