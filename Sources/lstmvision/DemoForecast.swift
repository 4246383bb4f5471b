import Foundation
import LSTMVision

extension Demo {
    /// The image-sequence part of the demo: the shipped frame predictor (models/moving-mnist) forecasts the first
    /// test sequences of `moving-mnist --seed 1` (seed 2, MNIST's test digits), scored per frame and drawn as strips.
    func runForecastDemo() throws {
        let path = try ModelLocator.path(forecastModel)
        let predictor = try FramePredictorFile.load(path, limits: limits.value)
        let (count, frameCount, context) = (4, 20, 10)
        print("\nConvLSTM frame predictor (Shi et al. 2015), \(path): given \(context) frames of two bouncing digits,"
              + " it predicts the next \(frameCount - context).")
        let digits = try MNIST.load(directory: dataOptions.data ?? MNIST.defaultDirectory(), split: .test,
                                    limits: limits.value)
        let array = MovingMNIST.generate(from: digits, sequences: count, frames: frameCount, seed: 2)
        let folder = out + "/forecasts"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var all = FrameMetrics(frames: frameCount - context)
        for s in 0..<count {
            let frames = MovingMNIST.batch(array, s..<(s + 1))
            let prediction = Autograd.withoutGradients { predictor(Variable(frames), context: context).value }
            let truth = MovingMNIST.future(frames, context: context)
            var one = FrameMetrics(frames: frameCount - context)
            one.add(prediction: prediction, truth: truth)
            all.add(prediction: prediction, truth: truth)
            let strip = "\(folder)/forecast-\(s + 1).png"
            try ImageCodecs.writePNG(Forecast.strip(frames: frames, prediction: prediction, context: context),
                                     to: strip)
            print(String(format: "  %@: MSE/frame %.1f, SSIM %.3f", strip, one.mse, one.ssim))
        }
        print(String(format: "\nforecast MSE/frame %.1f, SSIM %.3f on these %d test sequences (rows of each strip:"
                     + " given frames, true future, prediction, |error|; models/README.md gives the figures on"
                     + " 10,000)", all.mse, all.ssim, count))
        print("next:     .build/release/lstmvision moving-mnist --seed 1 --out runs/mm && .build/release/lstmvision"
              + " evaluate-frames --model \(forecastModel) --data runs/mm/test.npy")
    }
}
