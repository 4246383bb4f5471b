import ArgumentParser
import Foundation
import LSTMVision

/// `lstmvision forecast`: one PNG strip per sequence (`ForecastStrip`): the given frames, the true future, the
/// prediction and the error, in rows.
struct Forecast: ParsableCommand, ReadsFiles, UsesThreads {
    static let configuration = CommandConfiguration(
        abstract: "Draw a frame predictor's forecasts as PNG strips: given frames, true future, prediction, error.")

    @Option(help: "The frame predictor (.safetensors, PyTorch state_dict names).") var model: String
    @Option(help: "Sequences: .npy, uint8 [frames, sequences, rows, cols] (as mnist_test_seq.npy).") var data: String
    @Option(help: "Output folder: OUT/forecast-000001.png, ...") var out: String
    @Option(help: "Sequences drawn (the first).") var count: Int = 4
    @Option(help: "Frames given; the rest are predicted.") var context: Int = 10
    @OptionGroup var threadOptions: ThreadOptions
    @OptionGroup var limits: LimitOptions

    func validate() throws {
        guard (1...10_000).contains(count) else { throw ValidationError("--count must be in 1...10000, got \(count)") }
    }

    func run() throws {
        let (predictor, array) = try frameInputs(model: model, data: data, context: context,
                                                 limits: limits.value)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let n = min(array.shape[1], count)
        for s in 0..<n {
            let frames = MovingMNIST.batch(array, s..<(s + 1))
            let prediction = Autograd.withoutGradients { predictor(Variable(frames), context: context).value }
            let path = (out as NSString).appendingPathComponent(String(format: "forecast-%06d.png", s + 1))
            try ImageCodecs.writePNG(Self.strip(frames: frames, prediction: prediction, context: context), to: path)
        }
        print("wrote \(n) forecast strips (rows: \(context) given frames, true future, prediction, |error|) to \(out)")
    }

    /// The strip of one sequence: `frames` [1, T, 1, rows, cols] in [0, 1] and the `prediction`
    /// [1, T − context, 1, rows, cols].
    static func strip(frames: Tensor, prediction: Tensor, context: Int) -> Image {
        let (T, R, C) = (frames.shape[1], frames.shape[3], frames.shape[4])
        return ForecastStrip.image(frames: frames.reshaped([T, 1, R, C]),
                                   prediction: prediction.reshaped([T - context, 1, R, C]), context: context)
    }
}
