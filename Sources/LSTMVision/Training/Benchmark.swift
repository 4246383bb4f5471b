import Foundation

/// Throughput of the models `make bench` compares with PyTorch and ONNX Runtime, measured as PyTorch users measure
/// theirs: warm-up, then the median of several timed windows; FLOP/s counts the row-LSTMs' gate GEMMs.
public enum Benchmark {
    /// One measurement, printed as a JSON line.
    public struct Measurement: Codable, Sendable {
        public var config: String
        public var mode: String
        public var batch: Int
        public var images_per_second: Double
        /// Row-LSTMs only: the gate GEMMs' rate and its fraction of the peak.
        public var gflops: Double?
        public var peak_fraction: Double?
        /// The larger of the two peaks below: what this machine's GEMMs reach at best.
        public var sgemm_peak_gflops: Double
        /// OpenBLAS on large square products.
        public var sgemm_peak_openblas_gflops: Double
        /// SmallGEMM on a product that stays in each core's cache.
        public var sgemm_peak_in_cache_gflops: Double
        public var threads: Int
        public var peak_rss_mb: Double?
        /// The LSTMs' weight products in inference (training is always fp32).
        public var precision: String
    }

    /// The models of `make bench`: row-LSTMs on 28×28 images, the ReNet of models/renet (2×2 patches, 32 units per
    /// direction, FC 256), and the default detector (64×64 grey canvases, convolutional encoder, 3 boxes per cell).
    public static let names = ["1x128", "2x128-bi", "1x512", "2x256-bi", "renet", "detector"]
    /// What `bench --configs` takes besides `names`' models, for the scaling table.
    public static let grammar = "LxH[-bi][@TxI] (a row-LSTM: L layers of H units over T steps of I inputs, 28x28"
        + " by default), renet[@S] (on S×S images), detector"

    /// The classifier configuration of `name` (nil for the detector and names `grammar` does not cover).
    public static func config(named name: String) -> ModelConfig? {
        if name == "renet" { return config(named: "renet@28") }
        if name.hasPrefix("renet@") {
            guard let size = Int(name.dropFirst(6)), (2...512).contains(size), size % 2 == 0 else { return nil }
            return ModelConfig(kind: .renet, height: size, width: size, hidden: 32, layers: 1, bidirectional: true,
                               patch: 2, fcHidden: 256)
        }
        let parts = name.split(separator: "@", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count) else { return nil }
        let bidirectional = parts[0].hasSuffix("-bi")
        let shape = (bidirectional ? parts[0].dropLast(3) : parts[0]).split(separator: "x").map { Int($0) }
        let sequence = parts.count == 2 ? parts[1].split(separator: "x").map { Int($0) } : [28, 28]
        guard shape.count == 2, sequence.count == 2, let layers = shape[0], let hidden = shape[1],
              let steps = sequence[0], let inputs = sequence[1], (1...8).contains(layers), (1...4096).contains(hidden),
              (1...4096).contains(steps), (1...4096).contains(inputs) else { return nil }
        return ModelConfig(kind: .row, height: steps, width: inputs, hidden: hidden, layers: layers,
                           bidirectional: bidirectional)
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
    static func rate(window: Double, windows: Int, _ body: () throws -> Void) rethrows -> Double {
        let warm = Date()
        repeat { try body() } while Date().timeIntervalSince(warm) < window / 2
        var rates: [Double] = []
        for _ in 0..<windows {
            var n = 0
            let t0 = Date()
            repeat { try body(); n += 1 } while Date().timeIntervalSince(t0) < window
            rates.append(Double(n) / Date().timeIntervalSince(t0))
        }
        return rates.sorted()[rates.count / 2]
    }

    /// Measures training (forward, loss, backward, Adam step) or inference of `name` at `batch`: classifiers on
    /// uniform 28×28 images with cross-entropy; the detector on uniform 64×64 canvases with the MSE of its raw
    /// outputs against zeros (its Hungarian matching, a small part of a real step, left out, as on the peers' side).
    public static func measure(_ name: String, training: Bool, batch: Int, peak: Peak,
                               window: Double = 0.5, windows: Int = 5, precision: Precision = .fp32)
        throws -> Measurement {
        let c = config(named: name)
        guard c != nil || name == "detector" else {
            throw TrainingError.invalidOption("unknown configuration '\(name)' (\(grammar))")
        }
        var g = SeededGenerator(seed: 2)
        let model: any Module, forward: (Variable) throws -> Variable, loss: (Variable) -> Variable
        let x: Tensor
        if let c {
            let classifier = try makeClassifier(c, seed: 1)
            classifier.training = training
            if !training { classifier.precision = precision }
            let labels = (0..<batch).map { $0 % 10 }
            (model, forward, loss) = (classifier, { classifier($0) }, { crossEntropy($0, labels: labels) })
            x = Tensor.uniform([batch, c.height, c.width], low: 0, high: 1, generator: &g)
        } else {
            var weights = SeededGenerator(seed: 1)
            let detector = LSTMDetector(DetectorConfig(), generator: &weights)
            if !training { detector.precision = precision }
            (model, forward, loss) = (detector, { try detector($0) }, { mseLoss($0, Tensor(zeros: $0.shape)) })
            x = Tensor.uniform([batch, 64, 64], low: 0, high: 1, generator: &g)
        }
        let adam = Adam(learningRate: 1e-4)
        let perSecond: Double
        if training {
            perSecond = try rate(window: window, windows: windows) {
                model.zeroGrad()
                loss(try forward(Variable(x))).backward()
                adam.step(model.namedParameters)
            }
        } else {
            perSecond = try rate(window: window, windows: windows) {
                _ = try Autograd.withoutGradients { try forward(Variable(x)) }
            }
        }
        let gflops = c.flatMap { $0.kind == .row ? perSecond * flops($0, batch: batch, training: training) / 1e9 : nil }
        return Measurement(config: name, mode: training ? "train" : "infer", batch: batch,
                           images_per_second: perSecond * Double(batch), gflops: gflops,
                           peak_fraction: gflops.map { peak.best > 0 ? $0 / peak.best : 0 },
                           sgemm_peak_gflops: peak.best, sgemm_peak_openblas_gflops: peak.openBLAS,
                           sgemm_peak_in_cache_gflops: peak.inCache, threads: BLAS.threads,
                           peak_rss_mb: training ? peakResidentMegabytes() : nil,
                           precision: training ? Precision.fp32.rawValue : precision.rawValue)
    }

    /// The process's peak resident memory so far, in MiB.
    public static func peakResidentMegabytes() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return Double(usage.ru_maxrss) / 1024
    }
}
