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
        let x = patches(frames, context: context), (t, n) = (x.shape[0], x.shape[1])
        var (_, states) = convLSTM(sliceLeading(x, 0..<context))
        var prev = sigmoid(head(states.last!.h))
        var out = [prev]
        for _ in context..<(t - 1) {
            (_, states) = convLSTM(reshape(prev, [1] + prev.shape), initial: states)
            prev = sigmoid(head(states.last!.h))
            out.append(prev)
        }
        return frameSequence(stack(out), batch: n)
    }

    /// The training forward of scheduled sampling (Bengio et al. 2015; PredRNN and OpenSTL train ConvLSTMs so):
    /// the predictions of frames 1 ..< T [N, T − 1, 1, rows, cols]. Steps before `context` read the true frame; a
    /// later step s reads the true frame for the sequences n where `truth[s − context][n]`, else the model's
    /// previous prediction.
    public func nextFrames(_ frames: Variable, context: Int, truth: [[Bool]]) -> Variable {
        let x = patches(frames, context: context), (t, n) = (x.shape[0], x.shape[1])
        precondition(truth.count == t - 1 - context && truth.allSatisfy { $0.count == n },
                     "FramePredictor.nextFrames: needs \(t - 1 - context) × \(n) truth flags")
        let plane = Array(x.shape.dropFirst(2))
        // [steps, N, hidden, gh, gw] → predictions [steps, N, p², gh, gw]
        func predict(_ h: Variable) -> Variable {
            let y = sigmoid(head(reshape(h, [h.shape[0] * n] + h.shape.dropFirst(2))))
            return reshape(y, [h.shape[0], n] + plane)
        }
        if truth.allSatisfy({ $0.allSatisfy { $0 } }) {   // all teacher-forced: one pass over T − 1 steps
            return frameSequence(predict(convLSTM(sliceLeading(x, 0..<(t - 1))).output), batch: n)
        }
        var (h, states) = convLSTM(sliceLeading(x, 0..<context))
        let given = predict(h)
        var prev = select(given, -1), out = [given]
        for (k, flags) in truth.enumerated() {
            let mask = Tensor(shape: [n] + plane, scalars: flags.flatMap {
                [Float](repeating: $0 ? 1 : 0, count: plane.reduce(1, *))
            })
            let keep = Tensor(shape: mask.shape, scalars: mask.scalars.map { 1 - $0 })
            let input = select(x, context + k) * Variable(mask) + prev * Variable(keep)
            (h, states) = convLSTM(reshape(input, [1] + input.shape), initial: states)
            let y = predict(h)
            prev = select(y, 0)
            out.append(y)
        }
        return frameSequence(concatLeading(out), batch: n)
    }

    /// `frames` [N, T, 1, rows, cols] as time-major patches [T, N, p², rows/p, cols/p].
    func patches(_ frames: Variable, context: Int) -> Variable {
        precondition(frames.value.rank == 5 && frames.shape[2] == 1,
                     "FramePredictor: frames must be [batch, steps, 1, rows, cols], got \(frames.shape)")
        let (n, t, rows, cols, p) = (frames.shape[0], frames.shape[1], frames.shape[3], frames.shape[4], patch)
        precondition(rows % p == 0 && cols % p == 0,
                     "FramePredictor: frames of \(rows)×\(cols) do not divide into \(p)×\(p) patches")
        precondition(context >= 1 && context < t, "FramePredictor: context \(context) must be in 1..<\(t) frames")
        // [N, T, gh, p, gw, p] → [T, N, p, p, gh, gw]
        return reshape(permute(reshape(frames, [n, t, rows / p, p, cols / p, p]), [1, 0, 3, 5, 2, 4]),
                       [t, n, p * p, rows / p, cols / p])
    }

    /// Time-major patches [T', N, p², gh, gw] as frames [N, T', 1, gh·p, gw·p].
    func frameSequence(_ y: Variable, batch n: Int) -> Variable {
        let (t, p, gh, gw) = (y.shape[0], patch, y.shape[3], y.shape[4])
        // [T', N, p, p, gh, gw] → [N, T', gh, p, gw, p]
        return reshape(permute(reshape(y, [t, n, p, p, gh, gw]), [1, 0, 4, 2, 5, 3]), [n, t, 1, gh * p, gw * p])
    }
}
