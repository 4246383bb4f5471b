import ArgumentParser
import Foundation
import LSTMVision

/// `lstmvision train`: trains a classifier (or, with `--task detection`, a detector), validating on the test split each epoch.
struct Train: ParsableCommand, ReadsFiles, UsesThreads {
    static let configuration = CommandConfiguration(
        abstract: "Train an LSTM image classifier (row, patch or ReNet) or an LSTM object detector, with live progress and checkpoints.")

    @Option(help: "What to train: classification (an image classifier) or detection (an LSTM box detector; --data then names a detect-data folder).")
    var task: String = "classification"
    @OptionGroup var dataOptions: DataOptions
    @OptionGroup var detection: DetectionOptions
    @OptionGroup var threadOptions: ThreadOptions
    @OptionGroup var limits: LimitOptions

    @Option(help: "Model: row, patch or renet.")
    var model: String = "row"
    @Option(help: "LSTM hidden size.") var hidden: Int = 128
    @Option(help: "Stacked LSTM layers (ReNet: sweep layers).") var layers: Int = 1
    @Flag(help: "Bidirectional LSTMs (ReNet is always bidirectional).") var bidirectional = false
    @Option(help: "Patch side for patch and renet models.") var patch: Int = 2
    @Option(help: "ReNet's hidden fully connected width (0: none).") var fc: Int = 0
    @Option(help: "Dropout between LSTM layers and before ReNet's classifier.") var dropout: Float = 0

    @Option(help: "Epochs.") var epochs: Int?
    @Option(help: "Batch size.") var batchSize: Int?
    @Option(help: "Optimiser: adam, adamw or sgd.") var optimizer: String?
    @Option(help: "Base learning rate.") var lr: Float?
    @Option(help: "Weight decay (L2 for adam/sgd, decoupled for adamw).") var weightDecay: Float?
    @Option(help: "SGD momentum.") var momentum: Float?
    @Option(help: "Learning-rate schedule: constant, step, cosine, warmup-cosine.") var schedule: String?
    @Option(help: "Warm-up steps of warmup-cosine.") var warmup: Int?
    @Option(help: "Gradient-norm clipping threshold (0: off).") var clip: Float?
    @Option(help: "Label smoothing of the cross-entropy.") var labelSmoothing: Float?
    @Option(help: "Initial forget-gate bias (PyTorch's default init when 'none').") var forgetBias: String?
    @Option(help: "Random seed (weights, shuffling).") var seed: UInt64?
    @Option(help: "Also checkpoint every N steps.") var checkpointEvery: Int?
    @Flag(help: "Skip steps with NaN/Inf loss or gradients instead of stopping.") var skipNonfinite = false
    @Option(help: "Stop after this many seconds (then validate and save).") var timeLimit: Double?
    @Option(help: "Augmentation of training images, e.g. 'shift=2,rotate=10' (size-preserving pipeline steps).") var augment: String?
    @Option(help: "Adversarial training against fgsm or pgd (loss: mean of clean and adversarial).") var adversarial: String?
    @Option(help: "L∞ radius of the adversarial training attack (pixels in [0,1]).") var eps: Float?
    @Option(help: "PGD steps of adversarial training.") var pgdSteps: Int?

    @Option(help: "Output folder for model.safetensors (best), last.*, log.csv and curves.png.")
    var out: String = "runs/train"
    @Flag(help: "Resume the run in --out from its last checkpoint.") var resume = false

    /// The state file that `--resume` continues from.
    var statePath: String { out + "/last.state.safetensors" }

    /// The state file to resume from (its tensors and metadata) and the training options saved in it.
    func resumeState() throws -> (tensors: [String: Tensor], metadata: [String: String], options: TrainingOptions) {
        guard FileManager.default.fileExists(atPath: statePath) else { throw CLIError("\(statePath): no checkpoint to resume from") }
        let (tensors, meta) = try SafeTensors.read(statePath, limits: limits.value)
        guard let json = meta["options"] else { throw CLIError("\(statePath): checkpoint lacks its training options") }
        return (tensors, meta, try InputLimits.decodeJSON(TrainingOptions.self, from: Data(json.utf8), source: statePath, what: "training options"))
    }

    /// The training options: `base` (the defaults, or the checkpoint's when resuming) with those given on the command line.
    func trainingOptions(base: TrainingOptions) throws -> TrainingOptions {
        var o = base
        if let epochs { o.epochs = epochs }
        if let batchSize { o.batchSize = batchSize }
        if let optimizer {
            guard let kind = OptimizerKind(rawValue: optimizer) else { throw CLIError("--optimizer must be adam, adamw or sgd, got '\(optimizer)'") }
            o.optimizer = kind
        }
        if let lr { o.learningRate = lr }
        if let weightDecay { o.weightDecay = weightDecay }
        if let momentum { o.momentum = momentum }
        if let schedule {
            guard let kind = ScheduleKind(rawValue: schedule) else {
                throw CLIError("--schedule must be constant, step, cosine or warmup-cosine, got '\(schedule)'")
            }
            o.schedule = kind
        }
        if let warmup { o.warmupSteps = warmup }
        if let clip { o.clipNorm = clip }
        if let labelSmoothing { o.labelSmoothing = labelSmoothing }
        if let forgetBias {
            if forgetBias == "none" { o.forgetBias = nil } else {
                guard let v = Float(forgetBias), v.isFinite else { throw CLIError("--forget-bias must be a number or 'none', got '\(forgetBias)'") }
                o.forgetBias = v
            }
        }
        if let seed { o.seed = seed }
        if let checkpointEvery { o.checkpointEvery = checkpointEvery }
        if skipNonfinite { o.skipNonFinite = true }
        if let augment { o.augment = augment }
        if let adversarial { o.adversarial = adversarial }
        if let eps { o.adversarialEpsilon = eps }
        if let pgdSteps { o.adversarialSteps = pgdSteps }
        try o.validate(limits: limits.value)
        return o
    }

    func run() throws {
        try checkSeconds(timeLimit, "--time-limit")
        guard task == "classification" || task == "detection" else { throw CLIError("--task must be classification or detection, got '\(task)'") }
        if task == "detection" { return try runDetection() }
        var options: TrainingOptions
        let classifier: any Classifier
        let data: DataOptions, train: ImageDataset, test: ImageDataset
        if resume {
            let (tensors, meta, saved) = try resumeState()
            let savedData = try SavedDataOptions.read(meta, source: statePath)
            data = try savedData.map { dataOptions.replacing(with: try $0.completing(dataOptions.saved, source: statePath)) } ?? dataOptions
            train = try data.load(.train, limits: limits.value)
            test = try data.load(.test, limits: limits.value)
            guard meta[ModelFile.configKey] != nil else { throw CLIError("\(statePath): checkpoint lacks its model config") }
            let config = try ModelFile.config(in: meta, tensors: tensors, source: statePath)
            options = try trainingOptions(base: saved)
            classifier = try makeClassifier(config, seed: options.seed)
        } else {
            data = dataOptions
            train = try data.load(.train, limits: limits.value)
            test = try data.load(.test, limits: limits.value)
            options = try trainingOptions(base: TrainingOptions())
            guard let kind = ModelConfig.Kind(rawValue: model) else { throw CLIError("--model must be row, patch or renet, got '\(model)'") }
            let config = ModelConfig(kind: kind, height: train.height, width: train.width, channels: train.channels,
                                     hidden: hidden, layers: layers, bidirectional: bidirectional || kind == .renet,
                                     classes: train.classes, patch: patch, fcHidden: fc, dropout: dropout)
            classifier = try makeClassifier(config, seed: options.seed)
            if let fb = options.forgetBias { classifier.setForgetBias(fb) }
        }
        let c = classifier.config
        print("model \(c.kind) hidden \(c.hidden) layers \(c.layers)\(c.bidirectional ? " bidirectional" : ""): \(classifier.parameterCount) parameters")
        print("data \(data.directory): \(train.count) training, \(test.count) validation images; \(BLAS.threads) threads")
        let trainer = try Trainer(model: classifier, options: options, train: train, validation: test, directory: out,
                                  limits: limits.value)
        trainer.timeLimit = timeLimit
        trainer.runMetadata[SavedDataOptions.key] = data.saved.json
        if resume { try trainer.resume() }
        let history = try trainer.run()
        if let last = history.last {
            print(String(format: "done: validation accuracy %.2f%% after %d epochs; best model %@, log %@, plot %@",
                         last.validationAccuracy * 100, last.epoch, trainer.bestModelPath, trainer.logPath, trainer.plotPath))
        }
    }
}
