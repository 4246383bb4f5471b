import ArgumentParser
import Foundation
import LSTMVision

/// `lstmvision models`: the trained models shipped under models/, which `predict`, `eval`, `detect` and `evaluate`
/// take by name.
struct Models: ParsableCommand, ReadsFiles {
    static let configuration = CommandConfiguration(
        abstract: "List the pretrained models under models/ (use them by name: predict --model row-1x128 digit.png).")

    @OptionGroup var limits: LimitOptions

    func run() throws {
        let models = ModelLocator.available()
        guard !models.isEmpty else {
            throw CLIError("no models found (looked in \(ModelLocator.folders().joined(separator: ", ")))")
        }
        for (name, path) in models {
            let (tensors, metadata) = try SafeTensors.read(path, limits: limits.value)
            let what: String
            if FramePredictorFile.isFramePredictor(tensors) {
                let p = try FramePredictorFile.model(from: tensors, source: path)
                what = "frame predictor (ConvLSTM), hidden \(p.hidden.map(String.init).joined(separator: ",")),"
                    + " kernel \(p.kernelSize), \(p.patch)×\(p.patch) patches"
            } else if DetectorFile.isDetector(metadata: metadata, tensors: tensors) {
                let c = try DetectorFile.config(in: metadata, tensors: tensors, source: path)
                what = "detector \(c.width)×\(c.height)×\(c.channels), \(c.encoderDescription), classes"
                    + " \(c.classNames.joined(separator: " "))"
            } else {
                let c = try ModelFile.config(in: metadata, tensors: tensors, source: path)
                let layers = "\(c.layers) layer\(c.layers == 1 ? "" : "s")\(c.bidirectional ? ", bidirectional" : "")"
                what = "\(c.kind) classifier \(c.width)×\(c.height)×\(c.channels), hidden \(c.hidden), \(layers),"
                    + " \(c.classes) classes"
            }
            let figures = ["accuracy", "AP", "AP50", "mse", "ssim"].compactMap { key in
                metadata[key].flatMap(Double.init).map { String(format: "%@ %.4f", key, $0) }
            }
            print("\(name): \(what)\(figures.isEmpty ? "" : "; validation " + figures.joined(separator: ", "))")
            print("  \(path)")
        }
    }
}
