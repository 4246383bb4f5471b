import Foundation

/// A detection set on photographs: RGB images of random size whose backgrounds are cut from real photos, holding
/// 1 to 20 coloured MNIST digits of 12 to 120 px, crowded and partly overlapping, with one box per digit. The
/// crowded, overlapping case is the one an LSTM box decoder (Stewart et al. 2016) is built for.
public enum SceneDetection {
    /// What a scene may hold; the defaults are those of `lstmvision detect-data scenes`.
    public struct Settings: Sendable, Equatable {
        /// Each side of an image, drawn independently (so the aspect ratio varies too).
        public var sideRange: ClosedRange<Int> = 160...400
        /// Digits drawn per image; a crowded image may keep fewer (see `generate`).
        public var digitRange: ClosedRange<Int> = 1...20
        /// Height of a digit's box in pixels, drawn log-uniformly (as many small digits as large ones).
        public var heightRange: ClosedRange<Int> = 12...120
        /// The largest share of a digit's ink that later digits may cover.
        public var maxHidden: Float = 0.5

        public init() {}

        /// Nil when the settings can make images, else what is wrong with them.
        public var problem: String? {
            if sideRange.lowerBound < 16 || sideRange.upperBound > 4096 {
                return "image sides \(sideRange) must lie in 16...4096"
            }
            if digitRange.lowerBound < 1 || digitRange.upperBound > 200 {
                return "digits per image \(digitRange) must lie in 1...200"
            }
            if heightRange.lowerBound < 4 || heightRange.upperBound > sideRange.lowerBound {
                return "digit heights \(heightRange) must lie in 4...\(sideRange.lowerBound) (the smallest side)"
            }
            if !(maxHidden >= 0 && maxHidden < 1) { return "hidden share \(maxHidden) must lie in [0, 1)" }
            return nil
        }
    }

    /// A background photograph: its file name and its pixels, in [0, 1].
    public struct Photo: Sendable {
        public var name: String
        public var image: Image

        public init(name: String, image: Image) {
            self.name = name
            self.image = image
        }
    }

    /// One generated image with its boxes, and the photo its background was cut from.
    public struct Scene: Sendable {
        /// RGB, pixels in [0, 1]; boxes are the digits' full ink boxes (see `generate`).
        public var sample: DetectionSample
        public var photo: String
    }

    /// A digit pixel counts as ink, for its box, above this alpha (as in `MultiDigitDetection`).
    public static let inkThreshold: Float = MultiDigitDetection.inkThreshold
    /// Placements tried for each digit before the image keeps the digits it has.
    public static let placementTries = 20
    /// Background scale, output pixels per photo pixel, drawn log-uniformly, raised when the crop would not fit.
    public static let backgroundScale: ClosedRange<Float> = 0.6...1.6
    /// Random colours drawn per digit; the one farthest from the background under the digit is kept.
    public static let colourCandidates = 4
    /// Files in a photo folder that are read as photos.
    static let photoExtensions: Set<String> = ["png", "jpg", "jpeg", "pgm", "ppm"]

    /// The embedded photos: `data/photos` under the working directory or above the executable.
    public static func defaultPhotoDirectory() -> String { EmbeddedFolder.find("data/photos") }

    /// The photos of `directory/split` (PNG, JPEG, PGM or PPM files, sorted by name), pixels scaled to [0, 1];
    /// the embedded folder keeps training and test photos apart, so test backgrounds are never seen in training.
    public static func loadPhotos(directory: String, split: String, limits: InputLimits = .default) throws -> [Photo] {
        let folder = (directory as NSString).appendingPathComponent(split)
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else {
            throw DataError.missing("\(folder): no such folder of background photos")
        }
        let photos = try names.filter { photoExtensions.contains(($0 as NSString).pathExtension.lowercased()) }
            .sorted().map { name in
                var image = try ImageCodecs.read((folder as NSString).appendingPathComponent(name), limits: limits)
                image.pixels = image.pixels.map { $0 / 255 }
                return Photo(name: name, image: image)
            }
        guard !photos.isEmpty else { throw DataError.missing("\(folder): no PNG, JPEG, PGM or PPM photos") }
        return photos
    }

    /// `count` scenes from the digits of `digits` (grey, pixels in [0, 1]) on backgrounds cut from `photos`.
    /// Each image draws its width and height from `sideRange` and a photo; its background is a random crop of
    /// the photo, scaled by a factor of `backgroundScale` (raised as far as the crop must to fit) and flipped
    /// left-right half the time; a grey photo is tinted by a random colour. It then draws a digit count from
    /// `digitRange`; each digit is a random image of `digits` cropped to its ink (blank and flat ones are
    /// skipped), resized (bilinear) to a height from `heightRange` and a width keeping its aspect within ±20 %,
    /// placed wholly inside the image at random and alpha-blended in a random colour (the farthest of
    /// `colourCandidates` from the mean colour beneath it), its intensity the alpha. Its box is its full ink box
    /// (alpha > `inkThreshold`), including ink that later digits cover: digits overlap, but a placement that
    /// would leave an earlier digit with less than 1 − `maxHidden` of its ink visible is retried (a new digit,
    /// size and place), up to `placementTries` times, and then the image keeps the digits it has.
    /// Image k depends only on `seed` and k, so the scenes are made in parallel.
    public static func generate(count: Int, from digits: ImageDataset, photos: [Photo], settings: Settings = .init(),
                                seed: UInt64) -> [Scene] {
        check(count: count, digits: digits, photos: photos, settings: settings)
        var scenes = [Scene?](repeating: nil, count: count)
        scenes.withUnsafeMutableBufferPointer { out in
            Parallel.forParts(count, parts: min(Parallel.threads, count)) { range in
                for k in range {
                    out[k] = scene(k, from: digits, photos: photos, settings: settings, seed: seed)
                }
            }
        }
        return scenes.map { $0! }
    }

    /// Generates `count` scenes as `generate` does and writes them, a few at a time, like
    /// `MultiDigitDetection.write`: `directory/split/images/000001.png`, … (RGB) and
    /// `directory/split/annotations.json` (COCO: image ids 1-based matching the file numbers, each image's own
    /// width and height, categories 0...9 named "0"..."9", `bbox` [x, y, w, h] in pixels, `area` w·h,
    /// `iscrowd` 0). Returns the annotation file's path and its contents.
    @discardableResult
    public static func write(count: Int, from digits: ImageDataset, photos: [Photo], settings: Settings = .init(),
                             seed: UInt64, to directory: String, split: String) throws
        -> (path: String, dataset: COCODataset) {
        check(count: count, digits: digits, photos: photos, settings: settings)
        let splitDirectory = (directory as NSString).appendingPathComponent(split)
        let imageDirectory = (splitDirectory as NSString).appendingPathComponent("images")
        try FileManager.default.createDirectory(atPath: imageDirectory, withIntermediateDirectories: true)
        // Each thread makes and writes its own images; only their sizes and boxes are kept.
        var written = [Result<(width: Int, height: Int, boxes: [Box], classes: [Int]), any Error>?](
            repeating: nil, count: count)
        written.withUnsafeMutableBufferPointer { out in
            Parallel.forParts(count, parts: min(Parallel.threads, count)) { range in
                for k in range {
                    let s = scene(k, from: digits, photos: photos, settings: settings, seed: seed).sample
                    var png = s.image
                    png.pixels = png.pixels.map { $0 * 255 }
                    let path = (imageDirectory as NSString).appendingPathComponent(fileName(k + 1))
                    out[k] = Result { try ImageCodecs.writePNG(png, to: path) }
                        .map { (s.image.width, s.image.height, s.boxes, s.classes) }
                }
            }
        }
        var coco = COCODataset(images: [], annotations: [],
                               categories: (0...9).map {
                                   COCODataset.Category(id: $0, name: String($0), supercategory: "digit")
                               })
        for (k, result) in written.enumerated() {
            let s = try result!.get()
            coco.images.append(.init(id: k + 1, fileName: fileName(k + 1), width: s.width, height: s.height))
            for (b, c) in zip(s.boxes, s.classes) {
                coco.annotations.append(.init(id: coco.annotations.count + 1, imageID: k + 1, categoryID: c, bbox: b))
            }
        }
        let path = (splitDirectory as NSString).appendingPathComponent("annotations.json")
        try coco.write(to: path)
        return (path, coco)
    }

    private static func fileName(_ id: Int) -> String { String(format: "%06d.png", id) }

    private static func check(count: Int, digits: ImageDataset, photos: [Photo], settings: Settings) {
        precondition(digits.channels == 1 && digits.count > 0,
                     "SceneDetection: needs a non-empty grey digit set, got \(digits.count) images"
                     + " with \(digits.channels) channels")
        precondition(count >= 0 && !photos.isEmpty, "SceneDetection: count \(count) with \(photos.count) photos")
        precondition(settings.problem == nil, "SceneDetection: \(settings.problem ?? "")")
    }

    // MARK: - One scene

    /// A digit laid on the image: its alpha patch at (left, top), the alpha of it still visible, its ink mass.
    struct Placed {
        var left: Int, top: Int, width: Int, height: Int
        var visible: [Float]
        var mass: Float
    }

    /// Scene `k` of the stream of `seed`: its own generator, so scenes can be made in any order, in parallel.
    static func scene(_ k: Int, from digits: ImageDataset, photos: [Photo], settings: Settings,
                      seed: UInt64) -> Scene {
        var mix = Fingerprint()
        mix.add(seed)
        mix.add(k)
        var g = SeededGenerator(seed: mix.value)
        let w = int(settings.sideRange, &g), h = int(settings.sideRange, &g)
        let photo = photos[Int(g.next() % UInt64(photos.count))]
        var pixels = background(photo.image, width: w, height: h, generator: &g)
        var placed: [Placed] = [], boxes: [Box] = [], classes: [Int] = []
        let wanted = int(settings.digitRange, &g)
        digitLoop: for _ in 0..<wanted {
            for _ in 0..<placementTries {
                let index = Int(g.next() % UInt64(digits.count))
                guard let patch = digitPatch(digits, index, settings: settings, maxWidth: w, generator: &g),
                      let ink = MultiDigitDetection.inkBounds(patch) else { continue }
                guard settings.heightRange.contains(ink.h) else { continue }
                let left = Int(g.next() % UInt64(w - patch.width + 1))
                let top = Int(g.next() % UInt64(h - patch.height + 1))
                guard let covered = cover(placed, with: patch, left: left, top: top, maxHidden: settings.maxHidden)
                else { continue }
                let colour = pickColour(pixels, width: w, left: left, top: top, patch: patch, generator: &g)
                blend(&pixels, width: w, patch: patch, left: left, top: top, colour: colour)
                placed = covered + [Placed(left: left, top: top, width: patch.width, height: patch.height,
                                           visible: patch.pixels, mass: patch.pixels.reduce(0, +))]
                boxes.append(Box(x: Double(left + ink.x), y: Double(top + ink.y),
                                 width: Double(ink.w), height: Double(ink.h)))
                classes.append(digits.labels[index])
                continue digitLoop
            }
            break
        }
        return Scene(sample: DetectionSample(image: Image(width: w, height: h, channels: 3, pixels: pixels),
                                             boxes: boxes, classes: classes),
                     photo: photo.name)
    }

    /// A uniform integer of `range`.
    private static func int(_ range: ClosedRange<Int>, _ g: inout SeededGenerator) -> Int {
        range.lowerBound + Int(g.next() % UInt64(range.count))
    }

    /// A `width`×`height` RGB crop of `photo` (see `generate`), pixels in [0, 1].
    private static func background(_ photo: Image, width w: Int, height h: Int,
                                   generator g: inout SeededGenerator) -> [Float] {
        let pw = photo.width, ph = photo.height, c = photo.channels
        let logScale = g.uniform(log(backgroundScale.lowerBound), log(backgroundScale.upperBound))
        let scale = max(exp(logScale), Float(w) / Float(pw), Float(h) / Float(ph))
        let cropW = Float(w) / scale, cropH = Float(h) / scale
        let x0 = g.uniform(0, max(0, Float(pw) - cropW)), y0 = g.uniform(0, max(0, Float(ph) - cropH))
        let flip = g.next() & 1 == 1
        var tint: [Float] = [1, 1, 1]
        if c == 1 {
            tint = (0..<3).map { _ in g.uniform(0.4, 1) }
            let top = tint.max()!
            tint = tint.map { $0 / top }
        }
        // Bilinear taps along one axis: photo coordinate of output pixel i's centre, clamped to the photo.
        func taps(_ n: Int, _ origin: Float, _ size: Int, flipped: Bool) -> [(Int, Int, Float)] {
            (0..<n).map { i in
                let o = flipped ? n - 1 - i : i
                let s = min(max(origin + (Float(o) + 0.5) / scale - 0.5, 0), Float(size - 1))
                let i0 = Int(s)
                return (i0, min(i0 + 1, size - 1), s - Float(i0))
            }
        }
        let xs = taps(w, x0, pw, flipped: flip), ys = taps(h, y0, ph, flipped: false)
        var out = [Float](repeating: 0, count: w * h * 3)
        photo.pixels.withUnsafeBufferPointer { p in
            for (oy, (y0, y1, fy)) in ys.enumerated() {
                for (ox, (x0, x1, fx)) in xs.enumerated() {
                    let o = (oy * w + ox) * 3
                    for k in 0..<3 {
                        let ch = c == 1 ? 0 : k
                        let top = p[(y0 * pw + x0) * c + ch] * (1 - fx) + p[(y0 * pw + x1) * c + ch] * fx
                        let bottom = p[(y1 * pw + x0) * c + ch] * (1 - fx) + p[(y1 * pw + x1) * c + ch] * fx
                        out[o + k] = (top * (1 - fy) + bottom * fy) * tint[k]
                    }
                }
            }
        }
        return out
    }

    /// Digit `index` cropped to its ink and resized to a random height of `heightRange` (log-uniform) and
    /// a width keeping its aspect within ±20 %, at most `maxWidth`; nil for a digit without ink or one whose
    /// ink is over 1.25 times as wide as tall (a few flat scrawls, which would make boxes wider than the image).
    private static func digitPatch(_ digits: ImageDataset, _ index: Int, settings: Settings, maxWidth: Int,
                                   generator g: inout SeededGenerator) -> Image? {
        let size = digits.imageSize
        let digit = Image(width: digits.width, height: digits.height, channels: 1,
                          pixels: Array(digits.pixels[(index * size)..<((index + 1) * size)]))
        let r = settings.heightRange
        let height = Int(exp(g.uniform(log(Float(r.lowerBound)), log(Float(r.upperBound) + 1))).rounded(.down))
        let aspect = exp(g.uniform(log(0.8), log(1.2)))
        guard let ink = MultiDigitDetection.inkBounds(digit), ink.w * 4 <= ink.h * 5 else { return nil }
        var pixels = [Float](repeating: 0, count: ink.w * ink.h)
        for y in 0..<ink.h {
            for x in 0..<ink.w { pixels[y * ink.w + x] = digit.pixels[(ink.y + y) * digit.width + ink.x + x] }
        }
        let h = min(height, r.upperBound)
        let w = min(maxWidth, max(1, Int((Float(ink.w) * Float(h) / Float(ink.h) * aspect).rounded())))
        let patch = Image(width: ink.w, height: ink.h, channels: 1, pixels: pixels).resized(width: w, height: h)
        return Image(width: w, height: h, channels: 1, pixels: patch.pixels.map { min(max($0, 0), 1) })
    }

    /// `placed` with the alpha of `patch` at (left, top) laid over them: each one's visible alpha times
    /// (1 − the new alpha); nil when that would leave one with less than 1 − `maxHidden` of its ink visible.
    static func cover(_ placed: [Placed], with patch: Image, left: Int, top: Int,
                              maxHidden: Float) -> [Placed]? {
        var out = placed
        for (j, p) in placed.enumerated() {
            let x0 = max(left, p.left), x1 = min(left + patch.width, p.left + p.width)
            let y0 = max(top, p.top), y1 = min(top + patch.height, p.top + p.height)
            guard x0 < x1 && y0 < y1 else { continue }
            var visible = p.visible
            for y in y0..<y1 {
                for x in x0..<x1 {
                    visible[(y - p.top) * p.width + x - p.left] *= 1 - patch.pixels[(y - top) * patch.width + x - left]
                }
            }
            guard visible.reduce(0, +) >= (1 - maxHidden) * p.mass else { return nil }
            out[j].visible = visible
        }
        return out
    }

    /// The farthest (Euclidean, in RGB) of `colourCandidates` random colours from the mean colour under the
    /// digit's ink, so that digits mostly stand out from their background.
    private static func pickColour(_ pixels: [Float], width: Int, left: Int, top: Int, patch: Image,
                                   generator g: inout SeededGenerator) -> [Float] {
        var mean: [Float] = [0, 0, 0], weight: Float = 0
        for y in 0..<patch.height {
            for x in 0..<patch.width {
                let a = patch.pixels[y * patch.width + x], o = ((top + y) * width + left + x) * 3
                for k in 0..<3 { mean[k] += a * pixels[o + k] }
                weight += a
            }
        }
        mean = mean.map { $0 / max(weight, 1e-6) }
        var best: [Float] = [], bestDistance: Float = -1
        for _ in 0..<colourCandidates {
            let colour = (0..<3).map { _ in g.uniform() }
            let d = zip(colour, mean).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
            if d > bestDistance { (best, bestDistance) = (colour, d) }
        }
        return best
    }

    /// Blends `colour` into the RGB `pixels` through the alpha `patch` at (left, top).
    private static func blend(_ pixels: inout [Float], width: Int, patch: Image, left: Int, top: Int,
                              colour: [Float]) {
        for y in 0..<patch.height {
            for x in 0..<patch.width {
                let a = patch.pixels[y * patch.width + x], o = ((top + y) * width + left + x) * 3
                for k in 0..<3 { pixels[o + k] = pixels[o + k] * (1 - a) + colour[k] * a }
            }
        }
    }
}
