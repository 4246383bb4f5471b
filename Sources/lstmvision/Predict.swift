import ArgumentParser
import Foundation
import LSTMVision

/// `lstmvision predict`: top-k classes with probabilities for image files.
struct Predict: ParsableCommand, ReadsFiles {
    static let configuration = CommandConfiguration(
        abstract: "Classify image files (PNG, JPEG, WebP, PGM, PPM) with a trained model.",
        discussion: """
            Images are prepared as the model's training images were (the preprocessing its file records: channels, \
            resize, steps); a file without one gets its input size, its channels and pixels / 255. A PyTorch \
            state_dict (no metadata) is read as its tensors describe; --image-size gives the size they leave open. \
            --model takes a file or the name of a model under models/ (lstmvision models lists them).
            """)

    @Option(help: "Model file (safetensors), or the name of a model in models/.") var model: String
    @Argument(help: "Image files.") var files: [String]
    @Option(help: "How many classes to show per image.") var topK: Int = 3
    @Flag(help: "Invert grey levels first (dark digits on a light background, unlike MNIST).") var invert = false
    @Flag(help: "Print one JSON object per image.") var json = false
    @OptionGroup var stateDictOptions: StateDictOptions
    @OptionGroup var limits: LimitOptions

    struct Result: Codable {
        let file: String
        let predictions: [Predictor.Prediction]
    }

    func validate() throws {
        guard topK > 0 else { throw ValidationError("--top-k must be positive, got \(topK)") }
        guard !files.isEmpty else { throw ValidationError("no image files given") }
    }

    func run() throws {
        let predictor = try Predictor.load(try ModelLocator.path(model), limits: limits.value,
                                           hints: stateDictOptions.hints())
        let all = try predictor.predict(files: files, topK: topK, invert: invert, limits: limits.value)
        for (file, predictions) in zip(files, all) {
            if json { try printJSON(Result(file: file, predictions: predictions)); continue }
            let top = predictions.map { String(format: "%@ %.1f%%", $0.label, $0.probability * 100) }
            print(file + ": " + top.joined(separator: ", "))
        }
    }
}
