import ArgumentParser
import Foundation
import LSTMVision

/// Where the images come from: MNIST IDX files (the embedded copy by default), or an image folder.
struct DataOptions: ParsableArguments {
    @Option(help: ArgumentHelp("MNIST IDX files' folder (default: the embedded data/mnist).", valueName: "dir"))
    var data: String?

    @Option(help: ArgumentHelp("Image folders instead: DIR/{train,val,test}/<class>/*.png|jpg|webp|…, any sizes"
                               + " (val/ optional).", valueName: "DIR"))
    var images: String?

    @Option(help: ArgumentHelp("Input size of --images (default: the images' own when they share one, else 32x32).",
                               valueName: "WxH"))
    var inputSize: ImageSize?

    @Option(help: ArgumentHelp("Channels of --images: 1 (grey) or 3 (RGB; default when any image is RGB).",
                               valueName: "n"))
    var channels: Int?

    @Option(help: ArgumentHelp("Preprocessing of --images after the resize (default: scale), steps: scale,"
                               + " normalize=M/S, grey, rgb2hsv, hsv2rgb, rgb2ycbcr, ycbcr2rgb, crop=WxH,"
                               + " randomcrop=WxH, resize=WxH, shift=K, rotate=D.", valueName: "spec"))
    var transform: String?

    @Option(help: ArgumentHelp("Fraction of the training images held out to choose the best epoch (default 0.1;"
                               + " not with DIR/val).", valueName: "x"))
    var validationSplit: Double?

    @Option(help: ArgumentHelp("Use only the first N images of each split.", valueName: "N"))
    var limit: Int?

    var directory: String { images ?? data ?? MNIST.defaultDirectory() }

    /// The held-out fraction when none is given.
    static let defaultValidationSplit = 0.1

    func validate() throws {
        if let limit, limit <= 0 { throw ValidationError("--limit must be positive, got \(limit)") }
        if images != nil && data != nil { throw ValidationError("--data and --images exclude each other") }
        if let channels, channels != 1 && channels != 3 {
            throw ValidationError("--channels must be 1 or 3, got \(channels)")
        }
        if let validationSplit, !(validationSplit > 0 && validationSplit < 1) {
            throw ValidationError("--validation-split must be in (0, 1), got \(validationSplit)")
        }
        if images == nil && (inputSize != nil || channels != nil || transform != nil) {
            throw ValidationError("--input-size, --channels and --transform apply to --images only")
        }
    }

    /// The training, validation and test images of a training run, and how image-folder images were prepared
    /// (nil for MNIST). Validation images come from DIR/val when it exists, else from the training split
    /// (`--validation-split`); the test split is only read here, for the score at the end.
    func loadForTraining(limits: InputLimits = .default)
        throws -> (train: ImageDataset, validation: ImageDataset, test: ImageDataset, preprocessing: Preprocessing?,
                   validationSource: String) {
        let all: ImageDataset, test: ImageDataset, preprocessing: Preprocessing?
        var validation: ImageDataset?, source = ""
        if let images {
            let p = try ImageFolder.preprocessing(for: images + "/train", width: inputSize?.width,
                                                  height: inputSize?.height, channels: channels,
                                                  steps: transform ?? "scale", limits: limits)
            try p.check(limits: limits)
            all = try ImageFolder.load(images + "/train", preprocessing: p, training: true, limits: limits)
            if FileManager.default.fileExists(atPath: images + "/val") {
                guard validationSplit == nil else {
                    throw CLIError("\(images)/val exists: it is the validation split, so --validation-split"
                                   + " is not used")
                }
                validation = try ImageFolder.load(images + "/val", preprocessing: p, training: false,
                                                  classNames: all.classNames, limits: limits)
                source = images + "/val"
            }
            test = try ImageFolder.load(images + "/test", preprocessing: p, training: false,
                                        classNames: all.classNames, limits: limits)
            preprocessing = p
        } else {
            all = try MNIST.load(directory: directory, split: .train, limits: limits)
            test = try MNIST.load(directory: directory, split: .test, limits: limits)
            preprocessing = nil
        }
        var train = limit.map { all.prefix($0) } ?? all
        if let v = validation {
            validation = limit.map { v.prefix($0) } ?? v
        } else {
            guard train.count >= 2 else { throw CLIError("\(directory): too few training images to hold some out") }
            let fraction = validationSplit ?? Self.defaultValidationSplit
            (train, validation) = train.splitValidation(fraction: fraction)
            source = String(format: "%g%% of the training images", fraction * 100)
        }
        return (train, validation!, limit.map { test.prefix($0) } ?? test, preprocessing, source)
    }

    /// One split as it is, for commands that only read (MNIST, or an image folder prepared as `transform` says).
    func load(_ split: MNIST.Split, limits: InputLimits = .default) throws -> ImageDataset {
        let set: ImageDataset
        if let images {
            let pipeline = try ImagePipeline(spec: transform ?? "scale", limits: limits)
            set = try ImageFolder.load(images + "/" + split.rawValue, pipeline: pipeline, limits: limits)
        } else {
            set = try MNIST.load(directory: directory, split: split, limits: limits)
        }
        return limit.map { set.prefix($0) } ?? set
    }
}

/// An image size given as WxH (or one number for a square).
struct ImageSize: ExpressibleByArgument, Codable, Equatable, CustomStringConvertible {
    var width: Int, height: Int

    init?(argument: String) {
        let parts = argument.lowercased().split(separator: "x", omittingEmptySubsequences: false).map { Int($0) }
        guard (1...2).contains(parts.count), let w = parts[0], let h = parts.last!, w > 0, h > 0,
              w <= 1 << 20, h <= 1 << 20 else { return nil }
        width = w
        height = h
    }

    var description: String { "\(width)x\(height)" }
}

/// An image size given as WxH or WxHxC (channels 1, 3 or 4).
struct ImageShape: ExpressibleByArgument, Equatable {
    var width: Int, height: Int, channels: Int?

    init?(argument: String) {
        let parts = argument.lowercased().split(separator: "x", omittingEmptySubsequences: false).map { Int($0) }
        guard (2...3).contains(parts.count), let w = parts[0], let h = parts[1], (1...4096).contains(w),
              (1...4096).contains(h) else { return nil }
        width = w
        height = h
        channels = nil
        if parts.count == 3 {
            guard let c = parts[2], [1, 3, 4].contains(c) else { return nil }
            channels = c
        }
    }
}

/// What a model file without LSTMVision's metadata (a PyTorch state_dict) leaves open: the image size of its data.
struct StateDictOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Image size of a model file without LSTMVision's metadata (a PyTorch state_dict):"
                               + " tells a row- from a patch-LSTM, sizes a non-square ReNet (default: the data's"
                               + " when known, else a square image).", valueName: "WxH[xC]"))
    var imageSize: ImageShape?

    /// The hints `--image-size` gives, or `data`'s size when it is not given.
    func hints(data: ModelFileHints = .none) -> ModelFileHints {
        imageSize.map { ModelFileHints(width: $0.width, height: $0.height, channels: $0.channels) } ?? data
    }
}

/// The options that decide a training run's data, as `train` keeps them in its checkpoints (metadata entry
/// `data`): `train --resume` reads the same data when they are not given again, and refuses different ones,
/// since an exact resumption needs the very same training images (the trainers also check their fingerprint).
/// Detection adds its synthetic-canvas options, a COCO validation file and an input size (`images` is then a COCO
/// file's image folder); classification leaves them nil.
struct SavedDataOptions: Codable, Equatable {
    var data: String?, images: String?, transform: String?, limit: Int?
    var validationSplit: Double?, inputSize: String?, channels: Int?
    var trainCount: Int?, testCount: Int?, freshCanvases: Bool?
    var validation: String?, size: String?

    static let key = "data"

    /// The options saved in a state file's metadata, or none (a checkpoint written before they were kept).
    static func read(_ metadata: [String: String], source: String) throws -> SavedDataOptions? {
        guard let json = metadata[key] else { return nil }
        return try InputLimits.decodeJSON(SavedDataOptions.self, from: Data(json.utf8), source: source,
                                          what: "data options")
    }

    /// The JSON kept in the state file, keys sorted.
    var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }

    /// `given` (the options of this command line, nil where not given) completed from `self` (the checkpoint's).
    /// An option given with another value than the checkpoint's is an error naming both; one the checkpoint left
    /// unset may be given (the trainers' fingerprint check still refuses other training images).
    func completing(_ given: SavedDataOptions, source: String) throws -> SavedDataOptions {
        func pick<T: Equatable>(_ name: String, _ saved: T?, _ new: T?) throws -> T? {
            guard let new else { return saved }
            guard saved == nil || saved == new else {
                throw CLIError("\(source): the run was trained with \(name) \(saved!), not \(new):"
                               + " a resumed run must read the same data"
                               + " (leave the data options out to reuse the checkpoint's)")
            }
            return new
        }
        return SavedDataOptions(data: try pick("--data", data, given.data),
                                images: try pick("--images", images, given.images),
                                transform: try pick("--transform", transform, given.transform),
                                limit: try pick("--limit", limit, given.limit),
                                validationSplit: try pick("--validation-split", validationSplit, given.validationSplit),
                                inputSize: try pick("--input-size", inputSize, given.inputSize),
                                channels: try pick("--channels", channels, given.channels),
                                trainCount: try pick("--train-count", trainCount, given.trainCount),
                                testCount: try pick("--test-count", testCount, given.testCount),
                                freshCanvases: try pick("--fresh-canvases", freshCanvases, given.freshCanvases),
                                validation: try pick("--validation", validation, given.validation),
                                size: try pick("--size", size, given.size))
    }
}

extension DataOptions {
    /// The options given on the command line, as saved in checkpoints.
    var saved: SavedDataOptions {
        SavedDataOptions(data: data, images: images, transform: transform, limit: limit,
                         validationSplit: validationSplit, inputSize: inputSize?.description, channels: channels)
    }

    /// These options replaced by `saved` (all of them: `saved` already holds the command line's where given).
    func replacing(with saved: SavedDataOptions) -> DataOptions {
        var o = self
        o.data = saved.data
        o.images = saved.images
        o.transform = saved.transform
        o.limit = saved.limit
        o.validationSplit = saved.validationSplit
        o.inputSize = saved.inputSize.flatMap(ImageSize.init(argument:))
        o.channels = saved.channels
        return o
    }
}

/// The limits on outside input (docs/limits.md), on every command that reads files: `value` is what the command
/// passes to the library's readers; `LSTMVisionCommand.main` checks them before the command runs.
struct LimitOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Largest file read (images, MNIST IDX, COCO and YOLO files, model and state files), and"
                               + " largest decompressed IDX data, in bytes"
                               + " (default \(InputLimits.default.maxFileBytes))."))
    var maxFileBytes: Int?
    @Option(help: "Largest image width or height accepted, in pixels (default \(InputLimits.default.maxWidth)).")
    var maxImageSide: Int?
    @Option(help: "Largest image accepted, in pixels (default \(InputLimits.default.maxPixels)).")
    var maxImagePixels: Int?
    @Option(help: "Largest safetensors JSON header accepted, in bytes (default \(InputLimits.default.maxHeaderBytes)).")
    var maxHeaderBytes: Int?
    @Option(help: ArgumentHelp("Most memory an image folder's decoded images may take together, in bytes"
                               + " (default \(InputLimits.default.maxDatasetBytes))."))
    var maxDatasetBytes: Int?

    /// Refuses a limit given that is not positive.
    func check() throws {
        for (name, value) in [("--max-file-bytes", maxFileBytes), ("--max-image-side", maxImageSide),
                              ("--max-image-pixels", maxImagePixels), ("--max-header-bytes", maxHeaderBytes),
                              ("--max-dataset-bytes", maxDatasetBytes)] {
            if let value, value <= 0 { throw CLIError("\(name) must be positive, got \(value)") }
        }
    }

    /// The library's defaults, with the options given.
    var value: InputLimits {
        var limits = InputLimits.default
        if let maxFileBytes { limits.maxFileBytes = maxFileBytes }
        if let maxImageSide { (limits.maxWidth, limits.maxHeight) = (maxImageSide, maxImageSide) }
        if let maxImagePixels { limits.maxPixels = maxImagePixels }
        if let maxHeaderBytes { limits.maxHeaderBytes = maxHeaderBytes }
        if let maxDatasetBytes { limits.maxDatasetBytes = maxDatasetBytes }
        return limits
    }

    /// The option that sets `setting`.
    static func flag(for setting: InputLimits.Setting) -> String {
        switch setting {
        case .maxFileBytes: return "--max-file-bytes"
        case .maxWidth, .maxHeight: return "--max-image-side"
        case .maxPixels: return "--max-image-pixels"
        case .maxDatasetBytes: return "--max-dataset-bytes"
        case .maxHeaderBytes: return "--max-header-bytes"
        }
    }

    /// "; raise with --max-file-bytes" for an error refusing input over limits (`InputLimitError`), else "".
    static func hint(for error: any Error) -> String {
        guard let passed = (error as? any InputLimitError)?.exceededLimits, !passed.isEmpty else { return "" }
        var flags: [String] = []
        for flag in passed.map(flag(for:)) where !flags.contains(flag) { flags.append(flag) }
        return "; raise with " + flags.joined(separator: ", ")
    }
}

/// A command that reads outside files, and so takes `LimitOptions`.
protocol ReadsFiles {
    var limits: LimitOptions { get }
}

/// Refuses a time budget that is negative, not a number, or over a year; `name` is its option.
func checkSeconds(_ value: Double?, _ name: String) throws {
    if let value, !(value >= 0 && value <= 365 * 86_400) {
        throw ValidationError("\(name) must be a number of seconds in 0...31536000, got \(value)")
    }
}

/// The number of threads for matrix products and parallel loops (default: all cores); `LSTMVisionCommand.main` runs
/// the command with it (`Parallel.withThreads`).
/// `--precision`: the number format of the LSTMs' weight products in inference.
struct PrecisionOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The LSTMs' weight products: fp32 (exact), bf16 or int8 weights (AVX-512 BF16 / VNNI"
                               + " instructions; without them a plain, slow version).", valueName: "fp32|bf16|int8"))
    var precision: Precision = .fp32
}

struct ThreadOptions: ParsableArguments {
    @Option(help: "Threads for matrix products (default: all cores).")
    var threads: Int?

    /// The thread count given, checked, or nil when none was.
    func count() throws -> Int? {
        if let threads, !(1...256).contains(threads) { throw CLIError("--threads must be in 1...256, got \(threads)") }
        return threads
    }
}

// Range checks at parse time, so that a bad value fails with its flag before any work.
extension LimitOptions {
    func validate() throws {
        for (name, value) in [("--max-file-bytes", maxFileBytes), ("--max-image-side", maxImageSide),
                              ("--max-image-pixels", maxImagePixels), ("--max-header-bytes", maxHeaderBytes),
                              ("--max-dataset-bytes", maxDatasetBytes)] {
            if let value, value <= 0 { throw ValidationError("\(name) must be positive, got \(value)") }
        }
    }
}

extension ThreadOptions {
    func validate() throws {
        if let threads, !(1...256).contains(threads) {
            throw ValidationError("--threads must be in 1...256, got \(threads)")
        }
    }
}

/// A command that takes `ThreadOptions`.
protocol UsesThreads {
    var threadOptions: ThreadOptions { get }
}

/// Prints a value as one line of JSON.
func printJSON<T: Encodable>(_ value: T) throws {
    let enc = JSONEncoder()
    enc.outputFormatting = [.sortedKeys]
    enc.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf",
                                                              nan: "nan")
    print(String(decoding: try enc.encode(value), as: UTF8.self))
}
