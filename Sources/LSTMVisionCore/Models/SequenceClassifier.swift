import Foundation

/// Row-LSTM and patch-sequence LSTM: the image read as a sequence (rows, or k×k patches in raster
/// order) by a stacked, optionally bidirectional LSTM, then a Linear head on the final hidden state.
/// Parameter names (`lstm.*`, `fc.*`) and function match the PyTorch `RowLSTM` module of the docs.
public final class SequenceClassifier: Classifier {
    public let config: ModelConfig
    public let lstm: LSTM
    public let fc: Linear
    public var training = true { didSet { lstm.training = training } }
    public var precision: Precision {
        get { lstm.precision }
        set { lstm.precision = newValue }
    }

    public init(_ config: ModelConfig, generator: inout SeededGenerator) {
        self.config = config
        let features = config.kind == .row ? config.width * config.channels
                                           : config.patch * config.patch * config.channels
        lstm = LSTM(inputSize: features, hiddenSize: config.hidden, numLayers: config.layers,
                    bidirectional: config.bidirectional, dropout: config.dropout, batchFirst: true,
                    generator: &generator)
        fc = Linear(config.hidden * (config.bidirectional ? 2 : 1), config.classes, generator: &generator)
    }

    public var namedParameters: NamedParameters { prefixed("lstm", lstm) + prefixed("fc", fc) }

    public func callAsFunction(_ images: Variable) -> Variable {
        let c = config
        precondition(images.shape == [images.shape[0], c.height, c.width * c.channels],
                     "\(c.kind) LSTM: images must be [batch, \(c.height), \(c.width * c.channels)], "
                     + "got \(images.shape)")
        let seq = c.kind == .row
            ? images
            : patchSequence(images, height: c.height, width: c.width, channels: c.channels, patch: c.patch)
        let h = lstm.finalStates(seq).h
        return fc(finalFeatures(h, bidirectional: c.bidirectional))
    }
}
