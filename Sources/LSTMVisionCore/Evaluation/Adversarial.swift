import Foundation

/// L∞ adversarial examples for classifiers whose pixels lie in [0, 1]: FGSM (Goodfellow et al. 2015)
/// and PGD with a random start (Madry et al. 2018). The input gradient comes from the same autodiff
/// as training (the images are a leaf that asks for its gradient).
public struct Attack: Sendable, Equatable {
    public enum Method: String, Codable, Sendable, CaseIterable { case fgsm, pgd }

    public var method: Method
    /// The L∞ radius.
    public var epsilon: Float
    /// PGD iterations and step size (ignored by FGSM).
    public var steps: Int
    public var stepSize: Float

    public init(method: Method, epsilon: Float, steps: Int = 10, stepSize: Float? = nil) {
        self.method = method
        self.epsilon = epsilon
        self.steps = steps
        self.stepSize = stepSize ?? 2.5 * epsilon / Float(max(steps, 1))
    }

    /// Checks the settings; the message names the setting.
    public func validate() throws {
        guard epsilon >= 0, epsilon <= 1 else {
            throw AttackError.invalidSetting("the attack radius ε must be in [0, 1], got \(epsilon)")
        }
        guard steps > 0, steps <= 1000 else {
            throw AttackError.invalidSetting("the attack steps must be in 1...1000, got \(steps)")
        }
        guard stepSize > 0, stepSize.isFinite else {
            throw AttackError.invalidSetting("the attack step size must be positive, got \(stepSize)")
        }
    }

    /// The gradient of the mean cross-entropy with respect to the images `x`.
    static func inputGradient(_ model: any Classifier, _ x: Tensor, _ labels: [Int]) -> Tensor {
        let input = Variable(x, requiresGrad: true)
        crossEntropy(model(input), labels: labels).backward()
        model.zeroGrad()   // the parameters' gradients are a by-product here
        return input.grad ?? Tensor(zeros: x.shape)
    }

    /// Adversarial versions of `x` (pixels in [0, 1]) within `epsilon` of it in L∞.
    public func perturb(_ model: any Classifier, _ x: Tensor, labels: [Int],
                        generator: inout SeededGenerator) -> Tensor {
        guard epsilon > 0 else { return x }
        let wasTraining = model.training
        model.training = false
        defer { model.training = wasTraining }
        var adv = x
        let iterations: Int, alpha: Float
        switch method {
        case .fgsm:
            iterations = 1
            alpha = epsilon
        case .pgd:
            iterations = steps
            alpha = stepSize
            for i in 0..<adv.count { adv.scalars[i] += generator.uniform(-epsilon, epsilon) }
            project(&adv, around: x)
        }
        for _ in 0..<iterations {
            let g = Self.inputGradient(model, adv, labels)
            for i in 0..<adv.count { adv.scalars[i] += alpha * (g.scalars[i] > 0 ? 1 : (g.scalars[i] < 0 ? -1 : 0)) }
            project(&adv, around: x)
        }
        return adv
    }

    /// Clips into the ε-ball around `x` and into the pixel range [0, 1].
    func project(_ adv: inout Tensor, around x: Tensor) {
        for i in 0..<adv.count {
            let lo = max(0, x.scalars[i] - epsilon), hi = min(1, x.scalars[i] + epsilon)
            adv.scalars[i] = min(max(adv.scalars[i], lo), hi)
        }
    }

    /// Clean and robust accuracy of `model` on `dataset` under this attack.
    public func evaluate(_ model: any Classifier, on dataset: ImageDataset, batchSize: Int = 256, seed: UInt64 = 0)
        -> (clean: Double, robust: Double) {
        var g = SeededGenerator(seed: seed)
        var clean = 0, robust = 0
        var start = 0
        while start < dataset.count {
            let end = min(dataset.count, start + batchSize)
            let (x, y) = dataset.batch(start..<end)
            let p = Autograd.withoutGradients { model(Variable(x)).value.argmaxRows() }
            clean += zip(p, y).filter { $0 == $1 }.count
            let adv = perturb(model, x, labels: y, generator: &g)
            let pa = Autograd.withoutGradients { model(Variable(adv)).value.argmaxRows() }
            robust += zip(pa, y).filter { $0 == $1 }.count
            start = end
        }
        let n = Double(max(dataset.count, 1))
        return (Double(clean) / n, Double(robust) / n)
    }
}

/// Attack settings out of range; the message names the setting.
public enum AttackError: Error, CustomStringConvertible, Equatable {
    case invalidSetting(String)

    public var description: String {
        switch self { case let .invalidSetting(m): return m }
    }
}
