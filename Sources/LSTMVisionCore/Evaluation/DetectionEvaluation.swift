import Foundation

/// A detector's quality on a dataset: the COCO metrics of its post-processed detections (pycocotools'
/// rules, via `COCOEvaluator`), its mean loss, and the detections themselves in COCO results form. Detections are
/// mapped back through each image's letterbox, so boxes and scores are in the images' original pixels.
public struct DetectionEvaluation: Sendable {
    public let metrics: COCOMetrics
    /// The mean `HungarianLoss` per batch of images.
    public let loss: Double
    public let detections: [COCODetection]

    /// Runs `model` over `dataset` in batches without gradients.
    public static func run(_ model: LSTMDetector, on dataset: DetectionDataset, loss: HungarianLoss = HungarianLoss(),
                           postProcessing: PostProcessing = PostProcessing(),
                           batchSize: Int = 128) throws -> DetectionEvaluation {
        guard dataset.classes == model.config.classes else {
            throw DataError.invalid("the data has \(dataset.classes) classes, the detector \(model.config.classes)")
        }
        var detections: [COCODetection] = []
        var lossSum = 0.0
        var start = 0
        while start < dataset.count {
            let end = min(dataset.count, start + max(batchSize, 1))
            let (x, targets) = dataset.batch(start..<end)
            let output = try Autograd.withoutGradients { try model(Variable(x)) }
            lossSum += Double(loss(output, targets: targets, config: model.config).loss.value.scalar)
                * Double(end - start)
            for (k, boxes) in model.detections(output.value, images: x, postProcessing: postProcessing).enumerated() {
                let letterbox = dataset.letterboxes[start + k]
                detections += boxes.map {
                    COCODetection(imageID: dataset.imageIDs[start + k], categoryID: dataset.categoryIDs[$0.classIndex],
                                  bbox: letterbox.back($0.box), score: $0.score)
                }
            }
            start = end
        }
        let metrics = COCOEvaluator.evaluate(groundTruth: dataset.groundTruth(), detections: detections)
        return DetectionEvaluation(metrics: metrics, loss: dataset.count > 0 ? lossSum / Double(dataset.count) : 0,
                                   detections: detections)
    }
}
