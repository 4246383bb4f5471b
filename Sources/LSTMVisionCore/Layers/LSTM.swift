import Foundation

/// A multi-layer, optionally bidirectional LSTM with `torch.nn.LSTM`'s semantics, parameter names
/// (`weight_ih_l{k}`, `weight_hh_l{k}`, `bias_ih_l{k}`, `bias_hh_l{k}`, `_reverse` for the backward
/// direction), gate order (i, f, g, o) and initialisation (uniform ±1/√hidden).
public final class LSTM: Module {
    public let inputSize: Int
    public let hiddenSize: Int
    public let numLayers: Int
    public let bidirectional: Bool
    /// Dropout probability applied to the outputs of every layer but the last, in training.
    public var dropout: Float
    public let batchFirst: Bool
    /// When true (the default), dropout is active.
    public var training = true
    /// Weights per layer and direction: [layer][direction] = (W_ih, W_hh, b_ih, b_hh).
    public let cells: [[(weightIH: Variable, weightHH: Variable, biasIH: Variable, biasHH: Variable)]]
    private var dropoutGenerator: SeededGenerator
    /// The gate products' precision in inference: bf16 or int8 pack W_ih and W_hh when set, and every forward that
    /// records no gradients uses them (`ReducedPrecisionLSTM.swift`); training stays fp32. The packing is a snapshot:
    /// set it again after changing the weights.
    public var precision: Precision = .fp32 {
        didSet {
            reduced = precision == .fp32 ? nil : cells.map { row in row.map {
                ReducedLSTMDirection(weightIH: $0.weightIH.value, weightHH: $0.weightHH.value, biasIH: $0.biasIH.value,
                                     biasHH: $0.biasHH.value, precision: precision)
            } }
        }
    }
    private var reduced: [[ReducedLSTMDirection]]?

    public init(inputSize: Int, hiddenSize: Int, numLayers: Int = 1, bidirectional: Bool = false,
                dropout: Float = 0, batchFirst: Bool = true, generator: inout SeededGenerator) {
        precondition(inputSize > 0 && hiddenSize > 0 && numLayers > 0,
                     "LSTM: sizes must be positive (input \(inputSize), hidden \(hiddenSize), layers \(numLayers))")
        self.inputSize = inputSize
        self.hiddenSize = hiddenSize
        self.numLayers = numLayers
        self.bidirectional = bidirectional
        self.dropout = dropout
        self.batchFirst = batchFirst
        let bound = 1 / Float(hiddenSize).squareRoot()
        let dirs = bidirectional ? 2 : 1
        var cells: [[(Variable, Variable, Variable, Variable)]] = []
        for layer in 0..<numLayers {
            let inSize = layer == 0 ? inputSize : hiddenSize * dirs
            var row: [(Variable, Variable, Variable, Variable)] = []
            for _ in 0..<dirs {
                func param(_ shape: [Int]) -> Variable {
                    Variable(.uniform(shape, low: -bound, high: bound, generator: &generator), requiresGrad: true)
                }
                row.append((param([4 * hiddenSize, inSize]), param([4 * hiddenSize, hiddenSize]),
                            param([4 * hiddenSize]), param([4 * hiddenSize])))
            }
            cells.append(row)
        }
        self.cells = cells.map { $0.map { (weightIH: $0.0, weightHH: $0.1, biasIH: $0.2, biasHH: $0.3) } }
        self.dropoutGenerator = SeededGenerator(seed: generator.next())
    }

    public var directions: Int { bidirectional ? 2 : 1 }

    public var namedParameters: NamedParameters {
        var out: NamedParameters = []
        for (layer, row) in cells.enumerated() {
            for (d, cell) in row.enumerated() {
                let suffix = "l\(layer)" + (d == 1 ? "_reverse" : "")
                out += [("weight_ih_\(suffix)", cell.weightIH), ("weight_hh_\(suffix)", cell.weightHH),
                        ("bias_ih_\(suffix)", cell.biasIH), ("bias_hh_\(suffix)", cell.biasHH)]
            }
        }
        return out
    }

    /// Runs the sequence `x` ([batch, steps, input] when batch-first, else [steps, batch, input]).
    /// `initialState` (h0, c0) are each [layers·directions, batch, hidden]; zeros when absent.
    /// Returns the last layer's outputs ([batch, steps, directions·hidden] when batch-first) and
    /// the final states h, c, each [layers·directions, batch, hidden].
    public func callAsFunction(_ x: Variable, initialState: (h: Variable, c: Variable)? = nil)
        -> (output: Variable, h: Variable, c: Variable) {
        let r = run(x, initialState: initialState, outputs: true)
        return (r.output!, r.h, r.c)
    }

    /// The final states h, c as `callAsFunction` returns them, without the last layer's outputs: a model that reads
    /// only h_T (a classifier, the refiner) does not copy and transpose every step's output.
    public func finalStates(_ x: Variable, initialState: (h: Variable, c: Variable)? = nil)
        -> (h: Variable, c: Variable) {
        let r = run(x, initialState: initialState, outputs: false)
        return (r.h, r.c)
    }

    private func run(_ x: Variable, initialState: (h: Variable, c: Variable)?, outputs: Bool)
        -> (output: Variable?, h: Variable, c: Variable) {
        precondition(x.value.rank == 3,
                     "LSTM: input must be rank 3 ([batch, steps, features] when batch-first), got \(x.shape)")
        let featureAxis = 2
        precondition(x.shape[featureAxis] == inputSize,
                     "LSTM: input has \(x.shape[featureAxis]) features, the layer expects \(inputSize)")
        var seq = batchFirst ? swapLeadingAxes(x) : x   // time-major [T, N, F]
        let batch = seq.shape[1]
        if let s = initialState {
            let expected = [numLayers * directions, batch, hiddenSize]
            precondition(s.h.shape == expected && s.c.shape == expected,
                         "LSTM: initial state must be \(expected), got \(s.h.shape) and \(s.c.shape)")
        }
        let zero = Variable(Tensor(zeros: [batch, hiddenSize]))
        if let reduced, !Autograd.records([x] + parameters) {
            return runReduced(seq, reduced, initialState: initialState, outputs: outputs)
        }
        var hs: [Variable] = [], cs: [Variable] = []
        for (layer, row) in cells.enumerated() {
            let dirs = row.enumerated().map { d, cell in
                let k = layer * directions + d
                return LSTMDirection(h0: initialState.map { select($0.h, k) } ?? zero,
                                     c0: initialState.map { select($0.c, k) } ?? zero,
                                     weightIH: cell.weightIH, weightHH: cell.weightHH,
                                     biasIH: cell.biasIH, biasHH: cell.biasHH, reverse: d == 1)
            }
            let last = layer == numLayers - 1
            let results = lstmSequences(seq, dirs, outputs: outputs || !last ? .joined : .none)
            hs += results.states.map(\.h); cs += results.states.map(\.c)
            if last && !outputs { return (nil, stack(hs), stack(cs)) }
            seq = results.outputs[0]   // the directions side by side
            if !last {
                seq = LSTMVisionCore.dropout(seq, probability: dropout, training: training,
                                             generator: &dropoutGenerator)
            }
        }
        return (batchFirst ? swapLeadingAxes(seq) : seq, stack(hs), stack(cs))
    }

    /// `run` on the packed weights of `precision` (no gradients).
    private func runReduced(_ x: Variable, _ layers: [[ReducedLSTMDirection]],
                            initialState: (h: Variable, c: Variable)?, outputs: Bool)
        -> (output: Variable?, h: Variable, c: Variable) {
        let (N, H, D) = (x.shape[1], hiddenSize, directions)
        let zero = Tensor(zeros: [N, H])
        var seq = x.value, hs: [Tensor] = [], cs: [Tensor] = []
        for (layer, row) in layers.enumerated() {
            let k = (0..<D).map { layer * D + $0 }
            let h0 = k.map { i in initialState.map { select($0.h, i).value } ?? zero }
            let c0 = k.map { i in initialState.map { select($0.c, i).value } ?? zero }
            let last = layer == numLayers - 1
            let r = reducedLSTMLayer(seq, row, h0: h0, c0: c0, outputs: outputs || !last)
            hs += r.h; cs += r.c
            if let output = r.output {
                seq = last ? output : LSTMVisionCore.dropout(Variable(output), probability: dropout, training: training,
                                                             generator: &dropoutGenerator).value
            }
        }
        let h = Variable(Tensor(shape: [hs.count, N, H], scalars: hs.flatMap(\.scalars)))
        let c = Variable(Tensor(shape: [cs.count, N, H], scalars: cs.flatMap(\.scalars)))
        guard outputs else { return (nil, h, c) }
        let y = Variable(seq)
        return (batchFirst ? swapLeadingAxes(y) : y, h, c)
    }
}
