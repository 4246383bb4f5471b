import Foundation

/// A fully connected layer y = x·Wᵀ + b, as `torch.nn.Linear` (names `weight` [out, in], `bias` [out];
/// both initialised uniform in ±1/√in, PyTorch's default).
public final class Linear: Module {
    public let weight: Variable
    public let bias: Variable?

    public init(_ inputSize: Int, _ outputSize: Int, bias: Bool = true, generator: inout SeededGenerator) {
        precondition(inputSize > 0 && outputSize > 0,
                     "Linear: sizes must be positive, got \(inputSize) → \(outputSize)")
        let bound = 1 / Float(inputSize).squareRoot()
        weight = Variable(.uniform([outputSize, inputSize], low: -bound, high: bound, generator: &generator),
                          requiresGrad: true)
        self.bias = bias
            ? Variable(.uniform([outputSize], low: -bound, high: bound, generator: &generator), requiresGrad: true)
            : nil
    }

    public var inputSize: Int { weight.shape[1] }
    public var outputSize: Int { weight.shape[0] }

    public var namedParameters: NamedParameters {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }

    /// Applies the layer to [batch, in].
    public func callAsFunction(_ x: Variable) -> Variable { linear(x, weight: weight, bias: bias) }
}
