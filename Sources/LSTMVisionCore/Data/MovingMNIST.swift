import Foundation

/// Moving MNIST as Srivastava et al. (2015) generate it (their `moving_mnist.py`): each sequence draws two 28×28
/// digits, each at a uniform random position of the 36×36 range of top-left corners in a 64×64 frame, moving in a
/// uniform random direction by 0.1 of that range (3.6 px) per frame and bouncing off the edges (the position is
/// clamped to the range and that velocity component flips); a frame is the pixelwise maximum of the two digits,
/// positions truncated to whole pixels, the first frame after the first move. Sequences are laid out as the public
/// `mnist_test_seq.npy`: uint8 [frames, sequences, 64, 64]. Deterministic by seed.
public enum MovingMNIST {
    public static let frameSize = 64, digitSize = 28, step = 0.1

    /// `sequences` sequences of `frames` frames from the images of `digits` (28×28, one channel, pixels in [0, 1]).
    public static func generate(from digits: ImageDataset, sequences: Int, frames: Int = 20, digitsPerFrame: Int = 2,
                                seed: UInt64) -> NPY.Array {
        precondition(digits.height == digitSize && digits.width == digitSize && digits.channels == 1
                     && digits.count > 0,
                     "MovingMNIST: needs 28×28 grey digits, got \(digits.height)×\(digits.width)×\(digits.channels)")
        precondition(sequences >= 0 && frames > 0 && digitsPerFrame > 0, "MovingMNIST: sizes must be positive")
        let F = frameSize, D = digitSize, range = Double(F - D), plane = F * F
        var out = [UInt8](repeating: 0, count: frames * sequences * plane)
        var g = SeededGenerator(seed: seed)
        func uniform() -> Double { Double(g.next() >> 11) * 0x1p-53 }
        for s in 0..<sequences {
            for _ in 0..<digitsPerFrame {
                let image = Int(g.next() % UInt64(digits.count))
                let pixels = digits.pixels[(image * D * D)..<((image + 1) * D * D)]
                    .map { UInt8((max(0, min(1, $0)) * 255).rounded()) }
                var (y, x) = (uniform(), uniform())
                let theta = uniform() * 2 * Double.pi
                var (vy, vx) = (Foundation.sin(theta), Foundation.cos(theta))
                for t in 0..<frames {
                    y += vy * step; x += vx * step
                    if x <= 0 { x = 0; vx = -vx }
                    if x >= 1 { x = 1; vx = -vx }
                    if y <= 0 { y = 0; vy = -vy }
                    if y >= 1 { y = 1; vy = -vy }
                    let top = Int(range * y), left = Int(range * x), base = (t * sequences + s) * plane
                    for r in 0..<D {
                        for c in 0..<D {
                            let o = base + (top + r) * F + left + c
                            out[o] = max(out[o], pixels[pixels.startIndex + r * D + c])
                        }
                    }
                }
            }
        }
        return NPY.Array(shape: [frames, sequences, F, F], uint8: out)
    }

    /// Sequence frames in `mnist_test_seq.npy`'s layout read from `path` (uint8 [frames, sequences, rows, cols]),
    /// checked: one error naming the file for another dtype or rank.
    public static func read(_ path: String, limits: InputLimits = .default) throws -> NPY.Array {
        let a = try NPY.read(path, limits: limits)
        guard a.dtype == .uint8 else {
            throw DataError.invalid("\(path): frame sequences must be uint8, found \(a.dtype.rawValue)")
        }
        guard a.shape.count == 4, a.shape.allSatisfy({ $0 > 0 }) else {
            throw DataError.invalid("\(path): frame sequences must be [frames, sequences, rows, cols] (as"
                                    + " mnist_test_seq.npy), found shape \(a.shape)")
        }
        return a
    }

    /// Sequences `range` of `array` (uint8 [frames, sequences, rows, cols]) as a batch-first tensor
    /// [range.count, frames, 1, rows, cols] in [0, 1], a frame predictor's input.
    public static func batch(_ array: NPY.Array, _ range: Range<Int>) -> Tensor {
        let (T, S, R, C) = (array.shape[0], array.shape[1], array.shape[2], array.shape[3]), plane = R * C
        precondition(range.lowerBound >= 0 && range.upperBound <= S, "MovingMNIST.batch: \(range) of \(S) sequences")
        let bytes = array.uint8!
        var out = [Float](repeating: 0, count: range.count * T * plane)
        for (n, s) in range.enumerated() {
            for t in 0..<T {
                let src = (t * S + s) * plane, dst = (n * T + t) * plane
                for k in 0..<plane { out[dst + k] = Float(bytes[src + k]) / 255 }
            }
        }
        return Tensor(shape: [range.count, T, 1, R, C], scalars: out)
    }

    /// Frames `context` ..< T of `frames` [N, T, 1, rows, cols]: what a predictor given the first `context` predicts.
    public static func future(_ frames: Tensor, context: Int) -> Tensor {
        precondition(frames.rank == 5 && (0..<frames.shape[1]).contains(context),
                     "MovingMNIST.future: context \(context) of frames \(frames.shape)")
        let (N, T) = (frames.shape[0], frames.shape[1]), plane = frames.shape[3] * frames.shape[4]
        var out: [Float] = []
        out.reserveCapacity(N * (T - context) * plane)
        for n in 0..<N { out += frames.scalars[((n * T + context) * plane)..<((n + 1) * T * plane)] }
        return Tensor(shape: [N, T - context] + frames.shape.suffix(3), scalars: out)
    }
}
