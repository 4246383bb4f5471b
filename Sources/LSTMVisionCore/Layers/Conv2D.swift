/// A 2-D convolution layer on NCHW input, as `torch.nn.Conv2d` with a square kernel and zero padding
/// (names `weight` [out, in, k, k], `bias` [out]). Initialised as PyTorch does: kaiming_uniform with
/// a = √5 for the weight and the bias both come to uniform in ±1/√fan_in, fan_in = in·k·k.
public final class Conv2D: Module {
    public let weight: Variable
    public let bias: Variable?
    public let stride: Int
    public let padding: Int

    public init(_ inChannels: Int, _ outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                bias: Bool = true, generator: inout SeededGenerator) {
        precondition(inChannels > 0 && outChannels > 0 && kernelSize > 0,
                     "Conv2D: channels and kernel size must be positive, got \(inChannels) → \(outChannels), "
                     + "kernel \(kernelSize)")
        precondition(stride > 0 && padding >= 0,
                     "Conv2D: stride must be positive and padding non-negative, got \(stride), \(padding)")
        let bound = 1 / Float(inChannels * kernelSize * kernelSize).squareRoot()
        weight = Variable(.uniform([outChannels, inChannels, kernelSize, kernelSize], low: -bound, high: bound,
                                   generator: &generator),
                          requiresGrad: true)
        self.bias = bias
            ? Variable(.uniform([outChannels], low: -bound, high: bound, generator: &generator), requiresGrad: true)
            : nil
        self.stride = stride
        self.padding = padding
    }

    public var inChannels: Int { weight.shape[1] }
    public var outChannels: Int { weight.shape[0] }
    public var kernelSize: Int { weight.shape[2] }

    public var namedParameters: NamedParameters {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }

    /// Applies the layer to [batch, in, height, width] → [batch, out, height', width'].
    public func callAsFunction(_ x: Variable) -> Variable {
        conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding)
    }
}
