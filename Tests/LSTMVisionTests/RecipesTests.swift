import Foundation
import Testing
@testable import LSTMVision
@testable import LSTMVisionCore

/// The recipes `train` and `demo` share keep their values: results of either must not change with them.
@Suite struct RecipesTests {
    @Test func trainingOptions() {
        #expect(Recipes.classification == TrainingOptions())
        var detection = TrainingOptions()
        detection.epochs = 10
        detection.batchSize = 8
        detection.learningRate = 5e-3
        detection.clipNorm = 5
        #expect(Recipes.detection == detection)
        detection.epochs = 3
        #expect(Recipes.Demo.detection == detection)
        var classification = TrainingOptions()
        classification.epochs = 3
        #expect(Recipes.Demo.classification == classification)
        #expect(Recipes.Demo.classifier == ModelConfig(kind: .row, height: 28, width: 28, channels: 1, hidden: 128,
                                                       layers: 1,
                                                       classes: 10))
        #expect(Recipes.Demo.detector == DetectorConfig())
    }

    @Test func syntheticDetectionSizesAndSeeds() {
        #expect(Recipes.syntheticDetection == .init(trainCount: 10_000, testCount: 1_000))
        #expect(Recipes.Demo.syntheticDetection == .init(trainCount: 3_000, testCount: 200))
        let digits = MultiDigitDetectionTests.digits
        func canvases(_ seed: UInt64) -> DetectionDataset {
            DetectionDataset(samples: MultiDigitDetection.generate(from: digits, count: 4, seed: seed))
        }
        func same(_ a: DetectionDataset, _ b: DetectionDataset) -> Bool {
            a.pixels == b.pixels && a.targets == b.targets
        }
        #expect(same(Recipes.SyntheticDetection.trainingSet(from: digits, count: 4, epoch: 0), canvases(0)))
        #expect(same(Recipes.SyntheticDetection.trainingSet(from: digits, count: 4, epoch: 3), canvases(0x5EED_0003)))
        #expect(same(Recipes.SyntheticDetection.testSet(from: digits, count: 4), canvases(1)))
    }
}
