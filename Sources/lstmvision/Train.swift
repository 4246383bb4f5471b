import ArgumentParser
import Foundation
import LSTMVision

/// `lstmvision train`: its subcommands train a classifier (the default) or a detector, validating after each epoch.
/// `train … --task X …` still works: `LSTMVisionCommand.main` reads it as `train X …`.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train an LSTM image classifier, an LSTM object detector or a ConvLSTM frame predictor, with live"
            + " progress and checkpoints.",
        discussion: "train --epochs 3 … trains a classifier: see train classification --help.",
        subcommands: [TrainClassification.self, TrainDetection.self, TrainFrames.self],
        defaultSubcommand: TrainClassification.self)
}

/// `lstmvision train [classification]`: trains a row, patch or ReNet classifier.
struct TrainClassification: ParsableCommand, ReadsFiles, UsesThreads {
    static let configuration = CommandConfiguration(
        commandName: TrainTask.classification.rawValue,
        abstract: "Train an LSTM image classifier (row, patch or ReNet).",
        discussion: recipeDescription(Recipes.classification))

    @OptionGroup(title: "Model") var model: ClassifierOptions
    @OptionGroup(title: "Data") var dataOptions: DataOptions
    @OptionGroup(title: "Optimisation") var optimisation: OptimisationOptions
    @OptionGroup(title: "Regularisation") var regularisation: RegularisationOptions
    @OptionGroup(title: "Run") var runOptions: RunOptions
    @OptionGroup(title: "Run") var threadOptions: ThreadOptions
    @OptionGroup(title: "Input limits", visibility: .hidden) var limits: LimitOptions
    /// A `tune` trial: the test split is not scored (the search scores its best model once, at the end).
    @Flag(help: .hidden) var noTestScore = false

    func run() throws {
        var options: TrainingOptions, settings: ClassificationTask.Settings
        let classifier: any Classifier
        let data: DataOptions
        var loaded: (train: ImageDataset, validation: ImageDataset, test: ImageDataset, preprocessing: Preprocessing?,
                     validationSource: String)
        if runOptions.resume {
            let checkpoint = try Checkpoint(resuming: runOptions.out, limits: limits.value), path = checkpoint.path
            let savedData = try SavedDataOptions.read(checkpoint.metadata, source: path)
            data = try savedData.map { dataOptions.replacing(with: try $0.completing(dataOptions.saved, source: path)) }
                ?? dataOptions
            loaded = try data.loadForTraining(limits: limits.value)
            guard checkpoint.metadata[ModelFile.configKey] != nil else {
                throw CLIError("\(path): checkpoint lacks its model config")
            }
            let config = try ModelFile.config(in: checkpoint.metadata, tensors: checkpoint.tensors, source: path)
            options = try optimisation.trainingOptions(run: runOptions, base: checkpoint.options)
            settings = try regularisation.settings(base: checkpoint.classificationSettings() ?? .init())
            classifier = try makeClassifier(config, seed: options.seed)
        } else {
            data = dataOptions
            loaded = try data.loadForTraining(limits: limits.value)
            options = try optimisation.trainingOptions(run: runOptions, base: Recipes.classification)
            settings = try regularisation.settings(base: .init())
            classifier = try makeClassifier(model.config(for: loaded.train), seed: options.seed)
            if let fb = options.forgetBias { classifier.setForgetBias(fb) }
        }
        let c = classifier.config
        print("model \(c.kind) hidden \(c.hidden) layers \(c.layers)\(c.bidirectional ? " bidirectional" : ""):"
              + " \(classifier.parameterCount) parameters")
        print("data \(data.directory): \(loaded.train.count) training, \(loaded.validation.count) validation"
              + " (\(loaded.validationSource)), \(loaded.test.count) test images; \(BLAS.threads) threads")
        if let p = loaded.preprocessing { print("preprocessing: \(p)") }
        let task = try ClassificationTask(model: classifier, train: loaded.train, validation: loaded.validation,
                                          settings: settings, preprocessing: loaded.preprocessing,
                                          seed: options.seed, limits: limits.value)
        let result = try fit(task, options: options, out: runOptions.out, timeLimit: runOptions.timeLimit,
                             limits: limits.value,
                             metadata: [SavedDataOptions.key: data.saved.json], resume: runOptions.resume,
                             tensorBoard: runOptions.tensorboard, writesTensorBoard: !runOptions.noTensorboard,
                             shards: runOptions.shards, collectiveTimeout: runOptions.collectiveTimeout)
        guard Distributed.current.isRoot else { return }     // rank 0 writes the run's files
        guard let best = result.history.max(by: { $0.validationAccuracy < $1.validationAccuracy }) else { return }
        guard !noTestScore else {
            print(String(format: "done: best validation accuracy %.2f%% (epoch %d of %d); test split not scored;"
                         + " model %@", best.validationAccuracy * 100, best.epoch, result.history.count,
                         result.folder.bestModel))
            return
        }
        let test = try scoreOnce(result.folder, test: loaded.test, epoch: best.epoch)
        print(String(format: "done: best validation accuracy %.2f%% (epoch %d of %d); test accuracy %.2f%%, scored once"
                     + " with that model; model %@, log %@, plot %@, test score %@",
                     best.validationAccuracy * 100, best.epoch, result.history.count, test.accuracy * 100,
                     result.folder.bestModel, result.folder.log, result.folder.plot, result.folder.testScore))
    }
}

/// What `train` writes after the last epoch: the best model's score on the test split (`OUT/test.json`).
struct TestScore: Codable {
    let accuracy: Double
    let loss: Double
    let images: Int
    let bestEpoch: Int
    let model: String

    enum CodingKeys: String, CodingKey { case accuracy, loss, images, model, bestEpoch = "best_epoch" }
}

/// Scores the run's best model on the test split and writes `OUT/test.json` atomically.
func scoreOnce(_ folder: RunFolder, test: ImageDataset, epoch: Int) throws -> Evaluation {
    let best = try ModelFile.load(folder.bestModel)
    let e = Evaluation.run(best, on: test)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
    let score = TestScore(accuracy: e.accuracy, loss: e.loss, images: test.count, bestEpoch: epoch,
                          model: folder.bestModel)
    try AtomicFile.write(try encoder.encode(score), to: folder.testScore)
    return e
}

/// The classifier to train (a resumed run takes its checkpoint's instead).
struct ClassifierOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Model.", valueName: "kind")) var model: ModelConfig.Kind = .row
    @Option(help: ArgumentHelp("LSTM hidden size.", valueName: "n")) var hidden: Int = 128
    @Option(help: ArgumentHelp("Stacked LSTMs (ReNet: sweeps).", valueName: "n")) var layers: Int = 1
    @Flag(help: "Bidirectional LSTMs (ReNet always is).") var bidirectional = false
    @Option(help: ArgumentHelp("Patch side of patch and renet models.", valueName: "n")) var patch: Int = 2
    @Option(help: ArgumentHelp("ReNet's fully connected width (0: none).", valueName: "n")) var fc: Int = 0
    @Option(help: ArgumentHelp("Dropout between LSTMs, before ReNet's head.", valueName: "x")) var dropout: Float = 0

    func validate() throws {
        guard (1...8192).contains(hidden) else { throw ValidationError("--hidden must be in 1...8192, got \(hidden)") }
        guard (1...16).contains(layers) else { throw ValidationError("--layers must be in 1...16, got \(layers)") }
        guard patch > 0 else { throw ValidationError("--patch must be positive, got \(patch)") }
        guard fc >= 0 else { throw ValidationError("--fc must be ≥ 0, got \(fc)") }
        guard dropout >= 0, dropout < 1 else { throw ValidationError("--dropout must be in [0, 1), got \(dropout)") }
    }

    /// The model for images and classes of `data`.
    func config(for data: ImageDataset) -> ModelConfig {
        ModelConfig(kind: model, height: data.height, width: data.width, channels: data.channels, hidden: hidden,
                    layers: layers, bidirectional: bidirectional || model == .renet, classes: data.classes,
                    patch: patch, fcHidden: fc, dropout: dropout)
    }
}

/// What classifier training adds to the loss and the images: label smoothing, augmentation, adversarial examples.
struct RegularisationOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Label smoothing of the cross-entropy.", valueName: "x")) var labelSmoothing: Float?
    @Option(help: ArgumentHelp("Augmentation, e.g. shift=2,rotate=10.", valueName: "spec"))
    var augment: String?
    @Option(help: ArgumentHelp("Adversarial training's attack.", valueName: "method"))
    var adversarial: Attack.Method?
    @Option(help: ArgumentHelp("L∞ radius of that attack (pixels in [0,1]).", valueName: "x")) var eps: Float?
    @Option(help: ArgumentHelp("PGD steps of that attack.", valueName: "n")) var pgdSteps: Int?

    func validate() throws {
        if let labelSmoothing, !(labelSmoothing >= 0 && labelSmoothing < 1) {
            throw ValidationError("--label-smoothing must be in [0, 1), got \(labelSmoothing)")
        }
        if let eps, !(eps >= 0 && eps <= 1) { throw ValidationError("--eps must be in [0, 1], got \(eps)") }
        if let pgdSteps, !(1...1000).contains(pgdSteps) {
            throw ValidationError("--pgd-steps must be in 1...1000, got \(pgdSteps)")
        }
    }

    /// `base` (the defaults, or the checkpoint's when resuming) with the values given here.
    func settings(base: ClassificationTask.Settings) throws -> ClassificationTask.Settings {
        var s = base
        if let labelSmoothing { s.labelSmoothing = labelSmoothing }
        if let augment { s.augment = augment }
        if let adversarial { s.adversarial = adversarial }
        if let eps { s.adversarialEpsilon = eps }
        if let pgdSteps { s.adversarialSteps = pgdSteps }
        try s.validate()
        return s
    }
}
