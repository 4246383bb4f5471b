import Foundation

/// What an `LSTMDetector` is and how big: enough to rebuild it, stored as JSON in its checkpoints'
/// safetensors `__metadata__` under `DetectorFile.configKey`. The defaults are the synthetic multi-digit
/// set's: 64×64 grey canvases, an 8×8 grid of 8-pixel cells, up to 3 boxes per cell, the digits 0...9, and
/// the architecture tuned on it (five convolutions, so that each cell sees 54 pixels, more than the largest
/// digit; the head reading the cell's features and the finer map under it beside the LSTM's state).
public struct DetectorConfig: Codable, Sendable, Equatable {
    /// What turns the image into the grid of cell features.
    public enum Encoder: String, Codable, Sendable, CaseIterable {
        /// 3×3 convolutions with ReLU and 2×2 max pooling (`convWidths`).
        case conv
        /// ReNet sweeps (`renetWidths`): the first layer reads stride×stride patches, one per cell.
        case renet
        /// The convolutions, then ReNet sweeps over their grid (as ReSeg does): a cell's feature is its
        /// convolutional feature (local: what the digit is) beside the sweeps' output (the whole image: where the
        /// neighbours are).
        case convRenet = "conv-renet"

        /// Whether the encoder has the 3×3 convolutions, and whether it has ReNet sweeps.
        public var hasConvolutions: Bool { self != .renet }
        public var hasSweeps: Bool { self != .conv }
    }

    /// Input height and width in pixels (multiples of `stride`).
    public var height: Int
    public var width: Int
    /// 1 (grey) or 3 (RGB).
    public var channels: Int
    /// Cell size of the output grid in pixels: a power of two, 2^(pooling stages).
    public var stride: Int
    /// The encoder's kind.
    public var encoder: Encoder
    /// `conv`, `conv-renet`: output channels of the encoder's 3×3 convolutions; the first log₂(stride) are each
    /// followed by a 2×2 max pooling, the rest keep the grid size.
    public var convWidths: [Int]
    /// `renet`, `conv-renet`: the hidden size (per direction) of each sweep layer.
    public var renetWidths: [Int]
    /// The decoder LSTM's hidden size.
    public var hidden: Int
    /// K: boxes the decoder emits per cell (its time steps).
    public var maxBoxes: Int
    /// When true the head reads the cell's feature beside the LSTM's hidden state (a skip connection), so that
    /// what the encoder knows about the object (its class, its extent) need not pass through the LSTM.
    public var skipFeatures: Bool
    /// When true the head also reads, per cell, the 2×2 block of the finer feature map under it (the last one
    /// before the final pooling, stride/2 per pixel), laid side by side: sub-cell detail for the box edges.
    public var fineFeatures: Bool
    /// Class names, one per class index.
    public var classNames: [String]
    /// The COCO category id of each class index (results files use them).
    public var categoryIDs: [Int]
    /// The second stage, when there is one: a `BoxRefiner` re-reading each detection's neighbourhood.
    public var refiner: BoxRefiner.Config?

    /// `fineFeatures` needs the convolutions' finer map; a ReNet encoder has none, so its default is off there.
    public init(height: Int = 64, width: Int = 64, channels: Int = 1, stride: Int = 8, encoder: Encoder = .conv,
                convWidths: [Int] = [16, 32, 64, 64, 64], renetWidths: [Int] = [64, 64],
                hidden: Int = 128, maxBoxes: Int = 3, skipFeatures: Bool = true, fineFeatures: Bool? = nil,
                classNames: [String] = (0...9).map(String.init), categoryIDs: [Int]? = nil,
                refiner: BoxRefiner.Config? = nil) {
        self.height = height
        self.width = width
        self.channels = channels
        self.stride = stride
        self.encoder = encoder
        self.convWidths = encoder.hasConvolutions ? convWidths : []
        self.renetWidths = encoder.hasSweeps ? renetWidths : []
        self.hidden = hidden
        self.maxBoxes = maxBoxes
        self.skipFeatures = skipFeatures
        self.fineFeatures = fineFeatures ?? encoder.hasConvolutions
        self.classNames = classNames
        self.categoryIDs = categoryIDs ?? Array(0..<classNames.count)
        self.refiner = refiner
    }

    private enum CodingKeys: String, CodingKey {
        case height, width, channels, stride, encoder, convWidths, renetWidths, hidden, maxBoxes, skipFeatures,
             fineFeatures, classNames, categoryIDs, refiner
    }

    /// Decodes a config; those saved before the ReNet encoder existed lack `encoder` and `renetWidths` and are
    /// convolutional, those without `refiner` have no second stage.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        height = try c.decode(Int.self, forKey: .height)
        width = try c.decode(Int.self, forKey: .width)
        channels = try c.decode(Int.self, forKey: .channels)
        stride = try c.decode(Int.self, forKey: .stride)
        encoder = try c.decodeIfPresent(Encoder.self, forKey: .encoder) ?? .conv
        convWidths = try c.decode([Int].self, forKey: .convWidths)
        renetWidths = try c.decodeIfPresent([Int].self, forKey: .renetWidths) ?? []
        hidden = try c.decode(Int.self, forKey: .hidden)
        maxBoxes = try c.decode(Int.self, forKey: .maxBoxes)
        skipFeatures = try c.decode(Bool.self, forKey: .skipFeatures)
        fineFeatures = try c.decode(Bool.self, forKey: .fineFeatures)
        classNames = try c.decode([String].self, forKey: .classNames)
        categoryIDs = try c.decode([Int].self, forKey: .categoryIDs)
        refiner = try c.decodeIfPresent(BoxRefiner.Config.self, forKey: .refiner)
    }

    /// The number of classes.
    public var classes: Int { classNames.count }
    /// Pooling stages: log₂(stride).
    public var poolingStages: Int { stride.trailingZeroBitCount }
    /// Grid rows and columns.
    public var gridHeight: Int { height / stride }
    public var gridWidth: Int { width / stride }
    /// Cells per image.
    public var cells: Int { gridHeight * gridWidth }
    /// Raw outputs per decoder step: box (4), confidence logits (2), class logits.
    public var outputsPerStep: Int { 6 + classes }
    /// Feature size of one cell: the last convolution's width, both directions of the last ReNet layer, or both side
    /// by side.
    public var featureSize: Int { (convWidths.last ?? 0) + 2 * (renetWidths.last ?? 0) }
    /// The encoder in words, for messages: "conv [16, 32]", "ReNet [64, 64]" or both joined by "+".
    public var encoderDescription: String {
        ((encoder.hasConvolutions ? ["conv \(convWidths)"] : []) + (encoder.hasSweeps ? ["ReNet \(renetWidths)"] : []))
            .joined(separator: " + ")
    }
    /// Per cell, the size of the `fineFeatures` block: 4 × the channels of the map before the last pooling.
    public var fineFeatureSize: Int { fineFeatures ? 4 * convWidths[poolingStages - 1] : 0 }
    /// The head's input size: the hidden state, plus the cell's feature with `skipFeatures`, plus the fine block.
    public var headInputSize: Int { hidden + (skipFeatures ? featureSize : 0) + fineFeatureSize }

    /// Checks the sizes fit together; the message says which does not.
    public func validate() throws {
        func bad(_ m: String) -> ModelError { .invalidConfig(m) }
        guard channels == 1 || channels == 3 else { throw bad("detector channels must be 1 or 3, got \(channels)") }
        guard stride >= 2, stride <= 64, stride.nonzeroBitCount == 1 else {
            throw bad("grid stride \(stride) must be a power of two in 2...64")
        }
        guard height > 0, width > 0, height <= 4096, width <= 4096, height % stride == 0, width % stride == 0 else {
            throw bad("image size \(height)×\(width) must be a positive multiple of the stride \(stride), at most 4096")
        }
        if encoder.hasConvolutions {
            guard convWidths.count >= poolingStages, convWidths.count <= 16,
                  convWidths.allSatisfy({ (1...4096).contains($0) }) else {
                throw bad("conv widths \(convWidths) need at least \(poolingStages) entries (one per pooling stage), "
                          + "each in 1...4096")
            }
        } else {
            guard convWidths.isEmpty, !fineFeatures else {
                throw bad("a ReNet encoder takes no conv widths and has no fine features")
            }
        }
        if encoder.hasSweeps {
            guard (1...16).contains(renetWidths.count), renetWidths.allSatisfy({ (1...4096).contains($0) }) else {
                throw bad("ReNet widths \(renetWidths) need 1 to 16 entries, each in 1...4096")
            }
        } else {
            guard renetWidths.isEmpty else {
                throw bad("a convolutional encoder takes no ReNet widths, got \(renetWidths)")
            }
        }
        guard hidden > 0, hidden <= 8192 else { throw bad("hidden size \(hidden) must be in 1...8192") }
        guard maxBoxes > 0, maxBoxes <= 64 else { throw bad("boxes per cell \(maxBoxes) must be in 1...64") }
        guard classes > 0, classes <= 100_000 else { throw bad("classes \(classes) must be in 1...100000") }
        guard categoryIDs.count == classes, Set(categoryIDs).count == classes else {
            throw bad("\(categoryIDs.count) category ids for \(classes) classes (they must be distinct)")
        }
        try refiner?.validate()
    }

    /// The JSON form stored in checkpoints.
    public func json() -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return String(decoding: (try? enc.encode(self)) ?? Data(), as: UTF8.self)
    }
}
