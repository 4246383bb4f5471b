/// Shuffled mini-batches of a dataset, epoch after epoch, from a seed: the order of every epoch is a function of
/// (seed, epoch) alone, so a run resumed at (epoch, batch) sees the same data. The last batch may be smaller.
public struct DataLoader: Sendable {
    /// Images per epoch.
    public let count: Int
    public let batchSize: Int
    public let shuffle: Bool
    public let seed: UInt64

    public init(count: Int, batchSize: Int, shuffle: Bool, seed: UInt64 = 0) {
        precondition(batchSize > 0, "DataLoader: batch size must be positive")
        self.count = count
        self.batchSize = batchSize
        self.shuffle = shuffle
        self.seed = seed
    }

    /// A loader over every image of `dataset`.
    public init(_ dataset: some Dataset, batchSize: Int, shuffle: Bool, seed: UInt64 = 0) {
        self.init(count: dataset.count, batchSize: batchSize, shuffle: shuffle, seed: seed)
    }

    /// Number of batches per epoch.
    public var batchesPerEpoch: Int { (count + batchSize - 1) / batchSize }

    /// The sample order of `epoch`.
    public func order(epoch: Int) -> [Int] {
        var idx = Array(0..<count)
        if shuffle {
            var g = SeededGenerator(seed: seed &+ UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15)
            idx.shuffle(using: &g)
        }
        return idx
    }

    /// The indices of batch `b` of an epoch's `order`.
    public func indices(_ b: Int, of order: [Int]) -> ArraySlice<Int> {
        order[(b * batchSize)..<min(order.count, (b + 1) * batchSize)]
    }

    /// Batch `b` of an epoch's `order`, taken from `dataset`.
    public func batch<D: Dataset>(_ b: Int, of order: [Int], from dataset: D) -> (images: Tensor, targets: [D.Target]) {
        dataset.batch(indices(b, of: order))
    }
}
