import ArgumentParser
import Foundation
import LSTMVision

/// `lstmvision train detection`: trains an `LSTMDetector`, scoring COCO AP on the test split after each epoch.
struct TrainDetection: ParsableCommand, ReadsFiles, UsesThreads {
    static let configuration = CommandConfiguration(
        commandName: TrainTask.detection.rawValue,
        abstract: "Train an LSTM object detector (synthetic canvases or detect-data).",
        discussion: recipeDescription(Recipes.detection))

    @OptionGroup(title: "Detector") var detector: DetectorOptions
    @OptionGroup(title: "Refiner") var refiner: RefinerOptions
    @OptionGroup(title: "Data") var data: DetectionDataOptions
    @OptionGroup(title: "Optimisation") var optimisation: OptimisationOptions
    @OptionGroup(title: "Run") var runOptions: RunOptions
    @OptionGroup(title: "Run") var threadOptions: ThreadOptions
    @OptionGroup(title: "Input limits", visibility: .hidden) var limits: LimitOptions

    func run() throws {
        let options: TrainingOptions, loss: HungarianLoss, saved: DetectorConfig?
        var refinerLoss = RefinerLoss(boxWeight: refiner.refinerBoxWeight), onlyRefiner = false
        var startingWeights: [String: Tensor]?
        var dataOptions = data.given
        if runOptions.resume {
            let checkpoint = try Checkpoint(resuming: runOptions.out, limits: limits.value), path = checkpoint.path
            loss = try checkpoint.detectionLoss()
            options = try optimisation.trainingOptions(run: runOptions, base: checkpoint.options)
            saved = try DetectorFile.config(in: checkpoint.metadata, tensors: checkpoint.tensors, source: path)
            if let savedData = try SavedDataOptions.read(checkpoint.metadata, source: path) {
                dataOptions = try savedData.completing(dataOptions, source: path)
            }
            if let savedLoss = try checkpoint.refinerLoss() { refinerLoss = savedLoss }
            onlyRefiner = checkpoint.onlyRefiner
            startingWeights = nil
        } else if let path = refiner.addRefinerTo {
            // A trained detector's settings and weights; its own refiner, if any, is replaced by a fresh one.
            let (tensors, meta) = try SafeTensors.read(path, limits: limits.value)
            var config = try DetectorFile.config(in: meta, tensors: tensors, source: path)
            config.refiner = BoxRefiner.Config(hidden: refiner.refinerHidden)
            options = try optimisation.trainingOptions(run: runOptions, base: Recipes.detection)
            loss = detector.loss
            saved = config
            onlyRefiner = true
            startingWeights = tensors.filter { !$0.key.hasPrefix("refiner.") }
        } else {
            options = try optimisation.trainingOptions(run: runOptions, base: Recipes.detection)
            loss = detector.loss
            saved = nil
            startingWeights = nil
        }
        dataOptions = DetectionDataOptions.withDefaults(dataOptions)
        let (train, test, refresh) = try DetectionDataOptions.load(dataOptions, limits: limits.value)
        let config = saved ?? detector.config(for: train, refiner: refiner.refiner ? refiner.config : nil)
        let model = try LSTMDetector.make(config, seed: options.seed)
        if let startingWeights, let path = refiner.addRefinerTo {
            let fresh = model.stateDict().filter { $0.key.hasPrefix("refiner.") }
            try model.loadStateDict(startingWeights.merging(fresh) { kept, _ in kept }, source: path)
        } else if !runOptions.resume, let fb = options.forgetBias { model.setForgetBias(fb) }
        let c = model.config
        let second = c.refiner.map {
            ", refiner \($0.cropSize)² crops, hidden \($0.hidden)\(onlyRefiner ? " (trained alone)" : "")"
        } ?? ""
        print("LSTM detector: \(c.width)×\(c.height) → \(c.gridWidth)×\(c.gridHeight) cells,"
              + " \(c.encoderDescription), hidden \(c.hidden), \(c.maxBoxes) boxes per cell\(second):"
              + " \(model.parameterCount) parameters")
        let source = dataOptions.data
            ?? "synthetic canvases from the embedded MNIST\(refresh == nil ? "" : ", new ones every epoch")"
        print("data \(source): \(train.count) training, \(test.count) validation images; \(BLAS.threads) threads")
        let task = try DetectionTask(model: model, train: train, validation: test, loss: loss, refinerLoss: refinerLoss,
                                     onlyRefiner: onlyRefiner, seed: options.seed)
        task.refresh = refresh
        let result = try fit(task, options: options, out: runOptions.out, timeLimit: runOptions.timeLimit,
                             limits: limits.value,
                             metadata: [SavedDataOptions.key: dataOptions.json], resume: runOptions.resume)
        if let last = result.history.last {
            print(String(format: "done in %.0f s: validation AP %.4f, AP50 %.4f after %d epochs;"
                         + " best model %@, log %@, plot %@",
                         result.seconds, last.validationAP, last.validationAP50, last.epoch,
                         result.folder.bestModel, result.folder.log, result.folder.plot))
        }
    }
}

/// The detector to train and its loss (a resumed run, or one adding a refiner, takes the file's detector instead).
struct DetectorOptions: ParsableArguments {
    @Option(help: "Image encoder: convolutions, ReNet sweeps, or both.") var encoder: DetectorConfig.Encoder = .conv
    @Option(help: ArgumentHelp("Convolution channels.", valueName: "n,..."))
    var convWidths: CommaList<Int> = [16, 32, 64, 64, 64]
    @Option(help: ArgumentHelp("Width of each ReNet sweep.", valueName: "n,..."))
    var renetWidths: CommaList<Int> = [64, 64]
    @Option(help: ArgumentHelp("Decoder LSTM hidden size.", valueName: "n")) var hidden: Int = 128
    @Option(help: ArgumentHelp("Boxes per grid cell.", valueName: "n")) var maxBoxes: Int = 3
    @Flag(inversion: .prefixedNo, help: "The head also reads the cell's feature.")
    var skipFeatures = true
    @Flag(inversion: .prefixedNo, help: "The head also reads the finer map (default: with conv).")
    var fineFeatures: Bool?
    @Option(help: ArgumentHelp("Weight of the L1 box loss.", valueName: "w")) var boxWeight: Float = 5
    @Option(help: ArgumentHelp("Weight of the class cross-entropy.", valueName: "w")) var classWeight: Float = 3
    @Option(help: ArgumentHelp("Weight of the GIoU box loss.", valueName: "w")) var iouWeight: Float = 2

    func validate() throws {
        guard (1...8192).contains(hidden) else { throw ValidationError("--hidden must be in 1...8192, got \(hidden)") }
        guard (1...64).contains(maxBoxes) else {
            throw ValidationError("--max-boxes must be in 1...64, got \(maxBoxes)")
        }
        if fineFeatures == true && !encoder.hasConvolutions {
            throw ValidationError("--fine-features: --encoder \(encoder.rawValue) has no fine features"
                                  + " (no convolutions)")
        }
        for (name, value) in [("--box-weight", boxWeight), ("--class-weight", classWeight),
                              ("--iou-weight", iouWeight)] {
            guard value >= 0, value.isFinite else {
                throw ValidationError("\(name) must be finite and ≥ 0, got \(value)")
            }
        }
    }

    var loss: HungarianLoss { HungarianLoss(boxWeight: boxWeight, classWeight: classWeight, iouWeight: iouWeight) }

    /// The detector for images and classes of `data`.
    func config(for data: DetectionDataset, refiner: BoxRefiner.Config?) -> DetectorConfig {
        DetectorConfig(height: data.height, width: data.width, channels: data.channels, encoder: encoder,
                       convWidths: convWidths.values, renetWidths: renetWidths.values, hidden: hidden,
                       maxBoxes: maxBoxes, skipFeatures: skipFeatures, fineFeatures: fineFeatures,
                       classNames: data.classNames, categoryIDs: data.categoryIDs, refiner: refiner)
    }
}

/// The second stage: a refiner that re-reads each detection's neighbourhood (its class and edges).
struct RefinerOptions: ParsableArguments {
    @Flag(help: "Add a refiner, trained beside the detector.") var refiner = false
    @Option(help: ArgumentHelp("Train only a new refiner on this trained detector.", valueName: "file"))
    var addRefinerTo: String?
    @Option(help: ArgumentHelp("Its LSTMs' hidden size.", valueName: "n")) var refinerHidden: Int = 128
    @Option(help: ArgumentHelp("Weight of its L1 edge loss.", valueName: "w")) var refinerBoxWeight: Float = 2

    func validate() throws {
        guard (1...4096).contains(refinerHidden) else {
            throw ValidationError("--refiner-hidden must be in 1...4096, got \(refinerHidden)")
        }
        guard refinerBoxWeight >= 0, refinerBoxWeight.isFinite else {
            throw ValidationError("--refiner-box-weight must be finite and ≥ 0, got \(refinerBoxWeight)")
        }
    }

    var config: BoxRefiner.Config { BoxRefiner.Config(hidden: refinerHidden) }
}

/// Detection data: a `detect-data` folder, or synthetic canvases made in memory from the embedded MNIST.
struct DetectionDataOptions: ParsableArguments {
    @Option(help: ArgumentHelp("A detect-data folder (default: synthetic canvases).", valueName: "dir"))
    var data: String?
    @Option(help: ArgumentHelp("Use only the first N images of each split.", valueName: "N")) var limit: Int?
    @Option(help: ArgumentHelp("Synthetic training canvases (default \(Recipes.syntheticDetection.trainCount)).",
                               valueName: "n"))
    var trainCount: Int?
    @Option(help: ArgumentHelp("Synthetic validation canvases (default \(Recipes.syntheticDetection.testCount)).",
                               valueName: "n"))
    var testCount: Int?
    @Flag(inversion: .prefixedNo, help: "New training canvases each epoch (default: on).")
    var freshCanvases: Bool?

    func validate() throws {
        for (name, value) in [("--limit", limit), ("--train-count", trainCount), ("--test-count", testCount)] {
            if let value, value <= 0 { throw ValidationError("\(name) must be positive, got \(value)") }
        }
    }

    /// The data options of this command line as checkpoints keep them (nil where not given).
    var given: SavedDataOptions {
        SavedDataOptions(data: data, limit: limit, trainCount: trainCount, testCount: testCount,
                         freshCanvases: freshCanvases)
    }

    /// `options` with the synthetic-canvas recipe filled in when it names no folder, so that a checkpoint records
    /// which canvases its run was trained on.
    static func withDefaults(_ options: SavedDataOptions) -> SavedDataOptions {
        guard options.data == nil else { return options }
        var o = options
        o.trainCount = o.trainCount ?? Recipes.syntheticDetection.trainCount
        o.testCount = o.testCount ?? Recipes.syntheticDetection.testCount
        o.freshCanvases = o.freshCanvases ?? true
        return o
    }

    /// The detection set's training and validation splits as `options` (see `withDefaults`) describe them: `data` (a
    /// `detect-data` folder), or synthetic canvases; for synthetic canvases with `freshCanvases`, also the training
    /// set of each later epoch.
    static func load(_ options: SavedDataOptions, limits: InputLimits = .default) throws
        -> (train: DetectionDataset, test: DetectionDataset, refresh: ((Int) throws -> DetectionDataset)?) {
        let limit = options.limit
        if let directory = options.data {
            let train = try DetectionDataset.load(directory: directory, split: "train", limits: limits)
            let test = try DetectionDataset.load(directory: directory, split: "test", limits: limits)
            guard train.height == test.height, train.width == test.width, train.channels == test.channels,
                  train.categoryIDs == test.categoryIDs else {
                throw CLIError("\(directory): the train and test splits differ in image size or categories")
            }
            return (train.prefix(limit ?? train.count), test.prefix(limit ?? test.count), nil)
        }
        let trainCount = options.trainCount ?? Recipes.syntheticDetection.trainCount
        let testCount = options.testCount ?? Recipes.syntheticDetection.testCount
        let trainN = min(trainCount, limit ?? trainCount), testN = min(testCount, limit ?? testCount)
        let mnist = MNIST.defaultDirectory(), digits = try MNIST.load(directory: mnist, split: .train, limits: limits)
        let train = Recipes.SyntheticDetection.trainingSet(from: digits, count: trainN, epoch: 0)
        let testDigits = try MNIST.load(directory: mnist, split: .test, limits: limits)
        let test = Recipes.SyntheticDetection.testSet(from: testDigits, count: testN)
        let refresh = { Recipes.SyntheticDetection.trainingSet(from: digits, count: trainN, epoch: $0) }
        return (train, test, options.freshCanvases ?? true ? refresh : nil)
    }
}
