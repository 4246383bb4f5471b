import Foundation

/// Everything that decides a training run, saved with its checkpoints so a resumed run goes on alike.
/// The defaults are LSTMVision's recipe for MNIST-sized data: Adam at 2e-3, batch 64, linear warm-up
/// then cosine decay, gradient-norm clipping at 1, forget-gate bias 1.
public struct TrainingOptions: Codable, Sendable, Equatable {
    public var epochs = 10
    public var batchSize = 64
    public var optimizer = OptimizerKind.adam
    public var learningRate: Float = 2e-3
    public var weightDecay: Float = 0
    public var momentum: Float = 0.9
    public var nesterov = false
    public var schedule = ScheduleKind.warmupCosine
    public var warmupSteps = 200
    /// For `step`: the rate is halved every `stepEpochs` epochs.
    public var stepEpochs = 3
    public var minimumLearningRate: Float = 1e-5
    /// Gradient-norm clipping threshold (0: off).
    public var clipNorm: Float = 1
    /// Initial forget-gate bias of every LSTM (PyTorch's default init leaves it random; 1 helps memory).
    public var forgetBias: Float? = 1
    public var seed: UInt64 = 1
    /// Also checkpoint every this many steps (0: at the end of each epoch only).
    public var checkpointEvery = 0
    /// Skip (and count) steps whose loss or gradients are not finite, instead of stopping.
    public var skipNonFinite = false
    public init() {}

    /// Checks the values; the message names the setting.
    public func validate() throws {
        func bad(_ m: String) -> TrainingError { .invalidOption(m) }
        // Bounded so that step counts (epochs × batches, warm-up and step-schedule lengths) cannot overflow.
        guard epochs > 0, epochs <= 1_000_000 else { throw bad("epochs must be in 1...1000000, got \(epochs)") }
        guard warmupSteps >= 0, warmupSteps <= 1_000_000_000 else {
            throw bad("warm-up steps must be in 0...1000000000, got \(warmupSteps)")
        }
        guard stepEpochs > 0, stepEpochs <= 1_000_000 else {
            throw bad("step-schedule epochs must be in 1...1000000, got \(stepEpochs)")
        }
        guard batchSize > 0, batchSize <= 65_536 else { throw bad("batch size must be in 1...65536, got \(batchSize)") }
        guard learningRate > 0, learningRate.isFinite else {
            throw bad("learning rate must be positive, got \(learningRate)")
        }
        guard weightDecay >= 0, weightDecay.isFinite else {
            throw bad("weight decay must be finite and ≥ 0, got \(weightDecay)")
        }
        guard clipNorm >= 0, clipNorm.isFinite else {
            throw bad("clipping norm must be finite and ≥ 0, got \(clipNorm)")
        }
        guard momentum >= 0, momentum < 1 else { throw bad("momentum must be in [0, 1), got \(momentum)") }
        guard minimumLearningRate >= 0, minimumLearningRate.isFinite else {
            throw bad("minimum learning rate must be finite and ≥ 0, got \(minimumLearningRate)")
        }
        guard checkpointEvery >= 0 else { throw bad("checkpoint interval must be ≥ 0, got \(checkpointEvery)") }
    }

    /// The optimiser these options name.
    public func makeOptimizer() -> any Optimizer {
        switch optimizer {
        case .adam: return Adam(learningRate: learningRate, weightDecay: weightDecay)
        case .adamw: return Adam.adamW(learningRate: learningRate, weightDecay: weightDecay)
        case .sgd:
            return SGD(learningRate: learningRate, momentum: momentum, nesterov: nesterov, weightDecay: weightDecay)
        }
    }

    /// The learning-rate schedule over `stepsPerEpoch × epochs` steps.
    public func makeSchedule(stepsPerEpoch: Int) -> LearningRateSchedule {
        let total = stepsPerEpoch * epochs
        switch schedule {
        case .constant: return .constant
        case .step: return .step(stepSize: stepEpochs * stepsPerEpoch, gamma: 0.5)
        case .cosine: return .cosine(totalSteps: total, minimum: minimumLearningRate)
        case .warmupCosine:
            return .warmupCosine(warmupSteps: min(warmupSteps, total / 4), totalSteps: total,
                                 minimum: minimumLearningRate)
        }
    }
}

/// The optimisers `TrainingOptions` can name.
public enum OptimizerKind: String, Codable, Sendable, CaseIterable {
    case adam, adamw, sgd
}

/// The learning-rate schedules `TrainingOptions` can name (see `LearningRateSchedule`).
public enum ScheduleKind: String, Codable, Sendable, CaseIterable {
    case constant, step, cosine
    case warmupCosine = "warmup-cosine"
}

/// Training that cannot go on; the message says why and where.
public enum TrainingError: Error, CustomStringConvertible, Equatable {
    case invalidOption(String)
    case nonFinite(String)
    case resume(String)
    /// Another run holds the run folder's lock (`RunLock`).
    case inUse(String)
    /// A file of the run could not be written (a full disk, say); the last checkpoint written is kept.
    case write(String)

    public var description: String {
        switch self {
        case let .invalidOption(m), let .nonFinite(m), let .resume(m), let .inUse(m), let .write(m): return m
        }
    }
}
