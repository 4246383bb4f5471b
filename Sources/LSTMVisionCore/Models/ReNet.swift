import Foundation

/// ReNet (Visin et al. 2015): the image cut into non-overlapping p×p patches; per layer a bidirectional
/// LSTM sweeps down every column of the patch grid, then another sweeps along every row of the result;
/// layers stack (later layers on 1×1 patches); then fully connected layers classify the flattened grid.
public final class ReNet: Classifier {
    public let config: ModelConfig
    /// The sweep layers: per layer, the vertical (column) and horizontal (row) bidirectional LSTMs.
    public let sweeps: [ReNetLayer]
    public let fc1: Linear?
    public let fc: Linear
    public var training = true
    public var precision: Precision {
        get { sweeps[0].precision }
        set { for s in sweeps { s.precision = newValue } }
    }
    private var dropoutGenerator: SeededGenerator

    public init(_ config: ModelConfig, generator: inout SeededGenerator) {
        self.config = config
        var sweeps: [ReNetLayer] = []
        var features = config.patch * config.patch * config.channels
        for _ in 0..<config.layers {
            sweeps.append(ReNetLayer(inputSize: features, hiddenSize: config.hidden, generator: &generator))
            features = 2 * config.hidden
        }
        self.sweeps = sweeps
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

    public var namedParameters: NamedParameters {
        var out: NamedParameters = []
        for (k, s) in sweeps.enumerated() { out += prefixed("renet.\(k)", s) }
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
        for s in sweeps { grid = s(grid, rows: gh, columns: gw) }
        var x = reshape(grid, [n, gh * gw * 2 * c.hidden])
        x = dropout(x, probability: c.dropout, training: training, generator: &dropoutGenerator)
        if let fc1 { x = relu(fc1(x)) }
        return fc(x)
    }
}
