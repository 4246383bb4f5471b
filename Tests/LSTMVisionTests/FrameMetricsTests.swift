import Foundation
import Testing
@testable import LSTMVision
@testable import LSTMVisionCore

/// Per-frame MSE, MAE and SSIM against NumPy and scikit-image (tools/make_frame_metrics_reference.py), to 1e-4.
@Suite struct FrameMetricsTests {
    static func tensor(_ name: String) throws -> Tensor {
        let url = try #require(Bundle.module.url(forResource: name, withExtension: "npy",
                                                 subdirectory: "Fixtures/frame_metrics"))
        let a = try NPY.read(url.path)
        return Tensor(shape: a.shape, scalars: try #require(a.float32))
    }

    @Test(arguments: ["batch", "small"])
    func metricsMatchScikitImage(_ name: String) throws {
        let url = try #require(Bundle.module.url(forResource: "expected", withExtension: "json",
                                                 subdirectory: "Fixtures/frame_metrics"))
        let all = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        let expected = try #require(all[name] as? [String: [Double]])
        let prediction = try Self.tensor("\(name)_prediction"), truth = try Self.tensor("\(name)_truth")
        var m = FrameMetrics(frames: prediction.shape[1])
        // In two halves where there are two sequences: the averages must not depend on the batching.
        if prediction.shape[0] == 2 {
            let half = prediction.count / 2, shape = [1] + prediction.shape.dropFirst()
            for k in 0..<2 {
                let part = (k * half)..<((k + 1) * half)
                m.add(prediction: Tensor(shape: shape, scalars: Array(prediction.scalars[part])),
                      truth: Tensor(shape: shape, scalars: Array(truth.scalars[part])))
            }
        } else {
            m.add(prediction: prediction, truth: truth)
        }
        for (key, actual) in [("mse", m.perFrameMSE), ("mae", m.perFrameMAE), ("ssim", m.perFrameSSIM)] {
            let e = try #require(expected[key])
            let d = zip(actual, e).map { abs($0 - $1) }.max()!
            print("\(name) \(key): \(actual) vs \(e), max |Δ| = \(d)")
            #expect(actual.count == e.count && d <= 1e-4, "\(name) \(key)")
        }
        #expect(abs(m.ssim - expected["ssim"]!.reduce(0, +) / Double(expected["ssim"]!.count)) <= 1e-4)
    }

    @Test func identicalFramesScoreZeroErrorAndSSIMOne() {
        let x = randomTensor([1, 2, 1, 10, 8], seed: 3)
        var m = FrameMetrics(frames: 2)
        m.add(prediction: x, truth: x)
        #expect(m.mse == 0 && m.mae == 0 && abs(m.ssim - 1) < 1e-12)
    }
}
