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
    /// The images at `indices`, in that order.
    public func subset(_ indices: [Int]) -> ImageDataset {
        precondition(indices.allSatisfy { $0 >= 0 && $0 < count },
                     "ImageDataset.subset: an index is outside 0..<\(count)")
        var out = [Float]()
        out.reserveCapacity(indices.count * imageSize)
        for i in indices { out += pixels[(i * imageSize)..<((i + 1) * imageSize)] }
        return ImageDataset(height: height, width: width, channels: channels, pixels: out,
                            labels: indices.map { labels[$0] }, classNames: classNames)
    }

    /// A held-out validation split, as Keras' `validation_split` and PyTorch's `random_split` give: a random
    /// `fraction` of the images (rounded, at least one) become the validation set, the rest (in their order) train.
    /// The draw depends on `seed` alone, by default a fixed one, so runs of any training seed see the same split.
    public func splitValidation(fraction: Double, seed: UInt64 = Self.validationSeed)
        -> (train: ImageDataset, validation: ImageDataset) {
        let (train, held) = Self.validationDraw(count: count, fraction: fraction, seed: seed)
        return (subset(train), subset(held))
    }

    /// The indices `splitValidation` keeps for training and holds out, each in increasing order (any dataset's
    /// split: `DetectionDataset.splitValidation` draws the same).
    public static func validationDraw(count: Int, fraction: Double, seed: UInt64) -> (train: [Int], held: [Int]) {
        precondition(fraction > 0 && fraction < 1 && count >= 2,
                     "splitValidation: needs a fraction in (0, 1) and two images, got \(fraction), \(count)")
        let n = min(count - 1, max(1, Int((fraction * Double(count)).rounded())))
        var order = Array(0..<count)
        var g = SeededGenerator(seed: seed)
        order.shuffle(using: &g)
        let held = Set(order.prefix(n))
        return ((0..<count).filter { !held.contains($0) }, order.prefix(n).sorted())
    }

    /// The seed of `splitValidation`'s default draw.
    public static let validationSeed: UInt64 = 0x0FA1_1DA7

    /// The fingerprint of the images' size, pixels, labels and class count (see `Fingerprint`).
    public var fingerprint: String {
        var f = Fingerprint(height: height, width: width, channels: channels, classes: classes, pixels: pixels)
        f.add(labels.count)
        for l in labels { f.add(l) }
        return f.hex
    }
}
