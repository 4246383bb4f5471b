import ArgumentParser
import LSTMVision

/// `lstmvision bench`: throughput of training and inference (filled in by the performance work).
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Measure training and inference speed.")
    func run() throws {}
}
