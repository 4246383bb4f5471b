import ArgumentParser
import Foundation
import LSTMVision

/// `lstmvision moving-mnist`: Moving MNIST sequences (Srivastava et al. 2015) in the layout of the public
/// `mnist_test_seq.npy`, the training file's digits from MNIST's training images and the test file's from its test
/// images.
struct MovingMNISTCommand: ParsableCommand, ReadsFiles {
    static let configuration = CommandConfiguration(
        commandName: "moving-mnist",
        abstract: "Write Moving MNIST sequences (two bouncing digits in 64×64 frames) as NumPy .npy files.",
        discussion: "Writes OUT/train.npy and OUT/test.npy, uint8 [frames, sequences, 64, 64] like mnist_test_seq.npy.")

    @Option(help: "Folder holding the MNIST IDX files (.gz or plain). Default: the embedded data/mnist.")
    var data: String?
    @Option(help: "Output folder for train.npy and test.npy.") var out: String
    @Option(help: "Training sequences (from MNIST's training digits).") var train: Int = 10_000
    @Option(help: "Test sequences (from MNIST's test digits).") var test: Int = 10_000
    @Option(help: "Frames per sequence.") var frames: Int = 20
    @Option(help: "Random seed (the test file uses seed + 1).") var seed: UInt64 = 0
    @OptionGroup var limits: LimitOptions

    func validate() throws {
        guard train >= 0, test >= 0, train + test > 0 else {
            throw ValidationError("--train and --test must be non-negative and not both 0, got \(train), \(test)")
        }
        guard (1...1000).contains(frames) else { throw ValidationError("--frames must be in 1...1000, got \(frames)") }
        guard max(train, test) <= 1_000_000 else {
            throw ValidationError("--train and --test must be at most 1000000 sequences each")
        }
    }

    func run() throws {
        let directory = data ?? MNIST.defaultDirectory()
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        for (split, count, seed) in [(MNIST.Split.train, train, seed), (.test, test, seed &+ 1)] where count > 0 {
            let digits = try MNIST.load(directory: directory, split: split, limits: limits.value)
            let array = MovingMNIST.generate(from: digits, sequences: count, frames: frames, seed: seed)
            let path = (out as NSString).appendingPathComponent("\(split.rawValue).npy")
            try NPY.write(array, to: path)
            print("\(split.rawValue): \(count) sequences of \(frames) frames 64×64 (seed \(seed), from \(digits.count)"
                  + " MNIST \(split.rawValue) digits) → \(path), uint8 \(array.shape)")
        }
    }
}
