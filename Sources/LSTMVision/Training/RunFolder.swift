import Foundation

/// The files of a training run's output folder.
public struct RunFolder: Sendable, Equatable {
    public let directory: String

    public init(_ directory: String) { self.directory = directory }

    /// The best model so far (by the validation score), or the latest when there is no validation set.
    public var bestModel: String { directory + "/model.safetensors" }
    /// The latest model, alone.
    public var lastModel: String { directory + "/last.safetensors" }
    /// Everything `--resume` needs: weights, optimiser state, position, history (`TrainingState`).
    public var state: String { directory + "/last.state.safetensors" }
    /// One row per finished epoch.
    public var log: String { directory + "/log.csv" }
    /// The loss and quality curves.
    public var plot: String { directory + "/curves.png" }
    /// TensorBoard event files, one per run or resumption (`TensorBoardLog`): the trainer's default folder for them.
    public var tensorBoard: String { directory + "/tensorboard" }
    /// The best model's score on the test split, which `lstmvision train` writes once, after the last epoch.
    public var testScore: String { directory + "/test.json" }

    /// The lock held by the run training into the folder (`RunLock`): its process id, host and start time.
    public var lockFile: String { directory + "/run.lock" }

    /// Creates the folder when missing.
    public func create() throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }
}
