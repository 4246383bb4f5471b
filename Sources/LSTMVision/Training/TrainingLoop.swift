import Foundation

/// The loop both trainers run, from the current position (epoch, batch, step) to `options.epochs`: each step's
/// learning rate from the schedule, backward, the non-finite policy, clipping and the optimiser step, the progress
/// bar, checkpoints every `checkpointEvery` steps and the time limit. The trainers supply what differs: each batch's
/// loss, what counts as a hit (a correct label, a found box), and what ends an epoch (validation, logs, files).
final class TrainingLoop {
    let options: TrainingOptions
    let optimizer: any Optimizer
    /// The position, saved in checkpoints: a resumed run continues at `batchIndex` of `epoch` with step `step`.
    var epoch = 0
    var batchIndex = 0
    var step = 0
    /// Steps skipped for non-finite values (with `skipNonFinite`).
    var skipped = 0

    /// One batch, forward done and gradients cleared: its loss, its image count, and what it got right, asked only
    /// after a good step.
    struct Batch {
        var loss: Variable
        var images: Int
        var hits: () -> (hits: Int, total: Int)
    }

    /// The figures of one epoch, or of the part of it run before the time limit (`finished` false).
    struct EpochFigures {
        var epoch: Int
        var trainLoss: Double
        var hitRate: Double
        var learningRate: Double
        var seconds: Double
        var imagesPerSecond: Double
        var finished: Bool
    }

    init(options: TrainingOptions) {
        self.options = options
        optimizer = options.makeOptimizer()
    }

    /// Trains `model` on `batches` batches per epoch. `startEpoch(e)` prepares epoch e's data, `batch(i)` runs batch i
    /// of it, `checkpoint()` saves the state mid-epoch, `endEpoch` gets each epoch's figures after the position has
    /// moved on (it validates and saves). Throws on non-finite values unless skipping; `lastCheckpoint` names the file
    /// to go back to in that message.
    func run(model: Module, batches: Int, lastCheckpoint: String, quiet: Bool, timeLimit: TimeInterval?,
             startEpoch: (Int) throws -> Void, batch: (Int) throws -> Batch,
             checkpoint: () throws -> Void, endEpoch: (EpochFigures) throws -> Void) throws {
        let schedule = options.makeSchedule(stepsPerEpoch: batches)
        let runStart = Date()
        var outOfTime = false
        while epoch < options.epochs && !outOfTime {
            try startEpoch(epoch)
            let bar = ProgressBar(total: batches, label: "epoch \(epoch + 1)/\(options.epochs)")
            let started = Date()
            var lossSum = 0.0, hits = 0, total = 0, seen = 0
            while batchIndex < batches {
                optimizer.learningRate = schedule.rate(base: options.learningRate, step: step)
                let b = try batch(batchIndex)
                let lossValue = b.loss.value.scalar
                var finite = lossValue.isFinite, squaredNorm = 0.0
                if finite {
                    b.loss.backward()
                    squaredNorm = gradientSquaredNorm(model.parameters)   // finite exactly when every gradient is
                    finite = squaredNorm.isFinite
                }
                if !finite {
                    guard options.skipNonFinite else {
                        throw TrainingError.nonFinite("non-finite \(lossValue.isFinite ? "gradient" : "loss (\(lossValue))") at step \(step + 1) (epoch \(epoch + 1), batch \(batchIndex + 1)); the last good checkpoint is \(lastCheckpoint)")
                    }
                    skipped += 1
                } else {
                    if options.clipNorm > 0 { clipGradientNorm(model.parameters, maxNorm: options.clipNorm, squaredNorm: squaredNorm) }
                    optimizer.step(model.namedParameters)
                    let h = b.hits()
                    lossSum += Double(lossValue) * Double(b.images)
                    hits += h.hits
                    total += h.total
                    seen += b.images
                }
                step += 1
                batchIndex += 1
                if !quiet {
                    bar.update(done: batchIndex, loss: seen > 0 ? lossSum / Double(seen) : .nan,
                               accuracy: total > 0 ? Double(hits) / Double(total) : 0, images: seen)
                }
                if options.checkpointEvery > 0 && step % options.checkpointEvery == 0 && batchIndex < batches {
                    try checkpoint()
                }
                if let limit = timeLimit, Date().timeIntervalSince(runStart) > limit {
                    outOfTime = true
                    if !quiet { print("time limit of \(String(format: "%.0f", limit)) s reached after \(batchIndex) of \(batches) batches") }
                    break
                }
            }
            let seconds = Date().timeIntervalSince(started)
            let figures = EpochFigures(epoch: epoch + 1, trainLoss: seen > 0 ? lossSum / Double(seen) : .nan,
                                       hitRate: total > 0 ? Double(hits) / Double(total) : 0,
                                       learningRate: Double(optimizer.learningRate), seconds: seconds,
                                       imagesPerSecond: Double(seen) / max(seconds, 1e-9), finished: batchIndex >= batches)
            if figures.finished {
                epoch += 1
                batchIndex = 0
            }
            try endEpoch(figures)
        }
    }

    /// What ends an epoch's summary line when steps were skipped as non-finite.
    var skippedNote: String { skipped > 0 ? " [\(skipped) non-finite steps skipped]" : "" }
}
