import Foundation

/// Row-LSTM and patch-sequence LSTM: the image read as a sequence (rows, or k×k patches in raster
/// order) by a stacked, optionally bidirectional LSTM, then a Linear head on the final hidden state.
/// Parameter names (`lstm.*`, `fc.*`) and function match the PyTorch `RowLSTM` module of the docs.
public final class SequenceClassifier: Classifier {
    public let config: ModelConfig
    public let lstm: LSTM
    public let fc: Linear
    public var training = true { didSet { lstm.training = training } }

    public init(_ config: ModelConfig, generator: inout SeededGenerator) {
        self.config = config
        let features = config.kind == .row ? config.width * config.channels : config.patch * config.patch * config.channels
        lstm = LSTM(inputSize: features, hiddenSize: config.hidden, numLayers: config.layers,
                    bidirectional: config.bidirectional, dropout: config.dropout, batchFirst: true, generator: &generator)
        fc = Linear(config.hidden * (config.bidirectional ? 2 : 1), config.classes, generator: &generator)
    }

    public var namedParameters: NamedParameters { prefixed("lstm", lstm) + prefixed("fc", fc) }

    public func callAsFunction(_ images: Variable) -> Variable {
        let c = config
        precondition(images.shape == [images.shape[0], c.height, c.width * c.channels],
                     "\(c.kind) LSTM: images must be [batch, \(c.height), \(c.width * c.channels)], got \(images.shape)")
        let seq = c.kind == .row ? images : patchSequence(images, height: c.height, width: c.width, channels: c.channels, patch: c.patch)
        let h = lstm.finalStates(seq).h
        return fc(finalFeatures(h, bidirectional: c.bidirectional))
    }
}

/// Rearranges [N, H, W·C] images into [N, (H/k)·(W/k), k·k·C] patch sequences in raster order
/// (features within a patch ordered row, column, channel); the backward is the inverse permutation.
public func patchSequence(_ x: Variable, height: Int, width: Int, channels: Int, patch k: Int) -> Variable {
    let n = x.shape[0], gh = height / k, gw = width / k, f = k * k * channels
    // index[j] = source offset (within one image) of destination element j.
    var index = [Int](repeating: 0, count: height * width * channels)
    var j = 0
    for pi in 0..<gh { for pj in 0..<gw { for dy in 0..<k { for dx in 0..<k { for ch in 0..<channels {
        index[j] = ((pi * k + dy) * width + pj * k + dx) * channels + ch
        j += 1
    } } } } }
    let per = index.count
    var out = [Float](repeating: 0, count: x.value.count)
    for b in 0..<n { for j in 0..<per { out[b * per + j] = x.value.scalars[b * per + index[j]] } }
    let shape = x.shape
    return Autograd.result(Tensor(shape: [n, gh * gw, f], scalars: out), inputs: [x]) { dy in
        var dx = [Float](repeating: 0, count: dy.count)
        for b in 0..<n { for j in 0..<per { dx[b * per + index[j]] = dy.scalars[b * per + j] } }
        return [Tensor(shape: shape, scalars: dx)]
    }
}
