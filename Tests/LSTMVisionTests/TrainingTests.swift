import Foundation
import Testing
@testable import LSTMVision
@testable import LSTMVisionCore

/// The training loop learns, checkpoints, and resumes to exactly the weights of an uninterrupted run.
@Suite(.serialized) struct TrainingTests {
    /// A small synthetic task: 8×8 noisy images whose class is the column holding a bright bar.
    static func bars(_ n: Int, seed: UInt64) -> ImageDataset {
        var g = SeededGenerator(seed: seed)
        var pixels = [Float](repeating: 0, count: n * 64), labels: [Int] = []
        for i in 0..<n {
            let c = Int(g.next() % 4)
            labels.append(c)
            for j in 0..<64 { pixels[i * 64 + j] = 0.2 * g.uniform() }
            for y in 0..<8 { pixels[i * 64 + y * 8 + 2 * c] += 0.8 }
        }
        return ImageDataset(height: 8, width: 8, channels: 1, pixels: pixels, labels: labels,
                            classNames: ["0", "1", "2", "3"])
    }

    func tempDir(_ name: String) -> String { freshTemporaryPath("\(name)") }

    func options(epochs: Int) -> TrainingOptions {
        var o = TrainingOptions()
        o.epochs = epochs
        o.batchSize = 16
        o.learningRate = 1e-2
        o.warmupSteps = 5
        return o
    }

    @Test func learnsAndWritesCheckpoints() throws {
        let config = ModelConfig(kind: .row, height: 8, width: 8, hidden: 12, classes: 4)
        let model = try makeClassifier(config, seed: 3)
        let dir = tempDir("learn")
        let trainer = try Trainer<ClassificationTask>(model: model, options: options(epochs: 3),
                                                      train: Self.bars(320, seed: 1),
                                  validation: Self.bars(100, seed: 2), directory: dir)
        trainer.quiet = true
        let log = try trainer.run()
        #expect(log.count == 3)
        #expect(log.last!.validationAccuracy > 0.9, "validation accuracy \(log.last!.validationAccuracy)")
        let best = try ModelFile.load(trainer.folder.bestModel)
        #expect(Evaluation.run(best, on: Self.bars(100, seed: 2)).accuracy > 0.9)
        let csv = try String(contentsOfFile: trainer.folder.log, encoding: .utf8)
        #expect(csv.split(separator: "\n").count == 4)
        #expect(FileManager.default.fileExists(atPath: trainer.folder.plot))
        try? FileManager.default.removeItem(atPath: dir)
    }

    @Test(arguments: [ModelConfig.Kind.patch, .renet])
    func otherModelsLearn(_ kind: ModelConfig.Kind) throws {
        let config = ModelConfig(kind: kind, height: 8, width: 8, hidden: 8, classes: 4, patch: 2,
                                 fcHidden: kind == .renet ? 16 : 0)
        let model = try makeClassifier(config, seed: 5)
        let dir = tempDir("\(kind)")
        let trainer = try Trainer<ClassificationTask>(model: model, options: options(epochs: 6),
                                                      train: Self.bars(320, seed: 1),
                                  validation: Self.bars(100, seed: 2), directory: dir)
        trainer.quiet = true
        let log = try trainer.run()
        #expect(log.last!.validationAccuracy > 0.85, "\(kind): validation accuracy \(log.last!.validationAccuracy)")
        let reloaded = try ModelFile.load(trainer.folder.lastModel)
        let x = Self.bars(4, seed: 9).batch(0..<4).images
        #expect(reloaded.probabilities(x).maxAbsDifference(model.probabilities(x)) < 1e-6)
        try? FileManager.default.removeItem(atPath: dir)
    }

    @Test func resumeEndsWithTheSameWeights() throws {
        let config = ModelConfig(kind: .row, height: 8, width: 8, hidden: 10, classes: 4)
        let train = Self.bars(200, seed: 1)
        // Uninterrupted: 3 epochs, with random augmentation (which must repeat on resume too).
        let plain = options(epochs: 3)
        var shifted = ClassificationTask.Settings()
        shifted.augment = "shift=1"
        let a = try makeClassifier(config, seed: 4)
        let ta = try Trainer<ClassificationTask>(model: a, options: plain, settings: shifted, train: train,
                                                 validation: nil, directory: tempDir("a"))
        ta.quiet = true
        try ta.run()
        // Interrupted mid-way through epoch 2 (a checkpoint every 5 steps), then resumed in a new trainer.
        var o = plain
        o.checkpointEvery = 5
        let dir = tempDir("b")
        let b = try makeClassifier(config, seed: 4)
        let tb = try Trainer<ClassificationTask>(model: b, options: o, settings: shifted, train: train, validation: nil,
                                                 directory: dir)
        tb.quiet = true
        tb.timeLimit = 0   // stops after the first batch
        try tb.run()
        var steps = 0
        while true {   // keep stopping and resuming until done, one short stretch at a time
            let c = try makeClassifier(config, seed: 99)
            let tc = try Trainer<ClassificationTask>(model: c, options: o, settings: shifted, train: train,
                                                     validation: nil, directory: dir)
            tc.quiet = true
            try tc.resume()
            if tc.epoch >= 3 { break }
            tc.timeLimit = 0
            try tc.run()
            steps += 1
            #expect(steps < 100)
            if steps >= 100 { break }
        }
        let c = try makeClassifier(config, seed: 99)
        let tc = try Trainer<ClassificationTask>(model: c, options: o, settings: shifted, train: train, validation: nil,
                                                 directory: dir)
        try tc.resume()
        for ((n1, p1), (_, p2)) in zip(a.namedParameters, c.namedParameters) {
            #expect(p1.value == p2.value, "\(n1) differs after resume: \(p1.value.maxAbsDifference(p2.value))")
        }
        #expect(steps > 3)
    }

    @Test func nonFiniteLossStopsWithStepAndKeepsCheckpoint() throws {
        let config = ModelConfig(kind: .row, height: 8, width: 8, hidden: 6, classes: 4)
        var data = Self.bars(64, seed: 1)
        data.pixels[20 * 64 + 3] = .nan   // image 20 is poisoned
        let dir = tempDir("nan")
        var o = options(epochs: 1)
        o.batchSize = 8
        let t = try Trainer<ClassificationTask>(model: try makeClassifier(config, seed: 1), options: o, train: data,
                                                validation: nil, directory: dir)
        t.quiet = true
        do {
            try t.run()
            Issue.record("NaN input did not stop training")
        } catch let e as TrainingError {
            #expect("\(e)".contains("non-finite") && "\(e)".contains("step"))
        }
        o.skipNonFinite = true
        let t2 = try Trainer<ClassificationTask>(model: try makeClassifier(config, seed: 1), options: o, train: data,
                                                 validation: nil, directory: dir)
        t2.quiet = true
        try t2.run()
        #expect(t2.skipped == 1)
        #expect(try ModelFile.load(t2.folder.lastModel).parameters.allSatisfy { $0.value.isFinite })
        try? FileManager.default.removeItem(atPath: dir)
    }
}

/// `lstmvision bench`'s arithmetic: the gate FLOPs of the issue's configurations, the peak as the larger of its two
/// measurements, and a measurement's rate, GFLOP/s and fraction of that peak consistent with each other.
@Suite struct BenchmarkTests {
    @Test func flopsPeakAndMeasurement() throws {
        let one = try #require(Benchmark.config(named: "1x128")), bi = try #require(Benchmark.config(named: "2x128-bi"))
        // 28 steps × 4·128 gate rows × (inputs + 128) × 2 per image; the second bidirectional layer reads 256 inputs.
        #expect(Benchmark.flops(one, batch: 1, training: false) == 2 * 28 * 512 * (28 + 128))
        #expect(Benchmark.flops(bi, batch: 64, training: true)
                == 3 * 64 * 2 * 2 * 28 * 512 * Double((28 + 128) + (256 + 128)))
        let peak = Benchmark.sgemmPeak(window: 0.01)
        #expect(peak.openBLAS > 0 && peak.inCache > 0 && peak.best == max(peak.openBLAS, peak.inCache))
        let m = try Benchmark.measure("1x128", training: false, batch: 4, peak: peak, window: 0.01, windows: 3)
        #expect(m.config == "1x128" && m.mode == "infer" && m.batch == 4 && m.images_per_second > 0)
        let gflops = m.images_per_second / 4 * Benchmark.flops(one, batch: 4, training: false) / 1e9
        #expect(abs(try #require(m.gflops) - gflops) <= 1e-9 * gflops)
        #expect(m.sgemm_peak_gflops == peak.best && m.peak_fraction == m.gflops! / peak.best)
        #expect(m.sgemm_peak_openblas_gflops == peak.openBLAS && m.sgemm_peak_in_cache_gflops == peak.inCache)
        #expect(throws: (any Error).self) { try Benchmark.measure("3y7", training: false, batch: 1, peak: peak) }
        // The scaling table's models: sizes, sequence lengths and ReNet image sizes by name.
        #expect(Benchmark.config(named: "1x64@784x1")
                == ModelConfig(kind: .row, height: 784, width: 1, hidden: 64, layers: 1, bidirectional: false))
        #expect(Benchmark.config(named: "3x1024-bi") == ModelConfig(kind: .row, hidden: 1024, layers: 3,
                                                                    bidirectional: true))
        #expect(Benchmark.config(named: "renet@112")?.height == 112 && Benchmark.config(named: "renet")?.height == 28)
        for bad in ["0x5", "1x5@0x1", "1x5@3", "renet@27", "1x", "x5", "1x5-bi@28x28@1x1", "detector"] {
            #expect(Benchmark.config(named: bad) == nil, "\(bad)")
        }
        // The ReNet and the detector run (training is timed by `make bench`); GFLOP/s is counted for row-LSTMs only.
        for (name, training) in [("renet", false), ("detector", false)] {
            let r = try Benchmark.measure(name, training: training, batch: 1, peak: peak, window: 0.01, windows: 1)
            #expect(r.images_per_second > 0 && r.gflops == nil && r.peak_fraction == nil, "\(name)")
        }
    }
}
