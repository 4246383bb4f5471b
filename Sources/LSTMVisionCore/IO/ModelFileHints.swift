/// What a model file without LSTMVision's metadata (a PyTorch `state_dict`) leaves open: its tensors' names and
/// shapes give the kind and the layer sizes, not always the image size, and never a detector's boxes per cell or its
/// refiner's context. Files with metadata ignore these.
public struct ModelFileHints: Sendable, Equatable {
    /// The image size of the data the model is for, when known (both or neither of width and height): tells a
    /// row-LSTM from a patch-LSTM and sizes a non-square ReNet; a detector's input size (else 64×64).
    public var width: Int?
    public var height: Int?
    /// The data's channels, when known (else 1 or 3, whichever the shapes allow; 1 first).
    public var channels: Int?
    /// K, the boxes a detector emits per cell (no shape holds it).
    public var boxesPerCell: Int
    /// The detector's grid stride, when its convolutions leave it open (every convolution followed by pooling in
    /// PyTorch's `nn.Sequential` or all but the last: a trailing `MaxPool2d` has no tensors); else 8 when that is one
    /// of the two, or the larger.
    public var stride: Int?
    /// The detector's refiner's context: its crop's side over the box's longer side (no shape holds it).
    public var refinerContext: Double

    public init(width: Int? = nil, height: Int? = nil, channels: Int? = nil, boxesPerCell: Int = 3,
                stride: Int? = nil, refinerContext: Double = 1.5) {
        self.width = width
        self.height = height
        self.channels = channels
        self.boxesPerCell = boxesPerCell
        self.stride = stride
        self.refinerContext = refinerContext
    }

    /// Nothing known beyond the file.
    public static let none = ModelFileHints()

    /// Refuses sizes no image has (an error naming `source`).
    func check(source: String) throws {
        guard width.map({ (1...4096).contains($0) }) ?? true, height.map({ (1...4096).contains($0) }) ?? true,
              channels.map({ (1...4).contains($0) }) ?? true, (width == nil) == (height == nil) else {
            throw CheckpointError.invalid("\(source): the image size \(imageDescription) given for a file without"
                                          + " metadata is not one (width and height in 1...4096, channels in 1...4)")
        }
    }

    /// The image size as "W×H×C" for messages ("?" where unknown).
    var imageDescription: String {
        "\(width.map(String.init) ?? "?")×\(height.map(String.init) ?? "?")×\(channels.map(String.init) ?? "?")"
    }
}

/// The rows and columns of a file's tensor `name` when it is a matrix with both positive, else nil.
func matrixShape(_ t: [String: Tensor], _ name: String) -> (rows: Int, columns: Int)? {
    guard let m = t[name], m.rank == 2, m.shape[0] > 0, m.shape[1] > 0 else { return nil }
    return (m.shape[0], m.shape[1])
}

/// The exact integer square root of `n`, or nil when `n` is not a perfect square.
func exactSquareRoot(_ n: Int) -> Int? {
    guard n >= 0, n < 1 << 50 else { return nil }
    let r = Int(Double(n).squareRoot().rounded())
    return r * r == n ? r : nil
}
