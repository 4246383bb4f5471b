import Foundation

/// One rank's part of a search under MPI: it carries out rank 0's orders addressed to it (start, stop and score
/// trials as child processes on its own machine, their folders under its `out`), and reports its trials' progress
/// each round. Rank 0 has one too (its `RankTrialLauncher` runs its own trials through it); the other ranks run
/// `follow` until rank 0 says the search is over.
public final class RankTrials {
    public let world: any Communicator
    public let executable: String
    public let out: String
    /// Trials this rank runs at once.
    public let slots: Int
    /// Seconds between rounds.
    public var interval: Double = 0.5
    var runs: [Int: ChildTrial] = [:]
    /// Trials that could not start: reported failed in the next round.
    var unstarted: [Int: String] = [:]
    var scoring: [Int: (pid: Int32, output: String, errors: String)] = [:]
    var scored: [ScoreEvent] = []

    public init(world: any Communicator, executable: String, out: String, slots: Int) {
        (self.world, self.executable, self.out, self.slots) = (world, executable, out, slots)
    }

    /// The first report: slots and the checkpoints in this machine's trial folders.
    func hello() -> RankReport {
        RankReport(slots: slots, checkpoints: ProcessTrialLauncher.checkpointed(out: out))
    }

    /// A rank other than 0: the first round, then rounds until rank 0 orders `done`.
    public func follow() throws {
        var report = hello()
        while true {
            let (_, orders) = try TuningRound.run(report, orders: [], over: world)
            if try carryOut(orders) { return }
            usleep(UInt32(interval * 1e6))
            report = poll()
        }
    }

    /// Carries out the orders addressed to this rank, in order; true when the search is over (`done`).
    func carryOut(_ orders: [TuningOrder]) throws -> Bool {
        var over = false
        for order in orders {
            switch order {
            case let .stale(trial, pid):
                ProcessTrialLauncher.stopStale(pid: pid, folder: ProcessTrialLauncher.folder(out: out, number: trial))
            case let .stop(trial, rank) where rank == world.rank:
                runs.removeValue(forKey: trial)?.stop()
            case let .start(trial, rank, folder, words, metric, resuming) where rank == world.rank:
                do {
                    runs[trial] = try ProcessTrialLauncher.launch(executable: executable, words: words, folder: folder,
                                                                  metric: metric, resuming: resuming)
                } catch {
                    unstarted[trial] = "cannot start: \(error)"
                }
            case let .score(trial, rank, words, output, errors) where rank == world.rank:
                do {
                    let pid = try ProcessTrialLauncher.spawn([executable] + words, stdout: output, stderr: errors,
                                                             environment: [])
                    scoring[trial] = (pid, output, errors)
                } catch {
                    scored.append(ScoreEvent(trial: trial, status: -1, output: "", error: "\(error)"))
                }
            case .done:
                over = true
            default:
                break
            }
        }
        return over
    }

    /// This rank's report: every trial's metrics so far, the ended ones once (then forgotten), finished scores.
    func poll() -> RankReport {
        var report = RankReport()
        for (trial, message) in unstarted.sorted(by: { $0.key < $1.key }) {
            report.trials.append(TrialEvent(trial: trial, pid: 0, metrics: [], exit: .failed(message)))
        }
        unstarted = [:]
        for (trial, run) in runs.sorted(by: { $0.key < $1.key }) {
            let exit = run.exit()           // first: an ended run's log is complete
            report.trials.append(TrialEvent(trial: trial, pid: run.pid, metrics: run.metrics(), exit: exit))
            if exit != nil { runs[trial] = nil }
        }
        for (trial, s) in scoring.sorted(by: { $0.key < $1.key }) {
            var status: Int32 = 0
            guard waitpid(s.pid, &status, WNOHANG) == s.pid else { continue }
            let output = (try? String(contentsOfFile: s.output, encoding: .utf8)) ?? ""
            let error = (try? String(contentsOfFile: s.errors, encoding: .utf8))?
                .split(whereSeparator: \.isNewline).last.map(String.init)
            scored.append(ScoreEvent(trial: trial, status: status, output: output, error: error))
            scoring[trial] = nil
        }
        report.scores = scored
        scored = []
        return report
    }
}

/// Rank 0's launcher under MPI: trials spread over the ranks' slots (an interrupted one on a rank whose machine
/// holds its checkpoint, the one that ran it if it can; a new one on the rank with the most free slots, the lowest
/// on ties: a rank may run one more than its slots when its checkpoints ask for it); each `pause` is a
/// round in which the ranks report their trials and rank 0 sends the orders decided since the last one.
public final class RankTrialLauncher: TrialLauncher {
    public let ranks: RankTrials
    public let task: String
    public let threads: Int
    public let metric: String
    /// Every rank's slots, and the ranks whose machine holds each checkpointed trial, from the first round.
    public private(set) var slots: [Int] = []
    public private(set) var checkpoints: [Int: [Int]] = [:]
    var pending: [TuningOrder] = []
    var live: [Int: RankTrial] = [:]
    var scores: [Int: ScoreEvent] = [:]

    /// Runs the first round (every rank's slots and checkpoints).
    public init(ranks: RankTrials, task: String, threads: Int, metric: String) throws {
        (self.ranks, self.task, self.threads, self.metric) = (ranks, task, threads, metric)
        let (reports, _) = try TuningRound.run(ranks.hello(), orders: [], over: ranks.world)
        slots = reports.map { $0.slots ?? 0 }
        for (rank, report) in reports.enumerated() {
            for trial in report.checkpoints ?? [] { checkpoints[trial, default: []].append(rank) }
        }
    }

    /// Trials all ranks run at once.
    public var totalSlots: Int { slots.reduce(0, +) }

    public func start(_ trial: Trial, arguments: [String], resuming: Bool) throws -> any TrialRun {
        let busy = (0..<slots.count).map { r in live.values.filter { $0.rank == r && $0.ended == nil }.count }
        let candidates = resuming ? checkpoints[trial.number] ?? [] : Array(slots.indices)
        var rank = candidates.first ?? 0
        for r in candidates where slots[r] - busy[r] > slots[rank] - busy[rank] { rank = r }
        if resuming, let last = trial.rank, candidates.contains(last) { rank = last }
        let local = ProcessTrialLauncher(executable: ranks.executable, task: task, out: ranks.out, threads: threads,
                                         metric: metric)
        pending.append(.start(trial: trial.number, rank: rank,
                              folder: ProcessTrialLauncher.folder(out: ranks.out, number: trial.number),
                              words: local.commandLine(trial, arguments: arguments, resuming: resuming),
                              metric: metric, resuming: resuming))
        if !resuming { checkpoints[trial.number] = nil }
        let run = RankTrial(launcher: self, number: trial.number, rank: rank)
        live[trial.number] = run
        return run
    }

    public func hasCheckpoint(trial number: Int) -> Bool { checkpoints[number] != nil }

    public func stopStale(pid: Int32, trial: Int) { pending.append(.stale(trial: trial, pid: pid)) }

    public func pause() throws {
        usleep(UInt32(ranks.interval * 1e6))
        try round()
    }

    /// One round: rank 0's own trials carried out and polled like every rank's, the reports applied to the trials.
    func round(_ extra: [TuningOrder] = []) throws {
        let orders = pending + extra
        pending = []
        let (reports, _) = try TuningRound.run(ranks.poll(), orders: orders, over: ranks.world)
        _ = try ranks.carryOut(orders)
        for report in reports {
            for e in report.trials {
                guard let run = live[e.trial], run.ended == nil else { continue }
                run.pid = e.pid
                run.reported = e.metrics
                if let exit = e.trialExit {
                    run.ended = exit
                    live[e.trial] = nil
                }
            }
            for s in report.scores { scores[s.trial] = s }
        }
    }

    /// Runs `words` (a score of trial `trial`'s model) on the rank that ran the trial, its stdout into `output` and
    /// its stderr into `errors` on that machine; returns its exit status, output and last error line, after as many
    /// rounds as it takes.
    public func score(trial: Int, rank: Int, words: [String], output: String, errors: String) throws -> ScoreEvent {
        pending.append(.score(trial: trial, rank: rank, words: words, output: output, errors: errors))
        while scores[trial] == nil { try pause() }
        return scores.removeValue(forKey: trial)!
    }

    /// The last round: the orders still pending, then `done` (every rank leaves its loop).
    public func close() throws { try round([.done]) }

    /// A trial running on a rank, as its reports show it.
    final class RankTrial: TrialRun {
        unowned let launcher: RankTrialLauncher
        let number: Int
        let rank: Int?
        var pid: Int32 = 0
        var reported: [Double] = []
        var ended: TrialExit?

        init(launcher: RankTrialLauncher, number: Int, rank: Int) {
            (self.launcher, self.number, self.rank) = (launcher, number, rank)
        }

        func metrics() -> [Double] { reported }
        func exit() -> TrialExit? { ended }

        /// Ended here at once; its rank ends its process at the next round (before any start there).
        func stop() {
            guard ended == nil else { return }
            ended = .failed("stopped")
            launcher.live[number] = nil
            launcher.pending.append(.stop(trial: number, rank: rank!))
        }
    }
}
