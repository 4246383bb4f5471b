import ArgumentParser
import Foundation
import LSTMVision

/// `lstmvision evaluate`: COCO box-detection metrics (pycocotools' rules) of a results file against ground truth.
struct Evaluate: ParsableCommand, ReadsFiles {
    static let configuration = CommandConfiguration(
        abstract: "Score detections against COCO ground truth (AP, AR as pycocotools computes them).")

    @Option(help: "Ground truth: a COCO instance-annotation JSON file.")
    var gt: String
    @Option(help: "Detections: a COCO results JSON file (a list of {image_id, category_id, bbox, score}).")
    var detections: String
    @Flag(help: "Print one JSON object.") var json = false
    @OptionGroup var limits: LimitOptions

    func run() throws {
        let truth = try COCODataset.read(gt, limits: limits.value)
        for warning in truth.warnings { FileHandle.standardError.write(Data("lstmvision: warning: \(warning)\n".utf8)) }
        let found = try COCODetection.read(detections, for: truth, limits: limits.value)
        let metrics = COCOEvaluator.evaluate(groundTruth: truth, detections: found)
        if json { try printJSON(metrics) } else { print(metrics.report(), terminator: "") }
    }
}
