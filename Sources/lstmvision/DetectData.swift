import ArgumentParser
import Foundation
import LSTMVision

/// `lstmvision detect-data`: its subcommands write a detection dataset (PNG images and COCO annotations), its
/// training images from MNIST's training digits and its test images from its test digits.
struct DetectData: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detect-data",
        abstract: "Write a detection dataset of MNIST digits, with COCO box annotations.",
        discussion: "detect-data --train 1000 … writes grey canvases: see detect-data digits --help.",
        subcommands: [DetectDigits.self, DetectScenes.self],
        defaultSubcommand: DetectDigits.self)
}

/// `lstmvision detect-data [digits]`: the synthetic multi-digit set, small grey canvases.
struct DetectDigits: ParsableCommand, ReadsFiles {
    static let configuration = CommandConfiguration(
        commandName: "digits",
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

/// `lstmvision detect-data scenes`: coloured digits, crowded and overlapping, on RGB images of varied size cut
/// from photographs, the training split's from the photos of PHOTOS/train and the test split's from PHOTOS/test.
struct DetectScenes: ParsableCommand, ReadsFiles, UsesThreads {
    static let configuration = CommandConfiguration(
        commandName: "scenes",
        abstract: "Write a detection dataset of coloured MNIST digits on photographs, with COCO box annotations.")

    @Option(help: "Folder holding the MNIST IDX files (.gz or plain). Default: the embedded data/mnist.")
    var data: String?
    @Option(help: "Folder with train/ and test/ folders of background photos. Default: the embedded data/photos.")
    var photos: String?
    @Option(help: "Output folder: OUT/train and OUT/test, each with images/*.png and annotations.json.")
    var out: String = "runs/detect-scenes"
    @Option(help: "Training images.") var train: Int = 2000
    @Option(help: "Test images.") var test: Int = 300
    @Option(help: "Smallest image side in pixels.") var minSide: Int = SceneDetection.Settings().sideRange.lowerBound
    @Option(help: "Largest image side in pixels.") var maxSide: Int = SceneDetection.Settings().sideRange.upperBound
    @Option(help: "Most digits on one image (each image draws 1...N).")
    var maxDigits: Int = SceneDetection.Settings().digitRange.upperBound
    @Option(help: "Smallest digit (box) height in pixels.")
    var minDigitHeight: Int = SceneDetection.Settings().heightRange.lowerBound
    @Option(help: "Largest digit (box) height in pixels.")
    var maxDigitHeight: Int = SceneDetection.Settings().heightRange.upperBound
    @Option(help: "Random seed (the test split uses seed + 1).") var seed: UInt64 = 0
    @OptionGroup var threadOptions: ThreadOptions
    @OptionGroup var limits: LimitOptions

    /// The settings the options give; nil when they are not ranges.
    var settings: SceneDetection.Settings? {
        guard minSide <= maxSide, minDigitHeight <= maxDigitHeight, maxDigits >= 1 else { return nil }
        var s = SceneDetection.Settings()
        s.sideRange = minSide...maxSide
        s.digitRange = 1...maxDigits
        s.heightRange = minDigitHeight...maxDigitHeight
        return s
    }

    func validate() throws {
        guard train >= 0, test >= 0, train + test > 0 else {
            throw ValidationError("--train and --test must be non-negative and not both 0, got \(train), \(test)")
        }
        guard let settings else {
            throw ValidationError("--min-side, --max-side, --min-digit-height and --max-digit-height must be ranges"
                                  + " (min ≤ max) and --max-digits positive")
        }
        if let problem = settings.problem { throw ValidationError("scenes: \(problem)") }
    }

    func run() throws {
        let directory = data ?? MNIST.defaultDirectory()
        let photoDirectory = photos ?? SceneDetection.defaultPhotoDirectory()
        for (split, count, seed) in [(MNIST.Split.train, train, seed), (.test, test, seed &+ 1)] where count > 0 {
            let digits = try MNIST.load(directory: directory, split: split, limits: limits.value)
            let backgrounds = try SceneDetection.loadPhotos(directory: photoDirectory, split: split.rawValue,
                                                            limits: limits.value)
            let (path, coco) = try SceneDetection.write(count: count, from: digits, photos: backgrounds,
                                                        settings: settings!, seed: seed, to: out,
                                                        split: split.rawValue)
            let stats = DetectionSetStatistics(coco)!
            let mean = String(format: "%.1f", stats.meanBoxesPerImage)
            print("\(split.rawValue): \(count) images of \(stats.widths)×\(stats.heights) px with \(stats.boxes)"
                  + " digits (\(stats.boxesPerImage) per image, \(mean) on average)")
            print("  boxes by area: \(stats.small) small (< 32²), \(stats.medium) medium,"
                  + " \(stats.large) large (≥ 96²)")
            print("  backgrounds: \(backgrounds.map(\.name).joined(separator: ", "))"
                  + " from \(photoDirectory)/\(split.rawValue)")
            let folder = (out as NSString).appendingPathComponent(split.rawValue)
            print("  images:      \(folder)/images/000001.png … \(String(format: "%06d", count)).png")
            print("  annotations: \(path)")
        }
    }
}
