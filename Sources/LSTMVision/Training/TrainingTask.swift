/// What a kind of training supplies to `Trainer`: its model, its data, each batch's loss, its validation metrics
/// and its epoch record. The trainer owns the rest (epochs, schedule, checkpoints, resume, time limit, non-finite
/// steps, log, plot, progress).
public protocol TrainingTask: AnyObject {
    associatedtype TrainData: Dataset
    associatedtype Metrics: ValidationMetrics
    associatedtype Record: EpochRecord

    /// The training set of the first epoch; its count and fingerprint identify the run's data.
    var train: TrainData { get }
    /// The parameters the optimiser updates: the model, or the part of it that learns.
    var trainable: any Module { get }
    /// The module whose weights checkpoints hold and resuming loads: the whole model, even when only part of it learns.
    var checkpointed: any Module { get }
    /// The metadata key and JSON of the model's settings, as its model file stores them.
    var configKey: String { get }
    var configJSON: String { get }

    /// The training set of `epoch` (the same size and kind as `train`); by default `train` every epoch.
    func trainingSet(epoch: Int) throws -> TrainData
    /// One batch, gradients cleared and forward done. Randomness depends on `step` and `shard` alone (the part of a
    /// global batch that a rank of a distributed run computes; 0 in one process), so a resumed run repeats it.
    func batch(images: Tensor, targets: [TrainData.Target], step: Int, shard: Int) throws -> TrainingBatch
    /// Scores the model on the validation set; nil without one.
    func validate() throws -> Metrics?
    /// Scores the model on the validation set with the ranks of `communicator`: by default rank 0 alone (the others
    /// get nil); a task may shard it and reduce the figures.
    func validate(communicator: any Communicator) throws -> Metrics?
    /// The log row of an epoch.
    func record(_ figures: EpochFigures, validation: Metrics?) -> Record
    /// Writes the model as a model file.
    func saveModel(to path: String, metadata: [String: String]) throws
    /// What else the state file keeps (loss settings, say), and the check that a state file's entries fit this task.
    func stateMetadata() throws -> [String: String]
    func checkResume(_ metadata: [String: String], source: String) throws
}

extension TrainingTask {
    public func trainingSet(epoch: Int) throws -> TrainData { train }
    /// A batch of a one-process run.
    public func batch(images: Tensor, targets: [TrainData.Target], step: Int) throws -> TrainingBatch {
        try batch(images: images, targets: targets, step: step, shard: 0)
    }
    public func validate(communicator: any Communicator) throws -> Metrics? {
        communicator.isRoot ? try validate() : nil
    }
    /// By default a state file holds nothing more to check.
    public func checkResume(_ metadata: [String: String], source: String) throws {}
}

/// A task's validation result: the score that picks the best model (higher is better), the loss, a summary for the
/// progress line and what the best model's file records of it.
public protocol ValidationMetrics {
    var score: Double { get }
    var loss: Double { get }
    var summary: String { get }
    var modelMetadata: [String: String] { get }
}

/// One row of a task's training log (`log.csv`, the plot and the state file's history).
public protocol EpochRecord: Codable, Sendable, Equatable {
    var epoch: Int { get }
    var trainLoss: Double { get }
    var validationLoss: Double { get }
    /// The CSV columns and this row's values, in order.
    static var csvHeader: [String] { get }
    var csvValues: [String] { get }
    /// The plot's lower chart: its title and series.
    static var qualityTitle: String { get }
    static func qualitySeries(_ history: [Self]) -> [(name: String, values: [Double])]
}

/// One batch, forward done: its loss, its image count, and what it got right, asked only after a good step.
public struct TrainingBatch {
    public var loss: Variable
    public var images: Int
    public var hits: () -> (hits: Int, total: Int)

    public init(loss: Variable, images: Int, hits: @escaping () -> (hits: Int, total: Int)) {
        self.loss = loss
        self.images = images
        self.hits = hits
    }
}

/// The figures of one epoch, or of the part of it run before the time limit (`finished` false).
public struct EpochFigures: Sendable {
    public var epoch: Int
    public var trainLoss: Double
    /// Hits over totals of the epoch's batches (accuracy, or found boxes).
    public var hitRate: Double
    public var learningRate: Double
    public var seconds: Double
    public var imagesPerSecond: Double
    public var finished: Bool
}
