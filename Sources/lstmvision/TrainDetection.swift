import ArgumentParser
import Foundation
import LSTMVision

/// `lstmvision train detection`: trains an `LSTMDetector`, scoring COCO AP on the validation split after each epoch:
/// the dataset's own (its val or test split), or, with `--validation-split`, training images held out, the test split
/// then scored once with the best model at the end.
struct TrainDetection: ParsableCommand, ReadsFiles, UsesThreads {
    static let configuration = CommandConfiguration(
        commandName: TrainTask.detection.rawValue,
        abstract: "Train an LSTM object detector (synthetic canvases or detect-data).",
        discussion: recipeDescription(Recipes.detection))

    @OptionGroup(title: "Detector") var detector: DetectorOptions
    @OptionGroup(title: "Refiner") var refiner: RefinerOptions
    @OptionGroup(title: "Data") var data: DetectionDataOptions
    @OptionGroup(title: "Augmentation") var augment: DetectionAugmentationOptions
    @OptionGroup(title: "Optimisation") var optimisation: OptimisationOptions
    @OptionGroup(title: "Run") var runOptions: RunOptions
    @OptionGroup(title: "Run") var threadOptions: ThreadOptions
    @OptionGroup(title: "Input limits", visibility: .hidden) var limits: LimitOptions
    /// A `tune` trial: the test split is not scored (the search scores its best model once, at the end).
    @Flag(help: .hidden) var noTestScore = false

    func run() throws {
        let options: TrainingOptions, loss: HungarianLoss, saved: DetectorConfig?
        var refinerLoss = RefinerLoss(boxWeight: refiner.refinerBoxWeight), onlyRefiner = false
        var startingWeights: [String: Tensor]?
        var dataOptions = data.given
        var augmentation = augment.augmentation ?? DetectionAugmentation()
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
            let savedAugmentation = try DetectionTask.augmentation(in: checkpoint.metadata, source: path)
            if let given = augment.augmentation, given != savedAugmentation {
                throw CLIError("\(path): the run was trained with augmentation \(savedAugmentation), not \(given):"
                               + " a resumed run must draw the same batches (leave the augmentation options out)")
            }
            augmentation = savedAugmentation
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
        let loaded = try DetectionDataOptions.load(dataOptions, detector: saved, limits: limits.value)
        let (train, validation, refresh) = (loaded.train, loaded.validation, loaded.refresh)
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
        let held = validation.map(\.count.description) ?? "no"
        print("data \(loaded.description): \(train.count) training, \(held) validation"
              + (loaded.test.map { " (\(loaded.validationSource)), \($0.count) test" } ?? "")
              + " images; \(BLAS.threads) threads")
        if augmentation.isEnabled { print("augmentation: \(augmentation)") }
        let task = try DetectionTask(model: model, train: train, validation: validation, loss: loss,
                                     refinerLoss: refinerLoss,
                                     onlyRefiner: onlyRefiner, augmentation: augmentation, seed: options.seed)
        task.refresh = refresh
        let result = try fit(task, options: options, out: runOptions.out, timeLimit: runOptions.timeLimit,
                             limits: limits.value,
                             metadata: [SavedDataOptions.key: dataOptions.json], resume: runOptions.resume,
                             tensorBoard: runOptions.tensorboard, writesTensorBoard: !runOptions.noTensorboard,
                             shards: runOptions.shards, collectiveTimeout: runOptions.collectiveTimeout)
        guard Distributed.current.isRoot, let last = result.history.last else { return }
        print(String(format: "done in %.0f s: validation AP %.4f, AP50 %.4f after %d epochs;"
                     + " best model %@, log %@, plot %@",
                     result.seconds, last.validationAP, last.validationAP50, last.epoch,
                     result.folder.bestModel, result.folder.log, result.folder.plot))
        guard let test = loaded.test, !noTestScore,
              let best = result.history.filter({ !$0.validationAP.isNaN })
                .max(by: { $0.validationAP < $1.validationAP }) else { return }
        let score = try DetectionTestScore.write(result.folder, test: test, loss: loss, epoch: best.epoch,
                                                 limits: limits.value)
        print(String(format: "test AP %.4f, AP50 %.4f on %d test images (%@), scored once with the best model (epoch"
                     + " %d); test score %@", score.ap, score.ap50, score.images, loaded.testSource, best.epoch,
                     result.folder.testScore))
    }
}

/// What `train detection --validation-split` writes after the last epoch: the best model's COCO AP on the test
/// split (`OUT/test.json`).
struct DetectionTestScore: Codable {
    let ap: Double
    let ap50: Double
    let loss: Double
    let images: Int
    let bestEpoch: Int
    let model: String

    enum CodingKeys: String, CodingKey { case ap = "AP", ap50 = "AP50", loss, images, model, bestEpoch = "best_epoch" }

    /// Scores the run's best model on `test` and writes `OUT/test.json` atomically.
    static func write(_ folder: RunFolder, test: DetectionDataset, loss: HungarianLoss, epoch: Int,
                      limits: InputLimits) throws -> DetectionTestScore {
        let model = try DetectorFile.load(folder.bestModel, limits: limits)
        let e = try DetectionEvaluation.run(model, on: test, loss: loss)
        let score = DetectionTestScore(ap: e.metrics.AP, ap50: e.metrics.AP50, loss: e.loss, images: test.count,
                                       bestEpoch: epoch, model: folder.bestModel)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        try AtomicFile.write(try encoder.encode(score), to: folder.testScore)
        return score
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

/// Random changes to the training batches (DetectionAugmentation): all off by default; a resumed run keeps its own.
struct DetectionAugmentationOptions: ParsableArguments {
    @Flag(help: "Random scale (±25%) and crop of each training image; boxes follow, clipped (docs/detection-data.md).")
    var augment = false
    @Option(help: ArgumentHelp("The scale range of --augment: factors in [1-F, 1+F].", valueName: "F"))
    var augmentScale: Double?
    @Flag(help: "Random horizontal flips (off by default: flipped digits are other shapes).") var flip = false
    @Option(help: ArgumentHelp("Colour jitter: brightness, contrast and saturation ranges (one value: all three).",
                               valueName: "b[,c,s]"))
    var jitter: CommaList<Double>?

    func validate() throws {
        if let jitter, jitter.values.count != 1 && jitter.values.count != 3 {
            throw ValidationError("--jitter takes one value or three (brightness,contrast,saturation)")
        }
        try augmentation?.validate()
    }

    /// The augmentation these options ask for; nil when none is given.
    var augmentation: DetectionAugmentation? {
        guard augment || augmentScale != nil || flip || jitter != nil else { return nil }
        let j = jitter?.values ?? []
        func range(_ k: Int) -> Double { j.count == 3 ? j[k] : j.first ?? 0 }
        return DetectionAugmentation(scale: augmentScale ?? (augment ? 0.25 : 0), flip: flip,
                                     brightness: range(0), contrast: range(1), saturation: range(2))
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

/// Detection data: a `detect-data` folder, a COCO annotation file, a YOLO dataset (Ultralytics' data.yaml), or
/// synthetic canvases made in memory from the embedded MNIST (docs/detection-data.md).
struct DetectionDataOptions: ParsableArguments {
    @Option(help: ArgumentHelp("A detect-data folder (train/, test/), a COCO annotation .json, or a YOLO dataset"
                               + " (data.yaml, or a folder holding one); default: synthetic canvases.",
                               valueName: "path"))
    var data: String?
    @Option(help: ArgumentHelp("The images of a COCO --data file (default: images/ beside it, or its folder).",
                               valueName: "dir"))
    var images: String?
    @Option(help: ArgumentHelp("A COCO annotation file to validate on (images beside it), with a COCO --data.",
                               valueName: "file"))
    var validation: String?
    @Option(help: ArgumentHelp("A new detector's input size; images are letterboxed to it (default: the images'"
                               + " common size rounded up to the stride, 64x64 when sizes differ).",
                               valueName: "W[xH]"))
    var size: String?
    @Option(help: ArgumentHelp("Use only the first N images of each split.", valueName: "N")) var limit: Int?
    @Option(help: ArgumentHelp("Synthetic training canvases (default \(Recipes.syntheticDetection.trainCount)).",
                               valueName: "n"))
    var trainCount: Int?
    @Option(help: ArgumentHelp("Synthetic validation canvases (default \(Recipes.syntheticDetection.testCount)).",
                               valueName: "n"))
    var testCount: Int?
    @Flag(inversion: .prefixedNo, help: "New training canvases each epoch (default: on).")
    var freshCanvases: Bool?
    @Option(help: ArgumentHelp("Fraction of the training images held out to choose the best epoch; the validation"
                               + " or test split is then scored once at the end (default: validate on that split).",
                               valueName: "x"))
    var validationSplit: Double?

    func validate() throws {
        for (name, value) in [("--limit", limit), ("--train-count", trainCount), ("--test-count", testCount)] {
            if let value, value <= 0 { throw ValidationError("\(name) must be positive, got \(value)") }
        }
        if let size { _ = try Self.parseSize(size) }
        if let validationSplit, !(validationSplit > 0 && validationSplit < 1) {
            throw ValidationError("--validation-split must be in (0, 1), got \(validationSplit)")
        }
        if data == nil, images != nil || validation != nil || size != nil {
            throw ValidationError("--images, --validation and --size need --data")
        }
    }

    /// `W` or `WxH` (also `W×H`), each side in 1...4096.
    static func parseSize(_ text: String) throws -> DetectionDataset.InputSize {
        let parts = text.lowercased().replacingOccurrences(of: "×", with: "x").split(separator: "x",
                                                                                     omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let w = Int(parts[0]), let h = Int(parts.last!), (1...4096).contains(w),
              (1...4096).contains(h) else {
            throw ValidationError("--size must be W or WxH with sides in 1...4096, got '\(text)'")
        }
        return .init(width: w, height: h)
    }

    /// The data options of this command line as checkpoints keep them (nil where not given).
    var given: SavedDataOptions {
        SavedDataOptions(data: data, images: images, limit: limit, validationSplit: validationSplit,
                         trainCount: trainCount, testCount: testCount,
                         freshCanvases: freshCanvases, validation: validation,
                         size: try? size.map { try Self.parseSize($0) }.map { "\($0.width)x\($0.height)" })
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

    /// What `load` read: the training images; the validation split, the dataset's own (none when it has none) or,
    /// with a validation split, images held out from training, the dataset's own split then the test split; the
    /// training set of each later epoch for fresh synthetic canvases; and what the data is, for the progress line.
    struct Loaded {
        var train: DetectionDataset, validation: DetectionDataset?, test: DetectionDataset?
        var refresh: ((Int) throws -> DetectionDataset)?
        var description: String
        var validationSource = "the dataset's validation split", testSource = "the dataset's validation split"

        /// With `fraction`, the validation split becomes the test split and `fraction` of the training images
        /// (seeded, `DetectionDataset.splitValidation`) the validation split.
        func holdingOut(_ fraction: Double?) -> Loaded {
            guard let fraction, train.count >= 2 else { return self }
            var o = self
            (o.train, o.validation) = train.splitValidation(fraction: fraction)
            o.test = validation
            o.validationSource = String(format: "%g%% of the training images", fraction * 100)
            return o
        }
    }

    /// The detection set as `options` (see `withDefaults`) describe them. `detector` (a resumed or loaded detector's
    /// config) fixes the input size and channels; otherwise `options.size` or `InputSize.default` and the first
    /// image's channels.
    static func load(_ options: SavedDataOptions, detector: DetectorConfig? = nil,
                     limits: InputLimits = .default) throws -> Loaded {
        let limit = options.limit
        let wanted = try detector.map { DetectionDataset.InputSize(width: $0.width, height: $0.height) }
            ?? options.size.map { try parseSize($0) }
        guard let path = options.data else {
            if let wanted, wanted != .init(width: 64, height: 64) {
                throw CLIError("the synthetic canvases are 64×64; a \(wanted) detector needs --data")
            }
            let trainCount = options.trainCount ?? Recipes.syntheticDetection.trainCount
            let testCount = options.testCount ?? Recipes.syntheticDetection.testCount
            let trainN = min(trainCount, limit ?? trainCount), testN = min(testCount, limit ?? testCount)
            let mnist = MNIST.defaultDirectory()
            var digits = try MNIST.load(directory: mnist, split: .train, limits: limits), held: DetectionDataset?
            if let fraction = options.validationSplit {
                // Validation canvases from training digits that the training canvases never show.
                let (kept, heldDigits) = digits.splitValidation(fraction: fraction)
                digits = kept
                held = Recipes.SyntheticDetection.validationSet(
                    from: heldDigits, count: max(1, Int((fraction * Double(trainN)).rounded())))
            }
            let train = Recipes.SyntheticDetection.trainingSet(from: digits, count: trainN, epoch: 0)
            let testDigits = try MNIST.load(directory: mnist, split: .test, limits: limits)
            let test = Recipes.SyntheticDetection.testSet(from: testDigits, count: testN)
            let refresh = { [digits] in Recipes.SyntheticDetection.trainingSet(from: digits, count: trainN, epoch: $0) }
            var loaded = Loaded(train: train, validation: held ?? test, test: held.map { _ in test },
                                refresh: options.freshCanvases ?? true ? refresh : nil,
                                description: "synthetic canvases from the embedded MNIST"
                                    + (options.freshCanvases ?? true ? ", new ones every epoch" : ""))
            loaded.testSource = "canvases of MNIST's test digits"
            loaded.validationSource = held == nil ? loaded.testSource : String(
                format: "canvases of the %g%% of MNIST's training digits held out", options.validationSplit! * 100)
            return loaded
        }
        let source = try DetectionSource(path: path, images: options.images, validation: options.validation,
                                         limits: limits)
        let trainCOCO = try source.train()
        let size = wanted ?? DetectionDataset.InputSize.default(for: trainCOCO.coco.images,
                                                                 stride: DetectorConfig().stride)
        let train = try DetectionDataset.make(trainCOCO.coco, source: trainCOCO.source, images: trainCOCO.images,
                                              channels: detector?.channels, size: size, limits: limits)
        var test: DetectionDataset?
        if let v = try source.validation() {
            test = try DetectionDataset.make(v.coco, source: v.source, images: v.images, channels: train.channels,
                                             size: size, limits: limits)
            guard test!.categoryIDs == train.categoryIDs, test!.classNames == train.classNames else {
                throw CLIError("\(v.source): its categories differ from the training set's (\(trainCOCO.source))")
            }
        }
        for warning in train.warnings + (test?.warnings ?? []) where Distributed.current.isRoot {   // once
            FileHandle.standardError.write(Data("lstmvision: warning: \(warning)\n".utf8))
        }
        let resized = train.letterboxes.filter { !$0.isIdentity }.count + (test?.letterboxes ?? []).filter {
            !$0.isIdentity
        }.count
        let note = resized > 0 ? ", \(resized) images letterboxed to \(size)" : ""
        return Loaded(train: train.prefix(limit ?? train.count), validation: test.map { $0.prefix(limit ?? $0.count) },
                      test: nil, refresh: nil, description: "\(path) (\(source.kind)\(note))")
            .holdingOut(options.validationSplit)
    }
}

extension DetectionDataOptions {
    /// The split a trained detector is scored on (`evaluate --model`): the dataset's validation or test split, or
    /// the synthetic test canvases, fitted to `detector`'s input; and what it is, for the report.
    static func loadTest(_ options: SavedDataOptions, detector: DetectorConfig,
                         limits: InputLimits = .default) throws -> (DetectionDataset, String) {
        let size = DetectionDataset.InputSize(width: detector.width, height: detector.height)
        guard let path = options.data else {
            guard size == .init(width: 64, height: 64) else {
                throw CLIError("the synthetic canvases are 64×64; a \(size) detector needs --data")
            }
            let count = options.testCount ?? Recipes.syntheticDetection.testCount
            let digits = try MNIST.load(directory: MNIST.defaultDirectory(), split: .test, limits: limits)
            let test = Recipes.SyntheticDetection.testSet(from: digits, count: min(count, options.limit ?? count))
            return (test, "synthetic canvases of MNIST's test digits")
        }
        let source = try DetectionSource(path: path, images: options.images, validation: options.validation,
                                         limits: limits)
        guard let split = try source.validation() else {
            throw CLIError("\(path): no validation or test split to score (COCO: give it with --validation)")
        }
        let test = try DetectionDataset.make(split.coco, source: split.source, images: split.images,
                                             channels: detector.channels, size: size, limits: limits)
        guard test.classNames == detector.classNames else {
            throw CLIError("\(split.source): its categories differ from the detector's")
        }
        return (test.prefix(options.limit ?? test.count), split.source)
    }
}

/// Where `--data` points: a detect-data folder, a COCO annotation file, or a YOLO dataset; each split as a COCO
/// dataset with the folder its file names are relative to.
struct DetectionSource {
    enum Kind: CustomStringConvertible {
        case detectData(String), coco(annotations: String, images: String, validation: String?)
        case yolo(YOLO.DataFile, file: String)
        var description: String {
            switch self {
            case .detectData: "detect-data folder"
            case .coco: "COCO"
            case .yolo: "YOLO"
            }
        }
    }
    let kind: Kind
    let limits: InputLimits

    init(path: String, images: String?, validation: String?, limits: InputLimits) throws {
        self.limits = limits
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDirectory) else { throw CLIError("\(path): no such file") }
        let ext = (path as NSString).pathExtension.lowercased()
        let yaml = isDirectory.boolValue
            ? ["data.yaml", "data.yml"].map { (path as NSString).appendingPathComponent($0) }
                .first(where: { fm.fileExists(atPath: $0) })
            : (["yaml", "yml"].contains(ext) ? path : nil)
        if isDirectory.boolValue, yaml == nil,
           fm.fileExists(atPath: (path as NSString).appendingPathComponent("train/annotations.json")) {
            kind = .detectData(path)
        } else if let yaml {
            kind = .yolo(try YOLO.DataFile.read(yaml, limits: limits), file: yaml)
        } else if !isDirectory.boolValue, ext == "json" {
            kind = .coco(annotations: path, images: images ?? Self.imagesBeside(path), validation: validation)
        } else {
            throw CLIError("\(path): not a detect-data folder (train/annotations.json), a YOLO dataset (data.yaml)"
                           + " or a COCO annotation file (.json)")
        }
        switch kind {
        case .coco: break
        default:
            if images != nil || validation != nil {
                throw CLIError("--images and --validation go with a COCO annotation file as --data")
            }
        }
    }

    /// A COCO file's images: the `images` folder beside it when there is one, else its own folder.
    static func imagesBeside(_ annotations: String) -> String {
        let folder = (annotations as NSString).deletingLastPathComponent
        let images = (folder as NSString).appendingPathComponent("images")
        return FileManager.default.fileExists(atPath: images) ? images : (folder.isEmpty ? "." : folder)
    }

    typealias Split = (coco: COCODataset, source: String, images: String)

    func train() throws -> Split {
        switch kind {
        case let .detectData(dir): return try Self.coco(dir + "/train/annotations.json", dir + "/train/images", limits)
        case let .coco(annotations, images, _): return try Self.coco(annotations, images, limits)
        case let .yolo(file, path): return (try file.read(split: file.train, source: path, limits: limits), path,
                                            file.root)
        }
    }

    func validation() throws -> Split? {
        switch kind {
        case let .detectData(dir): return try Self.coco(dir + "/test/annotations.json", dir + "/test/images", limits)
        case let .coco(_, _, validation):
            return try validation.map { try Self.coco($0, Self.imagesBeside($0), limits) }
        case let .yolo(file, path):
            return file.val.isEmpty ? nil : (try file.read(split: file.val, source: path, limits: limits), path,
                                             file.root)
        }
    }

    static func coco(_ annotations: String, _ images: String, _ limits: InputLimits) throws -> Split {
        (try COCODataset.read(annotations, limits: limits), annotations, images)
    }
}
