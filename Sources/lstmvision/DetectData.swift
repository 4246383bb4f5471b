import ArgumentParser
import Foundation
import LSTMVision

/// `lstmvision detect-data`: writes the synthetic multi-digit detection set (PNG canvases and COCO
/// annotations), training canvases from MNIST's training digits and test canvases from its test digits.
struct DetectData: ParsableCommand, ReadsFiles {
    static let configuration = CommandConfiguration(
        commandName: "detect-data",
        abstract: "Write a synthetic detection dataset: MNIST digits scattered on canvases, with COCO box annotations.")

    @Option(help: "Folder holding the MNIST IDX files (.gz or plain). Default: the embedded data/mnist.")
    var data: String?
    @Option(help: "Output folder: OUT/train and OUT/test, each with images/*.png and annotations.json.")
    var out: String = "runs/detect-data"
    @Option(help: "Training canvases.") var train: Int = Recipes.syntheticDetection.trainCount
    @Option(help: "Test canvases.") var test: Int = Recipes.syntheticDetection.testCount
    @Option(help: "Canvas width and height in pixels.") var canvas: Int = 64
    @Option(help: "Most digits on one canvas (each canvas draws 1...N).") var maxDigits: Int = 5
    @Option(help: "Random seed (the test split uses seed + 1).") var seed: UInt64 = 0
    @OptionGroup var limits: LimitOptions

    func validate() throws {
        guard train >= 0, test >= 0, train + test > 0 else {
            throw ValidationError("--train and --test must be non-negative and not both 0, got \(train), \(test)")
        }
        guard (28...4096).contains(canvas) else {
            throw ValidationError("--canvas must be in 28...4096 pixels, got \(canvas)")
        }
        guard (1...50).contains(maxDigits) else {
            throw ValidationError("--max-digits must be in 1...50, got \(maxDigits)")
        }
    }

    func run() throws {
        let directory = data ?? MNIST.defaultDirectory()
        for (split, count, seed) in [(MNIST.Split.train, train, seed), (.test, test, seed &+ 1)] where count > 0 {
            let digits = try MNIST.load(directory: directory, split: split, limits: limits.value)
            let samples = MultiDigitDetection.generate(from: digits, count: count, canvas: canvas, maxDigits: maxDigits,
                                                       seed: seed)
            let annotations = try MultiDigitDetection.write(samples, to: out, split: split.rawValue)
            let boxes = samples.reduce(0) { $0 + $1.boxes.count }
            print("\(split.rawValue): \(count) canvases of \(canvas)×\(canvas) with \(boxes) digits"
                  + " (from \(digits.count) MNIST \(split.rawValue) images)")
            let folder = (out as NSString).appendingPathComponent(split.rawValue)
            print("  images:      \(folder)/images/000001.png … \(String(format: "%06d", count)).png")
            print("  annotations: \(annotations)")
        }
    }
}
