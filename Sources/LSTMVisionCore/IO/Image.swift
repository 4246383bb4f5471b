/// A grey (1 channel) or RGB (3 channel) image with Float pixels stored interleaved, row by row (HWC).
/// Loaded images hold values in [0, 255]; transforms may move them to other ranges (for example [0, 1]).
public struct Image: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public let channels: Int
    /// Pixel values: the sample of channel `c` at column `x`, row `y` is at `(y * width + x) * channels + c`.
    public var pixels: [Float] {
        didSet {
            precondition(pixels.count == width * height * channels,
                         "Image: \(width)x\(height)x\(channels) needs \(width * height * channels) pixels,"
                         + " got \(pixels.count)")
        }
    }

    /// Wraps interleaved `pixels`; the count must equal `width * height * channels`.
    public init(width: Int, height: Int, channels: Int, pixels: [Float]) {
        precondition(width >= 0 && height >= 0, "Image: negative size \(width)x\(height)")
        precondition(channels == 1 || channels == 3, "Image: channels must be 1 or 3, got \(channels)")
        precondition(pixels.count == width * height * channels,
                     "Image: \(width)x\(height)x\(channels) needs \(width * height * channels) pixels,"
                     + " got \(pixels.count)")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    /// An image with every sample equal to `value`.
    public init(width: Int, height: Int, channels: Int, repeating value: Float = 0) {
        precondition(width >= 0 && height >= 0, "Image: negative size \(width)x\(height)")
        self.init(width: width, height: height, channels: channels,
                  pixels: [Float](repeating: value, count: width * height * channels))
    }

    /// Makes an image from a [channels, height, width] (CHW) tensor, the layout that models consume.
    public init(tensor: Tensor) {
        precondition(tensor.rank == 3 && (tensor.shape[0] == 1 || tensor.shape[0] == 3),
                     "Image(tensor:): expected shape [1 or 3, height, width], got \(tensor.shape)")
        let c = tensor.shape[0], h = tensor.shape[1], w = tensor.shape[2]
        var p = [Float](repeating: 0, count: c * h * w)
        let plane = h * w
        for ch in 0..<c {
            for i in 0..<plane { p[i * c + ch] = tensor.scalars[ch * plane + i] }
        }
        self.init(width: w, height: h, channels: c, pixels: p)
    }

    /// The pixels as a [channels, height, width] (CHW) tensor.
    public func tensor() -> Tensor {
        let plane = height * width
        var s = [Float](repeating: 0, count: pixels.count)
        for ch in 0..<channels {
            for i in 0..<plane { s[ch * plane + i] = pixels[i * channels + ch] }
        }
        return Tensor(shape: [channels, height, width], scalars: s)
    }

    /// The sample of channel `c` at column `x`, row `y`.
    public subscript(x x: Int, y y: Int, c c: Int) -> Float {
        get {
            precondition(x >= 0 && x < width && y >= 0 && y < height && c >= 0 && c < channels,
                         "Image: index (\(x), \(y), \(c)) out of range for \(width)x\(height)x\(channels)")
            return pixels[(y * width + x) * channels + c]
        }
        set {
            precondition(x >= 0 && x < width && y >= 0 && y < height && c >= 0 && c < channels,
                         "Image: index (\(x), \(y), \(c)) out of range for \(width)x\(height)x\(channels)")
            pixels[(y * width + x) * channels + c] = newValue
        }
    }
}
