import Foundation

/// Throughput of the reference row-LSTM configurations, measured as PyTorch users measure theirs:
/// warm-up, then the median of several timed windows; FLOP/s counts the LSTM gate GEMMs.
public enum Benchmark {
    /// One measurement, printed as a JSON line.
    public struct Measurement: Codable, Sendable {
        public var config: String
        public var mode: String
        public var batch: Int
        public var images_per_second: Double
        public var gflops: Double
        public var peak_fraction: Double
        public var sgemm_peak_gflops: Double
        public var threads: Int
        public var peak_rss_mb: Double?
    }

    /// The configurations of the performance issue: "1x128" and "2x128-bi" row-LSTMs on 28×28 images.
    public static func config(named name: String) -> ModelConfig? {
        switch name {
        case "1x128": return ModelConfig(kind: .row, hidden: 128, layers: 1, bidirectional: false)
        case "2x128-bi": return ModelConfig(kind: .row, hidden: 128, layers: 2, bidirectional: true)
        default: return nil
        }
    }

    /// Floating-point operations of the gate GEMMs for one batch (×3 for training: forward, dX/dh, dW).
    public static func flops(_ c: ModelConfig, batch: Int, training: Bool) -> Double {
        let dirs = c.bidirectional ? 2 : 1
        var total = 0.0
        for layer in 0..<c.layers {
            let input = layer == 0 ? c.width * c.channels : c.hidden * dirs
            total += Double(dirs) * 2 * Double(batch * c.height) * Double(4 * c.hidden) * Double(input + c.hidden)
        }
        return training ? 3 * total : total
    }

    /// The machine's single-precision GEMM rate with the current threads (large square products).
    public static func sgemmPeak(size n: Int = 1536, seconds: Double = 0.6) -> Double {
        let a = [Float](repeating: 0.5, count: n * n), b = a
        var c = [Float](repeating: 0, count: n * n)
        var best = 0.0
        let start = Date()
        repeat {
            let t0 = Date()
            a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
                BLAS.gemm(transA: false, transB: false, m: n, n: n, k: n, a: ap.baseAddress!, lda: n, b: bp.baseAddress!, ldb: n,
                          beta: 0, c: cp.baseAddress!, ldc: n)
            } } }
            best = max(best, 2 * Double(n * n * n) / Date().timeIntervalSince(t0) / 1e9)
        } while Date().timeIntervalSince(start) < seconds
        return best
    }

    /// Runs `body` repeatedly: warm-up, then `windows` windows of at least `window` seconds; returns the
    /// median iterations per second.
    static func rate(window: Double, windows: Int, _ body: () -> Void) -> Double {
        let warm = Date()
        repeat { body() } while Date().timeIntervalSince(warm) < window / 2
        var rates: [Double] = []
        for _ in 0..<windows {
            var n = 0
            let t0 = Date()
            repeat { body(); n += 1 } while Date().timeIntervalSince(t0) < window
            rates.append(Double(n) / Date().timeIntervalSince(t0))
        }
        return rates.sorted()[rates.count / 2]
    }

    /// Measures training (forward, cross-entropy, backward, Adam step) or inference of `name` at `batch`.
    public static func measure(_ name: String, training: Bool, batch: Int, peak: Double,
                               window: Double = 0.5, windows: Int = 5) throws -> Measurement {
        guard let c = config(named: name) else { throw TrainingError.invalidOption("unknown configuration '\(name)' (1x128 or 2x128-bi)") }
        let model = try makeClassifier(c, seed: 1)
        var g = SeededGenerator(seed: 2)
        let x = Tensor.uniform([batch, 28, 28], low: 0, high: 1, generator: &g)
        let labels = (0..<batch).map { $0 % 10 }
        let adam = Adam(learningRate: 1e-4)
        let perSecond: Double
        if training {
            perSecond = rate(window: window, windows: windows) {
                model.zeroGrad()
                crossEntropy(model(Variable(x)), labels: labels).backward()
                adam.step(model.namedParameters)
            }
        } else {
            model.training = false
            perSecond = rate(window: window, windows: windows) {
                _ = Autograd.withoutGradients { model(Variable(x)) }
            }
        }
        let gflops = perSecond * flops(c, batch: batch, training: training) / 1e9
        return Measurement(config: name, mode: training ? "train" : "infer", batch: batch,
                           images_per_second: perSecond * Double(batch), gflops: gflops,
                           peak_fraction: peak > 0 ? gflops / peak : 0, sgemm_peak_gflops: peak,
                           threads: BLAS.threads, peak_rss_mb: training ? peakResidentMegabytes() : nil)
    }

    /// The process's peak resident memory so far, in MiB.
    public static func peakResidentMegabytes() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return Double(usage.ru_maxrss) / 1024
    }
}
