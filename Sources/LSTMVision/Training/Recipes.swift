import Foundation

/// The recipes that `lstmvision train` and `lstmvision demo` share: the training options a run starts from where
/// the command line leaves them open, and the synthetic detection set's sizes and seeds.
public enum Recipes {
    /// Classifier training: `TrainingOptions`' defaults (Adam at 2e-3, batch 64, warm-up then cosine decay, 10 epochs).
    public static let classification = TrainingOptions()

    /// Detector training: small batches (many updates per image helped most in tuning), Adam at 5e-3 with warm-up
    /// and cosine decay, gradient clipping at 5, 10 epochs.
    public static let detection: TrainingOptions = {
        var o = TrainingOptions()
        o.epochs = 10
        o.batchSize = 8
        o.learningRate = 5e-3
        o.clipNorm = 5
        return o
    }()

    /// The synthetic canvases detector training reads when it is given no dataset folder.
    public static let syntheticDetection = SyntheticDetection(trainCount: 10_000, testCount: 1_000)

    /// `lstmvision demo`: the same recipes, smaller, so that each part takes about a minute.
    public enum Demo {
        /// A 1-layer, 128-unit row-LSTM on 28×28 grey digits.
        public static let classifier = ModelConfig(kind: .row, height: 28, width: 28, channels: 1, hidden: 128,
                                                   layers: 1, classes: 10)
        public static let classification: TrainingOptions = { var o = Recipes.classification; o.epochs = 3; return o }()
        /// The default detector (64×64 canvases, conv encoder).
        public static let detector = DetectorConfig()
        public static let detection: TrainingOptions = { var o = Recipes.detection; o.epochs = 3; return o }()
        public static let syntheticDetection = SyntheticDetection(trainCount: 3_000, testCount: 200)
    }

    /// A synthetic detection set (64×64 canvases of 1–5 MNIST digits): how many canvases, and how they are drawn.
    /// Its splits are those of `lstmvision detect-data` with its default seeds.
    public struct SyntheticDetection: Sendable, Equatable {
        public var trainCount: Int
        public var testCount: Int

        public init(trainCount: Int, testCount: Int) {
            self.trainCount = trainCount
            self.testCount = testCount
        }

        /// The seed of the test split, drawn from MNIST's test digits.
        public static let testSeed: UInt64 = 1

        /// `count` training canvases of `epoch` from MNIST's training digits: epoch 0 uses seed 0, each later epoch
        /// seed 0x5EED_0000 + epoch (`DetectionDataset.synthetic`), so that training can draw new canvases every epoch.
        public static func trainingSet(from trainDigits: ImageDataset, count: Int, epoch: Int) -> DetectionDataset {
            DetectionDataset.synthetic(from: trainDigits, count: count, epoch: epoch)
        }

        /// The seed of the validation canvases `train detection --validation-split` draws from held-out digits.
        public static let validationSeed: UInt64 = 2

        /// `count` validation canvases from `heldDigits`, training digits the training canvases leave out.
        public static func validationSet(from heldDigits: ImageDataset, count: Int) -> DetectionDataset {
            DetectionDataset(samples: MultiDigitDetection.generate(from: heldDigits, count: count,
                                                                   seed: validationSeed))
        }

        /// `count` test canvases (the validation set, unless training holds some out) from MNIST's test digits.
        public static func testSet(from testDigits: ImageDataset, count: Int) -> DetectionDataset {
            DetectionDataset(samples: MultiDigitDetection.generate(from: testDigits, count: count, seed: testSeed))
        }
    }
}
