import Foundation

/// Labelled images of one size held in memory (a `Dataset` whose targets are class labels).
public struct ImageDataset: Dataset {
    public let height: Int
    public let width: Int
    public let channels: Int
    /// count × height × width × channels values.
    public var pixels: [Float]
    public var labels: [Int]
    public var classNames: [String]

    public init(height: Int, width: Int, channels: Int, pixels: [Float], labels: [Int], classNames: [String]) {
        precondition(pixels.count == labels.count * height * width * channels,
                     "ImageDataset: \(pixels.count) pixels for \(labels.count) images"
                     + " of \(height)×\(width)×\(channels)")
        self.height = height
        self.width = width
        self.channels = channels
        self.pixels = pixels
        self.labels = labels
        self.classNames = classNames
    }

    /// The labels, as `Dataset` names them.
    public var targets: [Int] { labels }

    /// The first `n` images (or all when fewer).
    public func prefix(_ n: Int) -> ImageDataset {
        let k = min(n, count)
        return ImageDataset(height: height, width: width, channels: channels,
                            pixels: Array(pixels[0..<(k * imageSize)]),
                            labels: Array(labels[0..<k]), classNames: classNames)
    }
}

extension ImageDataset {
    /// The fingerprint of the images' size, pixels, labels and class count (see `Fingerprint`).
    public var fingerprint: String {
        var f = Fingerprint(height: height, width: width, channels: channels, classes: classes, pixels: pixels)
        f.add(labels.count)
        for l in labels { f.add(l) }
        return f.hex
    }
}
