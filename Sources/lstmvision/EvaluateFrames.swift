import ArgumentParser
import Foundation
import LSTMVision

/// `lstmvision evaluate-frames`: a frame predictor's per-frame MSE, MAE (summed over a frame's pixels in [0, 1]) and
/// SSIM (scikit-image's default) on sequences in `mnist_test_seq.npy`'s layout, averaged and per predicted frame.
struct EvaluateFrames: ParsableCommand, ReadsFiles, UsesThreads {
    static let configuration = CommandConfiguration(
        commandName: "evaluate-frames",
        abstract: "Score a frame predictor on .npy sequences: per-frame MSE, MAE and SSIM.")

    @Option(help: "The frame predictor (.safetensors, PyTorch state_dict names).") var model: String
    @Option(help: "Sequences: .npy, uint8 [frames, sequences, rows, cols] (as mnist_test_seq.npy).") var data: String
    @Option(help: "Frames given; the rest are predicted and scored.") var context: Int = 10
    @Option(help: "Score at most this many sequences (the first).") var limit: Int?
    @Flag(help: "Print one JSON object (mse, mae, ssim and the per-frame lists).") var json = false
    @OptionGroup var threadOptions: ThreadOptions
    @OptionGroup var limits: LimitOptions

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit must be positive, got \(limit)") }
    }

    func run() throws {
        let (predictor, array) = try frameInputs(model: model, data: data, context: context, limits: limits.value,
                                                 window: (7, "SSIM's 7×7 window"))
        let (T, S) = (array.shape[0], array.shape[1])
        let n = min(S, limit ?? S), started = Date()
        var metrics = FrameMetrics(frames: T - context)
        Autograd.withoutGradients {
            for start in stride(from: 0, to: n, by: 16) {
                let batch = MovingMNIST.batch(array, start..<min(n, start + 16))
                let prediction = predictor(Variable(batch), context: context).value
                metrics.add(prediction: prediction, truth: MovingMNIST.future(batch, context: context))
            }
        }
        if json {
            let object: [String: Any] = ["mse": metrics.mse, "mae": metrics.mae, "ssim": metrics.ssim,
                                         "mse_per_frame": metrics.perFrameMSE, "mae_per_frame": metrics.perFrameMAE,
                                         "ssim_per_frame": metrics.perFrameSSIM, "sequences": n, "context": context]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print(String(format: "%d sequences, %d given + %d predicted frames (%.1f s): MSE/frame %.2f, MAE/frame %.2f,"
                     + " SSIM %.4f", n, context, T - context, Date().timeIntervalSince(started), metrics.mse,
                     metrics.mae, metrics.ssim))
        for t in 0..<(T - context) {
            print(String(format: "  frame %2d: MSE %.2f  MAE %.2f  SSIM %.4f", context + t + 1, metrics.perFrameMSE[t],
                         metrics.perFrameMAE[t], metrics.perFrameSSIM[t]))
        }
    }
}
