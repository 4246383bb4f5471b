/// The frame predictor of issue 23, the same function with the same parameter names as its PyTorch
/// `FramePredictor`: frames [N, T, 1, rows, cols] in [0, 1] are cut into p×p patches (p² channels on a
/// rows/p × cols/p grid), run through stacked ConvLSTM cells (`cells.l.conv.weight`, `.bias`), and a 1×1
/// convolution of the last cell's h (`head.weight`, `head.bias`) through a sigmoid gives the next frame. The first
/// `context` frames are given; later steps read the model's own previous prediction. The forward returns the
/// T − context predicted frames [N, T − context, 1, rows, cols].
public final class FramePredictor: Module {
    public let convLSTM: ConvLSTM
    public let head: Conv2D
    public let patch: Int

    public init(hidden: [Int] = [64, 64], kernelSize: Int = 5, patch: Int = 4, generator: inout SeededGenerator) {
        precondition(patch > 0, "FramePredictor: the patch size must be positive, got \(patch)")
        self.patch = patch
        convLSTM = ConvLSTM(inChannels: patch * patch, hidden: hidden, kernelSize: kernelSize, generator: &generator)
        head = Conv2D(hidden.last!, patch * patch, kernelSize: 1, generator: &generator)
    }

    public var hidden: [Int] { convLSTM.cells.map(\.hidden) }
    public var kernelSize: Int { convLSTM.cells[0].kernelSize }
    public var namedParameters: NamedParameters { convLSTM.namedParameters + prefixed("head", head) }

    /// The predictions of frames `context` ..< T from `frames` [N, T, 1, rows, cols] (rows and cols multiples of
    /// the patch size, 1 ≤ context < T).
    public func callAsFunction(_ frames: Variable, context: Int = 10) -> Variable {
        precondition(frames.value.rank == 5 && frames.shape[2] == 1,
                     "FramePredictor: frames must be [batch, steps, 1, rows, cols], got \(frames.shape)")
        let (n, t, rows, cols, p) = (frames.shape[0], frames.shape[1], frames.shape[3], frames.shape[4], patch)
        precondition(rows % p == 0 && cols % p == 0,
                     "FramePredictor: frames of \(rows)×\(cols) do not divide into \(p)×\(p) patches")
        precondition(context >= 1 && context < t, "FramePredictor: context \(context) must be in 1..<\(t) frames")
        let (gh, gw) = (rows / p, cols / p)
        // [N, T, gh, p, gw, p] → time-major patches [T, N, p, p, gh, gw] = [T, N, p², gh, gw]
        let x = reshape(permute(reshape(frames, [n, t, gh, p, gw, p]), [1, 0, 3, 5, 2, 4]), [t, n, p * p, gh, gw])
        var (_, states) = convLSTM(sliceLeading(x, 0..<context))
        var prev = sigmoid(head(states.last!.h))
        var out = [prev]
        for _ in context..<(t - 1) {
            (_, states) = convLSTM(reshape(prev, [1, n, p * p, gh, gw]), initial: states)
            prev = sigmoid(head(states.last!.h))
            out.append(prev)
        }
        // [T', N, p, p, gh, gw] → [N, T', gh, p, gw, p] = [N, T', 1, rows, cols]
        let y = reshape(stack(out), [t - context, n, p, p, gh, gw])
        return reshape(permute(y, [1, 0, 4, 2, 5, 3]), [n, t - context, 1, rows, cols])
    }
}
