import Foundation

/// How `BoxRefiner` learns: from crops around the training objects' boxes, shifted and rescaled at random as the
/// first stage's detections are, and around random boxes, each labelled with the object it overlaps most (IoU ≥
/// `foregroundIoU`) or as background. The loss, one fused operation with its backward beside the forward, is
///   ( Σ_crops CE(class logits, label) + λ·Σ_object crops Σ_edges |move − target move| ) / crops,
/// where an edge's target move takes it from the crop's box to the object's, in fractions of the crop's side.
public struct RefinerLoss: Sendable, Codable, Equatable {
    /// λ: the weight of the L1 edge term.
    public var boxWeight: Float
    /// Jittered crops per object, and random crops per image.
    public var jitteredPerObject: Int
    public var randomPerImage: Int
    /// The jitter: the centre moves by a normal sample of this fraction of the box's size, each side scales by
    /// exp(a normal sample times `scaleJitter`).
    public var shiftJitter: Double
    public var scaleJitter: Double
    /// A crop shows the object it overlaps most when their IoU is at least this; otherwise background.
    public var foregroundIoU: Double

    public init(boxWeight: Float = 2, jitteredPerObject: Int = 3, randomPerImage: Int = 1,
                shiftJitter: Double = 0.08, scaleJitter: Double = 0.1, foregroundIoU: Double = 0.4) {
        self.boxWeight = boxWeight
        self.jitteredPerObject = jitteredPerObject
        self.randomPerImage = randomPerImage
        self.shiftJitter = shiftJitter
        self.scaleJitter = scaleJitter
        self.foregroundIoU = foregroundIoU
    }

    /// Training crops with their labels: a class index or `refiner.background`, and for object crops the target
    /// moves of the four edges.
    public struct Samples {
        public var crops: BoxRefiner.Crops
        public var labels: [Int]
        public var moves: [[Float]?]
    }

    /// The training crops of a batch of images [N, H, W·C] with their ground truth.
    public func samples(_ refiner: BoxRefiner, images: Tensor, targets: [DetectionTarget],
                        generator g: inout SeededGenerator) -> Samples {
        let H = Double(images.shape[1]), W = Double(images.shape[2] / refiner.channels)
        var owners: [Int] = [], boxes: [Box] = []
        for (n, t) in targets.enumerated() {
            for b in t.boxes {
                for _ in 0..<jitteredPerObject {
                    let cx = b.centerX + shiftJitter * b.width * Double(g.normal()),
                        cy = b.centerY + shiftJitter * b.height * Double(g.normal())
                    boxes.append(Box(centerX: cx, centerY: cy, width: b.width * exp(scaleJitter * Double(g.normal())),
                                     height: b.height * exp(scaleJitter * Double(g.normal()))))
                    owners.append(n)
                }
            }
            for _ in 0..<randomPerImage {
                let side = Double(g.uniform(0.1, 0.5)) * min(W, H), aspect = exp(0.3 * Double(g.normal()))
                boxes.append(Box(centerX: Double(g.uniform()) * W, centerY: Double(g.uniform()) * H,
                                 width: side * aspect, height: side / aspect))
                owners.append(n)
            }
        }
        let crops = refiner.crops(images, owners: owners, boxes: boxes)
        var labels: [Int] = [], moves: [[Float]?] = []
        for (i, b) in boxes.enumerated() {
            let t = targets[owners[i]]
            let best = t.boxes.indices.max { t.boxes[$0].iou(b) < t.boxes[$1].iou(b) }
            if let best, t.boxes[best].iou(b) >= foregroundIoU {
                labels.append(t.classes[best])
                let w = crops.windows[i]
                moves.append(zip(BoxRefiner.edges(of: t.boxes[best], in: w), BoxRefiner.edges(of: b, in: w))
                    .map { $0 - $1 })
            } else {
                labels.append(refiner.background)
                moves.append(nil)
            }
        }
        return Samples(crops: crops, labels: labels, moves: moves)
    }

    /// The loss of the refiner's output [N, classes + 5] on `samples`, and how many crops got their label right.
    public func callAsFunction(_ output: Variable, _ samples: Samples) -> (loss: Variable, correct: Int) {
        let n = output.shape[0], D = output.shape[1], classes = D - 4
        precondition(output.value.rank == 2 && n == samples.labels.count && n == samples.moves.count && D > 5,
                     "RefinerLoss: output \(output.shape) for \(samples.labels.count) crops")
        let logits = Tensor(shape: [n, classes],
                            scalars: (0..<n).flatMap { output.value.scalars[($0 * D)..<($0 * D + classes)] })
        let p = logits.softmaxRows().scalars
        var loss = 0.0, correct = 0
        var grad = [Float](repeating: 0, count: n * D)
        let scale = 1 / Float(max(n, 1))
        for i in 0..<n {
            let row = i * D, label = samples.labels[i]
            loss -= log(max(Double(p[i * classes + label]), 1e-30))
            if (0..<classes).max(by: { p[i * classes + $0] < p[i * classes + $1] }) == label { correct += 1 }
            for c in 0..<classes { grad[row + c] = (p[i * classes + c] - (c == label ? 1 : 0)) * scale }
            guard let target = samples.moves[i] else { continue }
            for e in 0..<4 {
                let d = output.value.scalars[row + classes + e] - target[e]
                loss += Double(boxWeight * abs(d))
                grad[row + classes + e] = boxWeight * (d > 0 ? 1 : d < 0 ? -1 : 0) * scale
            }
        }
        let value = Autograd.result(Tensor(scalar: Float(loss / Double(max(n, 1)))), inputs: [output]) { dy in
            [Tensor(shape: [n, D], scalars: grad.map { $0 * dy.scalar })]
        }
        return (value, correct)
    }
}
