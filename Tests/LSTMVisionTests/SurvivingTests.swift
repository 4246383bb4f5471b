import Foundation
import Testing
@testable import LSTMVision
@testable import LSTMVisionCore

/// What a cluster does to a job, in one process: a stop signal mid-epoch or at an epoch's end (the checkpoint
/// resumes to the uninterrupted run's weights, bit for bit), a checkpoint write that fails as on a full disk (the
/// previous checkpoint stays intact and resumes), a second run into a locked folder, a stale lock, a collective
/// that waits too long, and a non-finite loss on one rank of several. (Real signals, a real full tmpfs and real MPI
/// ranks: tools/survive-check.sh and tools/mpi-check.sh, in `make test`.)
@Suite struct SurvivingTests {
    static let config = ModelConfig(kind: .row, height: 8, width: 8, hidden: 6, classes: 4)

    func tempDir(_ name: String) -> String { freshTemporaryPath("surviving-\(name)") }

    /// 2 epochs of 4 batches of 16.
    func options() -> TrainingOptions { twoEpochOptions() }

    /// A quiet classifier trainer in `dir` on 64 images with a validation set; `stopAt` makes its stop flag read
    /// SIGTERM from that 1-based step on (the step whose exchange would see a signal).
    func trainer(_ dir: String, options: TrainingOptions? = nil, stopAt: Int? = nil,
                 signal: Int32 = SIGTERM) throws -> Trainer<ClassificationTask> {
        let t = try Trainer<ClassificationTask>(model: try makeClassifier(Self.config, seed: 2),
                                                options: options ?? self.options(),
                                                train: TrainingTests.bars(64, seed: 1),
                                                validation: TrainingTests.bars(16, seed: 9), directory: dir)
        t.quiet = true
        if let stopAt {
            t.stopRequested = { [unowned t] in t.step + 1 >= stopAt ? signal : 0 }
        }
        return t
    }

    /// The model's weights, by name.
    func weights(_ t: Trainer<ClassificationTask>) -> [String: [Float]] {
        t.task.checkpointed.stateDict().mapValues(\.scalars)
    }

    func expectBitIdentical(_ a: [String: [Float]], _ b: [String: [Float]], _ what: String) {
        #expect(a.keys.sorted() == b.keys.sorted(), "\(what)")
        for (name, x) in a {
            #expect(x.map(\.bitPattern) == (b[name] ?? []).map(\.bitPattern), "\(what): \(name) differs")
        }
    }

    /// A stop signal after step 3 (mid-epoch 1) and after step 4 (the end of epoch 1: the epoch is validated and
    /// logged first) stops with the position and a checkpoint; resuming ends with the uninterrupted run's weights.
    @Test func stopSignalCheckpointsAndResumesBitIdentical() throws {
        let whole = try trainer(tempDir("whole"))
        try whole.run()
        for (stopAt, epoch, batch, records) in [(3, 0, 3, 0), (4, 1, 0, 1)] {
            let dir = tempDir("stop\(stopAt)")
            let t = try trainer(dir, stopAt: stopAt)
            do {
                try t.run()
                Issue.record("the run did not stop")
            } catch let s as TrainingStopped {
                #expect(s == TrainingStopped(signal: SIGTERM, epoch: epoch, batch: batch, step: stopAt,
                                             batchesPerEpoch: 4, checkpoint: RunFolder(dir).state))
                let where_ = batch > 0 ? "batch 3 of 4 of epoch 1" : "the end of epoch 1"
                #expect(s.description == "stopped by SIGTERM after step \(stopAt) (\(where_)); checkpoint \(dir)"
                                          + "/last.state.safetensors")
            }
            #expect(t.history.count == records)
            #expect(!FileManager.default.fileExists(atPath: RunFolder(dir).lockFile), "the lock was not removed")
            let resumed = try trainer(dir)
            try resumed.resume()
            #expect((resumed.epoch, resumed.batchIndex, resumed.step) == (epoch, batch, stopAt))
            try resumed.run()
            expectBitIdentical(weights(resumed), weights(whole), "stopped after step \(stopAt), resumed")
            #expect(resumed.history.map(\.validationAccuracy) == whole.history.map(\.validationAccuracy))
        }
        // A signal during the very last step: the run has nothing left to stop and ends as usual.
        let last = try trainer(tempDir("stoplast"), stopAt: 8, signal: SIGINT)
        try last.run()
        expectBitIdentical(weights(last), weights(whole), "signal at the last step")
    }

    /// An atomic write that fails half-way (ENOSPC, injected) leaves the old file whole and no temporary file.
    @Test func failedAtomicWriteKeepsTheOldFile() throws {
        let dir = tempDir("atomic")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = dir + "/file.bin"
        try AtomicFile.write(Data(repeating: 1, count: 10_000), to: path)
        AtomicFile.injectFailure(path, after: 0)
        #expect(throws: CheckpointError.io("\(path): write failed: No space left on device")) {
            try AtomicFile.write(Data(repeating: 2, count: 20_000), to: path)
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(repeating: 1, count: 10_000))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["file.bin"])
        try AtomicFile.write(Data(repeating: 3, count: 5), to: path)            // the failure was injected once
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(repeating: 3, count: 5))
    }

    /// A checkpoint (state file, or the model written before it) that cannot be written stops training with one
    /// error naming the file and the checkpoint kept; that checkpoint is intact, and resumes to the uninterrupted
    /// run's weights.
    @Test func failedCheckpointWriteKeepsThePreviousCheckpoint() throws {
        var o = options()
        o.checkpointEvery = 1
        let whole = try trainer(tempDir("diskwhole"), options: o)
        try whole.run()
        for file in ["last.state.safetensors", "last.safetensors"] {
            let dir = tempDir("disk-\(file)"), folder = RunFolder(dir)
            let t = try trainer(dir, options: o)
            AtomicFile.injectFailure(dir + "/" + file, after: 1)    // step 1's checkpoint written, step 2's fails
            do {
                try t.run()
                Issue.record("the run went on after a failed write")
            } catch let e as TrainingError {
                #expect(e == .write("\(dir)/\(file): write failed: No space left on device; the previous checkpoint"
                                    + " \(folder.state) (after step 1) is kept intact; free some space, then resume"
                                    + " from it with --resume"))
            }
            let names = try FileManager.default.contentsOfDirectory(atPath: dir)
            #expect(!names.contains { $0.contains(".tmp-") }, "temporary files left: \(names)")
            #expect(!names.contains("run.lock"))
            let resumed = try trainer(dir, options: o)
            try resumed.resume()
            #expect(resumed.step == 1)
            try resumed.run()
            expectBitIdentical(weights(resumed), weights(whole), "\(file) failed at step 2, resumed")
        }
        // The very first checkpoint failing: nothing to keep, and the message says so.
        let dir = tempDir("disk-first")
        AtomicFile.injectFailure(dir + "/last.safetensors", after: 0)
        #expect(throws: TrainingError.write("\(dir)/last.safetensors: write failed: No space left on device; no"
                                            + " checkpoint had been written yet")) {
            try trainer(dir, options: o).run()
        }
    }

    /// The run folder's lock: a second taker is refused with the holder's pid and start time; released, the file
    /// goes; a lock file left by a dead process is taken over; a trainer refuses a locked folder.
    @Test func runFolderLockRefusesASecondRunAndReplacesAStaleOne() throws {
        let dir = tempDir("lock"), folder = RunFolder(dir)
        try folder.create()
        let held = try RunLock(folder.lockFile)
        let text = try String(contentsOfFile: folder.lockFile, encoding: .utf8)
        #expect(text.hasPrefix("pid \(getpid())\nhost \(RunLock.hostname())\nstarted 20"), "\(text)")
        let started = text.split(separator: "\n")[2].dropFirst("started ".count)
        #expect(throws: TrainingError.inUse("\(dir) is in use by another training run: process \(getpid()) on"
                                            + " \(RunLock.hostname()), started \(started) (lock file"
                                            + " \(folder.lockFile)); wait for it to end, or train into another"
                                            + " folder")) {
            try RunLock(folder.lockFile)
        }
        #expect(throws: TrainingError.self) { try trainer(dir).run() }
        held.release()
        #expect(!FileManager.default.fileExists(atPath: folder.lockFile))

        // A dead process's lock file (its flock went with it): taken over, and holding this process's id.
        let gone = Process()
        gone.executableURL = URL(fileURLWithPath: "/bin/true")
        try gone.run()
        gone.waitUntilExit()
        try "pid \(gone.processIdentifier)\nhost \(RunLock.hostname())\nstarted 2020-01-01T00:00:00Z\n"
            .write(toFile: folder.lockFile, atomically: false, encoding: .utf8)
        let t = try trainer(dir)
        try t.lockFolder()
        #expect(try String(contentsOfFile: folder.lockFile, encoding: .utf8).hasPrefix("pid \(getpid())\n"))
        try t.run()
        #expect(!FileManager.default.fileExists(atPath: folder.lockFile), "run did not remove its lock")
    }

    /// The watchdog calls out a collective that waits past the timeout, with its name, and not a quick one.
    @Test func watchdogEndsACollectiveThatWaitsTooLong() throws {
        final class Calls: @unchecked Sendable {
            let lock = NSLock()
            var list: [(String, Double)] = []
        }
        let calls = Calls()
        let watchdog = CollectiveWatchdog { call, seconds in
            calls.lock.withLock { calls.list.append((call, seconds)) }
        }
        watchdog.timeout = 0.4
        #expect(watchdog.timeout == 0.4)
        for _ in 0..<5 { _ = watchdog.watch("quick") { usleep(50_000) } }
        _ = watchdog.watch("stuck") { usleep(2_000_000) }
        let fired = calls.lock.withLock { calls.list }
        #expect(fired.map(\.0) == ["stuck"])
        #expect(fired.allSatisfy { $0.1 > 0.4 && $0.1 < 1.5 }, "\(fired)")
        #expect(SingleProcessCommunicator().collectiveTimeout == nil)
    }

    /// A non-finite loss seen by every rank alike (in the summed figures) is one error for rank 0 to print.
    @Test func nonFiniteLossOnSeveralRanksIsReportedOnce() throws {
        var data = TrainingTests.bars(64, seed: 1)
        for i in 0..<64 { data.pixels[i * 64 + 3] = .nan }      // whichever shard this rank takes
        let t = try Trainer<ClassificationTask>(model: try makeClassifier(Self.config, seed: 2), options: options(),
                                                train: data, validation: nil, directory: tempDir("nan"))
        t.quiet = true
        t.communicator = TwinCommunicator()
        do {
            try t.run()
            Issue.record("a non-finite loss was trained on")
        } catch let e as DistributedError {
            #expect(e.everyRank)
            #expect(e.description.hasPrefix("non-finite loss (nan) at step 1 (epoch 1, batch 1)"), "\(e)")
        }
    }

    /// Rank 0 of two whose twin computes what it does: sums double, gathers repeat.
    final class TwinCommunicator: Communicator, @unchecked Sendable {
        var rank: Int { 0 }
        var size: Int { 2 }
        func broadcast(_ values: inout [Float], root: Int) throws {}
        func sumInRankOrder(_ values: inout [Float]) throws { values = values.map { $0 + $0 } }
        func sumInRankOrder(_ values: inout [Double]) throws { values = values.map { $0 + $0 } }
        func allGather(_ bytes: [UInt8]) throws -> [[UInt8]] { [bytes, bytes] }
        func barrier() throws {}
        func abort(code: Int32) -> Never { fatalError("abort \(code)") }
        func finish() {}
    }
}
