import Foundation

/// One canvas of the synthetic detection set: a grey image with pixels in [0, 1] (as `MNIST.load`
/// gives them; `MultiDigitDetection.write` scales to 0...255 for PNG) and one box and class per digit.
public struct DetectionSample: Sendable {
    /// The canvas, 1 channel, pixels in [0, 1].
    public var image: Image
    /// One tight box per digit, in pixels, COCO convention: top-left corner and size, so the digit's ink
    /// covers pixel columns x..<x+width and rows y..<y+height. The values are whole numbers.
    public var boxes: [Box]
    /// The digit label (0...9) of each box.
    public var classes: [Int]

    public init(image: Image, boxes: [Box], classes: [Int]) {
        precondition(boxes.count == classes.count, "DetectionSample: \(boxes.count) boxes for \(classes.count) classes")
        self.image = image
        self.boxes = boxes
        self.classes = classes
    }
}

/// A synthetic object-detection set built from MNIST: square canvases holding 1 to `maxDigits` digits,
/// each rescaled and placed at random, with exact boxes. Small and fully known, so detectors can be
/// checked without downloading a detection dataset.
public enum MultiDigitDetection {
    /// A pixel counts as ink (for the tight box) above this value.
    public static let inkThreshold: Float = 0.1
    /// Digits are rescaled by a factor drawn uniformly from this range (28 px → 17...39 px).
    public static let scaleRange: ClosedRange<Float> = 0.6...1.4
    /// A placement is rejected when its box overlaps an already placed one with a larger IoU.
    public static let maxOverlap: Float = 0.3
    /// Placements tried for each digit before the canvas keeps the digits it has.
    public static let placementTries = 20

    /// `count` canvases of `canvas`×`canvas` pixels from the digits of `digits` (grey images, pixels in [0, 1]).
    /// Each canvas draws a digit count in 1...maxDigits; each digit is a random image of `digits`, resized
    /// (bilinear) by a random factor of `scaleRange`, placed at a random position inside the canvas and
    /// composited by pixel maximum. A placement whose box has IoU > `maxOverlap` with an earlier box is retried
    /// (a new digit, scale and position), up to `placementTries` times, then that digit and the canvas's
    /// remaining ones are left out, so a crowded canvas may hold fewer digits than drawn; the first digit
    /// always finds a place unless the drawn images have no ink. The same seed gives the same samples.
    public static func generate(from digits: ImageDataset, count: Int, canvas: Int = 64, maxDigits: Int = 5,
                                seed: UInt64) -> [DetectionSample] {
        precondition(digits.channels == 1 && digits.count > 0,
                     "MultiDigitDetection: needs a non-empty grey dataset, got \(digits.count) images"
                     + " with \(digits.channels) channels")
        precondition(count >= 0 && canvas > 0 && maxDigits > 0,
                     "MultiDigitDetection: count \(count), canvas \(canvas) and maxDigits \(maxDigits)"
                     + " must be positive")
        var g = SeededGenerator(seed: seed)
        return (0..<count).map { _ in sample(from: digits, canvas: canvas, maxDigits: maxDigits, generator: &g) }
    }

    private static func sample(from digits: ImageDataset, canvas: Int, maxDigits: Int,
                               generator g: inout SeededGenerator) -> DetectionSample {
        var pixels = [Float](repeating: 0, count: canvas * canvas)
        var boxes: [Box] = []
        var classes: [Int] = []
        let wanted = 1 + Int(g.next() % UInt64(maxDigits))
        for _ in 0..<wanted {
            guard let (patch, left, top, box, label) = placement(from: digits, canvas: canvas, avoiding: boxes,
                                                                 generator: &g) else { break }
            for y in 0..<patch.height {
                for x in 0..<patch.width {
                    let i = (top + y) * canvas + left + x
                    pixels[i] = max(pixels[i], patch.pixels[y * patch.width + x])
                }
            }
            boxes.append(box)
            classes.append(label)
        }
        return DetectionSample(image: Image(width: canvas, height: canvas, channels: 1, pixels: pixels),
                               boxes: boxes, classes: classes)
    }

    /// A random digit, resized, and a position for it whose box overlaps none of `placed` by more than
    /// `maxOverlap`; nil when `placementTries` draws found none.
    private static func placement(from digits: ImageDataset, canvas: Int, avoiding placed: [Box],
                                  generator g: inout SeededGenerator)
        -> (patch: Image, left: Int, top: Int, box: Box, label: Int)? {
        for _ in 0..<placementTries {
            let index = Int(g.next() % UInt64(digits.count))
            let scale = g.uniform(scaleRange.lowerBound, scaleRange.upperBound)
            let w = min(canvas, max(1, Int((Float(digits.width) * scale).rounded())))
            let h = min(canvas, max(1, Int((Float(digits.height) * scale).rounded())))
            let left = Int(g.next() % UInt64(canvas - w + 1)), top = Int(g.next() % UInt64(canvas - h + 1))
            let patch = digitImage(digits, index).resized(width: w, height: h)
            guard let ink = inkBounds(patch) else { continue }
            let box = Box(x: Double(left + ink.x), y: Double(top + ink.y), width: Double(ink.w), height: Double(ink.h))
            if placed.contains(where: { $0.iou(box) > Double(maxOverlap) }) { continue }
            return (patch, left, top, box, digits.labels[index])
        }
        return nil
    }

    /// Image `index` of the dataset.
    private static func digitImage(_ digits: ImageDataset, _ index: Int) -> Image {
        let size = digits.imageSize
        return Image(width: digits.width, height: digits.height, channels: 1,
                     pixels: Array(digits.pixels[(index * size)..<((index + 1) * size)]))
    }

    /// The smallest rectangle holding every pixel above `inkThreshold`; nil for a blank image (scenes use it too).
    static func inkBounds(_ image: Image) -> (x: Int, y: Int, w: Int, h: Int)? {
        var minX = Int.max, minY = Int.max, maxX = -1, maxY = -1
        for y in 0..<image.height {
            for x in 0..<image.width where image.pixels[y * image.width + x] > inkThreshold {
                minX = min(minX, x); maxX = max(maxX, x)
                minY = min(minY, y); maxY = max(maxY, y)
            }
        }
        return maxX < 0 ? nil : (minX, minY, maxX - minX + 1, maxY - minY + 1)
    }

    /// Writes `samples` as `directory/split/images/000001.png`, … (pixels scaled to 0...255) and
    /// `directory/split/annotations.json` in COCO instance format: image ids are 1-based and match the
    /// file numbers, `file_name` is relative to the `images` folder, category ids are the digits 0...9
    /// (named "0"..."9", not COCO's usual 1-based ids), `bbox` is [x, y, w, h] in pixels, `area` = w·h,
    /// `iscrowd` 0. Returns the path of the annotation file; throws `DataError.invalid` for a class outside 0...9.
    @discardableResult
    public static func write(_ samples: [DetectionSample], to directory: String, split: String) throws -> String {
        let splitDirectory = (directory as NSString).appendingPathComponent(split)
        let imageDirectory = (splitDirectory as NSString).appendingPathComponent("images")
        try FileManager.default.createDirectory(atPath: imageDirectory, withIntermediateDirectories: true)
        var coco = COCODataset(images: [], annotations: [],
                               categories: (0...9).map {
                                   COCODataset.Category(id: $0, name: String($0), supercategory: "digit")
                               })
        for (k, s) in samples.enumerated() {
            let id = k + 1
            let name = String(format: "%06d.png", id)
            var png = s.image
            png.pixels = png.pixels.map { $0 * 255 }
            try ImageCodecs.writePNG(png, to: (imageDirectory as NSString).appendingPathComponent(name))
            coco.images.append(.init(id: id, fileName: name, width: s.image.width, height: s.image.height))
            for (b, c) in zip(s.boxes, s.classes) {
                guard (0...9).contains(c) else { throw DataError.invalid("\(name): class \(c) is not a digit 0...9") }
                coco.annotations.append(.init(id: coco.annotations.count + 1, imageID: id, categoryID: c, bbox: b))
            }
        }
        let path = (splitDirectory as NSString).appendingPathComponent("annotations.json")
        try coco.write(to: path)
        return path
    }
}
