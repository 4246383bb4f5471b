import ArgumentParser
import Foundation
import LSTMVision

/// `lstmvision eval`: accuracy, per-class precision and recall, and the confusion matrix on the test split.
struct Eval: ParsableCommand, ReadsFiles, UsesThreads {
    static let configuration = CommandConfiguration(abstract: "Evaluate a classifier on the MNIST test images.")

    @Option(help: "Model file (safetensors, from lstmvision or a PyTorch RowLSTM state_dict).")
    var model: String
    @OptionGroup var dataOptions: DataOptions
    @OptionGroup var threadOptions: ThreadOptions
    @Flag(help: "Print one JSON object.") var json = false
    @OptionGroup var limits: LimitOptions

    func run() throws {
        let classifier = try ModelFile.load(model, limits: limits.value)
        let test = try dataOptions.load(.test, limits: limits.value)
        let c = classifier.config
        guard c.height == test.height, c.width == test.width, c.channels == test.channels else {
            throw CLIError("\(model): the model expects \(c.height)×\(c.width)×\(c.channels) images,"
                           + " the data has \(test.height)×\(test.width)×\(test.channels)")
        }
        guard c.classes >= test.classes else {
            throw CLIError("\(model): the model has \(c.classes) classes, the data \(test.classes)")
        }
        let e = Evaluation.run(classifier, on: test)
        if json { try printJSON(e) } else { print(e.report(), terminator: "") }
    }
}
