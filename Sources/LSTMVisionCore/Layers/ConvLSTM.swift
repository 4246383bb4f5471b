/// One convolutional LSTM cell, as the PyTorch `ConvLSTMCell` of issue 23: `conv` = Conv2d(in + hidden, 4·hidden, k,
/// padding k/2) over [x_t, h_{t−1}], gates split i, f, g, o (names `conv.weight`, `conv.bias`; PyTorch's
/// initialisation). The kernel must be odd, so that 'same' padding keeps the frame size.
public final class ConvLSTMCell: Module {
    public let conv: Conv2D
    public let hidden: Int

    public init(_ inChannels: Int, hidden: Int, kernelSize: Int, generator: inout SeededGenerator) {
        precondition(kernelSize % 2 == 1, "ConvLSTMCell: the kernel size must be odd, got \(kernelSize)")
        self.hidden = hidden
        conv = Conv2D(inChannels + hidden, 4 * hidden, kernelSize: kernelSize, padding: kernelSize / 2,
                      generator: &generator)
    }

    public var inChannels: Int { conv.inChannels - hidden }
    public var kernelSize: Int { conv.kernelSize }
    public var namedParameters: NamedParameters { prefixed("conv", conv) }

    /// Runs the cell over a time-major sequence x [T, N, in, rows, cols] from (h0, c0) [N, hidden, rows, cols]
    /// (zeros when nil): every h_t [T, N, hidden, rows, cols] and the final h, c, as one fused operation.
    public func sequence(_ x: Variable, initial: (h: Variable, c: Variable)? = nil)
        -> (output: Variable, h: Variable, c: Variable) {
        precondition(x.value.rank == 5,
                     "ConvLSTMCell: input must be [steps, batch, channels, rows, cols], got \(x.shape)")
        let state = initial ?? {
            let zeros = Tensor(zeros: [x.shape[1], hidden, x.shape[3], x.shape[4]])
            return (Variable(zeros), Variable(zeros))
        }()
        return convLSTMSequence(x, h0: state.h, c0: state.c, weight: conv.weight, bias: conv.bias!)
    }
}

/// Stacked ConvLSTM layers (`cells.0.conv.weight`, `cells.1.conv.weight`, ...): layer l reads the h_t of layer l − 1.
/// Input and output are time-major: [T, N, channels, rows, cols].
public final class ConvLSTM: Module {
    public let cells: [ConvLSTMCell]

    /// `hidden[l]` channels in layer l, all with a k×k kernel (k odd).
    public init(inChannels: Int, hidden: [Int], kernelSize: Int, generator: inout SeededGenerator) {
        precondition(!hidden.isEmpty && hidden.allSatisfy { $0 > 0 } && inChannels > 0,
                     "ConvLSTM: needs positive input channels and at least one layer, got \(inChannels), \(hidden)")
        let chans = [inChannels] + hidden
        cells = hidden.indices.map { ConvLSTMCell(chans[$0], hidden: hidden[$0], kernelSize: kernelSize,
                                                  generator: &generator) }
    }

    public var namedParameters: NamedParameters {
        cells.enumerated().flatMap { prefixed("cells.\($0.offset)", $0.element) }
    }

    /// The last layer's h_t [T, N, hidden.last, rows, cols] and each layer's final (h, c); `initial` gives each
    /// layer's starting state (zeros when nil).
    public func callAsFunction(_ x: Variable, initial: [(h: Variable, c: Variable)]? = nil)
        -> (output: Variable, states: [(h: Variable, c: Variable)]) {
        precondition(initial == nil || initial!.count == cells.count,
                     "ConvLSTM: \(initial?.count ?? 0) initial states for \(cells.count) layers")
        var input = x, states: [(h: Variable, c: Variable)] = []
        for (l, cell) in cells.enumerated() {
            let r = cell.sequence(input, initial: initial?[l])
            states.append((r.h, r.c))
            input = r.output
        }
        return (input, states)
    }
}
