import Foundation

/// The resumable state file (`last.state.safetensors`) of both trainers: the weights (`model.*`), the optimiser
/// state (`optimizer.*`), the log (`history`, one row per finished epoch whose first value is the epoch number)
/// and, as metadata, the position in the data, the training options, the model's settings and what identifies
/// the training set. Reading checks all of it against the run about to continue, so that a resumed run either
/// ends with exactly the weights of an uninterrupted one or stops with one `TrainingError.resume` line: a damaged
/// or hostile file, another model, other data or another order of the data are refused, never trapped on.
struct TrainingState {
    /// Finished epochs, batches done in the current epoch, and optimiser steps taken (skipped ones included).
    var epoch = 0, batch = 0, step = 0, skipped = 0
    /// The log rows, `columns` values each.
    var history: [[Double]] = []

    /// What else a trainer stores: its best score so far and entries such as the CLI's data options.
    var extra: [String: String] = [:]

    /// Writes the state atomically for `model` (whose settings are `configKey: config`), `optimizer`, `options`
    /// and the training set of `dataCount` images with `dataFingerprint`; the log has `columns` values a row.
    func write(to path: String, model: [String: Tensor], optimizer: any Optimizer, options: TrainingOptions,
               configKey: String, config: String, dataCount: Int, dataFingerprint: String, columns: Int) throws {
        var tensors = optimizer.stateDict().mapKeys { "optimizer.\($0)" }
        for (name, t) in model { tensors["model.\(name)"] = t }
        tensors["history"] = Tensor(shape: [history.count, columns], scalars: history.flatMap { $0.map(Float.init) })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var meta = extra
        meta["epoch"] = String(epoch)
        meta["batch"] = String(batch)
        meta["step"] = String(step)
        meta["skipped"] = String(skipped)
        meta["options"] = String(decoding: try encoder.encode(options), as: UTF8.self)
        meta[configKey] = config
        meta["train_images"] = String(dataCount)
        meta["train_fingerprint"] = dataFingerprint
        try SafeTensors.write(tensors, metadata: meta, to: path)
    }

    /// Reads the state at `path` into `model` and `optimizer` after checking that it belongs to this run: the same
    /// model settings, the same batch size, seed and augmentation (which decide the order and the look of the
    /// batches), the same training set (count and fingerprint), a position inside an epoch of `batchesPerEpoch`
    /// batches, and a log of `columns` values per finished epoch. Returns the position, the log and the metadata.
    /// The file is read within `limits`.
    static func read(_ path: String, model: any Module, configKey: String, config: String, optimizer: any Optimizer,
                     options: TrainingOptions, batchesPerEpoch: Int, dataCount: Int, dataFingerprint: String,
                     columns: Int, limits: InputLimits = .default)
        throws -> (state: TrainingState, metadata: [String: String]) {
        func fail(_ m: String) -> TrainingError { .resume("\(path): \(m)") }
        let (tensors, meta) = try SafeTensors.read(path, limits: limits)
        guard meta[configKey] == config else {
            throw fail("saved for another model (\(meta[configKey] ?? "none")), not \(config)")
        }
        guard let optionsJSON = meta["options"] else { throw fail("no training options in its metadata") }
        let saved = try InputLimits.decodeJSON(TrainingOptions.self, from: Data(optionsJSON.utf8), source: path, what: "training options")
        let changed = [("--batch-size", "\(saved.batchSize)", "\(options.batchSize)"), ("--seed", "\(saved.seed)", "\(options.seed)"),
                       ("--augment", saved.augment ?? "none", options.augment ?? "none")].filter { $0.1 != $0.2 }
        guard changed.isEmpty else {
            throw fail("the run was trained with " + changed.map { "\($0.0) \($0.1)" }.joined(separator: ", ")
                       + ", not " + changed.map { "\($0.0) \($0.2)" }.joined(separator: ", ") + ": a resumed run must keep the order of its data")
        }
        let savedCount = meta["train_images"] ?? "?", savedFingerprint = meta["train_fingerprint"] ?? "?"
        guard savedCount == String(dataCount), savedFingerprint == dataFingerprint else {
            throw fail("the run was trained on \(savedCount) images (fingerprint \(savedFingerprint)), this training set has"
                       + " \(dataCount) (fingerprint \(dataFingerprint)): resume with the data the run began with")
        }
        func count(_ key: String) throws -> Int {
            guard let n = meta[key].flatMap({ Int($0) }), n >= 0 else { throw fail("'\(key)' metadata is not a count: \(meta[key] ?? "missing")") }
            return n
        }
        var state = TrainingState(epoch: try count("epoch"), batch: try count("batch"), step: try count("step"), skipped: try count("skipped"))
        let (product, overflow) = state.epoch.multipliedReportingOverflow(by: batchesPerEpoch)
        guard state.batch < batchesPerEpoch, !overflow, state.step == product + state.batch else {
            throw fail("position epoch \(state.epoch), batch \(state.batch), step \(state.step) does not fit \(batchesPerEpoch) batches an epoch")
        }
        guard let h = tensors["history"], h.rank == 2, h.shape[0] == state.epoch, h.shape[1] == columns else {
            throw fail("its log is not \(state.epoch) rows of \(columns) values")
        }
        state.history = (0..<h.shape[0]).map { r in (0..<columns).map { Double(h.scalars[r * columns + $0]) } }
        if let r = state.history.indices.first(where: { state.history[$0][0] != Double($0 + 1) }) {
            throw fail("row \(r + 1) of its log is for epoch \(state.history[r][0])")
        }
        try model.loadStateDict(tensors.filter { $0.key.hasPrefix("model.") }.mapKeys { String($0.dropFirst(6)) }, source: path)
        try optimizer.loadStateDict(tensors.filter { $0.key.hasPrefix("optimizer.") }.mapKeys { String($0.dropFirst(10)) },
                                    parameters: model.namedParameters, source: path)
        return (state, meta)
    }
}
