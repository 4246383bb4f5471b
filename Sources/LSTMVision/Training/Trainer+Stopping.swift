import Foundation

extension Trainer {
    /// Takes the run folder's lock (`RunLock`; once, later calls do nothing): rank 0 holds it, and when another
    /// run does, every rank throws (rank 0's message). `run` calls it first; call it before `resume` to refuse
    /// before reading the folder's checkpoint.
    public func lockFolder() throws {
        guard !locked else { return }
        var refusal: Error?
        if communicator.isRoot {
            do { lock = try RunLock(folder.lockFile) } catch { refusal = error }
        }
        if communicator.size > 1 {
            var refused = [refusal == nil ? 0.0 : 1.0]
            try communicator.sumInRankOrder(&refused)
            if refused[0] > 0 {
                throw DistributedError(refusal.map { "\($0)" } ?? "rank 0 could not lock \(folder.lockFile)",
                                       everyRank: true)
            }
        } else if let refusal {
            throw refusal
        }
        locked = true
        if lock != nil && StopSignals.installed.load(ordering: .relaxed) { StopSignals.setLockPath(folder.lockFile) }
    }

    /// Releases the run folder's lock (the end of `run`, however it ends).
    func unlockFolder() {
        if lock != nil && StopSignals.installed.load(ordering: .relaxed) { StopSignals.setLockPath(nil) }
        lock?.release()
        lock = nil
        locked = false
    }

    /// Runs `body`, which writes the run's files. A failure (a full disk, say) stops the run with one
    /// `TrainingError.write`: the writer's message (the file and why), then what is still there to resume from.
    /// Every file is written atomically or appended, so the last checkpoint is intact.
    func writing<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch {
            let kept = lastCheckpointStep.map {
                "the previous checkpoint \(folder.state) (after step \($0)) is kept intact; free some space, then"
                    + " resume from it with --resume"
            } ?? "no checkpoint had been written yet"
            throw TrainingError.write("\(error); \(kept)")
        }
    }

    /// Ends the run after a step on which every rank saw `signal` (by the step's exchange): rank 0 writes the
    /// checkpoint, the ranks wait for it (so that none exits before it is written), and every rank throws
    /// `TrainingStopped`.
    func stop(_ signal: Int32, batches: Int) throws -> Never {
        if communicator.isRoot {
            if batchIndex > 0 { try writing { try saveLast() } }        // at an epoch's end, `endEpoch` did
            try writing { try events?.flush() }
        }
        if communicator.size > 1 { try communicator.barrier() }
        throw TrainingStopped(signal: signal, epoch: epoch, batch: batchIndex, step: step, batchesPerEpoch: batches,
                              checkpoint: folder.state)
    }
}
