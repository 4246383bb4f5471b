import Foundation

/// Training a `FramePredictor` on frame sequences (Moving MNIST): the MSE of the predicted frames (optionally plus
/// `l1Weight` times their L1 error) against the true ones; the validation set's per-frame MSE picks the best model.
/// Sequences travel through the trainer as images: one sequence of T frames rows × cols is one [T·rows, cols] grey
/// image of an `ImageDataset` (`FramesTask.dataset`), labels unused.
public final class FramesTask: TrainingTask {
    public let model: FramePredictor
    public let train: ImageDataset
    public let validation: ImageDataset?
    public let settings: Settings
    public var trainable: any Module { model }
    public var checkpointed: any Module { model }

    /// What the loss and the unrolling are: the given frames (`context`), the frames per sequence, the L1 weight,
    /// and scheduled sampling: with `scheduledSampling` = S > 0 the loss covers every next-frame prediction
    /// (frames 1 ..< T) and, at step k, each predicted step of a sequence reads the true frame with probability
    /// max(0, 1 − k/S), else the model's own prediction (drawn from `seed`, the step and the shard); nil or 0: the
    /// loss covers the predicted frames, each read back as at inference.
    public struct Settings: Codable, Sendable, Equatable {
        public var frames: Int, context: Int, rows: Int, cols: Int
        public var l1Weight: Float
        public var scheduledSampling: Int?, seed: UInt64?

        public init(frames: Int, context: Int, rows: Int = 64, cols: Int = 64, l1Weight: Float = 0,
                    scheduledSampling: Int? = nil, seed: UInt64? = nil) {
            (self.frames, self.context, self.rows, self.cols, self.l1Weight) = (frames, context, rows, cols, l1Weight)
            (self.scheduledSampling, self.seed) = (scheduledSampling, seed)
        }

        /// The probability that a predicted step reads the true frame at `step`.
        public func truthProbability(step: Int) -> Double {
            guard let s = scheduledSampling, s > 0 else { return 0 }
            return max(0, 1 - Double(step) / Double(s))
        }
    }

    /// The options a run starts from: Adam at 1e-3 with warm-up and cosine decay, batch 16, clipping at 1, 10 epochs.
    public static let recipe: TrainingOptions = {
        var o = TrainingOptions()
        o.batchSize = 16
        o.learningRate = 1e-3
        o.warmupSteps = 100
        o.forgetBias = nil
        return o
    }()

    /// State-file metadata key of the settings.
    public static let settingsKey = "frames"
    public static let configKey = "lstmvision.frame_predictor"

    public init(model: FramePredictor, train: ImageDataset, validation: ImageDataset?, settings: Settings) throws {
        let s = settings
        guard s.context >= 1, s.context < s.frames else {
            throw TrainingError.invalidOption("--context must be in 1..<\(s.frames) (the frames per sequence),"
                                              + " got \(s.context)")
        }
        guard s.l1Weight >= 0, s.l1Weight.isFinite else {
            throw TrainingError.invalidOption("--l1 must be finite and ≥ 0, got \(s.l1Weight)")
        }
        guard (s.scheduledSampling ?? 0) >= 0 else {
            throw TrainingError.invalidOption("--scheduled-sampling must be ≥ 0 steps, got \(s.scheduledSampling!)")
        }
        guard s.rows >= 7, s.cols >= 7 else {
            throw TrainingError.invalidOption("frames of \(s.rows)×\(s.cols) are smaller than SSIM's 7×7 window")
        }
        guard s.rows % model.patch == 0, s.cols % model.patch == 0 else {
            throw TrainingError.invalidOption("frames of \(s.rows)×\(s.cols) do not divide into the model's"
                                              + " \(model.patch)×\(model.patch) patches")
        }
        for (name, data) in [("training", train)] + (validation.map { [("validation", $0)] } ?? []) {
            guard data.count > 0 else { throw TrainingError.invalidOption("the \(name) set has no sequences") }
            guard data.height == s.frames * s.rows, data.width == s.cols, data.channels == 1 else {
                throw TrainingError.invalidOption("the \(name) set's sequences are not \(s.frames) frames of"
                                                  + " \(s.rows)×\(s.cols)")
            }
        }
        (self.model, self.train, self.validation, self.settings) = (model, train, validation, settings)
    }

    /// Sequences `array` (uint8 [frames, sequences, rows, cols], `mnist_test_seq.npy`'s layout), the first `limit`,
    /// as the trainer's images.
    public static func dataset(_ array: NPY.Array, limit: Int? = nil) -> ImageDataset {
        let (T, S, R, C) = (array.shape[0], array.shape[1], array.shape[2], array.shape[3])
        let n = min(S, limit ?? S)
        return ImageDataset(height: T * R, width: C, channels: 1, pixels: MovingMNIST.batch(array, 0..<n).scalars,
                            labels: [Int](repeating: 0, count: n), classNames: ["sequence"])
    }

    public var configKey: String { Self.configKey }
    public var configJSON: String {
        (try? jsonString(["hidden": model.hidden, "kernel_size": [model.kernelSize], "patch": [model.patch]])) ?? "{}"
    }

    /// Predictions and the true future frames of `images` [n, T·rows, cols].
    func predict(_ images: Tensor) -> (prediction: Variable, truth: Tensor) {
        let s = settings, frames = images.reshaped([images.shape[0], s.frames, 1, s.rows, s.cols])
        return (model(Variable(frames), context: s.context), MovingMNIST.future(frames, context: s.context))
    }

    func loss(_ prediction: Variable, _ truth: Tensor) -> Variable {
        let mse = mseLoss(prediction, truth)
        return settings.l1Weight > 0 ? mse + l1Loss(prediction, truth) * settings.l1Weight : mse
    }

    public func batch(images: Tensor, targets: [Int], step: Int, shard: Int) throws -> TrainingBatch {
        model.zeroGrad()
        let s = settings, n = images.shape[0]
        guard (s.scheduledSampling ?? 0) > 0 else {
            let (prediction, truth) = predict(images)
            return TrainingBatch(loss: loss(prediction, truth), images: n) { (0, 0) }
        }
        let frames = images.reshaped([n, s.frames, 1, s.rows, s.cols]), p = s.truthProbability(step: step)
        var g = SeededGenerator(seed: (s.seed ?? 0) ^ (UInt64(step) &* 0x9E37_79B9_7F4A_7C15)
                                    ^ (UInt64(shard) &* 0xBF58_476D_1CE4_E5B9))
        let truth = (0..<(s.frames - 1 - s.context)).map { _ in (0..<n).map { _ in Double(g.uniform()) < p } }
        let prediction = model.nextFrames(Variable(frames), context: s.context, truth: truth)
        return TrainingBatch(loss: loss(prediction, MovingMNIST.future(frames, context: 1)), images: n) { (0, 0) }
    }

    public func validate() throws -> FramesEvaluation? {
        guard let validation else { return nil }
        return Autograd.withoutGradients { Self.evaluate(self, on: validation) }
    }

    /// The metrics and mean loss over `data`, in batches of 16.
    static func evaluate(_ task: FramesTask, on data: ImageDataset) -> FramesEvaluation {
        var metrics = FrameMetrics(frames: task.settings.frames - task.settings.context), lossSum = 0.0
        for start in stride(from: 0, to: data.count, by: 16) {
            let range = start..<min(data.count, start + 16)
            let (prediction, truth) = task.predict(data.batch(range).images)
            lossSum += Double(task.loss(prediction, truth).value.scalar) * Double(range.count)
            metrics.add(prediction: prediction.value, truth: truth)
        }
        return FramesEvaluation(metrics: metrics, loss: lossSum / Double(data.count))
    }

    public func record(_ f: EpochFigures, validation e: FramesEvaluation?) -> Record {
        Record(epoch: f.epoch, trainLoss: f.trainLoss, validationLoss: e?.loss ?? .nan,
               validationMSE: e?.metrics.mse ?? .nan, validationMAE: e?.metrics.mae ?? .nan,
               validationSSIM: e?.metrics.ssim ?? .nan, learningRate: f.learningRate, seconds: f.seconds,
               sequencesPerSecond: f.imagesPerSecond)
    }

    public func saveModel(to path: String, metadata: [String: String]) throws {
        var meta = metadata
        meta[Self.settingsKey] = try jsonString(settings)
        try FramePredictorFile.save(model, to: path, metadata: meta)
    }

    public func stateMetadata() throws -> [String: String] { [Self.settingsKey: try jsonString(settings)] }

    /// A resumed run must unroll the same way on the same frames.
    public func checkResume(_ metadata: [String: String], source: String) throws {
        guard let json = metadata[Self.settingsKey] else {
            throw TrainingError.resume("\(source): the checkpoint is no frame-prediction run"
                                       + " (no '\(Self.settingsKey)')")
        }
        let saved = try InputLimits.decodeJSON(Settings.self, from: Data(json.utf8), source: source,
                                               what: "frame settings")
        guard saved == settings else {
            throw TrainingError.resume("\(source): the run was trained with \(saved), not \(settings)")
        }
    }

    /// One row of the training log.
    public struct Record: EpochRecord {
        public var epoch: Int
        public var trainLoss: Double
        public var validationLoss: Double
        public var validationMSE: Double, validationMAE: Double, validationSSIM: Double
        public var learningRate: Double
        public var seconds: Double
        public var sequencesPerSecond: Double

        public static let csvHeader = ["epoch", "train_loss", "val_loss", "val_mse_per_frame", "val_mae_per_frame",
                                       "val_ssim", "learning_rate", "seconds", "sequences_per_second"]
        public var csvValues: [String] {
            [String(epoch)] + [trainLoss, validationLoss, validationMSE, validationMAE, validationSSIM, learningRate,
                               seconds, sequencesPerSecond].map { String($0) }
        }
        public static let qualityTitle = "Validation SSIM"
        public static func qualitySeries(_ history: [Record]) -> [(name: String, values: [Double])] {
            [("validation SSIM %", history.map { $0.validationSSIM * 100 })]
        }
    }
}

/// A frame predictor's validation: the metrics and the mean loss.
public struct FramesEvaluation: ValidationMetrics {
    public var metrics: FrameMetrics
    public var loss: Double
    /// Lower per-frame MSE is better: 1 / (1 + MSE), in (0, 1] as the trainer's scores (it starts from −1).
    public var score: Double { 1 / (1 + metrics.mse) }
    public var summary: String {
        String(format: "validation MSE/frame %.2f, MAE/frame %.2f, SSIM %.4f, loss %.5f", metrics.mse, metrics.mae,
               metrics.ssim, loss)
    }
    public var modelMetadata: [String: String] {
        ["mse": String(metrics.mse), "mae": String(metrics.mae), "ssim": String(metrics.ssim)]
    }
}
