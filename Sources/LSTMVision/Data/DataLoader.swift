/// Yields shuffled mini-batches of a dataset, epoch after epoch, from a seed: the order of every
/// epoch is a function of (seed, epoch) alone, so a run resumed at (epoch, batch) sees the same data.
public struct DataLoader: Sendable {
    public let dataset: ImageDataset
    public let batchSize: Int
    public let shuffle: Bool
    public let seed: UInt64
    public let dropLast: Bool

    public init(_ dataset: ImageDataset, batchSize: Int, shuffle: Bool, seed: UInt64 = 0, dropLast: Bool = false) {
        precondition(batchSize > 0, "DataLoader: batch size must be positive")
        self.dataset = dataset
        self.batchSize = batchSize
        self.shuffle = shuffle
        self.seed = seed
        self.dropLast = dropLast
    }

    /// Number of batches per epoch.
    public var batchesPerEpoch: Int {
        dropLast ? dataset.count / batchSize : (dataset.count + batchSize - 1) / batchSize
    }

    /// The sample order of `epoch`.
    public func order(epoch: Int) -> [Int] {
        var idx = Array(0..<dataset.count)
        if shuffle {
            var g = SeededGenerator(seed: seed &+ UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15)
            idx.shuffle(using: &g)
        }
        return idx
    }

    /// Batch `b` of an epoch's `order`.
    public func batch(_ b: Int, of order: [Int]) -> (images: Tensor, labels: [Int]) {
        let lo = b * batchSize, hi = min(order.count, lo + batchSize)
        return dataset.batch(order[lo..<hi])
    }
}
