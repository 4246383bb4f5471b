import Foundation

/// The frame-prediction metrics of the Moving MNIST literature, per predicted frame index and averaged over frames
/// and sequences: MSE and MAE summed over a frame's pixels (values in [0, 1]), and SSIM as scikit-image's
/// `structural_similarity(a, b, data_range=1.0)` computes it by default: a 7×7 uniform window, sample covariance
/// (49/48), K1 = 0.01, K2 = 0.03, the mean over the windows that lie wholly inside the frame, in Float64.
public struct FrameMetrics: Sendable, Equatable, Codable {
    /// Per predicted frame index, averaged over the sequences.
    public var perFrameMSE: [Double], perFrameMAE: [Double], perFrameSSIM: [Double]
    /// The sequences seen.
    public var sequences: Int

    public var mse: Double { mean(perFrameMSE) }
    public var mae: Double { mean(perFrameMAE) }
    public var ssim: Double { mean(perFrameSSIM) }
    private func mean(_ v: [Double]) -> Double { v.isEmpty ? 0 : v.reduce(0, +) / Double(v.count) }

    /// Sums so far, divided by `sequences` on the way out; `frames` predicted frames per sequence.
    private var sumMSE: [Double], sumMAE: [Double], sumSSIM: [Double]

    public init(frames: Int) {
        (perFrameMSE, perFrameMAE, perFrameSSIM) = ([], [], [])
        (sumMSE, sumMAE, sumSSIM) = ([Double](repeating: 0, count: frames), [Double](repeating: 0, count: frames),
                                     [Double](repeating: 0, count: frames))
        sequences = 0
    }

    /// Adds predictions and their true frames, both [N, frames, 1, rows, cols].
    public mutating func add(prediction: Tensor, truth: Tensor) {
        precondition(prediction.shape == truth.shape && prediction.rank == 5 && prediction.shape[1] == sumMSE.count,
                     "FrameMetrics: prediction \(prediction.shape) and truth \(truth.shape) must be [N, "
                     + "\(sumMSE.count), 1, rows, cols]")
        let (N, T, R, C) = (prediction.shape[0], prediction.shape[1], prediction.shape[3], prediction.shape[4])
        let plane = R * C
        for n in 0..<N {
            for t in 0..<T {
                let o = (n * T + t) * plane
                let a = prediction.scalars[o..<(o + plane)].map(Double.init)
                let b = truth.scalars[o..<(o + plane)].map(Double.init)
                var se = 0.0, ae = 0.0
                for k in 0..<plane { let d = a[k] - b[k]; se += d * d; ae += abs(d) }
                sumMSE[t] += se
                sumMAE[t] += ae
                sumSSIM[t] += Self.ssim(a, b, rows: R, cols: C)
            }
        }
        sequences += N
        let s = Double(sequences)
        perFrameMSE = sumMSE.map { $0 / s }
        perFrameMAE = sumMAE.map { $0 / s }
        perFrameSSIM = sumSSIM.map { $0 / s }
    }

    /// scikit-image's default SSIM of two rows × cols images (`data_range` 1): the mean of the SSIM map over the
    /// positions whose 7×7 window lies inside the image (skimage crops (7 − 1) / 2 pixels from each side).
    public static func ssim(_ a: [Double], _ b: [Double], rows: Int, cols: Int, window w: Int = 7,
                            dataRange: Double = 1) -> Double {
        precondition(rows >= w && cols >= w, "ssim: a \(rows)×\(cols) image is smaller than the \(w)×\(w) window")
        let np = Double(w * w), covNorm = np / (np - 1)
        let c1 = (0.01 * dataRange) * (0.01 * dataRange), c2 = (0.03 * dataRange) * (0.03 * dataRange)
        // Summed-area tables of a, b, a², b², ab: each window's sums in four lookups.
        let W = cols + 1
        var tables = [[Double]](repeating: [Double](repeating: 0, count: (rows + 1) * W), count: 5)
        for y in 0..<rows {
            for x in 0..<cols {
                let (p, q) = (a[y * cols + x], b[y * cols + x]), values = [p, q, p * p, q * q, p * q]
                for k in 0..<5 {
                    tables[k][(y + 1) * W + x + 1] = values[k] + tables[k][y * W + x + 1] + tables[k][(y + 1) * W + x]
                        - tables[k][y * W + x]
                }
            }
        }
        var total = 0.0
        for y in 0...(rows - w) {
            for x in 0...(cols - w) {
                func mean(_ k: Int) -> Double {
                    let t = tables[k]
                    return (t[(y + w) * W + x + w] - t[y * W + x + w] - t[(y + w) * W + x] + t[y * W + x]) / np
                }
                let (ux, uy, uxx, uyy, uxy) = (mean(0), mean(1), mean(2), mean(3), mean(4))
                let vx = covNorm * (uxx - ux * ux), vy = covNorm * (uyy - uy * uy), vxy = covNorm * (uxy - ux * uy)
                total += (2 * ux * uy + c1) * (2 * vxy + c2) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
            }
        }
        return total / Double((rows - w + 1) * (cols - w + 1))
    }
}
