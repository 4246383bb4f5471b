import Foundation

/// Updates parameters from their gradients. State (moments, step count) is kept per parameter name
/// so that it can be saved in a checkpoint and restored to resume training exactly.
public protocol Optimizer: AnyObject {
    /// The learning rate of the next step (schedules set it).
    var learningRate: Float { get set }
    /// Applies one update to every parameter that has a gradient.
    func step(_ parameters: NamedParameters)
    /// The optimiser's state as named tensors (e.g. `exp_avg.lstm.weight_ih_l0`, `step`).
    func stateDict() -> [String: Tensor]
    /// Restores the state written by `stateDict()` for `parameters`, refusing (`CheckpointError`, naming
    /// `source`) any tensor that does not fit them (see `splitOptimizerState`).
    func loadStateDict(_ state: [String: Tensor], parameters: NamedParameters, source: String) throws
}

/// Splits a saved optimiser state into its per-parameter tensors by kind (`exp_avg.lstm.weight_ih_l0`: kind
/// `exp_avg`, parameter `lstm.weight_ih_l0`), refusing unknown kinds and parameters, a shape other than the
/// parameter's (one value for `scalarKinds`), NaN or infinite values and negative ones for `nonNegativeKinds`:
/// `step` reads these tensors in step with the parameters, so a damaged or hostile state file must not reach it.
func splitOptimizerState(_ state: [String: Tensor], kinds: [String], scalarKinds: Set<String> = [],
                         nonNegativeKinds: Set<String> = [],
                         parameters: NamedParameters, source: String) throws -> [String: [String: Tensor]] {
    let shapes = Dictionary(uniqueKeysWithValues: parameters.map { ($0.name, $0.variable.value.shape) })
    var out: [String: [String: Tensor]] = [:]
    for key in state.keys.sorted() {
        let t = state[key]!
        func fail(_ m: String) -> CheckpointError { .invalid("\(source): optimizer state '\(key)' \(m)") }
        guard let kind = kinds.first(where: { key.hasPrefix($0 + ".") }) else {
            throw fail("is not a state of this optimizer")
        }
        let name = String(key.dropFirst(kind.count + 1))
        guard let shape = shapes[name] else { throw fail("names no parameter of this model") }
        if scalarKinds.contains(kind) {
            guard t.count == 1 else { throw fail("has \(t.count) values, not 1") }
        } else {
            guard t.shape == shape else { throw fail("has shape \(t.shape), the parameter \(shape)") }
        }
        guard t.isFinite else { throw fail("holds NaN or infinite values") }
        if nonNegativeKinds.contains(kind) {
            guard t.scalars.allSatisfy({ $0 >= 0 }) else { throw fail("holds negative values") }
        }
        out[kind, default: [:]][name] = t
    }
    return out
}

/// Stochastic gradient descent with PyTorch's momentum, dampening-free Nesterov and L2 weight decay.
public final class SGD: Optimizer {
    public var learningRate: Float
    public let momentum: Float
    public let nesterov: Bool
    public let weightDecay: Float
    private var velocity: [String: Tensor] = [:]

    public init(learningRate: Float, momentum: Float = 0, nesterov: Bool = false, weightDecay: Float = 0) {
        precondition(!nesterov || momentum > 0, "SGD: Nesterov needs momentum > 0")
        self.learningRate = learningRate
        self.momentum = momentum
        self.nesterov = nesterov
        self.weightDecay = weightDecay
    }

    public func step(_ parameters: NamedParameters) {
        for (name, p) in parameters {
            guard var g = p.grad else { continue }
            if weightDecay != 0 { g.add(p.value, scale: weightDecay) }
            if momentum != 0 {
                var buf: Tensor
                if var v = velocity[name] { v.scale(by: momentum); v.add(g); buf = v } else { buf = g }
                velocity[name] = buf
                if nesterov { g.add(buf, scale: momentum) } else { g = buf }
            }
            p.value.add(g, scale: -learningRate)
        }
    }

    public func stateDict() -> [String: Tensor] {
        Dictionary(uniqueKeysWithValues: velocity.map { ("momentum_buffer.\($0.key)", $0.value) })
    }

    public func loadStateDict(_ state: [String: Tensor], parameters: NamedParameters, source: String) throws {
        velocity = try splitOptimizerState(state, kinds: ["momentum_buffer"], parameters: parameters,
                                           source: source)["momentum_buffer"] ?? [:]
    }
}

/// Adam (Kingma & Ba) with bias correction, as `torch.optim.Adam`; with `decoupled` weight decay it is
/// `torch.optim.AdamW`, otherwise weight decay is added to the gradient (L2).
public final class Adam: Optimizer {
    public var learningRate: Float
    public let beta1: Float, beta2: Float, epsilon: Float
    public let weightDecay: Float
    public let decoupledWeightDecay: Bool
    private var m: [String: Tensor] = [:]
    private var v: [String: Tensor] = [:]
    private var steps: [String: Int] = [:]

    public init(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8,
                weightDecay: Float = 0, decoupledWeightDecay: Bool = false) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.decoupledWeightDecay = decoupledWeightDecay
    }

    /// AdamW: Adam with decoupled weight decay (PyTorch's default decay 0.01).
    public static func adamW(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999,
                             epsilon: Float = 1e-8, weightDecay: Float = 0.01) -> Adam {
        Adam(learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon,
             weightDecay: weightDecay, decoupledWeightDecay: true)
    }

    public func step(_ parameters: NamedParameters) {
        for (name, p) in parameters {
            guard let grad = p.grad else { continue }
            let t = (steps[name] ?? 0) + 1
            steps[name] = t
            // Taken out of the dictionaries so that they are updated in place, not copied on write.
            var mt = m.removeValue(forKey: name) ?? Tensor(zeros: p.value.shape)
            var vt = v.removeValue(forKey: name) ?? Tensor(zeros: p.value.shape)
            let lr = learningRate, b1 = beta1, b2 = beta2, eps = epsilon
            let bc1 = 1 - powf(b1, Float(t)), bc2 = 1 - powf(b2, Float(t))
            let stepSize = lr / bc1, bc2Sqrt = bc2.squareRoot()
            // AdamW decays the weights directly; Adam adds wd·w to the gradient (L2).
            let decay = decoupledWeightDecay ? 1 - lr * weightDecay : 1, l2 = decoupledWeightDecay ? 0 : weightDecay
            // Sixteen weights at a time (the compiler does not vectorise the scalar loop), the same operations in the
            // same order.
            typealias V = VectorMath.V
            @inline(__always) func update(_ w: inout V, _ g: V, _ m: inout V, _ v: inout V) {
                let gi = l2 == 0 ? g : g + l2 * w
                if decay != 1 { w *= decay }
                m = b1 * m + (1 - b1) * gi
                v = b2 * v + (1 - b2) * gi * gi
                w -= stepSize * m / (VectorMath.squareRoot(v) / bc2Sqrt + eps)
            }
            p.value.scalars.withUnsafeMutableBufferPointer { w in
            grad.scalars.withUnsafeBufferPointer { g in
            mt.scalars.withUnsafeMutableBufferPointer { mp in
            vt.scalars.withUnsafeMutableBufferPointer { vp in
                let count = w.count
                nonisolated(unsafe) let (w, g, mp, vp) = (w.baseAddress!, g.baseAddress!, mp.baseAddress!,
                                                          vp.baseAddress!)
                // Split among the threads from 4,096 weights: the update is bound by the divider, not by memory, so
                // even a small weight (a 512×28 W_ih) gains from a second core.
                Parallel.forChunks((count + 15) / 16, minimum: 1 << 8) { blocks in
                    for b in blocks {
                        let i = 16 * b, n = min(16, count - i)
                        if n == 16 {
                            var wv = VectorMath.load(w + i), mv = VectorMath.load(mp + i), vv = VectorMath.load(vp + i)
                            update(&wv, VectorMath.load(g + i), &mv, &vv)
                            VectorMath.store(wv, w + i); VectorMath.store(mv, mp + i); VectorMath.store(vv, vp + i)
                        } else {   // the last few weights, through zero-padded vectors
                            var wv = V(), gv = V(), mv = V(), vv = V()
                            for l in 0..<n { (wv[l], gv[l], mv[l], vv[l]) = (w[i + l], g[i + l], mp[i + l], vp[i + l]) }
                            update(&wv, gv, &mv, &vv)
                            for l in 0..<n { (w[i + l], mp[i + l], vp[i + l]) = (wv[l], mv[l], vv[l]) }
                        }
                    }
                }
            } } } }
            m[name] = mt
            v[name] = vt
        }
    }

    public func stateDict() -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for (k, t) in m { out["exp_avg.\(k)"] = t }
        for (k, t) in v { out["exp_avg_sq.\(k)"] = t }
        for (k, s) in steps { out["step.\(k)"] = Tensor(scalar: Float(s)) }
        return out
    }

    public func loadStateDict(_ state: [String: Tensor], parameters: NamedParameters, source: String) throws {
        let parts = try splitOptimizerState(state, kinds: ["exp_avg_sq", "exp_avg", "step"], scalarKinds: ["step"],
                                            nonNegativeKinds: ["exp_avg_sq", "step"], parameters: parameters,
                                            source: source)
        var counts: [String: Int] = [:]
        for (name, t) in parts["step"] ?? [:] {
            // A step count is a whole number; Float holds every integer up to 2^24 exactly.
            guard let n = Int(exactly: t.scalars[0]), n <= 1 << 24 else {
                throw CheckpointError.invalid(
                    "\(source): optimizer state 'step.\(name)' is \(t.scalars[0]), not a step count")
            }
            counts[name] = n
        }
        m = parts["exp_avg"] ?? [:]
        v = parts["exp_avg_sq"] ?? [:]
        steps = counts
    }
}

/// Σ of the squares of every gradient of `parameters`, in Double: finite exactly when every gradient is (a finite
/// Float's square cannot overflow a Double), so one pass both checks the gradients and gives their norm.
public func gradientSquaredNorm(_ parameters: [Variable]) -> Double {
    parameters.reduce(0) { $0 + ($1.grad?.squaredNorm() ?? 0) }
}

/// Scales all gradients down so that their joint L2 norm is at most `maxNorm`, as
/// `torch.nn.utils.clip_grad_norm_`; returns the norm before clipping. `squaredNorm`, when the caller has it, is
/// `gradientSquaredNorm(parameters)`.
@discardableResult
public func clipGradientNorm(_ parameters: [Variable], maxNorm: Float, squaredNorm: Double? = nil) -> Float {
    let norm = Float((squaredNorm ?? gradientSquaredNorm(parameters)).squareRoot())
    let scale = maxNorm / (norm + 1e-6)
    if scale < 1 {
        for p in parameters {
            guard var g = p.grad else { continue }
            p.grad = nil   // g is then the only reference: scaled in place, not copied
            g.scale(by: scale)
            p.grad = g
        }
    }
    return norm
}
