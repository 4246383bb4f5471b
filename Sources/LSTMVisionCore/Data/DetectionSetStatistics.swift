/// Summary figures of a detection set: image sizes, boxes per image and box sizes by COCO's area ranges.
public struct DetectionSetStatistics: Sendable, Equatable {
    public var images: Int
    public var widths: ClosedRange<Int>
    public var heights: ClosedRange<Int>
    /// Boxes on the image holding fewest and most.
    public var boxesPerImage: ClosedRange<Int>
    public var boxes: Int
    /// Boxes by area: below 32², from 32² below 96², from 96² (COCO's small, medium and large).
    public var small: Int, medium: Int, large: Int
    /// Boxes per image on average.
    public var meanBoxesPerImage: Double { Double(boxes) / Double(images) }

    /// The figures of `coco`; nil for a set without images.
    public init?(_ coco: COCODataset) {
        guard !coco.images.isEmpty else { return nil }
        var perImage = Dictionary(uniqueKeysWithValues: coco.images.map { ($0.id, 0) })
        for a in coco.annotations { perImage[a.imageID, default: 0] += 1 }
        images = coco.images.count
        widths = coco.images.map(\.width).min()!...coco.images.map(\.width).max()!
        heights = coco.images.map(\.height).min()!...coco.images.map(\.height).max()!
        boxesPerImage = perImage.values.min()!...perImage.values.max()!
        boxes = coco.annotations.count
        let areas = coco.annotations.map(\.bbox.area)
        small = areas.filter { $0 < 32 * 32 }.count
        medium = areas.filter { $0 >= 32 * 32 && $0 < 96 * 96 }.count
        large = areas.filter { $0 >= 96 * 96 }.count
    }
}
