/// Parameters under their names (PyTorch `state_dict` names, e.g. `lstm.weight_ih_l0`), in a module's order.
public typealias NamedParameters = [(name: String, variable: Variable)]

/// A layer or model: something with parameters found by their PyTorch `state_dict` names.
public protocol Module: AnyObject {
    /// The parameters, named as PyTorch's `state_dict` names them (e.g. `lstm.weight_ih_l0`).
    var namedParameters: NamedParameters { get }
}

extension Module {
    /// The parameters without names, in `namedParameters` order.
    public var parameters: [Variable] { namedParameters.map(\.variable) }

    /// Total number of trainable scalars.
    public var parameterCount: Int { namedParameters.reduce(0) { $0 + $1.variable.value.count } }

    /// Parameter values by name, for checkpoints.
    public func stateDict() -> [String: Tensor] {
        Dictionary(uniqueKeysWithValues: namedParameters.map { ($0.name, $0.variable.value) })
    }

    /// Loads parameter values by name; every parameter must be present with its exact shape.
    public func loadStateDict(_ state: [String: Tensor], source: String = "state dict") throws {
        let names = Set(namedParameters.map(\.name))
        if let extra = state.keys.sorted().first(where: { !names.contains($0) }) {
            throw CheckpointError.mismatch("\(source): unexpected tensor '\(extra)' for this model")
        }
        for (name, v) in namedParameters {
            guard let t = state[name] else { throw CheckpointError.mismatch("\(source): missing tensor '\(name)'") }
            guard t.shape == v.value.shape else {
                throw CheckpointError.mismatch(
                    "\(source): tensor '\(name)' has shape \(t.shape), the model needs \(v.value.shape)")
            }
            guard t.isFinite else {
                throw CheckpointError.mismatch("\(source): tensor '\(name)' holds NaN or infinite values")
            }
        }
        for (name, v) in namedParameters { v.value = state[name]! }
    }

    /// Sets the forget-gate biases of every LSTM inside (parameters named `bias_ih_l…`, `bias_hh_l…`, gate order i, f,
    /// g, o) so that b_ih + b_hh = `value` for that gate: 1 lets the cell keep its memory from the start, which long
    /// sequences learn faster with than with PyTorch's default initialisation.
    public func setForgetBias(_ value: Float) {
        for (name, p) in namedParameters where name.contains("bias_ih_l") || name.contains("bias_hh_l") {
            let h = p.value.count / 4
            for j in h..<(2 * h) { p.value.scalars[j] = name.contains("bias_ih_l") ? value : 0 }
        }
    }

    /// Clears every parameter's gradient.
    public func zeroGrad() { for p in parameters { p.zeroGrad() } }
}

/// Prefixes the names of a child module's parameters (`prefix.name`).
public func prefixed(_ prefix: String, _ module: Module) -> NamedParameters {
    module.namedParameters.map { ("\(prefix).\($0.name)", $0.variable) }
}

/// A chosen set of parameters under their full names, as a module: what an optimiser updates when the rest is frozen.
public final class Parameters: Module {
    public let namedParameters: NamedParameters

    public init(_ namedParameters: NamedParameters) { self.namedParameters = namedParameters }
}
