import Foundation
import Testing
@testable import LSTMVision
@testable import LSTMVisionCore

/// Loads a committed PyTorch reference fixture by file name.
func fixture(_ name: String) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
    let url = try #require(Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures"),
                           "missing fixture \(name)")
    return try SafeTensors.read(url.path)
}

/// Asserts two tensors have the same shape and agree within `tolerance`, printing the largest difference.
func expectClose(_ actual: Tensor, _ expected: Tensor?, _ tolerance: Float, _ what: String,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    guard let expected else {
        Issue.record("\(what): reference tensor missing", sourceLocation: sourceLocation)
        return
    }
    #expect(actual.shape == expected.shape, "\(what): shape \(actual.shape) vs \(expected.shape)",
            sourceLocation: sourceLocation)
    guard actual.shape == expected.shape else { return }
    let d = actual.maxAbsDifference(expected)
    print("  \(what): max |Δ| = \(d)")
    #expect(d <= tolerance, "\(what): max |Δ| \(d) > \(tolerance)", sourceLocation: sourceLocation)
}

/// Checks the analytic gradients of `loss()` with respect to `variables` against central differences.
/// Perturbs up to `samples` elements of each variable; returns the largest relative error.
@discardableResult
func checkGradients(_ variables: [Variable], samples: Int = 12, epsilon: Float = 1e-2, tolerance: Float = 2e-2,
                    sourceLocation: SourceLocation = #_sourceLocation, _ loss: () -> Variable) -> Float {
    for v in variables { v.zeroGrad() }
    loss().backward()
    var worst: Float = 0
    var gen = SeededGenerator(seed: 99)
    for (k, v) in variables.enumerated() {
        guard let g = v.grad else {
            Issue.record("variable \(k) got no gradient", sourceLocation: sourceLocation); continue
        }
        let picks = v.value.count <= samples ? Array(0..<v.value.count)
            : (0..<samples).map { _ in Int(gen.next() % UInt64(v.value.count)) }
        for i in picks {
            let orig = v.value.scalars[i]
            v.value.scalars[i] = orig + epsilon
            let up = Autograd.withoutGradients { loss().value.scalar }
            v.value.scalars[i] = orig - epsilon
            let down = Autograd.withoutGradients { loss().value.scalar }
            v.value.scalars[i] = orig
            let numeric = (up - down) / (2 * epsilon)
            let err = abs(numeric - g.scalars[i]) / max(1, abs(numeric), abs(g.scalars[i]))
            worst = max(worst, err)
            #expect(err <= tolerance, "variable \(k) element \(i): analytic \(g.scalars[i]) vs numeric \(numeric)",
                    sourceLocation: sourceLocation)
        }
    }
    return worst
}

/// A random tensor from a fixed seed.
func randomTensor(_ shape: [Int], seed: UInt64, scale: Float = 1) -> Tensor {
    var g = SeededGenerator(seed: seed)
    return Tensor.normal(shape, std: scale, generator: &g)
}

/// A path under the system temporary directory for one test, `lstmvision-NAME-PID`, emptied of an earlier run's files.
func freshTemporaryPath(_ name: String) -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("lstmvision-\(name)-\(getpid())").path
    try? FileManager.default.removeItem(atPath: path)
    return path
}

/// Two epochs of batches of 16 with 2 warm-up steps: the short runs of the resume and stop tests.
func twoEpochOptions() -> TrainingOptions {
    var o = TrainingOptions()
    o.epochs = 2
    o.batchSize = 16
    o.warmupSteps = 2
    return o
}

/// Runs `body` and returns the ImageError it throws (recording an issue when it throws nothing or something else).
func imageError(_ body: () throws -> Image, sourceLocation: SourceLocation = #_sourceLocation) -> ImageError? {
    do {
        _ = try body()
        Issue.record("expected an ImageError, got an image", sourceLocation: sourceLocation)
    } catch let error as ImageError {
        return error
    } catch {
        Issue.record("expected an ImageError, got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}
