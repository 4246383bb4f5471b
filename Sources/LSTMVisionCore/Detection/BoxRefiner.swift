import Foundation

/// The detector's optional second stage, R-CNN's idea with LSTMs: each detection's neighbourhood, a square of
/// `context` times the box's longer side resampled to `cropSize`² pixels, is read by two bidirectional LSTMs, one down
/// its rows and one along its columns, each point beside a mask that is 1 inside the detection's box (which of two
/// overlapping digits is meant, and where the box's shorter sides are, which the square crop does not show); from
/// their final states a linear head gives the object's class (or background) and how far each of the box's four edges
/// must move, in crop widths (R-CNN's box regression: no move keeps the detection's box). The decoder sees a digit
/// through 8-pixel cells; the crop shows it large and centred.
///
/// Parameter names follow a PyTorch module with `rows = nn.LSTM(S·(C + 1), hidden, bidirectional=True)`,
/// `columns = nn.LSTM(S·(C + 1), hidden, bidirectional=True)` and `head = nn.Linear(4·hidden, classes + 5)`, under
/// `refiner.` in the detector.
public final class BoxRefiner: Module {
    /// The refiner's settings, part of `DetectorConfig`.
    public struct Config: Codable, Sendable, Equatable {
        /// Side of the resampled crop in pixels.
        public var cropSize: Int
        /// The crop's side over the box's longer side: how much surrounding the refiner sees.
        public var context: Double
        /// Hidden size per direction of each of the two LSTMs.
        public var hidden: Int

        public init(cropSize: Int = 32, context: Double = 1.5, hidden: Int = 128) {
            self.cropSize = cropSize
            self.context = context
            self.hidden = hidden
        }

        /// Checks the sizes; the message says which is wrong.
        public func validate() throws {
            guard (4...128).contains(cropSize) else {
                throw ModelError.invalidConfig("refiner crop size \(cropSize) must be in 4...128")
            }
            guard context >= 1, context <= 8 else {
                throw ModelError.invalidConfig("refiner context \(context) must be in 1...8")
            }
            guard (1...4096).contains(hidden) else {
                throw ModelError.invalidConfig("refiner hidden size \(hidden) must be in 1...4096")
            }
        }
    }

    public let config: Config
    public let classes: Int
    public let channels: Int
    public let rows: LSTM
    public let columns: LSTM
    /// Both LSTMs' final states of both directions → class logits (the classes, then background) and the moves of the
    /// box's edges (left, top, right, bottom) as fractions of the crop's side.
    public let head: Linear

    public init(_ config: Config, classes: Int, channels: Int, generator: inout SeededGenerator) {
        self.config = config
        self.classes = classes
        self.channels = channels
        let features = config.cropSize * (channels + 1)
        rows = LSTM(inputSize: features, hiddenSize: config.hidden, bidirectional: true, batchFirst: false,
                    generator: &generator)
        columns = LSTM(inputSize: features, hiddenSize: config.hidden, bidirectional: true, batchFirst: false,
                       generator: &generator)
        head = Linear(4 * config.hidden, classes + 5, generator: &generator)
        // Forget-gate bias 1, as the classifiers train with: the 32-step reads learn far faster with it than with
        // PyTorch's initialisation.
        rows.setForgetBias(1)
        columns.setForgetBias(1)
    }

    public var namedParameters: NamedParameters {
        prefixed("rows", rows) + prefixed("columns", columns) + prefixed("head", head)
    }

    /// The index of the background class among the logits.
    public var background: Int { classes }

    /// A batch of crops, each twice: read by rows and read by columns, time-major ([S, N, S·(C + 1)] each: per
    /// point the C channels, then the box mask).
    public struct Crops {
        public var byRows: Tensor
        public var byColumns: Tensor
        /// The box each crop is around, and the window it shows, in image pixels.
        public var boxes: [Box]
        public var windows: [Box]
    }

    /// Logits [N, classes + 1] beside the edges' moves [N, 4]: one row of `classes + 5` per crop.
    public func callAsFunction(_ crops: Crops) -> Variable {
        let r = rows.finalStates(Variable(crops.byRows)).h,           // [2, N, hidden] each
            c = columns.finalStates(Variable(crops.byColumns)).h
        return head(concatLast([select(r, 0), select(r, 1), select(c, 0), select(c, 1)]))
    }

    /// The square window around `box`: side `context` × its longer side (at least 4 pixels), same centre.
    public func window(for box: Box) -> Box {
        let side = max(4, config.context * max(box.width, box.height))
        return Box(centerX: box.centerX, centerY: box.centerY, width: side, height: side)
    }

    /// Crops around `boxes` of images [N, H, W·C] (image `owners[i]` for box i): their windows sampled bilinearly at
    /// the centres of a cropSize² grid (what falls outside the image reads 0), each point followed by 1 when it lies
    /// in the box.
    public func crops(_ images: Tensor, owners: [Int], boxes: [Box]) -> Crops {
        let windows = boxes.map(window), S = config.cropSize, C = channels, H = images.shape[1],
            W = images.shape[2] / C, n = windows.count
        let F = C + 1                                                                   // features per point
        var byRows = uninitializedFloats(S * n * S * F), byColumns = byRows   // every point's features written below
        images.scalars.withUnsafeBufferPointer { px in
            for (i, w) in windows.enumerated() {
                let image = px.baseAddress! + owners[i] * H * W * C
                let scale = w.width / Double(S), box = boxes[i]
                // Point k of the grid lies at w.x + (k + 0.5)·scale; source pixel x holds the value at its centre
                // x + 0.5, so in pixel indices the point is at that − 0.5.
                let xs = (0..<S).map { w.x + (Double($0) + 0.5) * scale }
                let taps = xs.map { Self.taps($0 - 0.5, size: W) }
                for sy in 0..<S {
                    let y = w.y + (Double(sy) + 0.5) * scale
                    let (y0, y1, fy) = Self.taps(y - 0.5, size: H)
                    for sx in 0..<S {
                        let (x0, x1, fx) = taps[sx]
                        // Indexed by step, crop, point.
                        let row = (sy * n + i) * S * F + sx * F, column = (sx * n + i) * S * F + sy * F
                        for ch in 0..<C {
                            func at(_ x: Int, _ y: Int) -> Float { x < 0 || y < 0 ? 0 : image[(y * W + x) * C + ch] }
                            let top = at(x0, y0) * (1 - fx) + at(x1, y0) * fx,
                                bottom = at(x0, y1) * (1 - fx) + at(x1, y1) * fx
                            let v = top * (1 - fy) + bottom * fy
                            byRows[row + ch] = v
                            byColumns[column + ch] = v
                        }
                        let inside: Float = xs[sx] >= box.x && xs[sx] <= box.maxX && y >= box.y && y <= box.maxY ? 1 : 0
                        byRows[row + C] = inside
                        byColumns[column + C] = inside
                    }
                }
            }
        }
        return Crops(byRows: Tensor(shape: [S, n, S * F], scalars: byRows),
                     byColumns: Tensor(shape: [S, n, S * F], scalars: byColumns),
                     boxes: boxes, windows: windows)
    }

    /// The two source pixels either side of position `u` along an axis of `size` pixels (−1 where outside) and the
    /// weight of the second.
    static func taps(_ u: Double, size: Int) -> (Int, Int, Float) {
        let lo = Int(u.rounded(.down)), f = Float(u - Double(lo))
        func inside(_ i: Int) -> Int { i >= 0 && i < size ? i : -1 }
        return (inside(lo), inside(lo + 1), f)
    }

    /// A box's edges (left, top, right, bottom) as fractions of `window`'s side from its top-left corner.
    public static func edges(of box: Box, in window: Box) -> [Float] {
        let s = window.width
        return [(box.x - window.x) / s, (box.y - window.y) / s, (box.maxX - window.x) / s, (box.maxY - window.y) / s]
            .map { Float($0) }
    }

    /// The box whose edges within `window` are `e` (`edges`' inverse); a box turned inside out has size 0.
    public static func box(edges e: ArraySlice<Float>, in window: Box) -> Box {
        let s = window.width, i = e.startIndex
        let x0 = window.x + Double(e[i]) * s, y0 = window.y + Double(e[i + 1]) * s
        return Box(x: x0, y: y0, width: max(0, window.x + Double(e[i + 2]) * s - x0),
                   height: max(0, window.y + Double(e[i + 3]) * s - y0))
    }

    /// The most crops `refine` makes at once: 512 crops of the largest size (128², RGB and mask, read twice) take
    /// 270 MB.
    public static let cropsAtOnce = 512

    /// Re-estimates the detections of images [N, H, W·C], one list per image: each detection's box becomes the
    /// refined one (its edges moved as the refiner says), proposed for every class, as two-stage detectors do, with
    /// score √(detection score) × P(class): an object whose class the first guess got wrong is still found, at a lower
    /// score. The detection score is P(object) × the decoder's class probability; its square root lets the refiner's
    /// class, the better guess, count twice as much (chosen on canvases of another seed than the test split's, over the
    /// plain product and the two likeliest classes; see docs/detection-experiments.md). `postProcessing` then
    /// thresholds, merges, suppresses and truncates as it did the first stage's proposals.
    public func refine(_ images: Tensor, detections: [[ScoredBox]], postProcessing: PostProcessing)
        -> [[ScoredBox]] {
        let owners = detections.enumerated().flatMap { k, d in [Int](repeating: k, count: d.count) }
        let found = detections.flatMap { $0 }
        guard !found.isEmpty else { return detections }
        let width = Double(images.shape[2] / channels), height = Double(images.shape[1])
        // At most `cropsAtOnce` crops at a time, so that memory stays bounded however many detections there are.
        var out: [Float] = [], windows: [Box] = []
        for start in stride(from: 0, to: found.count, by: Self.cropsAtOnce) {
            let end = min(found.count, start + Self.cropsAtOnce)
            let crops = crops(images, owners: Array(owners[start..<end]), boxes: found[start..<end].map(\.box))
            out += Autograd.withoutGradients { self(crops) }.value.scalars
            windows += crops.windows
        }
        let D = classes + 5, L = classes + 1
        let probabilities = Tensor(shape: [found.count, L],
                                   scalars: (0..<found.count).flatMap { out[($0 * D)..<($0 * D + L)] })
            .softmaxRows().scalars                                                       // [detections, classes + 1]
        var refined = [[ScoredBox]](repeating: [], count: detections.count)
        for (i, d) in found.enumerated() {
            let moves = out[(i * D + L)..<((i + 1) * D)]
            let edges = zip(Self.edges(of: d.box, in: windows[i]), moves).map { $0 + $1 }
            let box = Self.box(edges: edges[...], in: windows[i]).clipped(width: width, height: height)
            guard box.isFinite else { continue }
            for c in 0..<classes {
                let score = d.score.squareRoot() * Double(probabilities[i * L + c])
                if score >= postProcessing.scoreThreshold {
                    refined[owners[i]].append(ScoredBox(box: box, classIndex: c, score: score))
                }
            }
        }
        return refined.map(postProcessing.process)
    }
}
