import Foundation

/// What turns an image file's pixels into a classifier's input: conversion to the model's channels, a bilinear
/// resize to its input size (when the image has another), then the steps of an image-pipeline spec (by default
/// `scale`, to [0, 1]). Training records it in the model file (`metadataKey`), so that `eval --images` and
/// `predict` prepare users' images exactly as the training images were.
public struct Preprocessing: Codable, Sendable, Equatable, CustomStringConvertible {
    /// The size every image is resized to before `steps` (the model's input size unless a step crops).
    public var width: Int
    public var height: Int
    /// 1 (grey, BT.601 luma of RGB images) or 3 (RGB; grey images repeated in each channel).
    public var channels: Int
    /// Image-pipeline steps after the resize (`ImageTransform.parse`); their random steps run only in training:
    /// `prepare` turns `randomcrop` into a centre crop and leaves out random shifts and rotations.
    public var steps: String

    public init(width: Int, height: Int, channels: Int, steps: String = "scale") {
        self.width = width
        self.height = height
        self.channels = channels
        self.steps = steps
    }

    /// The model file's metadata key.
    public static let metadataKey = "lstmvision.preprocessing"

    /// What a model file without a recorded preprocessing gets: its input size and channels, pixels / 255 (as
    /// MNIST's loader gives them).
    public static func standard(for config: ModelConfig) -> Preprocessing {
        Preprocessing(width: config.width, height: config.height, channels: config.channels)
    }

    /// The recorded preprocessing of a model file's metadata, or nil when it has none.
    public static func read(_ metadata: [String: String], source: String) throws -> Preprocessing? {
        guard let json = metadata[metadataKey] else { return nil }
        let p = try InputLimits.decodeJSON(Preprocessing.self, from: Data(json.utf8), source: source,
                                           what: metadataKey + " metadata")
        do { try p.check() } catch { throw DataError.invalid("\(source): \(metadataKey): \(error)") }
        return p
    }

    /// The JSON kept in a model file, keys sorted.
    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }

    /// Refuses sizes outside `limits`, channels other than 1 or 3, and steps that do not parse.
    public func check(limits: InputLimits = .default) throws {
        guard width > 0, height > 0, limits.allows(width: width, height: height) else {
            throw DataError.invalid("input size \(width)×\(height) is not allowed (positive, within the image limits)")
        }
        guard channels == 1 || channels == 3 else {
            throw DataError.invalid("channels must be 1 or 3, got \(channels)")
        }
        _ = try ImagePipeline(spec: steps, limits: limits)
    }

    /// The pipeline of training: conversion and resize are done by `convert`; then every step of `steps`.
    public func trainingPipeline(limits: InputLimits = .default) throws -> ImagePipeline {
        try ImagePipeline(spec: steps, limits: limits)
    }

    /// The pipeline of evaluation and prediction: `steps` without their randomness (random crops centred,
    /// random shifts and rotations left out), as torchvision's evaluation transforms are usually written.
    public func evaluationPipeline(limits: InputLimits = .default) throws -> ImagePipeline {
        ImagePipeline(try ImageTransform.parse(steps, limits: limits).compactMap { step in
            switch step {
            case let .randomCrop(w, h): return .centreCrop(width: w, height: h)
            case .randomShift, .randomRotation: return nil
            default: return step
            }
        })
    }

    /// `image` in the recorded channels and at the recorded size (bilinear; unchanged when it has that size).
    public func convert(_ image: Image) -> Image {
        var out = image
        if channels == 1 {
            out = out.greyscale()
        } else if out.channels == 1 {
            out = Image(width: out.width, height: out.height, channels: 3, pixels: out.pixels.flatMap { [$0, $0, $0] })
        }
        if out.width != width || out.height != height { out = out.resized(width: width, height: height) }
        return out
    }

    /// The model input made of a decoded image (values in [0, 255]): `convert`, then the evaluation pipeline.
    public func prepare(_ image: Image, limits: InputLimits = .default) throws -> Image {
        guard image.width > 0, image.height > 0 else {
            throw DataError.invalid("an image of \(image.width)×\(image.height) pixels has nothing to classify")
        }
        var g = SeededGenerator(seed: 0)
        return try evaluationPipeline(limits: limits).apply(convert(image), generator: &g)
    }

    public var description: String {
        "\(channels == 1 ? "grey" : "RGB"), resized to \(width)×\(height), then \(steps.isEmpty ? "nothing" : steps)"
    }
}
