import Foundation

/// An end-to-end object detector in the design of Stewart, Andriluka & Ng, "End-to-end people detection
/// in crowded scenes" (CVPR 2016): a convolutional encoder turns the image into a grid of cell features,
/// and per cell an LSTM decoder emits up to K boxes one step at a time, each with a confidence and a class.
/// Trained with `HungarianLoss`, which matches each cell's ground truth to the steps, so that the cell
/// learns to emit its objects first and then "no object"; `PostProcessing` turns the outputs into detections.
///
/// Parameter names follow a PyTorch module with `encoder = nn.Sequential(Conv2d, ReLU, MaxPool2d, ...)`
/// (`encoder.0.weight`, `encoder.3.weight`, ...) or, for a ReNet encoder, `encoder = nn.ModuleList` of layers with
/// `vertical` and `horizontal` bidirectional `nn.LSTM`s (`encoder.0.vertical.weight_ih_l0`, ...),
/// `decoder.lstm = nn.LSTM(...)` and `head = nn.Linear(...)`; a `conv-renet` encoder's sweeps, after the
/// convolutions, are the `context` ModuleList (`context.0.vertical.weight_ih_l0`, ...); a second stage's are under
/// `refiner.` (see `BoxRefiner`).
public final class LSTMDetector: Module {
    public let config: DetectorConfig
    /// The encoder's 3×3 convolutions (padding 1), each followed by ReLU and, for the first log₂(stride), 2×2 max
    /// pooling.
    public let convolutions: [Conv2D]
    /// The encoder's ReNet sweep layers (empty for a convolutional encoder); the first reads stride×stride patches,
    /// or with `conv-renet` the convolutions' feature grid.
    public let sweeps: [ReNetLayer]
    /// The decoder: time-major, one sequence of K steps per cell, fed the cell's feature at every step.
    public let lstm: LSTM
    /// Per step: hidden state (and, with `skipFeatures` and `fineFeatures`, the cell's features) → box (4),
    /// confidence logits (2), class logits.
    public let head: Linear
    /// The second stage (`config.refiner`), re-reading each detection's neighbourhood; nil when there is none.
    public let refiner: BoxRefiner?
    /// The encoder sweeps' and the decoder's gate products in inference (`LSTM.precision`; the convolutions, the head
    /// and the refiner stay fp32).
    public var precision: Precision {
        get { lstm.precision }
        set { lstm.precision = newValue; for s in sweeps { s.precision = newValue } }
    }

    /// A detector with fresh weights: He-initialised convolutions, PyTorch's default for the LSTM and the head, and
    /// a confidence prior; `config` must be valid (`make` checks it and throws).
    public init(_ config: DetectorConfig, generator: inout SeededGenerator) {
        precondition((try? config.validate()) != nil, "LSTMDetector: invalid config \(config.json())")
        self.config = config
        var inChannels = config.channels
        var convolutions: [Conv2D] = []
        for width in config.convWidths {
            let conv = Conv2D(inChannels, width, kernelSize: 3, padding: 1, generator: &generator)
            // He initialisation (`kaiming_normal_`, zero bias) keeps the activations' scale through the ReLU stack;
            // PyTorch's default shrinks it layer by layer, leaving the cells' features nearly alike and learning
            // slow.
            conv.weight.value = .normal(conv.weight.shape, std: (2 / Float(inChannels * 9)).squareRoot(),
                                        generator: &generator)
            conv.bias?.value = Tensor(zeros: [width])
            convolutions.append(conv)
            inChannels = width
        }
        self.convolutions = convolutions
        var features = config.stride * config.stride * config.channels
            + (config.encoder.hasConvolutions ? inChannels : 0)
        sweeps = config.renetWidths.map { width in
            defer { features = 2 * width }
            return ReNetLayer(inputSize: features, hiddenSize: width, generator: &generator)
        }
        lstm = LSTM(inputSize: config.featureSize, hiddenSize: config.hidden, batchFirst: false, generator: &generator)
        head = Linear(config.headInputSize, config.outputsPerStep, generator: &generator)
        // The confidence starts at the prior P(object) = 1 %, as in RetinaNet, so that the many empty steps do
        // not swamp the first updates.
        head.bias?.value.scalars[4] = 0
        head.bias?.value.scalars[5] = -logf(99)
        // Made last, so that a detector's other weights do not depend on whether it has a refiner.
        refiner = config.refiner.map {
            BoxRefiner($0, classes: config.classes, channels: config.channels, generator: &generator)
        }
    }

    /// Checks `config` and builds a detector with fresh weights from `seed`.
    public static func make(_ config: DetectorConfig, seed: UInt64) throws -> LSTMDetector {
        try config.validate()
        var g = SeededGenerator(seed: seed)
        return LSTMDetector(config, generator: &g)
    }

    public var namedParameters: NamedParameters {
        var out: NamedParameters = []
        for (i, conv) in convolutions.enumerated() {
            // nn.Sequential index: (conv, ReLU, MaxPool2d) per pooling stage, then (conv, ReLU).
            let pooled = min(i, config.poolingStages)
            out += prefixed("encoder.\(3 * pooled + 2 * (i - pooled))", conv)
        }
        let sweepPrefix = config.encoder == .renet ? "encoder" : "context"
        for (k, sweep) in sweeps.enumerated() { out += prefixed("\(sweepPrefix).\(k)", sweep) }
        return out + prefixed("decoder.lstm", lstm) + prefixed("head", head)
            + (refiner.map { prefixed("refiner", $0) } ?? [])
    }

    /// Sets the decoder LSTM's forget-gate biases so that b_ih + b_hh = `value` for that gate (the encoder's sweeps
    /// keep PyTorch's initialisation).
    public func setForgetBias(_ value: Float) { lstm.setForgetBias(value) }

    /// Checks that `shape` is a batch of this detector's images: [N, height, width·channels].
    public func checkInput(_ shape: [Int]) throws {
        let c = config
        guard shape.count == 3, shape[0] > 0, shape[1] == c.height, shape[2] == c.width * c.channels else {
            let got = shape.count == 3 ? "\(shape[0]) images of \(shape[2] / max(c.channels, 1))×\(shape[1])"
                                       : "shape \(shape)"
            throw ModelError.invalidInput(
                "the detector needs \(c.width)×\(c.height) images with \(c.channels) channel(s), got \(got)")
        }
    }

    /// Raw outputs for images [N, height, width·channels] (rows of interleaved channels, pixels in [0, 1]):
    /// [K, N·cells, 6 + classes], cells of image n at n·cells + row·gridWidth + column. Per step the
    /// outputs are (cx, cy) of the box centre relative to the cell centre in cell units, (w, h) relative
    /// to the image size, the confidence logits (no object, object) and the class logits.
    public func callAsFunction(_ images: Variable) throws -> Variable {
        try checkInput(images.shape)
        let c = config, n = images.shape[0]
        let (cells, fine) = encode(images)                                   // [N·cells, F], [N·cells, 4C]?
        let steps = repeatLeading(cells, count: c.maxBoxes)                    // [K, N·cells, F]
        // Head input [K, N·cells, hidden (+ F) (+ 4C)]: the LSTM's states beside the cell's own features.
        var parts = [lstm(steps).output]
        if c.skipFeatures { parts.append(steps) }
        if let fine { parts.append(repeatLeading(fine, count: c.maxBoxes)) }
        // [K·N·cells, 6 + classes]
        let out = head(reshape(concatLast(parts), [c.maxBoxes * n * c.cells, c.headInputSize]))
        return reshape(out, [c.maxBoxes, n * c.cells, c.outputsPerStep])
    }

    /// The encoder: images [N, height, width·channels] → one feature row per cell [N·cells, F], and with
    /// `fineFeatures` the 2×2 block of the finer map under each cell.
    func encode(_ images: Variable) -> (cells: Variable, fine: Variable?) {
        let c = config, n = images.shape[0]
        var grid: Variable?                                                     // [N, cells, C] from the convolutions
        var fine: Variable?
        if c.encoder.hasConvolutions {
            // HWC rows → NCHW: [N, H·W, C] → [N, C, H·W] → [N, C, H, W].
            var x = reshape(images, [n, c.height * c.width, c.channels])
            if c.channels > 1 { x = swapTrailingAxes(x) }
            x = reshape(x, [n, c.channels, c.height, c.width])
            for (i, conv) in convolutions.enumerated() {
                x = relu(conv(x))
                if c.fineFeatures && i == c.poolingStages - 1 { fine = cellBlocks(x) }
                if i < c.poolingStages { x = maxPool2d(x, kernel: 2, stride: 2) }
            }
            grid = swapTrailingAxes(reshape(x, [n, x.shape[1], c.cells]))      // [N, C, gh, gw] → [N, cells, C]
        }
        if c.encoder.hasSweeps {
            // The sweeps read each cell's pixels (exact positions), beside its convolutional feature with conv-renet.
            let patches = patchSequence(images, height: c.height, width: c.width, channels: c.channels,
                                        patch: c.stride)                                // [N, cells, s·s·C]
            var context = grid.map { concatLast([patches, $0]) } ?? patches
            for sweep in sweeps {
                context = sweep(context, rows: c.gridHeight, columns: c.gridWidth)      // [N, cells, 2h]
            }
            grid = grid.map { concatLast([$0, context]) } ?? context
        }
        return (reshape(grid!, [n * c.cells, c.featureSize]), fine)
    }

    /// The 2×2 block of a [N, C, 2·gh, 2·gw] map under each cell, side by side: [N·cells, 4C] (space to depth).
    func cellBlocks(_ x: Variable) -> Variable {
        let n = x.shape[0], ch = x.shape[1], gh = config.gridHeight, gw = config.gridWidth
        // [(n, c, gy), (sy), (gx, sx)] → [(n, c, gy), (gx, sx), (sy)] → [n, c, (gy, gx, sx, sy)]
        // → [n, (gy, gx, sx, sy), c].
        let rows = swapTrailingAxes(reshape(x, [n * ch * gh, 2, 2 * gw]))
        let cellMajor = swapTrailingAxes(reshape(rows, [n, ch, 4 * gh * gw]))
        return reshape(cellMajor, [n * gh * gw, 4 * ch])
    }

    /// Detects objects in images [N, height, width·channels] (pixels in [0, 1]) without recording gradients,
    /// `batchSize` images at a time: per image, the post-processed detections, best first.
    public func detect(_ images: Tensor, postProcessing: PostProcessing = PostProcessing(),
                       batchSize: Int = 128) throws -> [[ScoredBox]] {
        try checkInput(images.shape)
        let n = images.shape[0], size = images.count / n
        var out: [[ScoredBox]] = []
        for start in stride(from: 0, to: n, by: max(batchSize, 1)) {
            let end = min(n, start + max(batchSize, 1))
            let batch = Tensor(shape: [end - start] + images.shape.dropFirst(),
                               scalars: Array(images.scalars[(start * size)..<(end * size)]))
            let output = try Autograd.withoutGradients { try self(Variable(batch)) }
            out += detections(output.value, images: batch, postProcessing: postProcessing)
        }
        return out
    }

    /// The detections of each image of a batch from the raw `output` for `images`: the decoder's proposals
    /// post-processed, then re-estimated by the refiner when there is one.
    public func detections(_ output: Tensor, images: Tensor, postProcessing: PostProcessing) -> [[ScoredBox]] {
        let found = postProcessing(output, config: config)
        guard let refiner else { return found }
        return refiner.refine(images, detections: found, postProcessing: postProcessing)
    }
}
