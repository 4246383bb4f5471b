import Foundation
import Testing
@testable import LSTMVision
@testable import LSTMVisionCore

/// A search spread over ranks (`RankTrialLauncher`, `RankTrials`): two fake ranks on two threads of this process,
/// talking through an in-process all-gather, run a tiny real search (trials are `lstmvision train` children) to the
/// end; every trial runs once, on the rank the study records, and the best one is scored on its rank.
@Suite struct TuningRanksTests {
    /// An all-gather shared by the threads playing `size` ranks: each call waits (up to a minute) for every rank's.
    final class Gather: @unchecked Sendable {
        let size: Int
        let condition = NSCondition()
        var slots: [[UInt8]?], arrived = 0, generation = 0, result: [[UInt8]] = []

        init(size: Int) { (self.size, slots) = (size, Array(repeating: nil, count: size)) }

        func gather(rank: Int, _ bytes: [UInt8]) throws -> [[UInt8]] {
            condition.lock()
            defer { condition.unlock() }
            let mine = generation
            slots[rank] = bytes
            arrived += 1
            if arrived == size {
                (result, slots, arrived) = (slots.map { $0! }, Array(repeating: nil, count: size), 0)
                generation += 1
                condition.broadcast()
                return result
            }
            let deadline = Date().addingTimeInterval(60)
            while generation == mine {
                guard condition.wait(until: deadline) else { throw TuningError("rank \(rank): no round for 60 s") }
            }
            return result
        }
    }

    /// Rank `rank` of a fake job: only the all-gather is used by a search.
    final class ThreadCommunicator: Communicator, @unchecked Sendable {
        let rank: Int, gather: Gather
        var size: Int { gather.size }
        init(rank: Int, gather: Gather) { (self.rank, self.gather) = (rank, gather) }
        func broadcast(_ values: inout [Float], root: Int) throws {}
        func sumInRankOrder(_ values: inout [Float]) throws {}
        func sumInRankOrder(_ values: inout [Double]) throws {}
        func allGather(_ bytes: [UInt8]) throws -> [[UInt8]] { try gather.gather(rank: rank, bytes) }
        func barrier() throws { _ = try allGather([]) }
        func abort(code: Int32) -> Never { fatalError("abort \(code)") }
        func finish() {}
    }

    /// What the threads of a test hand back, under a lock.
    final class Box<T>: @unchecked Sendable {
        let lock = NSLock()
        var value: T
        init(_ value: T) { self.value = value }
        func set(_ f: (inout T) -> Void) { lock.lock(); f(&value); lock.unlock() }
    }

    /// Bytes of any length (none included), every rank's in rank order, on every rank.
    @Test func exchangeCarriesBytesOfAnyLength() throws {
        let gather = Gather(size: 3), got = Box([[[UInt8]]](repeating: [], count: 3))
        let done = DispatchSemaphore(value: 0)
        for r in 0..<3 {
            Thread.detachNewThread {
                let all = (try? TuningRound.exchange(Array(repeating: UInt8(r + 1), count: r * 300),
                                                     over: ThreadCommunicator(rank: r, gather: gather))) ?? []
                got.set { $0[r] = all }
                done.signal()
            }
        }
        for _ in 0..<3 { #expect(done.wait(timeout: .now() + 60) == .success) }
        let expected = (0..<3).map { Array(repeating: UInt8($0 + 1), count: $0 * 300) }
        #expect(got.value == [expected, expected, expected])
    }

    /// Four trials on two ranks of one slot each: both ranks run trials, every trial once (its folder's log.csv
    /// holds what the study recorded), the stopped ones stopped on their rank, and the best one's model scored by
    /// `lstmvision eval` on the rank that trained it; the follower leaves when rank 0 closes the search.
    @Test func tinySearchOverTwoRanks() throws {
        let dir = TuningCLITests.folder("ranks"), out = dir + "/out"
        try TuningCLITests.miniMNIST(dir + "/mnist")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let space = try SearchSpace.parse("hidden: {choice: [4, 8]}\nlr: {float: [1.0e-3, 1.0e-2], log: true}\n",
                                          source: "space")
        let settings = StudySettings(task: "classification", metric: "val_accuracy", higherIsBetter: true,
                                     space: space, sampler: "random", seed: 4,
                                     trainArguments: ["--data", dir + "/mnist"], epochs: 2,
                                     halving: try SuccessiveHalving(minEpochs: 1, eta: 2, maxEpochs: 2))
        let gather = Gather(size: 2)
        let follower = RankTrials(world: ThreadCommunicator(rank: 1, gather: gather), executable: CLITests.executable,
                                  out: out, slots: 1)
        follower.interval = 0.1
        let left = DispatchSemaphore(value: 0), followerError = Box<(any Error)?>(nil), rank1 = Box(follower)
        Thread.detachNewThread {
            do { try rank1.value.follow() } catch { followerError.set { $0 = error } }
            left.signal()
        }
        let own = RankTrials(world: ThreadCommunicator(rank: 0, gather: gather), executable: CLITests.executable,
                             out: out, slots: 1)
        own.interval = 0.1
        let launcher = try RankTrialLauncher(ranks: own, task: "classification", threads: 1, metric: "val_accuracy")
        #expect(launcher.slots == [1, 1] && launcher.totalSlots == 2)
        let tuner = try Tuner(study: Study(settings: settings), path: Study.path(in: out), launcher: launcher,
                              maxTrials: 4, workers: launcher.totalSlots)
        tuner.log = { _ in }
        let study = try tuner.run()
        #expect(study.trials.count == 4 && study.trials.allSatisfy(\.isFinished))
        #expect(study.trials.allSatisfy { $0.state != .failed }, "\(study.trials.map(\.message))")
        #expect(Set(study.trials.compactMap(\.rank)) == [0, 1] && study.trials.allSatisfy { $0.rank != nil })
        #expect(study.trials.allSatisfy { $0.starts == 1 && $0.pid == nil })
        for t in study.trials {
            let log = ProcessTrialLauncher.folder(out: out, number: t.number) + "/log.csv"
            // A pruned trial may have logged part of the next epoch before its rank ended it.
            let logged = try LogCSV.column("val_accuracy", of: log)
            #expect(Array(logged.prefix(t.metrics.count)) == t.metrics, "trial \(t.number)")
            if t.state == .completed { #expect(logged == t.metrics) }
        }
        #expect(try Study.read(Study.path(in: out)) == study)
        // The best trial's model, scored on its rank.
        let best = try #require(study.bestTrial)
        let model = ProcessTrialLauncher.folder(out: out, number: best.number) + "/model.safetensors"
        let score = try launcher.score(trial: best.number, rank: best.rank!,
                                       words: ["eval", "--model", model, "--data", dir + "/mnist", "--json"],
                                       output: out + "/test-eval.json", errors: out + "/test-eval.stderr.txt")
        #expect(score.status == 0, "\(score.error ?? "")")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(score.output.utf8)) as? [String: Any])
        #expect(object["count"] as? Int == 100 && (0...1).contains(object["accuracy"] as? Double ?? -1))
        try launcher.close()
        #expect(left.wait(timeout: .now() + 30) == .success, "the follower did not leave")
        #expect(followerError.value == nil, "\(followerError.value.map { "\($0)" } ?? "")")
    }
}
