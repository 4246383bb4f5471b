import Foundation

/// Trains any `TrainingTask` from the current position (epoch, batch, step) to `options.epochs`: shuffled
/// mini-batches, each step's learning rate from the schedule, backward, the non-finite policy, clipping, the
/// optimiser step and the progress bar; validation after each epoch, the best model kept; atomic checkpoints with
/// the optimiser state and the data position, from which `resume` continues exactly; a CSV log, a plot and
/// TensorBoard event files. Data-parallel across the ranks of `communicator` (Trainer+Distributed.swift): each
/// global batch is split into one shard per rank and their gradients summed in rank order; rank 0 writes the files.
/// Surviving what clusters do to a job (Trainer+Stopping.swift): SIGTERM or SIGINT (`StopSignals`) stops every rank
/// at the same step, with a checkpoint; a failed write (a full disk) stops it keeping the last checkpoint; the run
/// folder's lock (`RunLock`) refuses a second run into the same folder.
public final class Trainer<Task: TrainingTask> {
    public let task: Task
    public let options: TrainingOptions
    public let folder: RunFolder
    /// Silences the progress lines.
    public var quiet = false
    /// Stops training (after validating) once this many seconds have passed; nil trains all epochs.
    public var timeLimit: TimeInterval?
    /// Entries added to the state file's metadata (the CLI keeps its data options there, so that `train --resume`
    /// reads the same data without being told again).
    public var runMetadata: [String: String] = [:]
    /// Where TensorBoard event files go (`folder.tensorBoard` by default; nil writes none): every step's loss and
    /// learning rate ("step/loss", "step/learning_rate" at the step's 0-based index), and at the end of each finished
    /// epoch the columns of `log.csv` ("epoch/<column>" at the number of steps done), the same values as 32-bit floats.
    public var tensorBoard: String?
    /// The log: one record per finished epoch.
    public private(set) var history: [Task.Record] = []
    /// The limits the state file is read within (`resume`).
    public let limits: InputLimits
    /// The processes this run trains on (`Distributed.current` by default): rank 0 alone prints and writes files.
    public var communicator: any Communicator = Distributed.current
    /// The shards each global batch is split into (nil: one per rank). One process given more computes them one
    /// after the other and adds their gradients in order, as that many ranks do: it ends with their weights exactly.
    public var shards: Int?
    /// Seconds spent summing gradients across ranks, seconds waiting for the slowest rank before, and the steps that
    /// did, in this run.
    public internal(set) var reduceSeconds = 0.0, waitSeconds = 0.0, reducedSteps = 0

    let optimizer: any Optimizer
    let loader: DataLoader
    /// The position, saved in checkpoints: a resumed run continues at `batchIndex` of `epoch` with step `step`.
    var epoch = 0, batchIndex = 0, step = 0
    /// Steps skipped for non-finite values (with `skipNonFinite`).
    var skipped = 0
    /// The best validation score so far.
    var bestScore = -1.0
    /// True once `resume` has read a state file: the TensorBoard log then skips the steps earlier files hold.
    var resumed = false
    /// The run's TensorBoard event file, opened by `run`.
    var events: TensorBoardLog?
    /// `task.train.fingerprint`, computed once (it hashes every pixel).
    lazy var trainFingerprint = task.train.fingerprint
    /// The first stop signal received (0: none): `StopSignals`' by default; tests give their own.
    var stopRequested: () -> Int32 = { StopSignals.pending }
    /// Signals the test hook LSTMVISION_TEST_SIGNAL_AT_STEP raises, by 1-based step (`StopSignals.testSignals`).
    let testSignals = StopSignals.testSignals()
    /// The run folder's lock, held by rank 0 from `lockFolder` to the end of `run`.
    var lock: RunLock?
    var locked = false
    /// The step of the last checkpoint written or resumed from (nil: none yet), named when a write fails.
    var lastCheckpointStep: Int?

    public init(_ task: Task, options: TrainingOptions, folder: RunFolder, limits: InputLimits = .default) throws {
        try options.validate()
        self.task = task
        self.limits = limits
        self.options = options
        self.folder = folder
        tensorBoard = folder.tensorBoard
        optimizer = options.makeOptimizer()
        loader = DataLoader(task.train, batchSize: options.batchSize, shuffle: true, seed: options.seed)
        try folder.create()
    }

    /// Trains to `options.epochs`, returning the log. Throws on non-finite values (unless skipping).
    @discardableResult
    public func run() throws -> [Task.Record] {
        let batches = loader.batchesPerEpoch, parts = shards ?? communicator.size
        let schedule = options.makeSchedule(stepsPerEpoch: batches)
        let runStart = Date()
        try lockFolder()
        defer { unlockFolder() }
        try startRanks(parts: parts)
        if let dir = tensorBoard, communicator.isRoot {
            let log = try TensorBoardLog(directory: dir, continuing: resumed, limits: limits)
            if !silent && !resumed && !log.earlierFiles.isEmpty {
                print("note: \(dir) already holds event files of an earlier run (\(log.earlierFiles.count));"
                      + " TensorBoard shows them with this run's (delete them or give another folder)")
            }
            events = log
        }
        defer { events = nil }
        var outOfTime = false, stopAfterEpoch: Int32 = 0
        while epoch < options.epochs && !outOfTime && stopAfterEpoch == 0 {
            let data = try task.trainingSet(epoch: epoch), order = loader.order(epoch: epoch)
            let bar = ProgressBar(total: batches, label: "epoch \(epoch + 1)/\(options.epochs)")
            let started = Date()
            var lossSum = 0.0, hits = 0, total = 0, seen = 0
            while batchIndex < batches {
                optimizer.learningRate = schedule.rate(base: options.learningRate, step: step)
                let timeUp = timeLimit.map { Date().timeIntervalSince(runStart) > $0 } ?? false
                for signal in testSignals[step + 1] ?? [] { raise(signal) }
                let g = try gradients(loader.indices(batchIndex, of: order), from: data, parts: parts, timeUp: timeUp)
                let lossValue = g.loss
                if !g.finite {
                    guard options.skipNonFinite else {
                        let error = TrainingError.nonFinite("non-finite"
                            + " \(lossValue.isFinite ? "gradient" : "loss (\(lossValue))")"
                            + " at step \(step + 1) (epoch \(epoch + 1), batch \(batchIndex + 1));"
                            + " the last good checkpoint is \(folder.lastModel)")
                        // Every rank saw the same summed figures: rank 0 alone reports it, all exit.
                        if communicator.size > 1 { throw DistributedError(error.description, everyRank: true) }
                        throw error
                    }
                    skipped += 1
                } else {
                    if options.clipNorm > 0 {
                        clipGradientNorm(task.trainable.parameters, maxNorm: options.clipNorm,
                                         squaredNorm: g.squaredNorm)
                    }
                    optimizer.step(task.trainable.namedParameters)
                    lossSum += g.lossSum
                    hits += g.hits
                    total += g.total
                    seen += g.images
                }
                try writing {
                    try events?.write([("step/loss", Double(lossValue)),
                                       ("step/learning_rate", Double(optimizer.learningRate))], step: step)
                }
                step += 1
                batchIndex += 1
                if !silent {
                    bar.update(done: batchIndex, loss: seen > 0 ? lossSum / Double(seen) : .nan,
                               accuracy: total > 0 ? Double(hits) / Double(total) : nil, images: seen)
                }
                // Every rank agreed on the signal in the step's exchange: all stop here, or after this epoch's end.
                if g.stopSignal != 0 {
                    guard batchIndex >= batches else {
                        if !silent && bar.isTerminal { print("") }         // off the progress line
                        try stop(g.stopSignal, batches: batches)
                    }
                    stopAfterEpoch = g.stopSignal
                }
                if options.checkpointEvery > 0 && step % options.checkpointEvery == 0 && batchIndex < batches
                    && communicator.isRoot {
                    try writing { try saveLast() }
                }
                // Under MPI, the ranks' clocks agreed before the step (`g.timeUp`), so that all stop at one step.
                if let limit = timeLimit,
                   communicator.size > 1 ? g.timeUp : Date().timeIntervalSince(runStart) > limit {
                    outOfTime = true
                    if !silent {
                        print("time limit of \(String(format: "%.0f", limit)) s reached after \(batchIndex)"
                              + " of \(batches) batches")
                    }
                    break
                }
            }
            let seconds = Date().timeIntervalSince(started)
            let figures = EpochFigures(epoch: epoch + 1, trainLoss: seen > 0 ? lossSum / Double(seen) : .nan,
                                       hitRate: total > 0 ? Double(hits) / Double(total) : 0,
                                       learningRate: Double(optimizer.learningRate), seconds: seconds,
                                       imagesPerSecond: Double(seen) / max(seconds, 1e-9),
                                       finished: batchIndex >= batches)
            if figures.finished {
                epoch += 1
                batchIndex = 0
            }
            try endEpoch(figures)
        }
        if stopAfterEpoch != 0 && epoch < options.epochs { try stop(stopAfterEpoch, batches: batches) }
        return history
    }

    /// Validates (keeping the best model), logs and checkpoints after an epoch, or after the part of one that the
    /// time limit left.
    func endEpoch(_ f: EpochFigures) throws {
        let validation = try task.validate(communicator: communicator)
        guard communicator.isRoot else {
            if f.finished { history.append(task.record(f, validation: validation)) }
            return
        }
        if let v = validation {
            if v.score > bestScore {
                bestScore = v.score
                try writing {
                    try task.saveModel(to: folder.bestModel,
                                       metadata: v.modelMetadata.merging(["step": String(step)]) { $1 })
                }
            }
            if !silent {
                let skippedNote = skipped > 0 ? " [\(skipped) non-finite steps skipped]" : ""
                print(String(format: "epoch %d%@: %@ (%.1f s, %.0f img/s)%@%@", f.epoch, f.finished ? "" : " (partial)",
                             v.summary, f.seconds, f.imagesPerSecond, skippedNote, reduceNote))
            }
        } else {
            try writing { try task.saveModel(to: folder.bestModel, metadata: ["step": String(step)]) }
        }
        if f.finished {
            let record = task.record(f, validation: validation)
            history.append(record)
            // Before the checkpoint: a run stopped between the two trains the epoch again when resumed, and skips
            // these values, already logged.
            try writing { try writeEvents(record) }
        }
        try writing {
            try saveLast()
            try writeLog()
            try events?.flush()
        }
    }

    /// Writes the state needed to resume (`TrainingState`) as one atomic file, then the latest model alone for
    /// users; a crash at any moment leaves a consistent state.
    func saveLast() throws {
        var extra = runMetadata.merging(try task.stateMetadata()) { $1 }
        extra[TrainingState<Task.Record>.bestScoreKey] = String(bestScore)
        let state = TrainingState<Task.Record>(epoch: epoch, batch: batchIndex, step: step, skipped: skipped,
                                               history: history, extra: extra)
        // The model first: a process killed between the two writes never leaves a state file without a model.
        try task.saveModel(to: folder.lastModel, metadata: ["epoch": String(epoch), "step": String(step)])
        try state.write(to: folder.state, model: task.checkpointed.stateDict(), optimizer: optimizer, options: options,
                        configKey: task.configKey, config: task.configJSON, dataCount: task.train.count,
                        dataFingerprint: trainFingerprint)
        lastCheckpointStep = step
    }

    /// Continues from the state file in the run folder, written by an earlier run of the same model on the same data
    /// with the same batch size, seed and task settings (see `TrainingState.read`).
    public func resume() throws {
        let path = folder.state
        let (state, meta) = try TrainingState<Task.Record>.read(
            path, task: task, optimizer: optimizer, options: options, batchesPerEpoch: loader.batchesPerEpoch,
            dataFingerprint: trainFingerprint, limits: limits)
        (epoch, batchIndex, step, skipped) = (state.epoch, state.batch, state.step, state.skipped)
        bestScore = meta[TrainingState<Task.Record>.bestScoreKey].flatMap(Double.init) ?? -1
        history = state.history
        resumed = true
        lastCheckpointStep = step
        if !silent { print("resumed from \(path) at epoch \(epoch + 1), batch \(batchIndex + 1) (step \(step))") }
    }

    /// Writes an epoch's row of `log.csv` as TensorBoard scalars "epoch/<column>" at the number of steps done: the
    /// same numbers, parsed back from the row's text.
    func writeEvents(_ record: Task.Record) throws {
        guard let events else { return }
        let columns = zip(Task.Record.csvHeader, record.csvValues).filter { $0.0 != "epoch" }
        try events.write(columns.map { ("epoch/" + $0.0, Double($0.1) ?? .nan) }, step: step)
    }

    /// Writes `log.csv` and the plot.
    func writeLog() throws {
        var csv = Task.Record.csvHeader.joined(separator: ",") + "\n"
        for r in history { csv += r.csvValues.joined(separator: ",") + "\n" }
        try AtomicFile.write(Foundation.Data(csv.utf8), to: folder.log)
        try TrainingPlot.write(trainLoss: history.map(\.trainLoss), validationLoss: history.map(\.validationLoss),
                               lowerTitle: Task.Record.qualityTitle, lower: Task.Record.qualitySeries(history),
                               to: folder.plot)
    }
}
