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

/// Images of one size with their boxes, held in memory for detector training and evaluation: pixels in
/// [0, 1], interleaved per row ([H, W·C] per image, as `ImageDataset`), and each image's COCO id, so that
/// detections can be scored against the COCO file it came from.
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

    public init(height: Int, width: Int, channels: Int, pixels: [Float], targets: [DetectionTarget], imageIDs: [Int],
                classNames: [String], categoryIDs: [Int]) {
        precondition(pixels.count == targets.count * height * width * channels && imageIDs.count == targets.count,
                     "DetectionDataset: \(pixels.count) pixels and \(imageIDs.count) ids for \(targets.count) images"
                     + " of \(height)×\(width)×\(channels)")
        precondition(classNames.count == categoryIDs.count,
                     "DetectionDataset: \(classNames.count) names for \(categoryIDs.count) categories")
        self.height = height
        self.width = width
        self.channels = channels
        self.pixels = pixels
        self.targets = targets
        self.imageIDs = imageIDs
        self.classNames = classNames
        self.categoryIDs = categoryIDs
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
    /// and the images it names under `directory/split/images/`.
    public static func load(directory: String, split: String,
                            limits: InputLimits = .default) throws -> DetectionDataset {
        let folder = (directory as NSString).appendingPathComponent(split)
        return try read(annotations: (folder as NSString).appendingPathComponent("annotations.json"),
                        images: (folder as NSString).appendingPathComponent("images"), limits: limits)
    }

    /// Reads a COCO annotation file and its images (file names relative to `images`). All images must have one
    /// size; they are converted to `channels` (default: the first image's). Class indices follow the
    /// categories sorted by id; crowd regions are left out. Files are read within `limits`.
    public static func read(annotations path: String, images folder: String, channels: Int? = nil,
                            limits: InputLimits = .default) throws -> DetectionDataset {
        let coco = try COCODataset.read(path, limits: limits)
        guard !coco.images.isEmpty else { throw DataError.invalid("\(path): no images") }
        let categories = coco.categories.sorted { $0.id < $1.id }
        let classOf = Dictionary(uniqueKeysWithValues: categories.enumerated().map { ($0.element.id, $0.offset) })
        var boxes: [Int: [(Box, Int)]] = [:]
        for a in coco.annotations where !a.isCrowd {
            boxes[a.imageID, default: []].append((a.bbox, classOf[a.categoryID]!))
        }
        var pixels: [Float] = []
        var size: (width: Int, height: Int, channels: Int)?
        var targets: [DetectionTarget] = []
        for entry in coco.images {
            let file = (folder as NSString).appendingPathComponent(entry.fileName)
            var image = try ImageCodecs.read(file, limits: limits)
            let wanted = channels ?? size?.channels ?? image.channels
            if wanted == 1 { image = image.greyscale() } else if image.channels == 1 {
                image = Image(width: image.width, height: image.height, channels: 3,
                              pixels: image.pixels.flatMap { [$0, $0, $0] })
            }
            if let size, size.width != image.width || size.height != image.height {
                throw DataError.invalid("\(file): \(image.width)×\(image.height) image, the others are"
                                        + " \(size.width)×\(size.height)")
            }
            size = (image.width, image.height, image.channels)
            pixels += image.pixels.map { $0 / 255 }
            let own = boxes[entry.id] ?? []
            targets.append(DetectionTarget(boxes: own.map(\.0), classes: own.map(\.1)))
        }
        return DetectionDataset(height: size!.height, width: size!.width, channels: size!.channels, pixels: pixels,
                                targets: targets, imageIDs: coco.images.map(\.id),
                                classNames: categories.map(\.name), categoryIDs: categories.map(\.id))
    }

    /// The first `n` images (or all when fewer).
    public func prefix(_ n: Int) -> DetectionDataset {
        let k = min(max(n, 0), count)
        return DetectionDataset(height: height, width: width, channels: channels,
                                pixels: Array(pixels[0..<(k * imageSize)]),
                                targets: Array(targets[0..<k]), imageIDs: Array(imageIDs[0..<k]),
                                classNames: classNames, categoryIDs: categoryIDs)
    }

    /// The ground truth as a COCO dataset (for `COCOEvaluator`), with the images' ids and categories.
    public func groundTruth() -> COCODataset {
        var annotations: [COCODataset.Annotation] = []
        for (t, id) in zip(targets, imageIDs) {
            for (b, c) in zip(t.boxes, t.classes) {
                annotations.append(.init(id: annotations.count + 1, imageID: id, categoryID: categoryIDs[c], bbox: b))
            }
        }
        return COCODataset(images: imageIDs.map { .init(id: $0, fileName: "\($0).png", width: width, height: height) },
                           annotations: annotations,
                           categories: zip(categoryIDs, classNames).map { .init(id: $0, name: $1) })
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
