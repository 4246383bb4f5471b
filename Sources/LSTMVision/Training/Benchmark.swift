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
        /// The larger of the two peaks below: what this machine's GEMMs reach at best.
        public var sgemm_peak_gflops: Double
        /// OpenBLAS on large square products.
        public var sgemm_peak_openblas_gflops: Double
        /// SmallGEMM on a product that stays in each core's cache.
        public var sgemm_peak_in_cache_gflops: Double
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

    /// The machine's single-precision GEMM rate measured two ways (`sgemmPeak`); fractions of the peak are taken of
    /// `best`, so that a low denominator flatters nothing.
    public struct Peak: Sendable {
        public var openBLAS: Double, inCache: Double
        public var best: Double { max(openBLAS, inCache) }
    }

    /// The machine's single-precision GEMM rate with the current threads, measured as the images/s are (warm-up, the
    /// median of timed windows): OpenBLAS on large square products (1536², from memory), and SmallGEMM on step-sized
    /// products [32×128]·[128×512] on every thread at once, each on its own operands in its cache
    /// (what the FMA units deliver). On this VM the first reads up to a third below the second, and below
    /// PyTorch's own large product.
    public static func sgemmPeak(window: Double = 0.1) -> Peak {
        // In-cache first: OpenBLAS's threads spin for a while after its products, on a core the other one needs.
        let (m, n, k, threads) = (32, 512, 128, BLAS.threads)
        let operands = (0..<threads).map { _ in
            (a: AlignedFloats(repeating: 0.5, count: m * k),
             b: SmallGEMM.pack(Tensor(repeating: 0.5, shape: [k, n]), transposed: false),
             c: AlignedFloats(repeating: 0, count: m * n))
        }
        let inCache = rate(window: window, windows: 5) {   // 20 products per thread per call
            Parallel.forParts(threads, parts: threads) { parts in
                for p in parts {
                    let o = operands[p]
                    o.a.withUnsafeBufferPointer { a in o.b.withUnsafeBufferPointer { b in
                    o.c.withUnsafeMutableBufferPointer { c in
                        for _ in 0..<20 {
                            SmallGEMM.multiply(m: m, n: n, k: k, a: a.baseAddress!, lda: k, b: b.baseAddress!,
                                               c: c.baseAddress!, ldc: n, accumulate: false)
                        }
                    } } }
                }
            }
        } * 2 * Double(threads * 20 * m * n * k) / 1e9
        let size = 1536
        let a = [Float](repeating: 0.5, count: size * size), b = a
        var c = [Float](repeating: 0, count: size * size)
        let openBLAS = rate(window: window, windows: 5) {
            a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
                BLAS.openBLASGemm(transA: false, transB: false, m: size, n: size, k: size, a: ap.baseAddress!,
                                  lda: size, b: bp.baseAddress!, ldb: size, beta: 0, c: cp.baseAddress!, ldc: size)
            } } }
        } * 2 * Double(size * size * size) / 1e9
        return Peak(openBLAS: openBLAS, inCache: inCache)
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
    public static func measure(_ name: String, training: Bool, batch: Int, peak: Peak,
                               window: Double = 0.5, windows: Int = 5) throws -> Measurement {
        guard let c = config(named: name) else {
            throw TrainingError.invalidOption("unknown configuration '\(name)' (1x128 or 2x128-bi)")
        }
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
                           peak_fraction: peak.best > 0 ? gflops / peak.best : 0, sgemm_peak_gflops: peak.best,
                           sgemm_peak_openblas_gflops: peak.openBLAS, sgemm_peak_in_cache_gflops: peak.inCache,
                           threads: BLAS.threads, peak_rss_mb: training ? peakResidentMegabytes() : nil)
    }

    /// The process's peak resident memory so far, in MiB.
    public static func peakResidentMegabytes() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return Double(usage.ru_maxrss) / 1024
    }
}
