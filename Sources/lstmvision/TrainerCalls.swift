import Foundation
import LSTMVision

// Every use of the library's trainers (`Trainer`, `DetectionTrainer`) and of their state files, so that the rest
// of the CLI depends on these few functions and not on the trainers' API.

/// One epoch of classifier training: losses, accuracies, learning rate and speed.
typealias ClassifierEpoch = Trainer.EpochRecord
/// One epoch of detector training: losses, recall, COCO AP, learning rate and speed.
typealias DetectorEpoch = DetectionTrainer.EpochRecord

/// What a training run leaves: every epoch of the run (resumed ones too), the files it wrote in its folder, and
/// the seconds its training took.
struct FitResult<Epoch> {
    let history: [Epoch]
    let bestModelPath: String, logPath: String, plotPath: String
    let seconds: Double
}

/// Trains `model` on `train`, validating on `validation` after each epoch, with checkpoints, log and plot in `out`
/// (`metadata` is kept in the checkpoints); with `resume`, continues from `out`'s last checkpoint.
func fitClassifier(model: any Classifier, options: TrainingOptions, train: ImageDataset, validation: ImageDataset?,
                   out: String, timeLimit: Double?, metadata: [String: String] = [:],
                   resume: Bool = false) throws -> FitResult<ClassifierEpoch> {
    let trainer = try Trainer(model: model, options: options, train: train, validation: validation, directory: out)
    trainer.timeLimit = timeLimit
    trainer.runMetadata.merge(metadata) { _, given in given }
    if resume { try trainer.resume() }
    let started = Date()
    let history = try trainer.run()
    return FitResult(history: history, bestModelPath: trainer.bestModelPath, logPath: trainer.logPath,
                     plotPath: trainer.plotPath, seconds: Date().timeIntervalSince(started))
}

/// Trains the detector `model` as `fitClassifier` trains a classifier, scoring COCO AP on `validation`. `refresh`
/// gives the training set of each later epoch (new synthetic canvases); `onlyRefiner` trains the refiner alone.
func fitDetector(model: LSTMDetector, options: TrainingOptions, loss: HungarianLoss = HungarianLoss(),
                 refinerLoss: RefinerLoss = RefinerLoss(), onlyRefiner: Bool = false,
                 train: DetectionDataset, validation: DetectionDataset?, refresh: ((Int) throws -> DetectionDataset)?,
                 out: String, timeLimit: Double?, metadata: [String: String] = [:],
                 resume: Bool = false) throws -> FitResult<DetectorEpoch> {
    let trainer = try DetectionTrainer(model: model, options: options, loss: loss, refinerLoss: refinerLoss,
                                       onlyRefiner: onlyRefiner, train: train, validation: validation, directory: out)
    trainer.timeLimit = timeLimit
    trainer.refresh = refresh
    trainer.runMetadata.merge(metadata) { _, given in given }
    if resume { try trainer.resume() }
    let started = Date()
    let history = try trainer.run()
    return FitResult(history: history, bestModelPath: trainer.bestModelPath, logPath: trainer.logPath,
                     plotPath: trainer.plotPath, seconds: Date().timeIntervalSince(started))
}

/// The last checkpoint of the run in a folder, as `train --resume` reads it before it builds the model: the state
/// file's tensors and metadata, and the training options saved there.
struct Checkpoint {
    let path: String
    let tensors: [String: Tensor]
    let metadata: [String: String]
    let options: TrainingOptions

    /// Reads the state file that the trainers write in `out`.
    init(resuming out: String) throws {
        path = out + "/last.state.safetensors"
        guard FileManager.default.fileExists(atPath: path) else {
            throw CLIError("\(path): no checkpoint to resume from")
        }
        (tensors, metadata) = try SafeTensors.read(path)
        guard let json = metadata["options"] else { throw CLIError("\(path): checkpoint lacks its training options") }
        options = try InputLimits.decodeJSON(TrainingOptions.self, from: Data(json.utf8), source: path,
                                             what: "training options")
    }

    /// A detector run's loss weights.
    func detectionLoss() throws -> HungarianLoss {
        guard let json = metadata["loss"] else { throw CLIError("\(path): checkpoint lacks its loss weights") }
        return try InputLimits.decodeJSON(HungarianLoss.self, from: Data(json.utf8), source: path, what: "loss weights")
    }

    /// A detector run's refiner loss settings, where it has a refiner.
    func refinerLoss() throws -> RefinerLoss? {
        guard let json = metadata[DetectionTrainer.refinerLossKey] else { return nil }
        return try InputLimits.decodeJSON(RefinerLoss.self, from: Data(json.utf8), source: path,
                                          what: "refiner loss settings")
    }

    /// Whether the detector run trains its refiner alone.
    var onlyRefiner: Bool { metadata[DetectionTrainer.onlyRefinerKey] == "true" }
}
