import Foundation

/// A trained classifier with what it needs to classify users' images: the preprocessing its training images had
/// and its class names, both read from its model file (`ModelFile`, `Preprocessing.metadataKey`).
public struct Predictor {
    public let model: any Classifier
    public let preprocessing: Preprocessing
    /// By class index; "0", "1", … when the model file names none.
    public let classNames: [String]

    /// One class with its probability.
    public struct Prediction: Codable, Sendable, Equatable {
        public let label: String
        public let classIndex: Int
        public let probability: Float
    }

    public init(model: any Classifier, preprocessing: Preprocessing? = nil, classNames: [String]? = nil) {
        self.model = model
        self.preprocessing = preprocessing ?? .standard(for: model.config)
        self.classNames = classNames ?? (0..<model.config.classes).map(String.init)
    }

    /// Reads a model file (within `limits`) with its preprocessing and class names; `hints` serve a file without
    /// metadata (see `ModelFileHints`).
    public static func load(_ path: String, limits: InputLimits = .default,
                            hints: ModelFileHints = .none) throws -> Predictor {
        let (model, metadata) = try ModelFile.read(path, limits: limits, hints: hints)
        return Predictor(model: model, preprocessing: try Preprocessing.read(metadata, source: path),
                         classNames: try ModelFile.classNames(in: metadata, classes: model.config.classes,
                                                              source: path))
    }

    /// The model's input [n, height, width·channels] for decoded images (values in [0, 255]); `invert` turns
    /// [0, 1] pixels into 1 - x after the preprocessing (dark digits on light paper, unlike MNIST).
    /// Errors name the image by `names[i]` when given.
    public func inputs(_ images: [Image], names: [String]? = nil, invert: Bool = false,
                       limits: InputLimits = .default) throws -> Tensor {
        let c = model.config
        var pixels: [Float] = []
        pixels.reserveCapacity(images.count * c.height * c.width * c.channels)
        for (i, image) in images.enumerated() {
            let prepared: Image
            do { prepared = try preprocessing.prepare(image, limits: limits) } catch let DataError.invalid(m) {
                throw DataError.invalid(names.map { "\($0[i]): " + m } ?? m)
            }
            guard prepared.width == c.width, prepared.height == c.height, prepared.channels == c.channels else {
                let gives = "\(prepared.width)×\(prepared.height)×\(prepared.channels)"
                throw DataError.invalid("the preprocessing (\(preprocessing)) gives \(gives) images, the model needs"
                                        + " \(c.width)×\(c.height)×\(c.channels)")
            }
            pixels += invert ? prepared.pixels.map { 1 - $0 } : prepared.pixels
        }
        return Tensor(shape: [images.count, c.height, c.width * c.channels], scalars: pixels)
    }

    /// The `topK` most probable classes of each image, best first.
    public func predict(_ images: [Image], names: [String]? = nil, topK: Int = 3, invert: Bool = false,
                        limits: InputLimits = .default) throws -> [[Prediction]] {
        guard !images.isEmpty else { return [] }
        let k = model.config.classes
        let probabilities = model.probabilities(try inputs(images, names: names, invert: invert, limits: limits))
        return images.indices.map { i in
            let row = Array(probabilities.scalars[(i * k)..<((i + 1) * k)])
            return row.indices.sorted { row[$0] > row[$1] }.prefix(max(topK, 1)).map {
                Prediction(label: classNames[$0], classIndex: $0, probability: row[$0])
            }
        }
    }

    /// Reads each file (within `limits`) and predicts it; errors name the file.
    public func predict(files: [String], topK: Int = 3, invert: Bool = false,
                        limits: InputLimits = .default) throws -> [[Prediction]] {
        let images = try files.map { try ImageCodecs.read($0, limits: limits) }
        return try predict(images, names: files, topK: topK, invert: invert, limits: limits)
    }
}
