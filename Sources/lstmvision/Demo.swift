import ArgumentParser
import Foundation
import LSTMVision

/// `lstmvision demo`: the README's main job, on the embedded MNIST: trains a row-LSTM for about a
/// minute (validating on 10% of the training images), scores it once on the 10,000 test images, and classifies a
/// few test images written as PNG files;
/// then trains the LSTM detector for about a minute on synthetic multi-digit canvases (`DemoDetection.swift`), and
/// draws the shipped ConvLSTM frame predictor's forecasts of a few Moving MNIST sequences (`DemoForecast.swift`).
struct Demo: ParsableCommand, ReadsFiles {
    static let configuration = CommandConfiguration(
        abstract: "Train a row-LSTM on the embedded MNIST for about a minute, evaluate it and predict a few images;"
            + " then train and try the LSTM detector, and forecast a few Moving MNIST sequences.")

    @OptionGroup var dataOptions: DataOptions
    @Option(help: "Output folder.") var out: String = "runs/demo"
    @Option(help: "Training epochs (the demo stops earlier if --seconds runs out).")
    var epochs: Int = Recipes.Demo.classification.epochs
    @Option(help: "Time budget for training, in seconds.") var seconds: Double = 75
    @Option(help: "Time budget for training the detector, in seconds (0: skip detection).")
    var detectionSeconds: Double = 60
    @Option(help: "The frame predictor whose forecasts end the demo (a file or a name under models/; none: skip them).")
    var forecastModel: String = "moving-mnist"
    @OptionGroup var limits: LimitOptions

    func validate() throws {
        guard (1...1_000_000).contains(epochs) else {
            throw ValidationError("--epochs must be in 1...1000000, got \(epochs)")
        }
        try checkSeconds(seconds, "--seconds")
        try checkSeconds(detectionSeconds, "--detection-seconds")
    }

    func run() throws {
        let (train, validation, test, _, source) = try dataOptions.loadForTraining(limits: limits.value)
        print("LSTMVision demo: a 1-layer, 128-unit row-LSTM reads each 28×28 MNIST digit row by row"
              + " (28 steps of 28 pixels).")
        print("training on \(train.count) images, validating on \(validation.count) (\(source)), testing once on"
              + " \(test.count); BLAS kernels \(CPUStartup.blasCoreName), \(BLAS.threads) threads\n")
        var options = Recipes.Demo.classification
        options.epochs = epochs
        let model = try makeClassifier(Recipes.Demo.classifier, seed: options.seed)
        if let fb = options.forgetBias { model.setForgetBias(fb) }
        let task = try ClassificationTask(model: model, train: train, validation: validation, seed: options.seed)
        let result = try fit(task, options: options, out: out, timeLimit: seconds)

        print("\nthe best model by validation accuracy, scored once on the \(test.count) test images:")
        let bestEpoch = result.history.max { $0.validationAccuracy < $1.validationAccuracy }?.epoch ?? 0
        let e = try scoreOnce(result.folder, test: test, epoch: bestEpoch)
        let best = try Predictor.load(result.folder.bestModel, limits: limits.value)
        print(e.report(), terminator: "")

        let samples = out + "/samples"
        try FileManager.default.createDirectory(atPath: samples, withIntermediateDirectories: true)
        var files: [String] = []
        for i in [0, 1, 2, 3, 4, 8] {
            let pixels = Array(test.pixels[(i * 784)..<((i + 1) * 784)]).map { $0 * 255 }
            let path = "\(samples)/test-\(i)-label-\(test.labels[i]).png"
            try ImageCodecs.writePNG(Image(width: 28, height: 28, channels: 1, pixels: pixels), to: path)
            files.append(path)
        }
        print("\npredictions for a few test images (written as PNG, read back like any user image):")
        for (file, predictions) in zip(files, try best.predict(files: files, topK: 3, limits: limits.value)) {
            let top = predictions.map { String(format: "%@ (%.1f%%)", $0.label, $0.probability * 100) }
            print("  " + file + " → " + top.joined(separator: ", "))
        }
        print(String(format: "\ntest accuracy %.2f%% after %.0f s of training", e.accuracy * 100, result.seconds))
        print("model:   \(result.folder.bestModel)  (safetensors, PyTorch state_dict names)")
        print("curves:  \(result.folder.plot), log \(result.folder.log)")
        print("next:    .build/release/lstmvision predict --model \(result.folder.bestModel) \(files[0])")
        if detectionSeconds > 0 { try runDetectionDemo() }
        if forecastModel != "none" { try runForecastDemo() }
    }
}
