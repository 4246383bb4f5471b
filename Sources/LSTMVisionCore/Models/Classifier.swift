import Foundation

/// An image classifier: images in, class logits out. Images arrive as [batch, height, width·channels]
/// (rows of interleaved channels, pixels scaled as the data pipeline chose).
public protocol Classifier: Module {
    var config: ModelConfig { get }
    /// Switches dropout on (training) or off (evaluation).
    var training: Bool { get set }
    /// The LSTMs' gate products in inference (`LSTM.precision`; the fully connected layers stay fp32).
    var precision: Precision { get set }
    /// Logits [batch, classes].
    func callAsFunction(_ images: Variable) -> Variable
}

extension Classifier {
    /// Class probabilities [batch, classes] without recording gradients.
    public func probabilities(_ images: Tensor) -> Tensor {
        Autograd.withoutGradients { self(Variable(images)).value.softmaxRows() }
    }
}

/// Builds a classifier of the configured kind with fresh weights.
public func makeClassifier(_ config: ModelConfig, seed: UInt64) throws -> any Classifier {
    try config.validate()
    var g = SeededGenerator(seed: seed)
    switch config.kind {
    case .row, .patch: return SequenceClassifier(config, generator: &g)
    case .renet: return ReNet(config, generator: &g)
    }
}

/// The features the final hidden state gives a classifier head: h[-1], or cat(h[-2], h[-1]) when bidirectional.
func finalFeatures(_ h: Variable, bidirectional: Bool) -> Variable {
    bidirectional ? concatLast([select(h, -2), select(h, -1)]) : select(h, -1)
}
