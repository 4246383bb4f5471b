import ArgumentParser
import Foundation
import LSTMVision

/// `lstmvision train frames`: trains a ConvLSTM `FramePredictor` on Moving MNIST sequences (DATA/train.npy in
/// `mnist_test_seq.npy`'s layout), holding out its last sequences for validation.
struct TrainFrames: ParsableCommand, ReadsFiles, UsesThreads {
    static let configuration = CommandConfiguration(
        commandName: TrainTask.frames.rawValue,
        abstract: "Train a ConvLSTM frame predictor on Moving MNIST sequences (.npy, uint8 [frames, sequences, H, W]).",
        discussion: recipeDescription(FramesTask.recipe))

    @Option(help: ArgumentHelp("Folder with train.npy (lstmvision moving-mnist).", valueName: "dir"))
    var data: String = "runs/moving-mnist"
    @Option(help: ArgumentHelp("Sequences held out from the end of train.npy for validation.", valueName: "n"))
    var validation: Int = 256
    @Option(help: ArgumentHelp("Use at most this many training sequences.", valueName: "n")) var limit: Int?
    @Option(help: ArgumentHelp("Hidden channels per ConvLSTM layer, comma-separated.", valueName: "list"))
    var hidden: String = "64,64"
    @Option(help: ArgumentHelp("ConvLSTM kernel size (odd).", valueName: "k")) var kernel: Int = 5
    @Option(help: ArgumentHelp("Patch side: frames are cut into p×p patches.", valueName: "p")) var patch: Int = 4
    @Option(help: ArgumentHelp("Frames given; the rest are predicted.", valueName: "n")) var context: Int = 10
    @Option(help: ArgumentHelp("Weight of the L1 error added to the MSE.", valueName: "x")) var l1: Float = 0
    @Option(name: .customLong("scheduled-sampling"), help: ArgumentHelp(
        "Scheduled sampling over this many steps: the loss covers every next frame, and predicted steps read the true"
        + " frame with a probability falling from 1 to 0 (0: off, predicted steps read the predictions).",
        valueName: "steps"))
    var scheduledSampling: Int = 0
    @OptionGroup(title: "Optimisation") var optimisation: OptimisationOptions
    @OptionGroup(title: "Run") var runOptions: RunOptions
    @OptionGroup(title: "Run") var threadOptions: ThreadOptions
    @OptionGroup(title: "Input limits", visibility: .hidden) var limits: LimitOptions

    var hiddenSizes: [Int]? {
        let sizes = hidden.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        return sizes.isEmpty || sizes.contains { $0 == nil || !(1...4096).contains($0!) } ? nil : sizes.map { $0! }
    }

    func validate() throws {
        guard let h = hiddenSizes, h.count <= 16 else {
            throw ValidationError("--hidden must be 1 to 16 comma-separated sizes in 1...4096, got '\(hidden)'")
        }
        guard kernel > 0, kernel % 2 == 1, kernel <= 31 else {
            throw ValidationError("--kernel must be odd and in 1...31, got \(kernel)")
        }
        guard (1...64).contains(patch) else { throw ValidationError("--patch must be in 1...64, got \(patch)") }
        guard context >= 1 else { throw ValidationError("--context must be positive, got \(context)") }
        guard scheduledSampling >= 0 else {
            throw ValidationError("--scheduled-sampling must be ≥ 0 steps, got \(scheduledSampling)")
        }
        guard validation >= 0 else { throw ValidationError("--validation must be ≥ 0, got \(validation)") }
        if let limit, limit < 1 { throw ValidationError("--limit must be positive, got \(limit)") }
    }

    func run() throws {
        let path = (data as NSString).appendingPathComponent("train.npy")
        let array = try MovingMNIST.read(path, limits: limits.value)
        let (T, S, R, C) = (array.shape[0], array.shape[1], array.shape[2], array.shape[3])
        guard validation < S else {
            throw CLIError("\(path): \(S) sequences, not more than the \(validation) held out for validation")
        }
        // The sequences as Float pixels, 4 bytes each: within --max-dataset-bytes.
        let (bytes, overflow) = array.count.multipliedReportingOverflow(by: 4)
        guard !overflow, bytes <= limits.value.maxDatasetBytes else {
            throw DataError.tooLarge("\(path): \(array.count) pixels need \(array.count) × 4 bytes as Float, over the"
                                     + " dataset limit of \(limits.value.maxDatasetBytes) bytes (maxDatasetBytes)",
                                     limit: .maxDatasetBytes)
        }
        let all = FramesTask.dataset(array)
        let trainCount = min(S - validation, limit ?? S)
        let train = all.prefix(trainCount)
        let held = validation > 0 ? subset(all, (S - validation)..<S) : nil
        var options: TrainingOptions, model: FramePredictor
        if runOptions.resume {
            let checkpoint = try Checkpoint(resuming: runOptions.out, limits: limits.value)
            options = try optimisation.trainingOptions(run: runOptions, base: checkpoint.options)
            let weights = Dictionary(uniqueKeysWithValues: checkpoint.tensors.filter { $0.key.hasPrefix("model.") }
                .map { (String($0.key.dropFirst(6)), $0.value) })
            model = try FramePredictorFile.model(from: weights, source: checkpoint.path)
        } else {
            options = try optimisation.trainingOptions(run: runOptions, base: FramesTask.recipe)
            var g = SeededGenerator(seed: options.seed)
            model = FramePredictor(hidden: hiddenSizes!, kernelSize: kernel, patch: patch, generator: &g)
        }
        let settings = FramesTask.Settings(frames: T, context: context, rows: R, cols: C, l1Weight: l1,
                                           scheduledSampling: scheduledSampling > 0 ? scheduledSampling : nil,
                                           seed: scheduledSampling > 0 ? options.seed : nil)
        let task = try FramesTask(model: model, train: train, validation: held, settings: settings)
        print("model FramePredictor hidden \(model.hidden) kernel \(model.kernelSize) patch \(model.patch):"
              + " \(model.parameterCount) parameters")
        print("data \(path): \(train.count) training, \(held?.count ?? 0) validation sequences of \(T) frames"
              + " \(R)×\(C) (context \(context)); \(BLAS.threads) threads")
        let result = try fit(task, options: options, out: runOptions.out, timeLimit: runOptions.timeLimit,
                             limits: limits.value, resume: runOptions.resume, tensorBoard: runOptions.tensorboard,
                             writesTensorBoard: !runOptions.noTensorboard,
                             collectiveTimeout: runOptions.collectiveTimeout)
        guard let best = result.history.min(by: { $0.validationMSE < $1.validationMSE }) else { return }
        print(String(format: "done: best validation MSE/frame %.2f, SSIM %.4f (epoch %d of %d) in %.0f s; model %@,"
                     + " log %@", best.validationMSE, best.validationSSIM, best.epoch, result.history.count,
                     result.seconds, result.folder.bestModel, result.folder.log))
    }

    /// Images `range` of `data`.
    func subset(_ data: ImageDataset, _ range: Range<Int>) -> ImageDataset {
        let size = data.imageSize
        return ImageDataset(height: data.height, width: data.width, channels: 1,
                            pixels: Array(data.pixels[(range.lowerBound * size)..<(range.upperBound * size)]),
                            labels: Array(data.labels[range]), classNames: data.classNames)
    }
}
