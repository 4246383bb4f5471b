import Foundation
import LSTMVision

/// What a training run leaves: every epoch of the run (resumed ones too), its folder, and the seconds its training
/// took.
struct FitResult<Record> {
    let history: [Record]
    let folder: RunFolder
    let seconds: Double
}

/// Trains `task` with `options` into the run folder `out` (`metadata` is kept in the checkpoints); with `resume`,
/// continues from `out`'s last checkpoint. TensorBoard event files go to `tensorBoard` (default: `OUT/tensorboard`)
/// unless `writesTensorBoard` is false. `shards` splits each batch (one shard per rank under MPI by default).
/// SIGTERM and SIGINT stop the run after the current step with a checkpoint (`StopSignals`, `TrainingStopped`); under
/// MPI a collective waiting longer than `collectiveTimeout` seconds ends the job. The folder's lock is taken first.
func fit<Task: TrainingTask>(_ task: Task, options: TrainingOptions, out: String, timeLimit: Double?,
                             limits: InputLimits = .default, metadata: [String: String] = [:],
                             resume: Bool = false, tensorBoard: String? = nil,
                             writesTensorBoard: Bool = true, shards: Int? = nil,
                             collectiveTimeout: Double = RunOptions.defaultCollectiveTimeout)
    throws -> FitResult<Task.Record> {
    StopSignals.install()
    let trainer = try Trainer(task, options: options, folder: RunFolder(out), limits: limits)
    trainer.shards = shards
    trainer.timeLimit = timeLimit
    trainer.tensorBoard = writesTensorBoard ? tensorBoard ?? trainer.folder.tensorBoard : nil
    trainer.runMetadata.merge(metadata) { _, given in given }
    trainer.communicator.collectiveTimeout = collectiveTimeout > 0 ? collectiveTimeout : nil
    try trainer.lockFolder()
    if resume { try trainer.resume() }
    let started = Date()
    let history = try trainer.run()
    return FitResult(history: history, folder: trainer.folder, seconds: Date().timeIntervalSince(started))
}

/// The last checkpoint of the run in a folder, as `train --resume` reads it before it builds the model: the state
/// file's tensors and metadata, and the training options saved there.
struct Checkpoint {
    let path: String
    let tensors: [String: Tensor]
    let metadata: [String: String]
    let options: TrainingOptions

    /// Reads the state file of the run folder `out`, within `limits`.
    init(resuming out: String, limits: InputLimits = .default) throws {
        path = RunFolder(out).state
        guard FileManager.default.fileExists(atPath: path) else {
            throw CLIError("\(path): no checkpoint to resume from")
        }
        (tensors, metadata) = try SafeTensors.read(path, limits: limits)
        guard let json = metadata["options"] else { throw CLIError("\(path): checkpoint lacks its training options") }
        options = try InputLimits.decodeJSON(TrainingOptions.self, from: Data(json.utf8), source: path,
                                             what: "training options")
    }

    /// A setting saved as JSON in the state file.
    func decode<T: Decodable>(_ type: T.Type, _ json: String, what: String) throws -> T {
        try InputLimits.decodeJSON(type, from: Data(json.utf8), source: path, what: what)
    }

    /// A classifier run's settings (augmentation, adversarial training, label smoothing).
    func classificationSettings() throws -> ClassificationTask.Settings? {
        try metadata[ClassificationTask.Settings.key].map {
            try decode(ClassificationTask.Settings.self, $0, what: "classification settings")
        }
    }

    /// A detector run's loss weights.
    func detectionLoss() throws -> HungarianLoss {
        guard let json = metadata[DetectionTask.lossKey] else {
            throw CLIError("\(path): checkpoint lacks its loss weights")
        }
        return try decode(HungarianLoss.self, json, what: "loss weights")
    }

    /// A detector run's refiner loss settings, where it has a refiner.
    func refinerLoss() throws -> RefinerLoss? {
        try metadata[DetectionTask.refinerLossKey].map {
            try decode(RefinerLoss.self, $0, what: "refiner loss settings")
        }
    }

    /// Whether the detector run trains its refiner alone.
    var onlyRefiner: Bool { metadata[DetectionTask.onlyRefinerKey] == "true" }
}
