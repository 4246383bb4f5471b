/// An axis-aligned box in pixels, in COCO's convention: `x`, `y` are the top-left corner and `width`,
/// `height` its size. It is coded as COCO's `[x, y, width, height]` array, so it reads and writes `bbox` fields.
public struct Box: Codable, Sendable, Equatable {
    public var x: Double
    public var y: Double
    public var width: Double
    public var height: Double

    /// A box from its top-left corner and size.
    public init(x: Double, y: Double, width: Double, height: Double) {
        self.x = x
        self.y = y
        self.width = width
        self.height = height
    }

    /// A box from its centre and size (the YOLO / DETR convention).
    public init(centerX: Double, centerY: Double, width: Double, height: Double) {
        self.init(x: centerX - width / 2, y: centerY - height / 2, width: width, height: height)
    }

    /// The horizontal centre.
    public var centerX: Double { x + width / 2 }
    /// The vertical centre.
    public var centerY: Double { y + height / 2 }
    /// The right edge.
    public var maxX: Double { x + width }
    /// The bottom edge.
    public var maxY: Double { y + height }
    /// Width times height, the area COCO gives a detection.
    public var area: Double { width * height }
    /// True when all four numbers are finite.
    public var isFinite: Bool { x.isFinite && y.isFinite && width.isFinite && height.isFinite }

    /// Intersection over union with `other`, computed as pycocotools' `bbIou`: 0 when the boxes do not overlap
    /// with a positive width and height. When `other` is an `iscrowd` region, the union is this box's own area
    /// (the fraction of this box that lies inside the crowd region).
    public func iou(_ other: Box, otherIsCrowd: Bool = false) -> Double {
        let w = min(width + x, other.width + other.x) - max(x, other.x)
        guard w > 0 else { return 0 }
        let h = min(height + y, other.height + other.y) - max(y, other.y)
        guard h > 0 else { return 0 }
        let intersection = w * h
        let union = otherIsCrowd ? area : area + other.area - intersection
        return intersection / union
    }

    /// The part of the box inside an image of the given size (zero width or height when it lies outside).
    public func clipped(width imageWidth: Double, height imageHeight: Double) -> Box {
        let x0 = min(max(x, 0), imageWidth), x1 = min(max(maxX, 0), imageWidth)
        let y0 = min(max(y, 0), imageHeight), y1 = min(max(maxY, 0), imageHeight)
        return Box(x: x0, y: y0, width: max(x1 - x0, 0), height: max(y1 - y0, 0))
    }

    /// Decodes COCO's `[x, y, width, height]`.
    public init(from decoder: any Decoder) throws {
        var c = try decoder.unkeyedContainer()
        if let n = c.count, n != 4 {
            throw DecodingError.dataCorruptedError(
                in: c, debugDescription: "a box needs 4 numbers [x, y, width, height], got \(n)")
        }
        x = try c.decode(Double.self)
        y = try c.decode(Double.self)
        width = try c.decode(Double.self)
        height = try c.decode(Double.self)
    }

    /// Encodes COCO's `[x, y, width, height]`.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.unkeyedContainer()
        try c.encode(contentsOf: [x, y, width, height])
    }
}
