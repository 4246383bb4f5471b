import Foundation

/// Loss functions with PyTorch's definitions and mean reduction; each forward beside its backward.

/// Softmax cross-entropy of logits [N, C] against class indices, averaged over the batch.
/// With `labelSmoothing` ε the target is (1 − ε)·one-hot + ε/C, as `nn.CrossEntropyLoss(label_smoothing=ε)`.
public func crossEntropy(_ logits: Variable, labels: [Int], labelSmoothing: Float = 0) -> Variable {
    precondition(logits.value.rank == 2, "crossEntropy: logits must be [batch, classes], got \(logits.shape)")
    let n = logits.shape[0], classes = logits.shape[1]
    precondition(labels.count == n, "crossEntropy: \(labels.count) labels for a batch of \(n)")
    precondition(labelSmoothing >= 0 && labelSmoothing <= 1, "crossEntropy: label smoothing must be in [0, 1]")
    for l in labels { precondition(l >= 0 && l < classes, "crossEntropy: label \(l) out of range 0..<\(classes)") }
    let probs = logits.value.softmaxRows()
    var loss: Double = 0
    let eps = labelSmoothing, off = eps / Float(classes)
    for r in 0..<n {
        let row = r * classes
        // log p = z − logsumexp(z), computed stably from the max.
        var m = -Float.infinity
        for c in 0..<classes { m = max(m, logits.value.scalars[row + c]) }
        var s: Double = 0
        for c in 0..<classes { s += Double(expf(logits.value.scalars[row + c] - m)) }
        let lse = Double(m) + log(s)
        for c in 0..<classes {
            let q = (c == labels[r] ? 1 - eps : 0) + off
            if q > 0 { loss -= Double(q) * (Double(logits.value.scalars[row + c]) - lse) }
        }
    }
    let value = Tensor(scalar: Float(loss / Double(max(n, 1))))
    return Autograd.result(value, inputs: [logits]) { dy in
        var dx = probs
        let scale = dy.scalar / Float(max(n, 1))
        for r in 0..<n {
            for c in 0..<classes {
                let q = (c == labels[r] ? 1 - eps : 0) + off
                dx.scalars[r * classes + c] = (dx.scalars[r * classes + c] - q) * scale
            }
        }
        return [dx]
    }
}

/// Applies an elementwise loss ℓ(d) with derivative ℓ'(d) to d = prediction − target, averaged.
private func meanElementwiseLoss(_ prediction: Variable, _ target: Tensor, name: String,
                                 loss: (Float) -> Float, derivative: @escaping (Float) -> Float) -> Variable {
    precondition(prediction.shape == target.shape,
                 "\(name): prediction \(prediction.shape) and target \(target.shape) differ")
    let diff = prediction.value - target
    var total: Double = 0
    for d in diff.scalars { total += Double(loss(d)) }
    let n = Float(max(diff.count, 1))
    return Autograd.result(Tensor(scalar: Float(total / Double(n))), inputs: [prediction]) { dy in
        let s = dy.scalar / n
        return [Tensor(shape: diff.shape, scalars: diff.scalars.map { derivative($0) * s })]
    }
}

/// Mean squared error, as `nn.MSELoss()`.
public func mseLoss(_ prediction: Variable, _ target: Tensor) -> Variable {
    meanElementwiseLoss(prediction, target, name: "mseLoss", loss: { $0 * $0 }, derivative: { 2 * $0 })
}

/// Mean absolute error, as `nn.L1Loss()` (gradient 0 where the difference is 0).
public func l1Loss(_ prediction: Variable, _ target: Tensor) -> Variable {
    meanElementwiseLoss(prediction, target, name: "l1Loss", loss: { abs($0) },
                        derivative: { $0 > 0 ? 1 : ($0 < 0 ? -1 : 0) })
}

/// Huber-style smooth L1, as `nn.SmoothL1Loss(beta=β)`: 0.5·d²/β where |d| < β, else |d| − 0.5·β.
public func smoothL1Loss(_ prediction: Variable, _ target: Tensor, beta: Float = 1) -> Variable {
    precondition(beta > 0, "smoothL1Loss: beta must be positive")
    return meanElementwiseLoss(prediction, target, name: "smoothL1Loss",
                               loss: { abs($0) < beta ? 0.5 * $0 * $0 / beta : abs($0) - 0.5 * beta },
                               derivative: { abs($0) < beta ? $0 / beta : ($0 > 0 ? 1 : -1) })
}
