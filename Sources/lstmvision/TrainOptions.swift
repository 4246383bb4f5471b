import ArgumentParser
import Foundation
import LSTMVision

/// The optimiser and its schedule. Each is nil where not given: the run takes its recipe's value, or a resumed
/// run its checkpoint's.
struct OptimisationOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Epochs.", valueName: "n")) var epochs: Int?
    @Option(help: ArgumentHelp("Batch size.", valueName: "n")) var batchSize: Int?
    @Option(help: ArgumentHelp("Optimiser.", valueName: "name")) var optimizer: OptimizerKind?
    @Option(help: ArgumentHelp("Base learning rate.", valueName: "x")) var lr: Float?
    @Option(help: ArgumentHelp("Weight decay (L2; decoupled with adamw).", valueName: "x")) var weightDecay: Float?
    @Option(help: ArgumentHelp("SGD momentum.", valueName: "x")) var momentum: Float?
    @Option(help: ArgumentHelp("Learning-rate schedule.", valueName: "name")) var schedule: ScheduleKind?
    @Option(help: ArgumentHelp("Warm-up steps of warmup-cosine.", valueName: "n")) var warmup: Int?
    @Option(help: ArgumentHelp("Gradient-norm clipping threshold (0: off).", valueName: "x")) var clip: Float?
    @Option(help: ArgumentHelp("Initial forget-gate bias (none: PyTorch's init).", valueName: "x|none"))
    var forgetBias: ForgetBias?

    func validate() throws {
        if let epochs, !(1...1_000_000).contains(epochs) {
            throw ValidationError("--epochs must be in 1...1000000, got \(epochs)")
        }
        if let batchSize, !(1...65_536).contains(batchSize) {
            throw ValidationError("--batch-size must be in 1...65536, got \(batchSize)")
        }
        if let lr, !(lr > 0 && lr.isFinite) { throw ValidationError("--lr must be positive, got \(lr)") }
        if let weightDecay, !(weightDecay >= 0 && weightDecay.isFinite) {
            throw ValidationError("--weight-decay must be finite and ≥ 0, got \(weightDecay)")
        }
        if let momentum, !(momentum >= 0 && momentum < 1) {
            throw ValidationError("--momentum must be in [0, 1), got \(momentum)")
        }
        if let warmup, !(0...1_000_000_000).contains(warmup) {
            throw ValidationError("--warmup must be in 0...1000000000, got \(warmup)")
        }
        if let clip, !(clip >= 0 && clip.isFinite) {
            throw ValidationError("--clip must be finite and ≥ 0, got \(clip)")
        }
    }

    /// `options` with the values given here.
    func apply(to options: inout TrainingOptions) {
        if let epochs { options.epochs = epochs }
        if let batchSize { options.batchSize = batchSize }
        if let optimizer { options.optimizer = optimizer }
        if let lr { options.learningRate = lr }
        if let weightDecay { options.weightDecay = weightDecay }
        if let momentum { options.momentum = momentum }
        if let schedule { options.schedule = schedule }
        if let warmup { options.warmupSteps = warmup }
        if let clip { options.clipNorm = clip }
        if let forgetBias { options.forgetBias = forgetBias.value }
    }

    /// `base` (the recipe, or the checkpoint's when resuming) with these and `run`'s values, checked.
    func trainingOptions(run: RunOptions, base: TrainingOptions) throws -> TrainingOptions {
        var o = base
        apply(to: &o)
        run.apply(to: &o)
        try o.validate()
        return o
    }
}

/// Where a training run writes, how long it runs, and what else decides it.
struct RunOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Output folder (models, checkpoint, log, plot).", valueName: "dir"))
    var out: String = "runs/train"
    @Flag(help: "Resume the run in --out from its last checkpoint.") var resume = false
    @Option(help: ArgumentHelp("Stop after this many seconds (then save).", valueName: "s"))
    var timeLimit: Double?
    @Option(help: ArgumentHelp("Random seed (weights, shuffling).", valueName: "n")) var seed: UInt64?
    @Option(help: ArgumentHelp("Also checkpoint every N steps.", valueName: "N")) var checkpointEvery: Int?
    @Flag(help: "Skip steps with NaN/Inf loss or gradients, not stop.") var skipNonfinite = false
    @Option(help: ArgumentHelp("TensorBoard event files' folder (default: OUT/tensorboard).", valueName: "dir"))
    var tensorboard: String?
    @Flag(help: "Write no TensorBoard event files.") var noTensorboard = false
    /// Computes each batch as N shards whose gradients are added in order, as N MPI ranks do (tools/mpi-check.sh).
    @Option(help: .hidden) var shards: Int?
    @Option(help: ArgumentHelp("Under MPI: end the job when a collective waits this long for a rank (0: never).",
                               valueName: "s"))
    var collectiveTimeout: Double = Self.defaultCollectiveTimeout

    /// Seconds: far above a step, a validation by rank 0 alone or a checkpoint on a slow shared disk.
    static let defaultCollectiveTimeout = 300.0

    func validate() throws {
        try checkSeconds(timeLimit, "--time-limit")
        try checkSeconds(collectiveTimeout, "--collective-timeout")
        if noTensorboard && tensorboard != nil {
            throw ValidationError("--tensorboard and --no-tensorboard exclude each other")
        }
        if let shards, !(1...65_536).contains(shards) {
            throw ValidationError("--shards must be in 1...65536, got \(shards)")
        }
        if let checkpointEvery, checkpointEvery < 0 {
            throw ValidationError("--checkpoint-every must be ≥ 0, got \(checkpointEvery)")
        }
    }

    /// `options` with the values given here.
    func apply(to options: inout TrainingOptions) {
        if let seed { options.seed = seed }
        if let checkpointEvery { options.checkpointEvery = checkpointEvery }
        if skipNonfinite { options.skipNonFinite = true }
    }
}

/// The recipe a task's training starts from, for its help.
func recipeDescription(_ o: TrainingOptions) -> String {
    "Defaults: \(o.epochs) epochs, batch \(o.batchSize), \(o.optimizer.rawValue) at lr \(o.learningRate),"
        + " \(o.schedule.rawValue), clip \(o.clipNorm), forget bias \(o.forgetBias.map { "\($0)" } ?? "none")."
        + " --help-hidden adds the input limits."
}
