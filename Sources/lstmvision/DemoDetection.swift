import Foundation
import LSTMVision

extension Demo {
    /// The detection part of the demo: trains an `LSTMDetector` for about `detectionSeconds` on synthetic
    /// multi-digit canvases made in memory, scores it with COCO AP on test canvases, and draws a few.
    func runDetectionDemo() throws {
        print("\nLSTM detector (Stewart et al. 2016): a CNN turns each 64×64 canvas into 8×8 cells;"
              + " per cell an LSTM emits up to 3 boxes.")
        let mnist = dataOptions.data ?? MNIST.defaultDirectory()
        let digits = try MNIST.load(directory: mnist, split: .train, limits: limits.value)
        let sizes = Recipes.Demo.syntheticDetection
        let train = Recipes.SyntheticDetection.trainingSet(from: digits, count: sizes.trainCount, epoch: 0)
        let testDigits = try MNIST.load(directory: mnist, split: .test, limits: limits.value)
        let test = Recipes.SyntheticDetection.testSet(from: testDigits, count: sizes.testCount)
        let options = Recipes.Demo.detection
        let model = try LSTMDetector.make(Recipes.Demo.detector, seed: options.seed)
        if let fb = options.forgetBias { model.setForgetBias(fb) }
        print("training on \(train.count) new canvases of 1–5 digits per epoch for up to \(Int(detectionSeconds)) s,"
              + " validating on \(test.count)\n")
        let directory = out + "/detector"
        let refresh = { Recipes.SyntheticDetection.trainingSet(from: digits, count: sizes.trainCount, epoch: $0) }
        let task = try DetectionTask(model: model, train: train, validation: test, seed: options.seed)
        task.refresh = refresh
        let result = try fit(task, options: options, out: directory, timeLimit: detectionSeconds)

        let best = try DetectorFile.load(result.folder.bestModel, limits: limits.value)
        let e = try DetectionEvaluation.run(best, on: test)
        let samples = directory + "/samples"
        try FileManager.default.createDirectory(atPath: samples, withIntermediateDirectories: true)
        let found = try best.detect(test.batch(0..<3).images, postProcessing: PostProcessing(scoreThreshold: 0.3))
        print("\ndetections on three test canvases (boxes with score ≥ 0.3, drawn ×4):")
        for (k, boxes) in found.enumerated() {
            var image = test.image(k)
            image.pixels = image.pixels.map { $0 * 255 }
            let path = "\(samples)/canvas-\(k + 1).png"
            try ImageCodecs.writePNG(annotated(image, boxes, classNames: best.config.classNames), to: path)
            let truth = test.targets[k].classes.map(String.init).joined(separator: " ")
            let names = boxes.map { best.config.classNames[$0.classIndex] }.joined(separator: " ")
            print("  \(path): found \(names) (truth: \(truth))")
        }
        print(String(format: "\ndetection AP %.3f, AP50 %.3f on %d test canvases after %.0f s of training",
                     e.metrics.AP, e.metrics.AP50, test.count, result.seconds))
        print("detector: \(result.folder.bestModel)  (safetensors, PyTorch state_dict names)")
        print("next:     .build/release/lstmvision train detection --out runs/detector   (the full recipe)")
    }
}
