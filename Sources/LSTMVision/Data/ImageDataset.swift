import Foundation

/// Labelled images of one size held in memory, pixels interleaved per row ([H, W·C] per image).
public struct ImageDataset: Sendable {
    public let height: Int
    public let width: Int
    public let channels: Int
    /// count × height × width × channels values.
    public var pixels: [Float]
    public var labels: [Int]
    public var classNames: [String]

    public init(height: Int, width: Int, channels: Int, pixels: [Float], labels: [Int], classNames: [String]) {
        precondition(pixels.count == labels.count * height * width * channels,
                     "ImageDataset: \(pixels.count) pixels for \(labels.count) images of \(height)×\(width)×\(channels)")
        self.height = height
        self.width = width
        self.channels = channels
        self.pixels = pixels
        self.labels = labels
        self.classNames = classNames
    }

    public var count: Int { labels.count }
    public var imageSize: Int { height * width * channels }
    public var classes: Int { classNames.count }

    /// The images at `indices` as [n, height, width·channels] and their labels. A training batch is gathered on both cores
    /// (64 MNIST images from all over the set: 57 µs on one, waiting on memory, 1.2% of a 1×128 training step).
    public func batch(_ indices: some Collection<Int>) -> (images: Tensor, labels: [Int]) {
        let size = imageSize, order = Array(indices), n = order.count
        precondition(order.allSatisfy { $0 >= 0 && $0 < count }, "ImageDataset.batch: an index is outside 0..<\(count)")
        var out = uninitializedFloats(n * size)   // every image copied below
        out.withUnsafeMutableBufferPointer { o in
            pixels.withUnsafeBufferPointer { p in
                nonisolated(unsafe) let (o, p) = (o.baseAddress, p.baseAddress)
                Parallel.forItems(n, size: size) { images in
                    for k in images { (o! + k * size).update(from: p! + order[k] * size, count: size) }
                }
            }
        }
        return (Tensor(shape: [n, height, width * channels], scalars: out), order.map { labels[$0] })
    }

    /// The first `n` images (or all when fewer).
    public func prefix(_ n: Int) -> ImageDataset {
        let k = min(n, count)
        return ImageDataset(height: height, width: width, channels: channels, pixels: Array(pixels[0..<(k * imageSize)]),
                            labels: Array(labels[0..<k]), classNames: classNames)
    }

    /// Normalises every pixel as (x − mean) / std.
    public mutating func normalize(mean: Float, std: Float) {
        for i in 0..<pixels.count { pixels[i] = (pixels[i] - mean) / std }
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
