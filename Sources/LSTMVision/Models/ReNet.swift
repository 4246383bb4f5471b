import Foundation

/// ReNet (Visin et al. 2015): the image cut into non-overlapping p×p patches; per layer a bidirectional
/// LSTM sweeps down every column of the patch grid, then another sweeps along every row of the result;
/// layers stack (later layers on 1×1 patches); then fully connected layers classify the flattened grid.
public final class ReNet: Classifier {
    public let config: ModelConfig
    /// Per layer: the vertical (column) and horizontal (row) bidirectional LSTMs.
    public let sweeps: [(vertical: LSTM, horizontal: LSTM)]
    public let fc1: Linear?
    public let fc: Linear
    public var training = true
    private var dropoutGenerator: SeededGenerator

    public init(_ config: ModelConfig, generator: inout SeededGenerator) {
        self.config = config
        var sweeps: [(LSTM, LSTM)] = []
        var features = config.patch * config.patch * config.channels
        for _ in 0..<config.layers {
            let v = LSTM(inputSize: features, hiddenSize: config.hidden, bidirectional: true, batchFirst: false, generator: &generator)
            let h = LSTM(inputSize: 2 * config.hidden, hiddenSize: config.hidden, bidirectional: true, batchFirst: false, generator: &generator)
            sweeps.append((v, h))
            features = 2 * config.hidden
        }
        self.sweeps = sweeps.map { (vertical: $0.0, horizontal: $0.1) }
        let flat = (config.height / config.patch) * (config.width / config.patch) * 2 * config.hidden
        if config.fcHidden > 0 {
            fc1 = Linear(flat, config.fcHidden, generator: &generator)
            fc = Linear(config.fcHidden, config.classes, generator: &generator)
        } else {
            fc1 = nil
            fc = Linear(flat, config.classes, generator: &generator)
        }
        dropoutGenerator = SeededGenerator(seed: generator.next())
    }

    public var namedParameters: [(name: String, variable: Variable)] {
        var out: [(name: String, variable: Variable)] = []
        for (k, s) in sweeps.enumerated() { out += prefixed("renet.\(k).vertical", s.vertical) + prefixed("renet.\(k).horizontal", s.horizontal) }
        if let fc1 { out += prefixed("fc1", fc1) }
        return out + prefixed("fc", fc)
    }

    public func callAsFunction(_ images: Variable) -> Variable {
        let c = config
        let n = images.shape[0], gh = c.height / c.patch, gw = c.width / c.patch
        precondition(images.shape == [n, c.height, c.width * c.channels],
                     "ReNet: images must be [batch, \(c.height), \(c.width * c.channels)], got \(images.shape)")
        // Patch grid [N, I, J, F], stored as [N, I·J, F].
        var grid = patchSequence(images, height: c.height, width: c.width, channels: c.channels, patch: c.patch)
        for s in sweeps {
            let f = grid.shape[2]
            // Down the columns: time-major over I, batch N·J.
            var cols = reshape(swapLeadingAxes(reshape(grid, [n, gh, gw * f])), [gh, n * gw, f])
            cols = s.vertical(cols).output                                   // [I, N·J, 2h]
            let g2 = swapLeadingAxes(reshape(cols, [gh, n, gw * 2 * c.hidden]))  // [N, I, J·2h]
            // Along the rows: time-major over J, batch N·I.
            var rows = swapLeadingAxes(reshape(g2, [n * gh, gw, 2 * c.hidden]))   // [J, N·I, 2h]
            rows = s.horizontal(rows).output                                 // [J, N·I, 2h]
            grid = reshape(swapLeadingAxes(rows), [n, gh * gw, 2 * c.hidden])
        }
        var x = reshape(grid, [n, gh * gw * 2 * c.hidden])
        x = dropout(x, probability: c.dropout, training: training, generator: &dropoutGenerator)
        if let fc1 { x = relu(fc1(x)) }
        return fc(x)
    }
}
