import Foundation

/// The resumable state file (`last.state.safetensors`) of every task: the weights (`model.*`), the optimiser state
/// (`optimizer.*`) and, as metadata, the log (`history`, one record per finished epoch), the position in the data,
/// the training options, the model's settings, the task's own settings and what identifies the training set.
/// Reading checks all of it against the run about to continue, so that a resumed run either ends with exactly the
/// weights of an uninterrupted one or stops with one `TrainingError.resume` line: a damaged or hostile file,
/// another model, other data or another order of the data are refused, never trapped on.
struct TrainingState<Record: EpochRecord> {
    /// Finished epochs, batches done in the current epoch, and optimiser steps taken (skipped ones included).
    var epoch = 0, batch = 0, step = 0, skipped = 0
    var history: [Record] = []
    /// What else a trainer stores: its best score so far, the task's settings, the CLI's data options.
    var extra: [String: String] = [:]

    /// Metadata keys.
    static var bestScoreKey: String { "best_score" }
    static var historyKey: String { "history" }

    /// Writes the state atomically for a model with `model` weights (settings `configKey: config`), `optimizer`,
    /// `options` and the training set of `dataCount` images with `dataFingerprint`.
    func write(to path: String, model: [String: Tensor], optimizer: any Optimizer, options: TrainingOptions,
               configKey: String, config: String, dataCount: Int, dataFingerprint: String) throws {
        var tensors = optimizer.stateDict().mapKeys { "optimizer.\($0)" }
        for (name, t) in model { tensors["model.\(name)"] = t }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf",
                                                                      nan: "nan")
        var meta = extra
        meta["epoch"] = String(epoch)
        meta["batch"] = String(batch)
        meta["step"] = String(step)
        meta["skipped"] = String(skipped)
        meta["options"] = String(decoding: try encoder.encode(options), as: UTF8.self)
        meta[Self.historyKey] = String(decoding: try encoder.encode(history), as: UTF8.self)
        meta[configKey] = config
        meta["train_images"] = String(dataCount)
        meta["train_fingerprint"] = dataFingerprint
        try SafeTensors.write(tensors, metadata: meta, to: path)
    }

    /// Reads the state at `path` into `task`'s model and `optimizer` after checking that it belongs to this run: the
    /// same model settings, the same batch size and seed (which decide the order of the batches), the task's
    /// settings (`checkResume`), the same training set (count and fingerprint), a position inside an epoch of
    /// `batchesPerEpoch` batches, and one log record per finished epoch. Returns the state and the metadata.
    /// The file is read within `limits`.
    static func read<Task: TrainingTask>(_ path: String, task: Task, optimizer: any Optimizer, options: TrainingOptions,
                                         batchesPerEpoch: Int, dataFingerprint: String, limits: InputLimits = .default)
        throws -> (state: TrainingState, metadata: [String: String]) where Task.Record == Record {
        func fail(_ m: String) -> TrainingError { .resume("\(path): \(m)") }
        let (tensors, meta) = try SafeTensors.read(path, limits: limits)
        guard meta[task.configKey] == task.configJSON else {
            throw fail("saved for another model (\(meta[task.configKey] ?? "none")), not \(task.configJSON)")
        }
        guard let optionsJSON = meta["options"] else { throw fail("no training options in its metadata") }
        let saved = try InputLimits.decodeJSON(TrainingOptions.self, from: Data(optionsJSON.utf8), source: path,
                                               what: "training options")
        let changed = [("batch size", "\(saved.batchSize)", "\(options.batchSize)"),
                       ("seed", "\(saved.seed)", "\(options.seed)")].filter { $0.1 != $0.2 }
        guard changed.isEmpty else {
            throw fail("the run was trained with " + changed.map { "\($0.0) \($0.1)" }.joined(separator: ", ")
                       + ", not " + changed.map { "\($0.0) \($0.2)" }.joined(separator: ", ")
                       + ": a resumed run must keep the order of its data")
        }
        try task.checkResume(meta, source: path)
        let dataCount = task.train.count
        let savedCount = meta["train_images"] ?? "?", savedFingerprint = meta["train_fingerprint"] ?? "?"
        guard savedCount == String(dataCount), savedFingerprint == dataFingerprint else {
            throw fail("the run was trained on \(savedCount) images (fingerprint \(savedFingerprint)),"
                       + " this training set has \(dataCount) (fingerprint \(dataFingerprint)):"
                       + " resume with the data the run began with")
        }
        func count(_ key: String) throws -> Int {
            guard let n = meta[key].flatMap({ Int($0) }), n >= 0 else {
                throw fail("'\(key)' metadata is not a count: \(meta[key] ?? "missing")")
            }
            return n
        }
        var state = TrainingState(epoch: try count("epoch"), batch: try count("batch"), step: try count("step"),
                                  skipped: try count("skipped"))
        let (product, overflow) = state.epoch.multipliedReportingOverflow(by: batchesPerEpoch)
        guard state.batch < batchesPerEpoch, !overflow, state.step == product + state.batch else {
            throw fail("position epoch \(state.epoch), batch \(state.batch), step \(state.step) does not fit"
                       + " \(batchesPerEpoch) batches an epoch")
        }
        guard let historyJSON = meta[historyKey] else { throw fail("no log ('\(historyKey)') in its metadata") }
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf",
                                                                        negativeInfinity: "-inf", nan: "nan")
        try InputLimits.checkNesting(Data(historyJSON.utf8), source: path, what: "training log")
        do {
            state.history = try decoder.decode([Record].self, from: Data(historyJSON.utf8))
        } catch {
            throw fail("its log ('\(historyKey)') is not a list of epoch records")
        }
        guard state.history.count == state.epoch else {
            throw fail("its log has \(state.history.count) records for \(state.epoch) finished epochs")
        }
        if let r = state.history.indices.first(where: { state.history[$0].epoch != $0 + 1 }) {
            throw fail("record \(r + 1) of its log is for epoch \(state.history[r].epoch)")
        }
        let weights = tensors.filter { $0.key.hasPrefix("model.") }.mapKeys { String($0.dropFirst(6)) }
        try task.checkpointed.loadStateDict(weights, source: path)
        try optimizer.loadStateDict(tensors.filter { $0.key.hasPrefix("optimizer.") }
                                        .mapKeys { String($0.dropFirst(10)) },
                                    parameters: task.trainable.namedParameters, source: path)
        return (state, meta)
    }
}

extension Dictionary {
    func mapKeys<K: Hashable>(_ f: (Key) -> K) -> [K: Value] {
        Dictionary<K, Value>(uniqueKeysWithValues: map { (f($0.key), $0.value) })
    }
}
