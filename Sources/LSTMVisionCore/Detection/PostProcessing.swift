import Foundation

/// One detected object: a box in pixels (COCO convention), a class index and a score in [0, 1].
public struct ScoredBox: Sendable, Equatable {
    public var box: Box
    public var classIndex: Int
    public var score: Double

    public init(box: Box, classIndex: Int, score: Double) {
        self.box = box
        self.classIndex = classIndex
        self.score = score
    }
}

/// Turns `LSTMDetector` outputs into detections. Every (cell, step) proposes a box whose score is
/// P(object) · max P(class) for its most likely class; proposals under `scoreThreshold` are dropped.
/// Cells next to the one that owns an object often propose it too, so proposals are merged per class:
/// greedily from the best, every box overlapping it with IoU > `mergeIoU` joins its cluster, which becomes
/// one box (the score-weighted average) with the best score. Per-class non-maximum suppression at `nmsIoU`
/// then removes what still overlaps, and the best `maxDetections` per image are kept.
public struct PostProcessing: Codable, Sendable, Equatable {
    public var scoreThreshold: Double
    public var mergeIoU: Double
    public var nmsIoU: Double
    public var maxDetections: Int

    /// The defaults suit COCO evaluation: a threshold of 0.001, as detectors commonly use for mAP, since AP rewards
    /// recall at low scores; drawing wants a higher threshold.
    public init(scoreThreshold: Double = 0.001, mergeIoU: Double = 0.5, nmsIoU: Double = 0.5,
                maxDetections: Int = 100) {
        self.scoreThreshold = scoreThreshold
        self.mergeIoU = mergeIoU
        self.nmsIoU = nmsIoU
        self.maxDetections = maxDetections
    }

    /// The detections of each image of a raw output [K, N·cells, 6 + classes].
    public func callAsFunction(_ output: Tensor, config: DetectorConfig) -> [[ScoredBox]] {
        proposals(output, config: config).map(process)
    }

    /// The proposals of each image scoring at least `scoreThreshold`, boxes decoded to pixels and clipped to the
    /// image; proposals with a non-finite box are left out.
    public func proposals(_ output: Tensor, config c: DetectorConfig) -> [[ScoredBox]] {
        let K = c.maxBoxes, D = c.outputsPerStep, B = output.shape.count == 3 ? output.shape[1] : 0
        precondition(output.shape == [K, B, D] && B % c.cells == 0,
                     "PostProcessing: output \(output.shape) is not [\(K), N·\(c.cells), \(D)]")
        let x = output.scalars, stride = Double(c.stride), W = Double(c.width), H = Double(c.height)
        var out = [[ScoredBox]](repeating: [], count: B / c.cells)
        for k in 0..<K {
            for b in 0..<B {
                let row = (k * B + b) * D
                let z0 = x[row + 4], z1 = x[row + 5]
                let object = 1 / (1 + Double(expf(z0 - z1)))   // softmax of (no object, object), second entry
                var best = 0, top = -Float.infinity
                for j in 0..<c.classes where x[row + 6 + j] > top { top = x[row + 6 + j]; best = j }
                var total = 0.0
                for j in 0..<c.classes { total += Double(expf(x[row + 6 + j] - top)) }
                let score = object / total                       // P(object) · max P(class)
                guard score >= scoreThreshold else { continue }
                let cell = b % c.cells, gx = Double(cell % c.gridWidth), gy = Double(cell / c.gridWidth)
                let box = Box(centerX: (gx + 0.5 + Double(x[row])) * stride,
                              centerY: (gy + 0.5 + Double(x[row + 1])) * stride,
                              width: max(Double(x[row + 2]), 0) * W, height: max(Double(x[row + 3]), 0) * H)
                // Outputs that overflowed (finite weights can still reach infinity) give no box rather than a NaN
                // one.
                guard box.isFinite else { continue }
                out[b / c.cells].append(ScoredBox(box: box.clipped(width: W, height: H), classIndex: best,
                                                  score: score))
            }
        }
        return out
    }

    /// Merges, suppresses and truncates one image's proposals; the result is sorted by score, best first.
    public func process(_ proposals: [ScoredBox]) -> [ScoredBox] {
        Array(Self.byScore(suppress(merge(proposals))).prefix(maxDetections))
    }

    /// Per class, greedily from the best: the boxes with IoU > `mergeIoU` to the best remaining one become one box,
    /// their score-weighted average, scored as the best of them.
    public func merge(_ boxes: [ScoredBox]) -> [ScoredBox] {
        var out: [ScoredBox] = []
        for group in Self.byClass(boxes) {
            var remaining = Self.byScore(group)
            while let top = remaining.first {
                let cluster = remaining.filter { $0.box.iou(top.box) > mergeIoU || $0 == top }
                remaining.removeAll { $0.box.iou(top.box) > mergeIoU || $0 == top }
                let weight = cluster.reduce(0) { $0 + $1.score }
                func mean(_ f: (Box) -> Double) -> Double {
                    weight > 0 ? cluster.reduce(0) { $0 + $1.score * f($1.box) } / weight : f(top.box)
                }
                let box = Box(x: mean(\.x), y: mean(\.y), width: mean(\.width), height: mean(\.height))
                out.append(ScoredBox(box: box, classIndex: top.classIndex, score: top.score))
            }
        }
        return out
    }

    /// Per-class non-maximum suppression: a box overlapping a better one of its class with IoU > `nmsIoU` is
    /// dropped.
    public func suppress(_ boxes: [ScoredBox]) -> [ScoredBox] {
        var kept: [ScoredBox] = []
        for group in Self.byClass(boxes) {
            var own: [ScoredBox] = []
            for b in Self.byScore(group) where !own.contains(where: { $0.box.iou(b.box) > nmsIoU }) { own.append(b) }
            kept += own
        }
        return kept
    }

    /// Sorted by score, best first; ties keep their order, so results are deterministic.
    static func byScore(_ boxes: [ScoredBox]) -> [ScoredBox] {
        boxes.enumerated().sorted {
            $0.element.score > $1.element.score || ($0.element.score == $1.element.score && $0.offset < $1.offset)
        }.map(\.element)
    }

    /// The boxes grouped by class, in class order.
    static func byClass(_ boxes: [ScoredBox]) -> [[ScoredBox]] {
        Dictionary(grouping: boxes, by: \.classIndex).sorted { $0.key < $1.key }.map(\.value)
    }
}
