/// Images of one size held in memory, pixels interleaved per row ([H, W·C] per image), each with its ground truth
/// (`Target`: a class label, or boxes). The loader batches any dataset; checkpoints keep its fingerprint.
public protocol Dataset: Sendable {
    associatedtype Target: Sendable
    var height: Int { get }
    var width: Int { get }
    var channels: Int { get }
    /// count × height × width × channels values.
    var pixels: [Float] { get }
    /// One per image.
    var targets: [Target] { get }
    var classNames: [String] { get }
    /// The first `n` images (or all when fewer).
    func prefix(_ n: Int) -> Self
    /// A hash of the images and their targets (see `Fingerprint`), which resuming checks.
    var fingerprint: String { get }
}

extension Dataset {
    public var count: Int { targets.count }
    public var imageSize: Int { height * width * channels }
    public var classes: Int { classNames.count }

    /// The images at `indices` as [n, height, width·channels] and their targets, gathered on all threads.
    public func batch(_ indices: some Collection<Int>) -> (images: Tensor, targets: [Target]) {
        let size = imageSize, order = Array(indices), n = order.count
        precondition(order.allSatisfy { $0 >= 0 && $0 < count }, "Dataset.batch: an index is outside 0..<\(count)")
        var out = uninitializedFloats(n * size)   // every image copied below
        out.withUnsafeMutableBufferPointer { o in
            pixels.withUnsafeBufferPointer { p in
                nonisolated(unsafe) let (o, p) = (o.baseAddress, p.baseAddress)
                Parallel.forItems(n, size: size) { images in
                    for k in images { (o! + k * size).update(from: p! + order[k] * size, count: size) }
                }
            }
        }
        return (Tensor(shape: [n, height, width * channels], scalars: out), order.map { targets[$0] })
    }

    /// Image `i`, pixels as stored.
    public func image(_ i: Int) -> Image {
        Image(width: width, height: height, channels: channels,
              pixels: Array(pixels[(i * imageSize)..<((i + 1) * imageSize)]))
    }
}
