import Foundation

/// The training loss of Stewart, Andriluka & Ng (CVPR 2016) for `LSTMDetector`, as one fused operation
/// with its backward beside the forward.
///
/// Each ground-truth box belongs to the cell holding its centre (at most K per cell; more are counted in
/// `Matching.dropped` and left out). Within a cell, boxes are matched to the K decoder steps by the
/// Hungarian algorithm (`Assignment.solve`) on the paper's lexicographic cost, encoded numerically:
///   cost(box, step k) = 10⁴·[IoU(prediction_k, box) = 0] + 10²·k + L1(prediction_k, box),
/// so overlapping predictions win first, earlier steps second (a cell emits its objects first, then stops)
/// and closeness last. With the matching held fixed, the loss is
///   ( Σ_(cell, step) CE(confidence, object?) + Σ_matched [λ·L1(box) + w_iou·(1 − GIoU(box))]
///     + w_class·Σ_matched CE(class) ) / cells,
/// where L1 is taken on the box centre and size as fractions of the image width and height, so that a
/// pixel of error weighs the same in every coordinate, and GIoU is the generalised IoU of Rezatofighi et al.
/// (CVPR 2019), which weighs a pixel by the box's size instead: a thin digit ("1") loses most of its IoU to
/// one pixel of width, which L1 counts no more than a pixel on a wide one.
public struct HungarianLoss: Sendable, Codable, Equatable {
    /// λ: the weight of the L1 box term.
    public var boxWeight: Float
    /// The weight of the class cross-entropy.
    public var classWeight: Float
    /// The weight of the GIoU box term (0 leaves it out, as the paper's loss does).
    public var iouWeight: Float

    /// The defaults are tuned on the synthetic multi-digit set, where telling the digits apart is what the detector
    /// learns slowest, and where the GIoU term raises AP (docs/detection-experiments.md).
    public init(boxWeight: Float = 5, classWeight: Float = 3, iouWeight: Float = 2) {
        self.boxWeight = boxWeight
        self.classWeight = classWeight
        self.iouWeight = iouWeight
    }

    private enum CodingKeys: String, CodingKey { case boxWeight, classWeight, iouWeight }

    /// Decodes the weights; checkpoints written before the GIoU term existed lack `iouWeight` and get 0, the loss they
    /// trained with.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        boxWeight = try c.decode(Float.self, forKey: .boxWeight)
        classWeight = try c.decode(Float.self, forKey: .classWeight)
        iouWeight = try c.decodeIfPresent(Float.self, forKey: .iouWeight) ?? 0
    }

    /// 1 − GIoU of a predicted and a target box, each (centre x, centre y, width, height) in any one frame (GIoU
    /// does not change when either axis is shifted or scaled), and its gradient with respect to the prediction's four
    /// numbers. The target must have a positive area; a prediction of zero width or height is allowed.
    public static func giouLoss(_ p: [Double], _ t: [Double]) -> (loss: Double, gradient: [Double]) {
        let px1 = p[0] - p[2] / 2, px2 = p[0] + p[2] / 2, py1 = p[1] - p[3] / 2, py2 = p[1] + p[3] / 2
        let tx1 = t[0] - t[2] / 2, tx2 = t[0] + t[2] / 2, ty1 = t[1] - t[3] / 2, ty2 = t[1] + t[3] / 2
        let iw = min(px2, tx2) - max(px1, tx1), ih = min(py2, ty2) - max(py1, ty1)
        let overlaps = iw > 0 && ih > 0
        let inter = overlaps ? iw * ih : 0
        let union = p[2] * p[3] + t[2] * t[3] - inter
        let cw = max(px2, tx2) - min(px1, tx1), ch = max(py2, ty2) - min(py1, ty1), hull = cw * ch
        // L = 1 − (I/U − (C − U)/C) = 2 − I/U − U/C, differentiated in the prediction's edges (x1, x2, y1, y2).
        let loss = 2 - inter / union - union / hull
        // ∂I, ∂(own area), ∂C per edge; ∂U = ∂area − ∂I.
        let dI: [Double] = overlaps ? [px1 > tx1 ? -ih : 0, px2 < tx2 ? ih : 0, py1 > ty1 ? -iw : 0, py2 < ty2 ? iw : 0]
                                    : [0, 0, 0, 0]
        let dArea = [-p[3], p[3], -p[2], p[2]]
        let dC = [px1 < tx1 ? -ch : 0, px2 > tx2 ? ch : 0, py1 < ty1 ? -cw : 0, py2 > ty2 ? cw : 0]
        let edge = (0..<4).map { e -> Double in
            let dU = dArea[e] - dI[e]
            return -(dI[e] * union - inter * dU) / (union * union) - (dU * hull - union * dC[e]) / (hull * hull)
        }
        // x1 = cx − w/2, x2 = cx + w/2 (likewise y).
        return (loss, [edge[0] + edge[1], edge[2] + edge[3], (edge[1] - edge[0]) / 2, (edge[3] - edge[2]) / 2])
    }

    /// One ground-truth box matched to a decoder step.
    public struct Match: Sendable, Equatable {
        /// The cell's row in the output's second axis (image · cells + cell).
        public var cell: Int
        /// The decoder step (0..<K).
        public var step: Int
        /// The box in the output's coordinates: centre relative to the cell centre in cell units, size relative to
        /// the image.
        public var target: [Float]
        public var classIndex: Int
    }

    /// The matches of a batch, fixed while the loss and its gradient are computed.
    public struct Matching: Sendable, Equatable {
        public var matches: [Match]
        /// Ground-truth boxes left out because their cell already had K.
        public var dropped: Int
        /// The output's shape [K, N·cells, 6 + classes].
        public var shape: [Int]
        /// What one unit of each output coordinate is as a fraction of the image: stride/width, stride/height, 1, 1.
        public var scale: [Float]
    }

    /// The loss and its three terms (each already divided by the number of cells, box and class terms weighted;
    /// the box term holds both L1 and GIoU).
    public struct Result {
        public var loss: Variable
        public var confidence: Double
        public var box: Double
        public var classification: Double
        public var matching: Matching
    }

    /// The numerical form of the paper's lexicographic matching cost for a prediction at `step`:
    /// 10⁴ when the boxes do not overlap, plus 10²·step, plus the L1 distance `l1`.
    public static func cost(iou: Double, step: Int, l1: Double) -> Double {
        (iou > 0 ? 0 : 1e4) + 1e2 * Double(step) + l1
    }

    /// Matches the ground truth of each image to the decoder steps of the cells holding the box centres.
    /// `output` is the detector's [K, N·cells, 6 + classes]; `targets` holds N images.
    public static func match(_ output: Tensor, targets: [DetectionTarget], config c: DetectorConfig) -> Matching {
        let K = c.maxBoxes, B = targets.count * c.cells, D = c.outputsPerStep
        precondition(output.shape == [K, B, D],
                     "HungarianLoss: output \(output.shape) does not match \(targets.count) images "
                     + "(expects [\(K), \(B), \(D)])")
        let stride = Double(c.stride), W = Double(c.width), H = Double(c.height)
        let scale = [Float(stride / W), Float(stride / H), 1, 1]
        var matches: [Match] = [], dropped = 0
        for (n, t) in targets.enumerated() {
            // The boxes of each cell, at most K, in the order given.
            var byCell: [Int: [Int]] = [:]
            for (j, b) in t.boxes.enumerated() {
                let gx = min(max(Int((b.centerX / stride).rounded(.down)), 0), c.gridWidth - 1)
                let gy = min(max(Int((b.centerY / stride).rounded(.down)), 0), c.gridHeight - 1)
                let cell = n * c.cells + gy * c.gridWidth + gx
                if byCell[cell, default: []].count < K { byCell[cell, default: []].append(j) } else { dropped += 1 }
            }
            for (cell, boxes) in byCell.sorted(by: { $0.key < $1.key }) {
                let local = cell - n * c.cells, gx = Double(local % c.gridWidth), gy = Double(local / c.gridWidth)
                let targetsRaw = boxes.map { j -> [Float] in
                    let b = t.boxes[j]
                    return [Float(b.centerX / stride - gx - 0.5), Float(b.centerY / stride - gy - 0.5),
                            Float(b.width / W), Float(b.height / H)]
                }
                let costs = zip(boxes, targetsRaw).map { j, target in
                    (0..<K).map { k -> Double in
                        let o = (0..<4).map { Double(output.scalars[(k * B + cell) * D + $0]) }
                        let predicted = Box(centerX: (gx + 0.5 + o[0]) * stride, centerY: (gy + 0.5 + o[1]) * stride,
                                            width: max(o[2], 0) * W, height: max(o[3], 0) * H)
                        var l1 = 0.0
                        for i in 0..<4 { l1 += Double(scale[i]) * abs(o[i] - Double(target[i])) }
                        return cost(iou: predicted.iou(t.boxes[j]), step: k, l1: l1)
                    }
                }
                for (i, step) in Assignment.solve(costs).enumerated() {
                    guard let step else { continue }   // K ≥ boxes and every cost is finite, so all are matched
                    matches.append(Match(cell: cell, step: step, target: targetsRaw[i],
                                         classIndex: t.classes[boxes[i]]))
                }
            }
        }
        return Matching(matches: matches, dropped: dropped, shape: [K, B, D], scale: scale)
    }

    /// The loss of `output` [K, N·cells, 6 + classes] under a fixed `matching`.
    public func loss(_ output: Variable, matching: Matching) -> Result {
        precondition(output.shape == matching.shape,
                     "HungarianLoss: output \(output.shape) does not match the matching's \(matching.shape)")
        let K = matching.shape[0], B = matching.shape[1], D = matching.shape[2], classes = D - 6
        let x = output.value.scalars
        // gradient [K, N·cells, D] of the summed (not yet averaged) loss, filled alongside the forward.
        var grad = [Float](repeating: 0, count: x.count)
        var matchAt = [Int](repeating: -1, count: K * B)
        for (i, m) in matching.matches.enumerated() { matchAt[m.step * B + m.cell] = i }
        var confidence = 0.0, box = 0.0, classification = 0.0
        for r in 0..<(K * B) {
            let row = r * D
            // Confidence: softmax cross-entropy of (no object, object) against whether a box was matched here.
            let object = matchAt[r] >= 0 ? 1 : 0
            let z0 = x[row + 4], z1 = x[row + 5], m = max(z0, z1)
            let e0 = expf(z0 - m), e1 = expf(z1 - m), sum = e0 + e1
            confidence -= Double((object == 1 ? z1 : z0) - m) - log(Double(sum))
            grad[row + 4] = e0 / sum - (object == 0 ? 1 : 0)
            grad[row + 5] = e1 / sum - Float(object)
            guard object == 1 else { continue }
            let match = matching.matches[matchAt[r]]
            // Box: λ · Σ scale_i · |o_i − t_i|, whose gradient is λ · scale_i · sign(o_i − t_i).
            for i in 0..<4 {
                let d = x[row + i] - match.target[i]
                box += Double(boxWeight * matching.scale[i] * abs(d))
                grad[row + i] = boxWeight * matching.scale[i] * (d > 0 ? 1 : (d < 0 ? -1 : 0))
            }
            // GIoU on the boxes as fractions of the image (centres relative to the cell's, which GIoU ignores); the
            // size outputs are clamped at 0 as in decoding, so below 0 they get no gradient from this term.
            if iouWeight > 0 {
                let p = (0..<4).map {
                    Double(matching.scale[$0]) * ($0 < 2 ? Double(x[row + $0]) : max(Double(x[row + $0]), 0))
                }
                let t = (0..<4).map { Double(matching.scale[$0] * match.target[$0]) }
                let (l, g) = Self.giouLoss(p, t)
                box += Double(iouWeight) * l
                for i in 0..<4 where i < 2 || x[row + i] > 0 {
                    grad[row + i] += iouWeight * Float(g[i]) * matching.scale[i]
                }
            }
            // Class: softmax cross-entropy over the class logits.
            var top = -Float.infinity
            for j in 0..<classes { top = max(top, x[row + 6 + j]) }
            var total: Float = 0
            for j in 0..<classes { total += expf(x[row + 6 + j] - top) }
            classification -= Double(classWeight) * (Double(x[row + 6 + match.classIndex] - top) - log(Double(total)))
            for j in 0..<classes {
                grad[row + 6 + j] = classWeight
                    * (expf(x[row + 6 + j] - top) / total - (j == match.classIndex ? 1 : 0))
            }
        }
        let cells = Double(max(B, 1))
        let value = Tensor(scalar: Float((confidence + box + classification) / cells))
        let gradient = Tensor(shape: output.shape, scalars: grad)
        let loss = Autograd.result(value, inputs: [output]) { dy in [gradient * (dy.scalar / Float(cells))] }
        return Result(loss: loss, confidence: confidence / cells, box: box / cells,
                      classification: classification / cells, matching: matching)
    }

    /// Matches `targets` to `output` and returns the loss under that matching.
    public func callAsFunction(_ output: Variable, targets: [DetectionTarget], config: DetectorConfig) -> Result {
        loss(output, matching: Self.match(output.value, targets: targets, config: config))
    }
}
