import ArgumentParser
import Foundation
import LSTMVision

/// `lstmvision attack`: clean and robust accuracy of a classifier under an L∞ FGSM or PGD attack.
struct AttackCommand: ParsableCommand, ReadsFiles, UsesThreads {
    static let configuration = CommandConfiguration(
        commandName: "attack",
        abstract: "Measure robustness: clean and robust accuracy under FGSM or PGD (L∞, pixels in [0,1]).")

    @Option(help: "Model file (safetensors).") var model: String
    @Option(help: "Attack.") var method: Attack.Method = .fgsm
    @Option(help: "L∞ radius.") var eps: Float = 0.1
    @Option(help: "PGD iterations.") var steps: Int = 10
    @Option(help: "PGD step size (default 2.5·eps/steps).") var stepSize: Float?
    @Option(help: "Seed of PGD's random start.") var seed: UInt64 = 0
    @OptionGroup var dataOptions: DataOptions
    @OptionGroup var threadOptions: ThreadOptions
    @Flag(help: "Print one JSON object.") var json = false
    @OptionGroup var limits: LimitOptions

    struct Report: Codable {
        let model: String, method: String, eps: Float, steps: Int, images: Int
        let clean_accuracy: Double, robust_accuracy: Double
    }

    func validate() throws {
        guard eps >= 0, eps <= 1 else { throw ValidationError("--eps must be in [0, 1], got \(eps)") }
        guard (1...1000).contains(steps) else { throw ValidationError("--steps must be in 1...1000, got \(steps)") }
        if let stepSize, !(stepSize > 0 && stepSize.isFinite) {
            throw ValidationError("--step-size must be positive, got \(stepSize)")
        }
    }

    func run() throws {
        let attack = Attack(method: method, epsilon: eps, steps: steps, stepSize: stepSize)
        try attack.validate()
        let classifier = try ModelFile.load(model, limits: limits.value)
        let test = try dataOptions.load(.test, limits: limits.value)
        let c = classifier.config
        guard c.height == test.height, c.width == test.width, c.channels == test.channels else {
            throw CLIError("\(model): the model expects \(c.height)×\(c.width)×\(c.channels) images,"
                           + " the data has \(test.height)×\(test.width)×\(test.channels)")
        }
        let r = attack.evaluate(classifier, on: test, seed: seed)
        let report = Report(model: model, method: method.rawValue, eps: eps, steps: method == .pgd ? steps : 1,
                            images: test.count, clean_accuracy: r.clean, robust_accuracy: r.robust)
        if json { try printJSON(report); return }
        print(String(format: "%@ ε=%.3g%@ on %d images: clean accuracy %.2f%%, robust accuracy %.2f%%",
                     method.rawValue, eps, method == .pgd ? " (\(steps) steps)" : "", test.count,
                     r.clean * 100, r.robust * 100))
    }
}
