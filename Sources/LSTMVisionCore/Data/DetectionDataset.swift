import Foundation

/// The ground truth of one image: boxes in pixels (COCO convention: top-left corner and size) and the
/// class index (0..<classes) of each.
public struct DetectionTarget: Sendable, Equatable {
    public var boxes: [Box]
    public var classes: [Int]

    public init(boxes: [Box], classes: [Int]) {
        precondition(boxes.count == classes.count, "DetectionTarget: \(boxes.count) boxes for \(classes.count) classes")
        self.boxes = boxes
        self.classes = classes
    }
}

/// Images letterboxed to one input size with their boxes, held in memory for detector training and evaluation:
/// pixels in [0, 1], interleaved per row ([H, W·C] per image, as `ImageDataset`), and each image's COCO id, so that
/// detections can be scored against the COCO file it came from. `targets` are in input pixels (what the detector
/// learns); each image also keeps its `Letterbox` (its original size) and its boxes in original pixels
/// (`originalTargets`), so that evaluation maps detections back and scores them in the original coordinates.
public struct DetectionDataset: Dataset {
    public let height: Int
    public let width: Int
    public let channels: Int
    /// count × height × width × channels values in [0, 1].
    public var pixels: [Float]
    public var targets: [DetectionTarget]
    public var imageIDs: [Int]
    /// Class names and COCO category ids, by class index.
    public var classNames: [String]
    public var categoryIDs: [Int]
    /// Per image: how it was fitted to the input (the identity for an image of the input's size).
    public var letterboxes: [Letterbox]
    /// Per image: its boxes in its original pixels (equal to `targets` for identity letterboxes).
    public var originalTargets: [DetectionTarget]
    /// What reading repaired or skipped (see `COCODataset.warnings`), one line each.
    public var warnings: [String] = []

    /// A dataset; `letterboxes` default to the identity and `originalTargets` to `targets`.
    public init(height: Int, width: Int, channels: Int, pixels: [Float], targets: [DetectionTarget], imageIDs: [Int],
                classNames: [String], categoryIDs: [Int], letterboxes: [Letterbox]? = nil,
                originalTargets: [DetectionTarget]? = nil) {
        precondition(pixels.count == targets.count * height * width * channels && imageIDs.count == targets.count,
                     "DetectionDataset: \(pixels.count) pixels and \(imageIDs.count) ids for \(targets.count) images"
                     + " of \(height)×\(width)×\(channels)")
        precondition(classNames.count == categoryIDs.count,
                     "DetectionDataset: \(classNames.count) names for \(categoryIDs.count) categories")
        let boxes = letterboxes ?? Array(repeating: .identity(width: max(width, 1), height: max(height, 1)),
                                         count: targets.count)
        precondition(boxes.count == targets.count && boxes.allSatisfy { $0.width == width && $0.height == height }
                     && (originalTargets?.count ?? targets.count) == targets.count,
                     "DetectionDataset: letterboxes or original targets do not fit \(targets.count) images")
        self.height = height
        self.width = width
        self.channels = channels
        self.pixels = pixels
        self.targets = targets
        self.imageIDs = imageIDs
        self.classNames = classNames
        self.categoryIDs = categoryIDs
        self.letterboxes = boxes
        self.originalTargets = originalTargets ?? targets
    }

    /// The synthetic canvases of `MultiDigitDetection.generate`, with the ids and categories that
    /// `MultiDigitDetection.write` gives them (images 1...count, categories 0...9 named "0"..."9").
    public init(samples: [DetectionSample]) {
        let first = samples.first?.image
        self.init(height: first?.height ?? 0, width: first?.width ?? 0, channels: 1,
                  pixels: samples.flatMap(\.image.pixels),
                  targets: samples.map { s in
                      DetectionTarget(boxes: s.boxes, classes: s.classes)
                  },
                  imageIDs: (0..<samples.count).map { $0 + 1 },
                  classNames: (0...9).map(String.init), categoryIDs: Array(0...9))
    }

    /// Synthetic training canvases (64×64, 1–5 digits) for `epoch`: epoch 0 gives the training split of
    /// `lstmvision detect-data` with its default seed, each later epoch new canvases of its own seed.
    public static func synthetic(from digits: ImageDataset, count: Int, epoch: Int) -> DetectionDataset {
        DetectionDataset(samples: MultiDigitDetection.generate(from: digits, count: count,
                                                               seed: epoch == 0 ? 0 : 0x5EED_0000 &+ UInt64(epoch)))
    }

    /// Reads split `split` of a COCO folder as `lstmvision detect-data` writes it: `directory/split/annotations.json`
    /// and the images it names under `directory/split/images/`; see `read` for `channels` and `size`.
    public static func load(directory: String, split: String, channels: Int? = nil, size: InputSize? = nil,
                            limits: InputLimits = .default) throws -> DetectionDataset {
        let folder = (directory as NSString).appendingPathComponent(split)
        return try read(annotations: (folder as NSString).appendingPathComponent("annotations.json"),
                        images: (folder as NSString).appendingPathComponent("images"), channels: channels, size: size,
                        limits: limits)
    }

    /// A detector input size in pixels.
    public struct InputSize: Sendable, Equatable, Codable, CustomStringConvertible {
        public var width: Int, height: Int
        public init(width: Int, height: Int) {
            self.width = width
            self.height = height
        }
        public var description: String { "\(width)×\(height)" }

        /// The size used when none is given: the images' common size, rounded up to a multiple of `stride`, when
        /// they all share one (so a folder of 64×64 canvases trains a 64×64 detector, as before); 64×64 when sizes
        /// differ (small enough for the LSTMs on a CPU; `--size` chooses another).
        public static func `default`(for images: [COCODataset.Image], stride: Int = 8) -> InputSize {
            guard let first = images.first,
                  images.allSatisfy({ $0.width == first.width && $0.height == first.height }) else {
                return InputSize(width: 64, height: 64)
            }
            func up(_ n: Int) -> Int { (n + stride - 1) / stride * stride }
            return InputSize(width: up(first.width), height: up(first.height))
        }
    }

    /// Reads a COCO annotation file and its images (file names relative to `images`); see `make(_:source:...)`.
    public static func read(annotations path: String, images folder: String, channels: Int? = nil,
                            size: InputSize? = nil, limits: InputLimits = .default) throws -> DetectionDataset {
        try make(COCODataset.read(path, limits: limits), source: path, images: folder, channels: channels, size: size,
                 limits: limits)
    }

    /// The images of `coco` (file names relative to `folder`) letterboxed to `size` (default: `InputSize.default`)
    /// and converted to `channels` (default: the first image's), with their boxes. Each image must have the size its
    /// entry gives. Class indices follow the categories sorted by id; crowd regions are left out; a box that the
    /// letterbox leaves narrower or lower than 1/1000 px is kept (it is a real object, only tiny). Files are read
    /// within `limits`; `source` names the annotations in errors.
    public static func make(_ coco: COCODataset, source path: String, images folder: String, channels: Int? = nil,
                            size: InputSize? = nil, limits: InputLimits = .default) throws -> DetectionDataset {
        guard !coco.images.isEmpty else { throw DataError.invalid("\(path): no images") }
        let size = size ?? InputSize.default(for: coco.images)
        guard size.width > 0, size.height > 0, limits.allows(width: size.width, height: size.height) else {
            throw DataError.invalid("\(path): input size \(size) is outside the input limits")
        }
        let categories = coco.categories.sorted { $0.id < $1.id }
        let classOf = Dictionary(uniqueKeysWithValues: categories.enumerated().map { ($0.element.id, $0.offset) })
        var boxes: [Int: [(Box, Int)]] = [:]
        for a in coco.annotations where !a.isCrowd {
            boxes[a.imageID, default: []].append((a.bbox, classOf[a.categoryID]!))
        }
        let wanted = try channels ?? {
            let file = (folder as NSString).appendingPathComponent(coco.images[0].fileName)
            return try ImageCodecs.read(file, limits: limits).channels
        }()
        let imageBytes = size.width * size.height * wanted * MemoryLayout<Float>.size
        let total = imageBytes.multipliedReportingOverflow(by: coco.images.count)
        guard !total.overflow, total.partialValue <= limits.maxDatasetBytes else {
            throw DataError.invalid("\(path): \(coco.images.count) images of \(size)×\(wanted) take more than"
                                    + " the dataset limit of \(limits.maxDatasetBytes) bytes")
        }
        var pixels: [Float] = []
        pixels.reserveCapacity(coco.images.count * size.width * size.height * wanted)
        var targets: [DetectionTarget] = [], originals: [DetectionTarget] = [], letterboxes: [Letterbox] = []
        for entry in coco.images {
            let file = entry.fileName.hasPrefix("/") ? entry.fileName
                : (folder as NSString).appendingPathComponent(entry.fileName)
            let image = try ImageCodecs.read(file, limits: limits).converted(channels: wanted)
            guard image.width == entry.width, image.height == entry.height else {
                throw DataError.invalid("\(file): \(image.width)×\(image.height) image, \(path) gives its size as"
                                        + " \(entry.width)×\(entry.height)")
            }
            let letterbox = Letterbox(sourceWidth: image.width, sourceHeight: image.height, width: size.width,
                                      height: size.height)
            pixels += letterbox.apply(image).pixels.map { $0 / 255 }
            let own = boxes[entry.id] ?? []
            let original = DetectionTarget(boxes: own.map(\.0), classes: own.map(\.1))
            originals.append(original)
            targets.append(DetectionTarget(boxes: original.boxes.map(letterbox.forward), classes: original.classes))
            letterboxes.append(letterbox)
        }
        var dataset = DetectionDataset(height: size.height, width: size.width, channels: wanted, pixels: pixels,
                                       targets: targets, imageIDs: coco.images.map(\.id),
                                       classNames: categories.map(\.name), categoryIDs: categories.map(\.id),
                                       letterboxes: letterboxes, originalTargets: originals)
        dataset.warnings = coco.warnings
        return dataset
    }

    /// The first `n` images (or all when fewer).
    public func prefix(_ n: Int) -> DetectionDataset { subset(Array(0..<min(max(n, 0), count))) }

    /// Images `indices`, in that order.
    public func subset(_ indices: [Int]) -> DetectionDataset {
        var out = DetectionDataset(height: height, width: width, channels: channels,
                                   pixels: indices.flatMap { pixels[($0 * imageSize)..<(($0 + 1) * imageSize)] },
                                   targets: indices.map { targets[$0] }, imageIDs: indices.map { imageIDs[$0] },
                                   classNames: classNames, categoryIDs: categoryIDs,
                                   letterboxes: indices.map { letterboxes[$0] },
                                   originalTargets: indices.map { originalTargets[$0] })
        out.warnings = warnings
        return out
    }

    /// A seeded random `fraction` of the images held out for validation (at least one, and one left to train on),
    /// as `ImageDataset.splitValidation` does; both parts keep the images' order.
    public func splitValidation(fraction: Double, seed: UInt64 = ImageDataset.validationSeed)
        -> (train: DetectionDataset, validation: DetectionDataset) {
        let (train, held) = ImageDataset.validationDraw(count: count, fraction: fraction, seed: seed)
        return (subset(train), subset(held))
    }

    /// The ground truth as a COCO dataset (for `COCOEvaluator`), with the images' ids, original sizes and boxes, and
    /// the categories.
    public func groundTruth() -> COCODataset {
        var annotations: [COCODataset.Annotation] = []
        for (t, id) in zip(originalTargets, imageIDs) {
            for (b, c) in zip(t.boxes, t.classes) {
                annotations.append(.init(id: annotations.count + 1, imageID: id, categoryID: categoryIDs[c], bbox: b))
            }
        }
        return COCODataset(images: zip(imageIDs, letterboxes).map { id, l in
                               .init(id: id, fileName: "\(id).png", width: l.sourceWidth, height: l.sourceHeight)
                           },
                           annotations: annotations,
                           categories: zip(categoryIDs, classNames).map { .init(id: $0, name: $1) })
    }
}

extension Image {
    /// The image with `channels` channels: RGB to grey by `greyscale()`, grey to RGB by repeating the sample.
    public func converted(channels wanted: Int) -> Image {
        if wanted == channels { return self }
        if wanted == 1 { return greyscale() }
        return Image(width: width, height: height, channels: 3, pixels: pixels.flatMap { [$0, $0, $0] })
    }
}

extension DetectionDataset {
    /// The fingerprint of the images' size, pixels, boxes and classes (see `Fingerprint`).
    public var fingerprint: String {
        var f = Fingerprint(height: height, width: width, channels: channels, classes: classes, pixels: pixels)
        f.add(targets.count)
        for t in targets {
            f.add(t.boxes.count)
            for (b, c) in zip(t.boxes, t.classes) {
                for v in [b.x, b.y, b.width, b.height] { f.add(v.bitPattern) }
                f.add(c)
            }
        }
        return f.hex
    }
}
