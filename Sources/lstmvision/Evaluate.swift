import ArgumentParser
import Foundation
import LSTMVision

/// `lstmvision evaluate`: COCO box-detection metrics (pycocotools' rules) of a results file against ground truth, or
/// of a trained detector on a dataset's validation/test split.
struct Evaluate: ParsableCommand, ReadsFiles {
    static let configuration = CommandConfiguration(
        abstract: "Score detections against COCO ground truth (AP, AR as pycocotools computes them).",
        discussion: "Either --gt and --detections (a COCO results file), or --model (a detector file) with the data"
            + " options of train detection: the detector then runs on the dataset's validation/test split (default:"
            + " the synthetic test canvases) and its detections are scored.")

    @Option(help: "Ground truth: a COCO instance-annotation JSON file.")
    var gt: String?
    @Option(help: "Detections: a COCO results JSON file (a list of {image_id, category_id, bbox, score}).")
    var detections: String?
    @Option(help: ArgumentHelp("A detector file to run on the data instead of --gt/--detections.", valueName: "file"))
    var model: String?
    @OptionGroup(title: "Data (with --model)") var data: ScoredDataOptions
    @Flag(help: "Print one JSON object.") var json = false
    @OptionGroup var limits: LimitOptions

    func validate() throws {
        switch (gt, detections, model) {
        case (.some, .some, nil):
            if data.data != nil || data.images != nil || data.validation != nil || data.limit != nil
                || data.testCount != nil {
                throw ValidationError("the data options go with --model")
            }
        case (nil, nil, .some): break
        default: throw ValidationError("give --gt and --detections, or --model")
        }
    }

    func run() throws {
        if let model {
            let detector = try DetectorFile.load(model, limits: limits.value)
            let (test, source) = try DetectionDataOptions.loadTest(data.saved, detector: detector.config,
                                                                   limits: limits.value)
            let e = try DetectionEvaluation.run(detector, on: test)
            if json {
                try printJSON(ModelScore(metrics: e.metrics, images: test.count, source: source))
            } else {
                print("\(model) on \(test.count) images of \(source):")
                print(e.metrics.report(), terminator: "")
            }
            return
        }
        let truth = try COCODataset.read(gt!, limits: limits.value)
        for warning in truth.warnings { FileHandle.standardError.write(Data("lstmvision: warning: \(warning)\n".utf8)) }
        let found = try COCODetection.read(detections!, for: truth, limits: limits.value)
        let metrics = COCOEvaluator.evaluate(groundTruth: truth, detections: found)
        if json { try printJSON(metrics) } else { print(metrics.report(), terminator: "") }
    }

    /// `--model --json`'s object: the COCO metrics, flat, with the images scored and where they came from.
    struct ModelScore: Encodable {
        let metrics: COCOMetrics, images: Int, source: String

        enum CodingKeys: String, CodingKey { case images, source }

        func encode(to encoder: any Encoder) throws {
            try metrics.encode(to: encoder)
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(images, forKey: .images)
            try c.encode(source, forKey: .source)
        }
    }
}

/// The split `evaluate --model` scores: `train detection`'s data options that choose it.
struct ScoredDataOptions: ParsableArguments {
    @Option(help: ArgumentHelp("A detect-data folder (its test/), a COCO annotation .json (with --validation), or a"
                               + " YOLO dataset (its val); default: the synthetic test canvases.", valueName: "path"))
    var data: String?
    @Option(help: ArgumentHelp("The images of a COCO --data file (default: images/ beside it, or its folder).",
                               valueName: "dir"))
    var images: String?
    @Option(help: ArgumentHelp("The COCO annotation file to score, with a COCO --data.", valueName: "file"))
    var validation: String?
    @Option(help: ArgumentHelp("Score only the first N images.", valueName: "N")) var limit: Int?
    @Option(help: ArgumentHelp("Synthetic test canvases (default \(Recipes.syntheticDetection.testCount)).",
                               valueName: "n"))
    var testCount: Int?

    func validate() throws {
        for (name, value) in [("--limit", limit), ("--test-count", testCount)] {
            if let value, value <= 0 { throw ValidationError("\(name) must be positive, got \(value)") }
        }
    }

    /// As `train detection` keeps its data options.
    var saved: SavedDataOptions {
        SavedDataOptions(data: data, images: images, limit: limit, testCount: testCount, validation: validation)
    }
}
