/// Reverse-mode automatic differentiation on a graph of coarse operations.
///
/// A `Variable` holds a tensor value. Operations on variables that need gradients record a `Node`
/// holding the backward function written next to the forward; `backward()` runs the nodes in reverse
/// topological order and accumulates `grad` on the leaves (the parameters and any input that asked).
public final class Variable {
    public var value: Tensor { didSet { derivedCache = [:] } }
    /// The accumulated gradient of the last `backward()` (leaves only).
    public var grad: Tensor?
    /// True for leaves whose gradient is wanted (parameters, inputs for attacks).
    public let requiresGrad: Bool
    let node: Node?
    let outputIndex: Int

    /// A leaf variable.
    public init(_ value: Tensor, requiresGrad: Bool = false) {
        self.value = value
        self.requiresGrad = requiresGrad
        self.node = nil
        self.outputIndex = 0
    }

    init(_ value: Tensor, node: Node, outputIndex: Int) {
        self.value = value
        self.requiresGrad = false
        self.node = node
        self.outputIndex = outputIndex
    }

    public var shape: [Int] { value.shape }

    /// True when gradients flow into this variable (a leaf that wants them, or an operation's result).
    public var needsGrad: Bool { requiresGrad || node != nil }

    /// Back-propagates from this scalar (or from `seed`, a gradient of this variable's shape).
    public func backward(seed: Tensor? = nil) {
        let seedGrad = seed ?? Tensor(repeating: 1, shape: value.shape)
        precondition(seedGrad.shape == value.shape,
                     "backward: seed shape \(seedGrad.shape) differs from \(value.shape)")
        guard let root = node else {
            if requiresGrad { accumulate(seedGrad) }
            return
        }
        // Topological order by iterative depth-first search.
        var order: [Node] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(Node, Bool)] = [(root, false)]
        while let (n, expanded) = stack.popLast() {
            if expanded { order.append(n); continue }
            if !visited.insert(ObjectIdentifier(n)).inserted { continue }
            stack.append((n, true))
            for input in n.inputs {
                if let p = input.node, !visited.contains(ObjectIdentifier(p)) { stack.append((p, false)) }
            }
        }
        root.addGradient(seedGrad, output: outputIndex)
        for n in order.reversed() {
            let outGrads = n.outputGradients
            n.outputGradients = []
            guard outGrads.contains(where: { $0 != nil }) else { continue }
            let inGrads = n.backward(outGrads)
            for (input, g) in zip(n.inputs, inGrads) {
                guard let g else { continue }
                precondition(g.shape == input.value.shape,
                             "backward: gradient shape \(g.shape) for input \(input.value.shape)")
                if let p = input.node {
                    p.addGradient(g, output: input.outputIndex)
                } else if input.requiresGrad {
                    input.accumulate(g)
                }
            }
        }
    }

    /// Adds `g` into `grad`.
    func accumulate(_ g: Tensor) {
        if var existing = grad {
            existing.add(g)
            grad = existing
        } else {
            grad = g
        }
    }

    /// A value computed from `value` by `make` (a weight laid out for a kernel), kept under `key` until `value`
    /// changes: the LSTM's per-step kernel reads W_hhᵀ packed, which inference would otherwise lay out on every
    /// call.
    public func derived<Derived>(_ key: String, _ make: (Tensor) -> Derived) -> Derived {
        if let cached = derivedCache[key] as? Derived { return cached }
        let made = make(value)
        derivedCache[key] = made
        return made
    }
    private var derivedCache: [String: Any] = [:]

    /// Clears the accumulated gradient.
    public func zeroGrad() { grad = nil }
}

/// One recorded operation: its inputs, the gradients arriving at its outputs, and its backward function.
final class Node {
    let inputs: [Variable]
    var outputGradients: [Tensor?]
    /// Maps the gradients of the outputs (nil where none arrived) to gradients of the inputs.
    let backward: ([Tensor?]) -> [Tensor?]

    init(inputs: [Variable], outputs: Int, backward: @escaping ([Tensor?]) -> [Tensor?]) {
        self.inputs = inputs
        self.outputGradients = [Tensor?](repeating: nil, count: outputs)
        self.backward = backward
    }

    func addGradient(_ g: Tensor, output: Int) {
        if outputGradients.isEmpty { return }
        if var existing = outputGradients[output] {
            existing.add(g)
            outputGradients[output] = existing
        } else {
            outputGradients[output] = g
        }
    }
}

/// Switches gradient recording on and off (`Autograd.withoutGradients { ... }` for inference).
public enum Autograd {
    @TaskLocal static var enabled = true

    /// Runs `body` without recording operations, as PyTorch's `torch.no_grad()`.
    public static func withoutGradients<T>(_ body: () throws -> T) rethrows -> T {
        try $enabled.withValue(false) { try body() }
    }

    /// True when an operation on `inputs` must be recorded.
    static func records(_ inputs: [Variable]) -> Bool {
        enabled && inputs.contains(where: \.needsGrad)
    }

    /// Wraps an operation's result: records a node when gradients are needed.
    static func result(_ value: Tensor, inputs: [Variable], backward: @escaping (Tensor) -> [Tensor?]) -> Variable {
        guard records(inputs) else { return Variable(value) }
        let node = Node(inputs: inputs, outputs: 1) { grads in backward(grads[0]!) }
        return Variable(value, node: node, outputIndex: 0)
    }

    /// Wraps a several-output operation's results under one node.
    static func results(_ values: [Tensor], inputs: [Variable],
                        backward: @escaping ([Tensor?]) -> [Tensor?]) -> [Variable] {
        guard records(inputs) else { return values.map { Variable($0) } }
        let node = Node(inputs: inputs, outputs: values.count, backward: backward)
        return values.enumerated().map { Variable($0.element, node: node, outputIndex: $0.offset) }
    }
}
