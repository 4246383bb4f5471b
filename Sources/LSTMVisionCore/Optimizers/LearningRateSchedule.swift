import Foundation

/// A learning rate as a function of the optimisation step (0-based), as PyTorch's schedulers.
public enum LearningRateSchedule: Sendable, Equatable {
    /// The base rate throughout.
    case constant
    /// `StepLR`: multiplied by `gamma` every `stepSize` steps.
    case step(stepSize: Int, gamma: Float)
    /// `CosineAnnealingLR`: from the base rate down to `minimum` over `totalSteps`.
    case cosine(totalSteps: Int, minimum: Float)
    /// Linear warm-up from 0 over `warmupSteps`, then cosine decay to `minimum` at `totalSteps`.
    case warmupCosine(warmupSteps: Int, totalSteps: Int, minimum: Float)

    /// The rate at `step` for base rate `base`.
    public func rate(base: Float, step: Int) -> Float {
        switch self {
        case .constant:
            return base
        case let .step(size, gamma):
            return base * powf(gamma, Float(step / max(size, 1)))
        case let .cosine(total, minimum):
            let t = Float(min(step, total)) / Float(max(total, 1))
            return minimum + (base - minimum) * (1 + cosf(.pi * t)) / 2
        case let .warmupCosine(warmup, total, minimum):
            if step < warmup { return base * Float(step + 1) / Float(warmup) }
            let t = Float(min(step - warmup, total - warmup)) / Float(max(total - warmup, 1))
            return minimum + (base - minimum) * (1 + cosf(.pi * t)) / 2
        }
    }
}
