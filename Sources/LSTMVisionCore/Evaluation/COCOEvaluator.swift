import Foundation

/// COCO's twelve summary numbers for box detection, in the meaning of pycocotools' `COCOeval.stats`, and the
/// AP of each category. A value of -1 means undefined: no ground truth in that setting.
public struct COCOMetrics: Codable, Sendable, Equatable {
    /// AP averaged over IoU thresholds .50:.05:.95, all areas, 100 detections per image.
    public var AP: Double
    /// AP at IoU .50.
    public var AP50: Double
    /// AP at IoU .75.
    public var AP75: Double
    /// AP of small objects (area ≤ 32²).
    public var APs: Double
    /// AP of medium objects (32² ≤ area ≤ 96²).
    public var APm: Double
    /// AP of large objects (area ≥ 96²).
    public var APl: Double
    /// Recall averaged over IoU thresholds, with at most 1 detection per image.
    public var AR1: Double
    /// Average recall with at most 10 detections per image.
    public var AR10: Double
    /// Average recall with at most 100 detections per image.
    public var AR100: Double
    /// Average recall of small objects.
    public var ARs: Double
    /// Average recall of medium objects.
    public var ARm: Double
    /// Average recall of large objects.
    public var ARl: Double
    /// AP@[.50:.95] (all areas, 100 detections) of each category, by name.
    public var perClassAP: [String: Double]

    /// The twelve numbers in pycocotools' order.
    public var stats: [Double] { [AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl] }

    /// The twelve lines pycocotools' `summarize()` prints, then one line per category.
    public func report() -> String {
        let rows: [(ap: Bool, iou: String, area: String, maxDets: Int)] = [
            (true, "0.50:0.95", "all", 100), (true, "0.50", "all", 100), (true, "0.75", "all", 100),
            (true, "0.50:0.95", "small", 100), (true, "0.50:0.95", "medium", 100), (true, "0.50:0.95", "large", 100),
            (false, "0.50:0.95", "all", 1), (false, "0.50:0.95", "all", 10), (false, "0.50:0.95", "all", 100),
            (false, "0.50:0.95", "small", 100), (false, "0.50:0.95", "medium", 100), (false, "0.50:0.95", "large", 100),
        ]
        func pad(_ s: String, _ n: Int, right: Bool = false) -> String {
            let fill = String(repeating: " ", count: max(n - s.count, 0))
            return right ? fill + s : s + fill
        }
        var out = ""
        for (row, value) in zip(rows, stats) {
            let title = row.ap ? "Average Precision  (AP)" : "Average Recall     (AR)"
            let area = pad(row.area, 6, right: true), maxDets = pad(String(row.maxDets), 3, right: true)
            let number = String(format: "%.3f", value)
            out += " \(title) @[ IoU=\(pad(row.iou, 9)) | area=\(area) | maxDets=\(maxDets) ] = \(number)\n"
        }
        for name in perClassAP.keys.sorted() {
            out += " AP@[.50:.95] \(name): \(String(format: "%.3f", perClassAP[name]!))\n"
        }
        return out
    }
}

/// COCO box-detection evaluation with pycocotools' rules (`COCOeval`, iouType "bbox", default parameters):
/// per image and category, detections in descending score order (stable) are greedily matched to the
/// unmatched ground truth of highest IoU; crowd and out-of-area-range ground truth is ignored, and so are
/// unmatched detections outside the area range; precision is made monotone and sampled at 101 recall points.
/// One pycocotools quirk is not copied: it records a match as the object's id, so a match to an object
/// with id 0 counts there as no match; here it counts.
public enum COCOEvaluator {
    /// IoU thresholds .50:.05:.95, computed as numpy's `linspace` does, so comparisons agree bit for bit.
    static let iouThresholds = linspace(0.5, 0.95, count: 10)
    /// Recall thresholds 0:.01:1, as numpy's `linspace`.
    static let recallThresholds = linspace(0, 1, count: 101)
    /// Area ranges all, small, medium, large (bounds inclusive, as pycocotools).
    static let areaRanges: [ClosedRange<Double>] = [0...1e10, 0...1024, 1024...9216, 9216...1e10]
    /// Detections per image kept for the recall columns.
    static let maxDetections = [1, 10, 100]

    /// numpy's `linspace(start, stop, count)`: `start + i * step` with `step = (stop - start) / (count - 1)`,
    /// the last value exactly `stop`.
    private static func linspace(_ start: Double, _ stop: Double, count: Int) -> [Double] {
        let step = (stop - start) / Double(count - 1)
        return (0..<count).map { i in i == count - 1 ? stop : Double(i) * step + start }
    }

    /// Evaluates `detections` against `groundTruth` over all its images and categories. Detections naming
    /// an image or category the ground truth lacks are left out (`COCODetection.read` rejects them).
    public static func evaluate(groundTruth: COCODataset, detections: [COCODetection]) -> COCOMetrics {
        let imageIDs = Array(Set(groundTruth.images.map(\.id))).sorted()
        let categories = groundTruth.categories.sorted { $0.id < $1.id }
        let imageIndex = Dictionary(uniqueKeysWithValues: imageIDs.enumerated().map { ($1, $0) })
        let categoryIndex = Dictionary(uniqueKeysWithValues: categories.enumerated().map { ($1.id, $0) })
        let I = imageIDs.count, K = categories.count
        var truths = [[[COCODataset.Annotation]]](repeating: Array(repeating: [], count: I), count: K)
        for a in groundTruth.annotations {
            guard let i = imageIndex[a.imageID], let k = categoryIndex[a.categoryID] else { continue }
            truths[k][i].append(a)
        }
        var found = [[[COCODetection]]](repeating: Array(repeating: [], count: I), count: K)
        for d in detections {
            guard let i = imageIndex[d.imageID], let k = categoryIndex[d.categoryID] else { continue }
            found[k][i].append(d)
        }
        var table = Table(categories: K)
        for k in 0..<K {
            let images = (0..<I).map { i in
                PerImage(truths: truths[k][i],
                         detections: Array(stableByScore(found[k][i], score: \.score).prefix(maxDetections.last!)))
            }
            for a in areaRanges.indices {
                let results = images.map { $0.match(areaRange: areaRanges[a]) }
                for m in maxDetections.indices { table.accumulate(results, category: k, area: a, maxDetIndex: m) }
            }
        }
        var perClass: [String: Double] = [:]
        for (k, c) in categories.enumerated() {
            perClass[c.name] = table.meanPrecision(thresholds: 0..<10, categories: k..<(k + 1), area: 0, maxDetIndex: 2)
        }
        let all = 0..<10, cats = 0..<K
        return COCOMetrics(
            AP: table.meanPrecision(thresholds: all, categories: cats, area: 0, maxDetIndex: 2),
            AP50: table.meanPrecision(thresholds: 0..<1, categories: cats, area: 0, maxDetIndex: 2),
            AP75: table.meanPrecision(thresholds: 5..<6, categories: cats, area: 0, maxDetIndex: 2),
            APs: table.meanPrecision(thresholds: all, categories: cats, area: 1, maxDetIndex: 2),
            APm: table.meanPrecision(thresholds: all, categories: cats, area: 2, maxDetIndex: 2),
            APl: table.meanPrecision(thresholds: all, categories: cats, area: 3, maxDetIndex: 2),
            AR1: table.meanRecall(categories: cats, area: 0, maxDetIndex: 0),
            AR10: table.meanRecall(categories: cats, area: 0, maxDetIndex: 1),
            AR100: table.meanRecall(categories: cats, area: 0, maxDetIndex: 2),
            ARs: table.meanRecall(categories: cats, area: 1, maxDetIndex: 2),
            ARm: table.meanRecall(categories: cats, area: 2, maxDetIndex: 2),
            ARl: table.meanRecall(categories: cats, area: 3, maxDetIndex: 2),
            perClassAP: perClass)
    }

    /// Sorts by descending score, equal scores keeping their order (numpy's mergesort of -score).
    private static func stableByScore<T>(_ items: [T], score: (T) -> Double) -> [T] {
        items.indices.sorted { a, b in
            let sa = score(items[a]), sb = score(items[b])
            return sa > sb || (sa == sb && a < b)
        }.map { items[$0] }
    }

    /// The ground truth and the best-scored detections of one category in one image, with their IoUs.
    private struct PerImage {
        let truths: [COCODataset.Annotation]
        let detections: [COCODetection]
        let ious: [[Double]]   // [detection][truth]

        init(truths: [COCODataset.Annotation], detections: [COCODetection]) {
            self.truths = truths
            self.detections = detections
            ious = detections.map { d in truths.map { t in d.bbox.iou(t.bbox, otherIsCrowd: t.isCrowd) } }
        }

        /// pycocotools' `evaluateImg` for one area range; nil when the image has neither truth nor detections.
        func match(areaRange: ClosedRange<Double>) -> Matches? {
            guard !truths.isEmpty || !detections.isEmpty else { return nil }
            let ignored = truths.map { $0.isCrowd || !areaRange.contains($0.area) }
            let order = truths.indices.filter { !ignored[$0] } + truths.indices.filter { ignored[$0] }   // ignored last
            let T = iouThresholds.count, D = detections.count
            var result = Matches(scores: detections.map(\.score),
                                 matched: [Bool](repeating: false, count: T * D),
                                 ignored: [Bool](repeating: false, count: T * D),
                                 countedTruths: ignored.filter { !$0 }.count)
            for (t, threshold) in iouThresholds.enumerated() {
                var taken = [Bool](repeating: false, count: truths.count)
                for d in 0..<D {
                    var best = min(threshold, 1 - 1e-10), m = -1
                    for g in order {
                        if taken[g] && !truths[g].isCrowd { continue }
                        if m > -1 && !ignored[m] && ignored[g] { break }
                        if ious[d][g] < best { continue }
                        best = ious[d][g]
                        m = g
                    }
                    guard m > -1 else { continue }
                    result.ignored[t * D + d] = ignored[m]
                    result.matched[t * D + d] = true
                    taken[m] = true
                }
            }
            for d in 0..<D where !areaRange.contains(detections[d].bbox.area) {
                for t in 0..<T where !result.matched[t * D + d] { result.ignored[t * D + d] = true }
            }
            return result
        }
    }

    /// The outcome of matching one image and category: per detection (in score order) and IoU threshold,
    /// whether it matched and whether it is ignored; and how many truths count (are not ignored).
    private struct Matches {
        let scores: [Double]
        var matched: [Bool]   // [threshold][detection]
        var ignored: [Bool]   // [threshold][detection]
        let countedTruths: Int
    }

    /// pycocotools' `accumulate`: precision [T, R, K, A, M] and recall [T, K, A, M], -1 where undefined.
    private struct Table {
        let K: Int
        let T = iouThresholds.count, R = recallThresholds.count, A = areaRanges.count, M = maxDetections.count
        var precision: [Double]
        var recall: [Double]

        init(categories: Int) {
            K = categories
            precision = [Double](repeating: -1, count: T * R * K * A * M)
            recall = [Double](repeating: -1, count: T * K * A * M)
        }

        mutating func accumulate(_ images: [Matches?], category k: Int, area a: Int, maxDetIndex m: Int) {
            let present = images.compactMap { $0 }
            let maxDet = maxDetections[m]
            let truths = present.reduce(0) { $0 + $1.countedTruths }
            guard !present.isEmpty, truths > 0 else { return }
            var entries: [(score: Double, image: Int, detection: Int)] = []
            for (e, r) in present.enumerated() {
                for d in 0..<min(maxDet, r.scores.count) { entries.append((r.scores[d], e, d)) }
            }
            entries = stableByScore(entries) { $0.score }
            let n = entries.count
            for t in 0..<T {
                var tp = 0, fp = 0
                var rc = [Double](repeating: 0, count: n), pr = [Double](repeating: 0, count: n)
                for (j, entry) in entries.enumerated() {
                    let r = present[entry.image], at = t * r.scores.count + entry.detection
                    if !r.ignored[at] { if r.matched[at] { tp += 1 } else { fp += 1 } }
                    rc[j] = Double(tp) / Double(truths)
                    pr[j] = Double(tp) / (Double(fp) + Double(tp) + Double.ulpOfOne)
                }
                recall[((t * K + k) * A + a) * M + m] = n > 0 ? rc[n - 1] : 0
                for j in stride(from: n - 1, to: 0, by: -1) where pr[j] > pr[j - 1] { pr[j - 1] = pr[j] }
                var j = 0
                for (ri, threshold) in recallThresholds.enumerated() {
                    while j < n && rc[j] < threshold { j += 1 }
                    precision[(((t * R + ri) * K + k) * A + a) * M + m] = j < n ? pr[j] : 0
                }
            }
        }

        /// The mean of the defined (> -1) precisions in a slice of the table, or -1 when there are none.
        func meanPrecision(thresholds: Range<Int>, categories: Range<Int>, area a: Int, maxDetIndex m: Int) -> Double {
            mean(thresholds.flatMap { t in
                (0..<R).flatMap { r in categories.map { k in precision[(((t * R + r) * K + k) * A + a) * M + m] } }
            })
        }

        /// The mean of the defined recalls over all thresholds and the given categories, or -1.
        func meanRecall(categories: Range<Int>, area a: Int, maxDetIndex m: Int) -> Double {
            mean((0..<T).flatMap { t in categories.map { k in recall[((t * K + k) * A + a) * M + m] } })
        }

        private func mean(_ values: [Double]) -> Double {
            let defined = values.filter { $0 > -1 }
            return defined.isEmpty ? -1 : defined.reduce(0, +) / Double(defined.count)
        }
    }
}
