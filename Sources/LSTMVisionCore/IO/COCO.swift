import Foundation

/// The ground truth of a COCO instance-annotation file: images, box annotations and categories (other
/// fields, such as segmentations, are not read). Reading validates every reference and box, so the
/// evaluator and the trainers can trust it; a fault becomes one `DataError` naming the file.
public struct COCODataset: Codable, Sendable, Equatable {
    /// An image entry: its id, file name and size in pixels.
    public struct Image: Codable, Sendable, Equatable {
        public var id: Int
        public var fileName: String
        public var width: Int
        public var height: Int

        public init(id: Int, fileName: String, width: Int, height: Int) {
            self.id = id
            self.fileName = fileName
            self.width = width
            self.height = height
        }

        enum CodingKeys: String, CodingKey {
            case id, width, height
            case fileName = "file_name"
        }
    }

    /// One object: its box in an image, its category, its `area` (which picks the COCO area range; for
    /// COCO itself the segmentation's area, not the box's) and whether it is a crowd region.
    public struct Annotation: Codable, Sendable, Equatable {
        public var id: Int
        public var imageID: Int
        public var categoryID: Int
        public var bbox: Box
        public var area: Double
        public var isCrowd: Bool

        /// An annotation; `area` defaults to the box's area.
        public init(id: Int, imageID: Int, categoryID: Int, bbox: Box, area: Double? = nil, isCrowd: Bool = false) {
            self.id = id
            self.imageID = imageID
            self.categoryID = categoryID
            self.bbox = bbox
            self.area = area ?? bbox.area
            self.isCrowd = isCrowd
        }

        enum CodingKeys: String, CodingKey {
            case id, bbox, area, iscrowd
            case imageID = "image_id"
            case categoryID = "category_id"
        }

        /// Decodes an annotation; a missing `area` is the box's area and a missing `iscrowd` is 0.
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let bbox = try c.decode(Box.self, forKey: .bbox)
            let crowd = try c.decodeIfPresent(Int.self, forKey: .iscrowd) ?? 0
            guard crowd == 0 || crowd == 1 else {
                throw DecodingError.dataCorruptedError(forKey: .iscrowd, in: c,
                                                       debugDescription: "iscrowd must be 0 or 1, got \(crowd)")
            }
            self.init(id: try c.decode(Int.self, forKey: .id), imageID: try c.decode(Int.self, forKey: .imageID),
                      categoryID: try c.decode(Int.self, forKey: .categoryID), bbox: bbox,
                      area: try c.decodeIfPresent(Double.self, forKey: .area), isCrowd: crowd == 1)
        }

        /// Encodes COCO's fields, `iscrowd` as 0 or 1.
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(id, forKey: .id)
            try c.encode(imageID, forKey: .imageID)
            try c.encode(categoryID, forKey: .categoryID)
            try c.encode(bbox, forKey: .bbox)
            try c.encode(area, forKey: .area)
            try c.encode(isCrowd ? 1 : 0, forKey: .iscrowd)
        }
    }

    /// An object category: its id, name and optional supercategory.
    public struct Category: Codable, Sendable, Equatable {
        public var id: Int
        public var name: String
        public var supercategory: String?

        public init(id: Int, name: String, supercategory: String? = nil) {
            self.id = id
            self.name = name
            self.supercategory = supercategory
        }
    }

    public var images: [Image]
    public var annotations: [Annotation]
    public var categories: [Category]
    /// What validation repaired (boxes clipped to their image), one line each; not part of the JSON.
    public var warnings: [String] = []

    enum CodingKeys: String, CodingKey {
        case images, annotations, categories
    }

    public init(images: [Image], annotations: [Annotation], categories: [Category]) {
        self.images = images
        self.annotations = annotations
        self.categories = categories
    }

    /// Reads and validates a COCO instance-annotation file of at most `limits.maxFileBytes` bytes.
    public static func read(_ path: String, limits: InputLimits = .default) throws -> COCODataset {
        try decode(limits.readFile(path), source: path)
    }

    /// Parses and validates COCO instance-annotation JSON; `source` names the input in errors and warnings.
    public static func decode(_ data: Data, source: String) throws -> COCODataset {
        var dataset = try InputLimits.decodeJSON(COCODataset.self, from: data, source: source, what: "COCO annotation")
        try dataset.validate(source: source)
        return dataset
    }

    /// Writes the dataset as COCO JSON, atomically.
    public func write(to path: String) throws {
        try AtomicFile.write(COCOJSON.encode(self), to: path)
    }

    /// Checks that ids are unique, references resolve and boxes are finite with non-negative sizes; a box
    /// reaching more than 1 px outside its image is clipped to it and counted in `warnings` (one lying
    /// wholly outside is an error).
    mutating func validate(source: String) throws {
        func fail(_ m: String) -> DataError { .invalid("\(source): \(m)") }
        var imageSizes: [Int: (width: Int, height: Int)] = [:]
        for image in images {
            guard imageSizes[image.id] == nil else { throw fail("duplicate image id \(image.id)") }
            guard image.width > 0, image.height > 0 else {
                throw fail("image \(image.id) (\(image.fileName)) has size \(image.width)x\(image.height)")
            }
            imageSizes[image.id] = (image.width, image.height)
        }
        var categoryIDs = Set<Int>(), names = Set<String>()
        for category in categories {
            guard categoryIDs.insert(category.id).inserted else { throw fail("duplicate category id \(category.id)") }
            guard names.insert(category.name).inserted else { throw fail("duplicate category name '\(category.name)'") }
        }
        var annotationIDs = Set<Int>()
        var clipped: [String] = []
        for k in annotations.indices {
            let a = annotations[k]
            let what = "annotation \(a.id)"
            guard annotationIDs.insert(a.id).inserted else { throw fail("duplicate annotation id \(a.id)") }
            guard let size = imageSizes[a.imageID] else {
                throw fail("\(what) refers to unknown image id \(a.imageID)")
            }
            guard categoryIDs.contains(a.categoryID) else {
                throw fail("\(what) refers to unknown category id \(a.categoryID)")
            }
            guard a.bbox.isFinite, a.bbox.width >= 0, a.bbox.height >= 0 else {
                throw fail("\(what) has an invalid box \(describe(a.bbox)) (sizes must be finite and non-negative)")
            }
            guard a.area.isFinite, a.area >= 0 else { throw fail("\(what) has an invalid area \(a.area)") }
            let w = Double(size.width), h = Double(size.height)
            if a.bbox.x < -1 || a.bbox.y < -1 || a.bbox.maxX > w + 1 || a.bbox.maxY > h + 1 {
                let inside = a.bbox.clipped(width: w, height: h)
                guard inside.area > 0 || a.bbox.area == 0 else {
                    throw fail("\(what) box \(describe(a.bbox)) lies outside its \(size.width)x\(size.height)"
                               + " image \(a.imageID)")
                }
                clipped.append("\(what) \(describe(a.bbox)) in image \(a.imageID) of \(size.width)x\(size.height)")
                annotations[k].bbox = inside
            }
        }
        if let first = clipped.first {
            warnings.append("\(source): \(clipped.count) box\(clipped.count == 1 ? "" : "es") reached more"
                            + " than 1 px outside the image and were clipped to it (first: \(first))")
        }
    }
}

/// One detection in COCO's results format: an image, a category, a box and a confidence score.
public struct COCODetection: Codable, Sendable, Equatable {
    public var imageID: Int
    public var categoryID: Int
    public var bbox: Box
    public var score: Double

    public init(imageID: Int, categoryID: Int, bbox: Box, score: Double) {
        self.imageID = imageID
        self.categoryID = categoryID
        self.bbox = bbox
        self.score = score
    }

    enum CodingKeys: String, CodingKey {
        case bbox, score
        case imageID = "image_id"
        case categoryID = "category_id"
    }

    /// Reads a COCO results file (a JSON array of detections) of at most `limits.maxFileBytes` bytes, checked
    /// against the images and categories of `dataset`.
    public static func read(_ path: String, for dataset: COCODataset,
                            limits: InputLimits = .default) throws -> [COCODetection] {
        try decode(limits.readFile(path), source: path, for: dataset)
    }

    /// Parses and validates COCO results JSON; `source` names the input in errors.
    public static func decode(_ data: Data, source: String, for dataset: COCODataset) throws -> [COCODetection] {
        let detections = try InputLimits.decodeJSON([COCODetection].self, from: data, source: source,
                                                    what: "COCO results")
        let imageIDs = Set(dataset.images.map(\.id)), categoryIDs = Set(dataset.categories.map(\.id))
        for (k, d) in detections.enumerated() {
            func fail(_ m: String) -> DataError { .invalid("\(source): detection \(k): \(m)") }
            guard imageIDs.contains(d.imageID) else { throw fail("unknown image id \(d.imageID)") }
            guard categoryIDs.contains(d.categoryID) else { throw fail("unknown category id \(d.categoryID)") }
            guard d.bbox.isFinite, d.bbox.width >= 0, d.bbox.height >= 0 else {
                throw fail("invalid box \(describe(d.bbox)) (sizes must be finite and non-negative)")
            }
            guard d.score.isFinite else { throw fail("score \(d.score) is not finite") }
        }
        return detections
    }

    /// Writes detections as a COCO results file, atomically.
    public static func write(_ detections: [COCODetection], to path: String) throws {
        try AtomicFile.write(COCOJSON.encode(detections), to: path)
    }
}

private func describe(_ b: Box) -> String { "[\(b.x), \(b.y), \(b.width), \(b.height)]" }

/// Writing the JSON of both COCO file kinds (reading goes through `InputLimits.decodeJSON`).
enum COCOJSON {
    static func encode<T: Encodable>(_ value: T) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(value)
    }
}
