import ArgumentParser
import Foundation
import LSTMVision

/// `lstmvision eval`: accuracy, per-class precision and recall, and the confusion matrix on the test split.
struct Eval: ParsableCommand, ReadsFiles, UsesThreads {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a classifier on the MNIST test images or an image folder's test split.")

    @Option(help: ArgumentHelp("Model file (safetensors, from lstmvision or a PyTorch state_dict of"
                               + " python/lstmvision_torch.py), or a name in models/."))
    var model: String
    @OptionGroup var dataOptions: DataOptions
    @OptionGroup var stateDictOptions: StateDictOptions
    @OptionGroup var threadOptions: ThreadOptions
    @OptionGroup var precisionOptions: PrecisionOptions
    @Flag(help: "Print one JSON object.") var json = false
    @OptionGroup var limits: LimitOptions

    func run() throws {
        let path = try ModelLocator.path(model)
        let (hints, mnist) = try dataHints(path)
        let predictor = try Predictor.load(path, limits: limits.value, hints: hints)
        let classifier = predictor.model
        classifier.precision = precisionOptions.precision
        let test: ImageDataset
        if let images = dataOptions.images {
            // The model's own preprocessing (recorded by train), so that its test images are read as in training.
            guard dataOptions.transform == nil, dataOptions.inputSize == nil, dataOptions.channels == nil else {
                throw CLIError("eval --images prepares the images as the model file records"
                               + " (\(predictor.preprocessing)); leave out --transform, --input-size and --channels")
            }
            let set = try ImageFolder.load(images + "/test", preprocessing: predictor.preprocessing, training: false,
                                           classNames: predictor.classNames, limits: limits.value)
            test = dataOptions.limit.map { set.prefix($0) } ?? set
        } else {
            test = try mnist ?? dataOptions.load(.test, limits: limits.value)
        }
        let c = classifier.config
        guard c.height == test.height, c.width == test.width, c.channels == test.channels else {
            throw CLIError("\(path): the model expects \(c.height)×\(c.width)×\(c.channels) images,"
                           + " the data has \(test.height)×\(test.width)×\(test.channels)")
        }
        guard c.classes >= test.classes else {
            throw CLIError("\(path): the model has \(c.classes) classes, the data \(test.classes)")
        }
        let e = Evaluation.run(classifier, on: test)
        if json { try printJSON(e) } else { print(e.report(), terminator: "") }
    }

    /// What a model file without metadata is told (`--image-size`, else the data's image size: MNIST's, or the test
    /// folder's images' own when they share one), and MNIST's test split when it was read for that.
    func dataHints(_ path: String) throws -> (ModelFileHints, ImageDataset?) {
        guard stateDictOptions.imageSize == nil,
              try SafeTensors.read(path, limits: limits.value).metadata[ModelFile.configKey] == nil else {
            return (stateDictOptions.hints(), nil)
        }
        if let images = dataOptions.images {
            let p = try ImageFolder.preprocessing(for: images + "/test", limits: limits.value)
            return (ModelFileHints(width: p.width, height: p.height, channels: p.channels), nil)
        }
        let set = try dataOptions.load(.test, limits: limits.value)
        return (ModelFileHints(width: set.width, height: set.height, channels: set.channels), set)
    }
}
