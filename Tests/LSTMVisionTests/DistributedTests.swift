import Foundation
import Testing
@testable import LSTMVision
@testable import LSTMVisionCore

/// The parts of data-parallel training that one process runs: shards of a batch add up to its gradient, parts of a
/// validation set to its evaluation, and the start-up checks refuse what N ranks cannot train. (Two real MPI ranks
/// against one process: tools/mpi-check.sh, in `make test`.)
@Suite struct DistributedTests {
    /// Rank 0 of a job of `size` ranks whose other ranks echo this one's values, or, with `otherValue`, give it for
    /// every value gathered: enough for the start-up checks, which only gather and broadcast.
    final class EchoCommunicator: Communicator, @unchecked Sendable {
        let size: Int
        let otherValue: [UInt8]?
        init(size: Int, otherValue: [UInt8]? = nil) { (self.size, self.otherValue) = (size, otherValue) }
        var rank: Int { 0 }
        func broadcast(_ values: inout [Float], root: Int) throws {}
        func sumInRankOrder(_ values: inout [Float]) throws { values = values.map { $0 * Float(size) } }
        func sumInRankOrder(_ values: inout [Double]) throws { values = values.map { $0 * Double(size) } }
        func allGather(_ bytes: [UInt8]) throws -> [[UInt8]] {
            [bytes] + Array(repeating: otherValue ?? bytes, count: size - 1)
        }
        func barrier() throws {}
        func abort(code: Int32) -> Never { fatalError("abort \(code)") }
        func finish() {}
    }

    func trainer(images: Int, batch: Int = 16) throws -> Trainer<ClassificationTask> {
        let model = try makeClassifier(ModelConfig(kind: .row, height: 8, width: 8, hidden: 8, classes: 4), seed: 2)
        var options = TrainingOptions()
        options.batchSize = batch
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lstmvision-dist-\(getpid())").path
        let t = try Trainer<ClassificationTask>(model: model, options: options,
                                                train: TrainingTests.bars(images, seed: 4), validation: nil,
                                                directory: dir)
        t.quiet = true
        return t
    }

    /// 7 images in 3 shards (2, 2 and 3 images), each weighted by its images: the gradient of the batch's mean loss,
    /// to float rounding. Averaging the shards' means instead is off by ~7% of the largest gradient.
    @Test func shardsAddUpToTheBatchGradient() throws {
        let t = try trainer(images: 7)
        let parameters = t.task.trainable.parameters
        let whole = try t.gradients(Array(0..<7)[...], from: t.task.train, parts: 1, timeUp: false)
        let expected = parameters.map { $0.grad!.scalars }
        let sharded = try t.gradients(Array(0..<7)[...], from: t.task.train, parts: 3, timeUp: false)
        var largest: Float = 0, scale: Float = 0
        for (p, e) in zip(parameters, expected) {
            for (a, b) in zip(p.grad!.scalars, e) {
                largest = max(largest, abs(a - b))
                scale = max(scale, abs(b))
            }
        }
        #expect(scale > 1e-3)
        #expect(largest <= 1e-5 * scale, "largest difference \(largest) of gradients up to \(scale)")
        #expect(abs(sharded.lossSum - whole.lossSum) <= 1e-5 * abs(whole.lossSum))
        #expect(sharded.images == 7 && sharded.finite && whole.finite)
        #expect(abs(sharded.squaredNorm - whole.squaredNorm) <= 1e-4 * whole.squaredNorm)
    }

    /// A last batch smaller than the shards leaves some empty: they add nothing.
    @Test func emptyShardsAddNothing() throws {
        let t = try trainer(images: 2)
        let parameters = t.task.trainable.parameters
        _ = try t.gradients(Array(0..<2)[...], from: t.task.train, parts: 2, timeUp: false)
        let two = parameters.map { $0.grad!.scalars }
        let five = try t.gradients(Array(0..<2)[...], from: t.task.train, parts: 5, timeUp: false)
        #expect(zip(parameters, two).allSatisfy { $0.grad!.scalars == $1 })
        #expect(five.images == 2 && five.finite)
    }

    /// Two halves of a validation set, scored apart and added, give the whole set's accuracy and loss.
    @Test func evaluationsOfPartsAddUp() throws {
        let model = try makeClassifier(ModelConfig(kind: .row, height: 8, width: 8, hidden: 8, classes: 4), seed: 3)
        let data = TrainingTests.bars(50, seed: 5)
        let whole = Evaluation.run(model, on: data)
        let parts = [Array(0..<21), Array(21..<50)].map { Evaluation.run(model, on: data.subset($0)) }
        let confusion = (0..<4).map { t in (0..<4).map { parts[0].confusion[t][$0] + parts[1].confusion[t][$0] } }
        let added = Evaluation(confusion: confusion, lossSum: parts.reduce(0) { $0 + $1.loss * Double($1.count) },
                               classNames: data.classNames)
        #expect(added.count == 50 && added.accuracy == whole.accuracy && added.confusion == whole.confusion)
        #expect(abs(added.loss - whole.loss) <= 1e-6 * whole.loss)
        #expect(added.precision == whole.precision && added.recall == whole.recall)
    }

    /// More ranks than images, or than a global batch holds, and ranks started with other options: one error, on
    /// every rank alike.
    @Test func startUpChecksRefuseWhatRanksCannotTrain() throws {
        let t = try trainer(images: 4, batch: 4)
        t.communicator = EchoCommunicator(size: 5)
        #expect(throws: DistributedError("5 ranks for 4 training images: every rank needs at least one; start at most"
                                         + " 4 ranks", everyRank: true)) { try t.startRanks(parts: 5) }
        let u = try trainer(images: 40, batch: 4)
        u.communicator = EchoCommunicator(size: 5)
        #expect(throws: DistributedError.self) { try u.startRanks(parts: 5) }
        let v = try trainer(images: 40)
        v.communicator = EchoCommunicator(size: 2, otherValue: [1, 2, 3, 4, 5, 6, 7, 8])
        do {
            try v.startRanks(parts: 2)
            Issue.record("ranks that differ in everything were accepted")
        } catch let e as DistributedError {
            #expect(e.everyRank)
            #expect(e.description.hasPrefix("the ranks were not started alike: they differ from rank 0 in training"
                                            + " options (rank 1); model (rank 1);"), "\(e)")
        }
        let w = try trainer(images: 40)
        w.communicator = EchoCommunicator(size: 2)
        try w.startRanks(parts: 2)               // alike: accepted
        #expect(try SingleProcessCommunicator().ranksDiffering(from: "x") == [])
    }
}
