import Foundation

/// How a trial ended on its own: all its epochs, an error (its last error line), or, for a trial started from its
/// checkpoint, an error before it resumed (the checkpoint refused: the trial is started again from scratch).
public enum TrialExit: Equatable, Sendable {
    case finished
    case failed(String)
    case refused(String)
}

/// A trial being trained (a child process, or a scripted one in tests).
public protocol TrialRun: AnyObject {
    /// Its process (0 while a rank has yet to start it).
    var pid: Int32 { get }
    /// The MPI rank running it (nil in a search of one process).
    var rank: Int? { get }
    /// The validation metric after each epoch finished so far.
    func metrics() -> [Double]
    /// How it ended, or nil while it runs.
    func exit() -> TrialExit?
    /// Ends it now and waits until it has.
    func stop()
}

/// Starts trials: `train` with the trial's arguments (fixed options, its values, the epochs) into its run folder.
public protocol TrialLauncher: AnyObject {
    /// Starts `trial` in an emptied run folder, or, when `resuming`, from the checkpoint in its run folder (`train
    /// --resume`: its log goes on from the epochs it had logged).
    func start(_ trial: Trial, arguments: [String], resuming: Bool) throws -> any TrialRun
    /// Whether trial `number`'s run folder holds a checkpoint a resumed trial can start from.
    func hasCheckpoint(trial number: Int) -> Bool
    /// Ends a trial's process that an earlier, killed search left running (when it is still that trial's).
    func stopStale(pid: Int32, trial: Int)
    /// Waits a moment before the next look at the running trials.
    func pause() throws
}

extension TrialRun {
    public var rank: Int? { nil }
}

/// Runs a search: keeps `workers` trials running (new ones drawn by the sampler until `maxTrials` are drawn or the
/// trials have run `budgetEpochs` epochs in all), reads each one's metric after every epoch, stops it at an ASHA rung
/// when it falls below the top 1/η, records crashes and non-finite values as failures and goes on, and rewrites the
/// study file after every change. A study read back from its file goes on where it stopped: finished trials are
/// kept, interrupted ones go on from their checkpoint (their logged epochs and rung values kept), or start again
/// from scratch when it is missing or refused. Single-threaded: one loop looks at all trials in turn.
public final class Tuner {
    public private(set) var study: Study
    public let path: String
    let launcher: any TrialLauncher
    let sampler: any Sampler
    public var maxTrials: Int
    public var workers: Int
    public var budgetEpochs: Int?
    /// Progress lines (one per started or ended trial).
    public var log: (String) -> Void = { print($0) }
    /// Called after a trial ends (the CLI rewrites the table and the pictures).
    public var trialEnded: (Study) throws -> Void = { _ in }

    var running: [Int: (run: any TrialRun, started: Date)] = [:]
    /// Trials an earlier, killed search left running, not started again yet.
    var interrupted: Set<Int> = []

    public init(study: Study, path: String, launcher: any TrialLauncher, maxTrials: Int, workers: Int = 1,
                budgetEpochs: Int? = nil) throws {
        guard maxTrials >= 1 else { throw TuningError("--trials must be ≥ 1, got \(maxTrials)") }
        guard (1...256).contains(workers) else { throw TuningError("--workers must be in 1...256, got \(workers)") }
        if let b = budgetEpochs, b < 1 { throw TuningError("--budget must be ≥ 1 epoch, got \(b)") }
        self.study = study
        self.path = path
        self.launcher = launcher
        self.sampler = try study.settings.makeSampler()
        self.maxTrials = maxTrials
        self.workers = workers
        self.budgetEpochs = budgetEpochs
    }

    var sign: Double { study.settings.higherIsBetter ? 1 : -1 }
    var metric: String { study.settings.metric }

    /// Runs until every trial has ended and no more may start; returns the study.
    @discardableResult
    public func run() throws -> Study {
        // Trials an earlier, killed search left running: their processes end; their results so far stay until they
        // start again (from their checkpoint, or from scratch without one).
        for i in study.trials.indices where study.trials[i].state == .running && running[i] == nil {
            if let pid = study.trials[i].pid { launcher.stopStale(pid: pid, trial: i) }
            study.trials[i].pid = nil
            interrupted.insert(i)
        }
        try save()
        while true {
            while running.count < workers, let i = try nextTrial() { try start(i) }
            if running.isEmpty { break }
            for i in running.keys.sorted() { try check(i) }
            if !running.isEmpty { try launcher.pause() }
        }
        return study
    }

    /// The trial to start next: an interrupted one, else a new one while trials and budget remain.
    func nextTrial() throws -> Int? {
        if let i = study.trials.firstIndex(where: { $0.state == .running && running[$0.number] == nil }) { return i }
        guard study.trials.count < maxTrials, budgetEpochs.map({ study.epochsRun < $0 }) ?? true else { return nil }
        let n = study.trials.count
        let values = sampler.sample(study.settings.space, number: n, trials: study.trials,
                                    higherIsBetter: study.settings.higherIsBetter)
        study.trials.append(Trial(number: n, params: values))
        return n
    }

    /// Starts trial `i` and records its process: an interrupted trial from its checkpoint when it has one.
    func start(_ i: Int) throws {
        var resuming = false
        if interrupted.remove(i) != nil {
            if launcher.hasCheckpoint(trial: i) {
                resuming = true
                note(i, "resumed from its checkpoint (epochs recorded: \(study.trials[i].metrics.count))")
            } else {
                restartFromScratch(i, why: "no checkpoint")
            }
        }
        let t = study.trials[i]
        let args = study.settings.trainArguments + study.settings.space.arguments(t.params)
            + ["--epochs", String(study.settings.epochs)]
        let run: any TrialRun
        do {
            run = try launcher.start(t, arguments: args, resuming: resuming)
        } catch {
            study.trials[i].state = .failed
            study.trials[i].message = "cannot start: \(error)"
            log("trial \(i) failed: cannot start: \(error)")
            try save()
            return
        }
        running[i] = (run, Date())
        study.trials[i].pid = run.pid
        study.trials[i].rank = run.rank
        study.trials[i].starts += 1
        let how = resuming ? " again from its checkpoint" : t.starts > 0 ? " again from scratch" : ""
        log("trial \(i) started\(how): " + describe(t.params))
        try save()
    }

    /// Forgets what trial `i` reported (its epochs, its rung values) before it starts again from scratch.
    func restartFromScratch(_ i: Int, why: String) {
        study.trials[i].metrics = []
        for k in study.rungs.indices { study.rungs[k].removeAll { $0.trial == i } }
        note(i, "started again from scratch: \(why)")
    }

    /// Adds a line to trial `i`'s restart notes (kept in its message when it ends).
    func note(_ i: Int, _ line: String) {
        study.trials[i].restarts = (study.trials[i].restarts ?? []) + [line]
    }

    /// Reads trial `i`'s new epochs, judges it at rungs, and records its end.
    func check(_ i: Int) throws {
        guard let (run, started) = running[i] else { return }
        let exit = run.exit()           // first: an ended run's log is complete
        if case let .refused(message)? = exit {
            // Its checkpoint was refused before it trained: nothing new was logged; it starts again from scratch.
            running[i] = nil
            study.trials[i].pid = nil
            study.trials[i].seconds += Date().timeIntervalSince(started)
            restartFromScratch(i, why: "checkpoint refused (\(message))")
            log("trial \(i): checkpoint refused (\(message))")
            try start(i)
            return
        }
        let reported = run.metrics()
        var changed = false
        if exit == nil && study.trials[i].pid != run.pid {       // a rank has started it
            study.trials[i].pid = run.pid
            changed = true
        }
        for e in study.trials[i].metrics.count..<max(reported.count, study.trials[i].metrics.count)
            where e < reported.count {
            let value = reported[e]
            guard value.isFinite else {
                if exit == nil { run.stop() }
                try end(i, .failed, "non-finite \(metric) (\(value)) after epoch \(e + 1)", started: started)
                return
            }
            study.trials[i].metrics.append(value)
            changed = true
            if let halving = study.settings.halving, let k = halving.rung(at: e + 1) {
                study.rungs[k].append(RungEntry(trial: i, value: value * sign))
                let recorded = study.rungs[k].map(\.value)
                if !SuccessiveHalving.promotes(value * sign, recorded: recorded, eta: halving.eta) {
                    if exit == nil { run.stop() }
                    let kept = max(recorded.count / halving.eta, 1)
                    try end(i, .pruned, String(format: "stopped at epoch %d: %@ %.4f not in the top %d of %d at"
                                               + " that rung", e + 1, metric, value, kept, recorded.count),
                            started: started)
                    return
                }
            }
        }
        switch exit {
        case nil:
            if changed { try save() }
        case .finished?:
            let n = study.trials[i].metrics.count, want = study.settings.epochs
            try end(i, n > 0 ? .completed : .failed,
                    n >= want ? nil : n > 0 ? "ended after \(n) of \(want) epochs" : "ended without a finished epoch",
                    started: started)
        case let .failed(message)?, let .refused(message)?:
            try end(i, .failed, message, started: started)
        }
    }

    /// Records that trial `i` ended in `state`.
    func end(_ i: Int, _ state: Trial.State, _ message: String?, started: Date) throws {
        running[i] = nil
        study.trials[i].state = state
        let notes = study.trials[i].restarts ?? []
        study.trials[i].message = message == nil && notes.isEmpty ? nil
            : ([message].compactMap { $0 } + notes).joined(separator: "; ")
        study.trials[i].pid = nil
        study.trials[i].seconds += Date().timeIntervalSince(started)
        study.trials[i].searchEpochsAtEnd = study.epochsRun
        let t = study.trials[i]
        let best = t.best(higherIsBetter: study.settings.higherIsBetter)
        var line = "trial \(i) \(state.rawValue)"
        if let best { line += String(format: ": best %@ %.4f (epoch %d)", metric, best.value, best.epoch) }
        if let message { line += (best == nil ? ": " : "; ") + message }
        log(line + String(format: " [%.0f s; %d epochs in all]", t.seconds, study.epochsRun))
        try save()
        try trialEnded(study)
    }

    /// "hidden 64, lr 0.001, …" in the space's order.
    func describe(_ values: [String: ParameterValue]) -> String {
        study.settings.space.parameters.compactMap { p in values[p.name].map { "\(p.name) \($0)" } }
            .joined(separator: ", ")
    }

    func save() throws { try study.write(to: path) }
}
