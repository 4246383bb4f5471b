import ArgumentParser
import Foundation
import LSTMVision

/// `lstmvision predict`: top-k classes with probabilities for image files.
struct Predict: ParsableCommand, ReadsFiles {
    static let configuration = CommandConfiguration(
        abstract: "Classify image files (PNG, JPEG, PGM, PPM) with a trained model.",
        discussion: "Images are converted to the model's channels, resized to its input size and scaled to [0,1].")

    @Option(help: "Model file (safetensors).") var model: String
    @Argument(help: "Image files.") var files: [String]
    @Option(help: "How many classes to show per image.") var topK: Int = 3
    @Flag(help: "Invert grey levels first (dark digits on a light background, unlike MNIST).") var invert = false
    @Flag(help: "Print one JSON object per image.") var json = false
    @OptionGroup var limits: LimitOptions

    struct Result: Codable {
        let file: String
        let predictions: [Prediction]
    }

    struct Prediction: Codable {
        let label: String
        let classIndex: Int
        let probability: Float
    }

    func validate() throws {
        guard topK > 0 else { throw ValidationError("--top-k must be positive, got \(topK)") }
        guard !files.isEmpty else { throw ValidationError("no image files given") }
    }

    func run() throws {
        let classifier = try ModelFile.load(model, limits: limits.value)
        for r in try predict(classifier, files: files, topK: topK, invert: invert, limits: limits.value) {
            if json { try printJSON(r); continue }
            let top = r.predictions.map { String(format: "%@ %.1f%%", $0.label, $0.probability * 100) }
            print(r.file + ": " + top.joined(separator: ", "))
        }
    }
}

/// Reads, preprocesses and classifies `files`, returning the top-k classes of each.
func predict(_ classifier: any Classifier, files: [String], topK: Int, invert: Bool,
             limits: InputLimits = .default) throws -> [Predict.Result] {
    let c = classifier.config
    var images: [Float] = []
    for file in files {
        var image = try ImageCodecs.read(file, limits: limits)
        if c.channels == 1 && image.channels == 3 { image = image.greyscale() }
        guard image.channels == c.channels else {
            throw CLIError("\(file): has \(image.channels) channel(s), the model needs \(c.channels)")
        }
        if image.width != c.width || image.height != c.height {
            image = image.resized(width: c.width, height: c.height)
        }
        image = image.scaled(by: 1 / 255)
        if invert { image.pixels = image.pixels.map { 1 - $0 } }
        images += image.pixels
    }
    let probs = classifier.probabilities(Tensor(shape: [files.count, c.height, c.width * c.channels], scalars: images))
    return files.enumerated().map { i, file in
        let row = Array(probs.scalars[(i * c.classes)..<((i + 1) * c.classes)])
        let top = row.indices.sorted { row[$0] > row[$1] }.prefix(topK)
        return Predict.Result(file: file, predictions: top.map {
            Predict.Prediction(label: String($0), classIndex: $0, probability: row[$0])
        })
    }
}
