import Foundation

/// One step's gradients, set on the trainable parameters, with the figures the trainer logs.
struct StepGradients {
    /// The loss of the global batch (the mean over its images) and its sum over them.
    var loss: Float
    var lossSum: Double
    var images: Int
    /// False when a loss or a gradient is not finite (the step is then skipped, or the run stops).
    var finite: Bool
    var squaredNorm: Double
    var hits: Int, total: Int
    /// Whether any rank's time limit had passed before the step.
    var timeUp: Bool
    /// The stop signal any rank had received by the step's exchange (SIGTERM before SIGINT; 0: none).
    var stopSignal: Int32
}

extension Trainer {
    /// True when this process prints nothing: `quiet`, or not rank 0.
    var silent: Bool { quiet || !communicator.isRoot }

    /// The epoch line's note of the time spent summing gradients across ranks.
    var reduceNote: String {
        guard reducedSteps > 0, communicator.size > 1 else { return "" }
        return String(format: "; all-reduce %.1f ms a step (after %.1f ms waiting for the slowest rank)",
                      1000 * reduceSeconds / Double(reducedSteps), 1000 * waitSeconds / Double(reducedSteps))
    }

    /// The checks and set-up of a run on several ranks: enough images and batch for every rank, every rank started
    /// alike (options, model, task settings, data, resumed position: a fingerprint each), then rank 0's parameters
    /// on all. A failed check is one `DistributedError` on every rank.
    func startRanks(parts: Int) throws {
        let c = communicator
        guard c.size == 1 || parts == c.size else {
            throw TrainingError.invalidOption("\(parts) shards for \(c.size) ranks: under MPI each rank takes one"
                                              + " shard")
        }
        guard parts >= 1 else { throw TrainingError.invalidOption("shards must be ≥ 1, got \(parts)") }
        guard c.size > 1 else { return }
        guard c.size <= task.train.count else {
            throw DistributedError("\(c.size) ranks for \(task.train.count) training images: every rank needs at least"
                                   + " one; start at most \(task.train.count) ranks", everyRank: true)
        }
        guard c.size <= options.batchSize else {
            throw DistributedError("\(c.size) ranks for a global batch of \(options.batchSize): every rank needs at"
                                   + " least one image of each batch; raise --batch-size or start fewer ranks",
                                   everyRank: true)
        }
        let settings = try task.stateMetadata().sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        let checks = [("training options", try jsonString(options)),
                      ("model", task.configKey + ":" + task.configJSON),
                      ("task settings", settings.joined(separator: "\n")),
                      ("training data", "\(task.train.count) images, fingerprint \(trainFingerprint)"),
                      ("resumed position", "epoch \(epoch), batch \(batchIndex), step \(step)"),
                      ("time limit", timeLimit.map { "\($0)" } ?? "none")]
        var differences: [String] = []
        for (what, value) in checks {
            let ranks = try c.ranksDiffering(from: value)
            if !ranks.isEmpty {
                differences.append("\(what) (rank\(ranks.count > 1 ? "s" : "") "
                                   + ranks.map(String.init).joined(separator: ", ") + ")")
            }
        }
        guard differences.isEmpty else {
            throw DistributedError("the ranks were not started alike: they differ from rank 0 in "
                                   + differences.joined(separator: "; ")
                                   + "; start every rank with the same options and data", everyRank: true)
        }
        let parameters = task.checkpointed.parameters
        var values = parameters.flatMap(\.value.scalars)
        try c.broadcast(&values, root: 0)
        var offset = 0
        for p in parameters {
            let n = p.value.count
            p.value = Tensor(shape: p.value.shape, scalars: Array(values[offset..<(offset + n)]))
            offset += n
        }
    }

    /// Forward and backward on the global batch `indices`, leaving the batch's gradients on the trainable parameters.
    /// In one process of one shard, as always; otherwise the batch is cut into `parts` contiguous shards (sizes
    /// differing by at most one image; a last batch smaller than `parts` leaves some empty), shard s weighted by its
    /// share of the images, so that the sum is the gradient of the batch's mean loss. This process computes its
    /// shards (all of them in one process, its rank's under MPI), each flattened in parameter order (zeros where a
    /// parameter got none); they are added in shard order, starting from zeros, so one process and the ranks do
    /// the same additions.
    func gradients(_ indices: ArraySlice<Int>, from data: Task.TrainData, parts: Int,
                   timeUp: Bool) throws -> StepGradients {
        let parameters = task.trainable.parameters, n = indices.count
        if parts == 1 && communicator.size == 1 {
            let (x, targets) = data.batch(indices)
            let b = try task.batch(images: x, targets: targets, step: step, shard: 0)
            let lossValue = b.loss.value.scalar
            var finite = lossValue.isFinite, squaredNorm = 0.0
            if finite {
                b.loss.backward()
                squaredNorm = gradientSquaredNorm(parameters)   // finite exactly when every gradient is
                finite = squaredNorm.isFinite
            }
            let h = finite ? b.hits() : (0, 0)
            return StepGradients(loss: lossValue, lossSum: Double(lossValue) * Double(n), images: n, finite: finite,
                                 squaredNorm: squaredNorm, hits: h.0, total: h.1, timeUp: timeUp,
                                 stopSignal: stopRequested())
        }
        let sizes = parameters.map(\.value.count), total = sizes.reduce(0, +)
        // figures: loss sum, non-finite shards, hits, totals, time up, ranks stopped by SIGTERM, by SIGINT; then
        // whether each parameter got a gradient.
        let first = 7
        var figures = [Double](repeating: 0, count: first + parameters.count)
        figures[4] = timeUp ? 1 : 0
        var summed = [Float](repeating: 0, count: total)
        for s in communicator.size == 1 ? Array(0..<parts) : [communicator.rank] {
            let part = indices[(indices.startIndex + s * n / parts)..<(indices.startIndex + (s + 1) * n / parts)]
            guard !part.isEmpty else { continue }           // zeros: adding them changes nothing but −0
            let (x, targets) = data.batch(part)
            let b = try task.batch(images: x, targets: targets, step: step, shard: s)
            let value = b.loss.value.scalar
            figures[0] += Double(value) * Double(part.count)
            guard value.isFinite else {
                figures[1] += 1
                continue
            }
            (b.loss * (Float(part.count) / Float(n))).backward()
            let h = b.hits()
            figures[2] += Double(h.hits)
            figures[3] += Double(h.total)
            var offset = 0
            for (i, p) in parameters.enumerated() {
                if let g = p.grad {
                    figures[first + i] = 1
                    g.scalars.withUnsafeBufferPointer { v in
                        for j in 0..<sizes[i] { summed[offset + j] += v[j] }
                    }
                }
                offset += sizes[i]
            }
        }
        // Read after this rank's work, just before the exchange: a signal that arrives later counts at the next step.
        switch stopRequested() {
        case SIGTERM: figures[5] = 1
        case 0: break
        default: figures[6] = 1
        }
        if communicator.size > 1 {
            // The barrier parts waiting for the slowest rank from the exchange itself, in the epoch line's figures.
            let started = Date()
            try communicator.barrier()
            let arrived = Date()
            try communicator.sumInRankOrder(&summed)
            try communicator.sumInRankOrder(&figures)
            waitSeconds += arrived.timeIntervalSince(started)
            reduceSeconds += Date().timeIntervalSince(arrived)
            reducedSteps += 1
        }
        var offset = 0
        for (i, p) in parameters.enumerated() {
            p.grad = figures[first + i] > 0
                ? Tensor(shape: p.value.shape, scalars: Array(summed[offset..<(offset + sizes[i])])) : nil
            offset += sizes[i]
        }
        let squaredNorm = gradientSquaredNorm(parameters)
        let loss = Float(figures[0] / Double(n))
        return StepGradients(loss: loss, lossSum: figures[0], images: n,
                             finite: figures[1] == 0 && squaredNorm.isFinite, squaredNorm: squaredNorm,
                             hits: Int(figures[2]), total: Int(figures[3]), timeUp: figures[4] > 0,
                             stopSignal: figures[5] > 0 ? SIGTERM : figures[6] > 0 ? SIGINT : 0)
    }
}
