import Foundation
import Testing
@testable import LSTMVision
@testable import LSTMVisionCore

/// The search: space files, the samplers (seeded; TPE against Optuna's own numbers), the ASHA rule, and the tuner
/// loop with scripted trials (pruning, failures, resuming after the search was killed).
@Suite struct TuningTests {
    static let fixtures = FileFormatTests.repoRoot + "/Tests/LSTMVisionTests/Fixtures/tuning"

    // MARK: space files

    @Test func readsTheIssueSpace() throws {
        let space = try SearchSpace.read(Self.fixtures + "/space.yaml")
        #expect(space.parameters.map(\.name) == ["hidden", "layers", "bidirectional", "lr", "batch-size", "dropout"])
        #expect(space.parameters.map(\.line) == [2, 3, 4, 5, 6, 7])
        #expect(space.parameters[0].domain == .int(low: 32, high: 512, log: true))
        #expect(space.parameters[1].domain == .int(low: 1, high: 3, log: false))
        #expect(space.parameters[2].domain == .choice([.bool(false), .bool(true)]))
        #expect(space.parameters[3].domain == .float(low: 1e-4, high: 1e-2, log: true))
        #expect(space.parameters[5].domain == .float(low: 0, high: 0.5, log: false))
        // The same space as JSON, option names with their dashes.
        let json = try SearchSpace.parse("""
            {"--hidden": {"int": [32, 512], "log": true}, "layers": {"int": [1, 3]},
             "bidirectional": {"choice": [false, true]}, "lr": {"float": [1e-4, 1e-2], "log": true},
             "batch-size": {"int": [32, 256], "log": true}, "dropout": {"float": [0, 0.5]}}
            """, source: "space.json")
        #expect(json.parameters.map(\.domain) == space.parameters.map(\.domain))
        // A trial's train words: flags only when true, values as train reads them.
        let words = space.arguments(["hidden": .int(64), "layers": .int(2), "bidirectional": .bool(true),
                                     "lr": .float(0.001), "batch-size": .int(100), "dropout": .float(0.25)])
        #expect(words == ["--hidden", "64", "--layers", "2", "--bidirectional", "--lr", "0.001", "--batch-size", "100",
                          "--dropout", "0.25"])
        #expect(space.arguments(["bidirectional": .bool(false)]) == [])
        let words2 = try SearchSpace.parse("model: {choice: [row, patch]}\nforget-bias: {choice: [none, '1']}",
                                           source: "s").parameters.map(\.domain)
        #expect(words2 == [.choice([.string("row"), .string("patch")]), .choice([.string("none"), .string("1")])])
    }

    @Test(arguments: [
        ("hidden: {int: [64, 32]}", "s.yaml: line 1: 'hidden': empty range [64, 32] (low above high)"),
        ("lr: {float: [0.1, 0.01]}", "s.yaml: line 1: 'lr': empty range [0.1, 0.01] (low above high)"),
        ("lr: {float: [0, 0.01], log: true}", "s.yaml: line 1: 'lr': a log range must be above zero, got [0.0, 0.01]"),
        ("x: 1\nhidden: {int: [-4, 8], log: true}", "line 1: 'x' must be {choice"),
        ("hidden: {int: [-4, 8], log: true}", "s.yaml: line 1: 'hidden': a log range must be above zero, got [-4, 8]"),
        ("hidden: {choice: []}", "s.yaml: line 1: 'hidden': empty choice"),
        ("hidden: {choice: [1, 1]}", "'hidden': a choice is listed twice"),
        ("hidden: {int: [1.5, 8]}", "'hidden': int must be [low, high] with two integers, got [1.5, 8]"),
        ("hidden: {int: [1, 2, 3]}", "'hidden': int must be [low, high]"),
        ("lr: {float: [a, 1]}", "'lr': float must be [low, high] with two finite numbers"),
        ("hidden: {int: [1, 8], step: 2}", "'hidden': unknown key 'step' (expected choice, int or float, and log)"),
        ("hidden: {int: [1, 8], float: [1, 2]}", "'hidden' has both int and float"),
        ("hidden: {choice: [1, 2], log: true}", "log applies to int and float ranges, not to a choice"),
        ("hidden: {int: [1, 8], log: maybe}", "'hidden': log must be true or false"),
        ("layers: {int: [1, 2]}\nhidden: {int: [1, 8]}\nlayers: {int: [1, 3]}",
         "s.yaml: malformed YAML: Parser: expected all keys to be unique"),
        ("- hidden\n- layers", "s.yaml: expected a mapping of train options"),
        ("", "s.yaml: expected a mapping"),
        ("hidden: {int: [1, 8]", "s.yaml: malformed YAML"),
        ("'hid den': {int: [1, 8]}", "'hid den' is not an option name"),
    ])
    func refusesBadSpaces(text: String, message: String) {
        #expect {
            try SearchSpace.parse(text, source: "s.yaml")
        } throws: { error in
            "\(error)".contains(message) && !"\(error)".contains("\n")
        }
    }

    @Test func checksProbesAgainstTrain() throws {
        let space = try SearchSpace.parse("hidden: {int: [0, 8]}\nlr: {float: [1.0e-3, 1.0e-2], log: true}",
                                          source: "s.yaml")
        var seen: [[String]] = []
        #expect {
            try space.validate(source: "s.yaml", fixed: ["--limit", "10"], reserved: ["epochs"]) { words in
                seen.append(words)
                if words.contains("0") { throw TuningError("--hidden must be in 1...8192, got 0") }
            }
        } throws: {
            "\($0)" == "s.yaml: line 1: 'hidden': train refuses --hidden 0: --hidden must be in 1...8192, got 0"
        }
        #expect(seen == [["--limit", "10", "--hidden", "0"]])
        let reserved = try SearchSpace.parse("epochs: {int: [1, 4]}", source: "s.yaml")
        #expect {
            try reserved.validate(source: "s.yaml", fixed: [], reserved: ["epochs"]) { _ in }
        } throws: { "\($0)" == "s.yaml: line 1: 'epochs' is set by tune itself and cannot be searched" }
    }

    // MARK: ASHA

    /// Nine trials reach a rung in turn (η = 3); worked by hand: the top ⌊n/3⌋ (at least 1) of the n values so far,
    /// the newcomer's own included, go on.
    @Test func ashaPromotesTheTopThirdSoFar() throws {
        let values = [0.50, 0.40, 0.60, 0.55, 0.70, 0.58, 0.30, 0.65, 0.62]
        // n=1 0.50 best; n=2 0.40 < 0.50; n=3 0.60 best; n=4 0.55 < 0.60; n=5 0.70 best; n=6 top 2 are 0.70, 0.60:
        // 0.58 out; n=7 0.30 out; n=8 top 2 are 0.70, 0.65: in; n=9 top 3 are 0.70, 0.65, 0.62: in.
        let expected = [true, false, true, false, true, false, false, true, true]
        var recorded: [Double] = [], got: [Bool] = []
        for v in values {
            recorded.append(v)
            got.append(SuccessiveHalving.promotes(v, recorded: recorded, eta: 3))
        }
        #expect(got == expected)
        #expect(!SuccessiveHalving.promotes(.nan, recorded: [.nan], eta: 3))
        #expect(try SuccessiveHalving(minEpochs: 1, eta: 3, maxEpochs: 9).rungs == [1, 3])
        #expect(try SuccessiveHalving(minEpochs: 1, eta: 3, maxEpochs: 27).rungs == [1, 3, 9])
        #expect(try SuccessiveHalving(minEpochs: 2, eta: 2, maxEpochs: 17).rungs == [2, 4, 8, 16])
        #expect(try SuccessiveHalving(minEpochs: 4, eta: 3, maxEpochs: 4).rungs == [])
        #expect(throws: TuningError("--eta must be ≥ 2, got 1")) {
            try SuccessiveHalving(minEpochs: 1, eta: 1, maxEpochs: 4)
        }
        #expect(throws: TuningError("--epochs (2) must be at least --min-epochs (3)")) {
            try SuccessiveHalving(minEpochs: 3, eta: 3, maxEpochs: 2)
        }
    }

    // MARK: samplers

    static let space = try! SearchSpace.read(fixtures + "/space.yaml")

    @Test func randomSamplerIsSeededAndInRange() {
        let s = RandomSampler(seed: 42)
        let a = s.sample(Self.space, number: 0, trials: [], higherIsBetter: true)
        #expect(a == s.sample(Self.space, number: 0, trials: [], higherIsBetter: true))
        #expect(a != s.sample(Self.space, number: 1, trials: [], higherIsBetter: true))
        #expect(a != RandomSampler(seed: 43).sample(Self.space, number: 0, trials: [], higherIsBetter: true))
        #expect(a == RandomSamplerExpected.trial0)
        var hidden: [Int] = []
        for n in 0..<400 {
            let v = s.sample(Self.space, number: n, trials: [], higherIsBetter: true)
            guard case let .int(h) = v["hidden"], case let .int(l) = v["layers"], case let .float(lr) = v["lr"],
                  case let .float(d) = v["dropout"], case .bool = v["bidirectional"] else {
                Issue.record("wrong kinds: \(v)")
                return
            }
            #expect((32...512).contains(h) && (1...3).contains(l) && (1e-4...1e-2).contains(lr)
                    && (0...0.5).contains(d))
            hidden.append(h)
        }
        // Log-uniform: about half the draws below √(32·512) ≈ 128.
        let below = hidden.filter { $0 < 128 }.count
        #expect((160...240).contains(below), "hidden below 128: \(below) of 400")
    }

    /// Trials of the Optuna fixture, as LSTMVision holds them.
    static func fixtureScenarios() throws -> [(name: String, trials: [Trial], reference: [String: Any])] {
        let data = try Data(contentsOf: URL(fileURLWithPath: fixtures + "/tpe_reference.json"))
        let root = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        return (root["scenarios"] as! [[String: Any]]).map { s in
            let trials = (s["history"] as! [[String: Any]]).map { h -> Trial in
                let p = h["params"] as! [String: Any]
                var t = Trial(number: h["number"] as! Int, params: [
                    "hidden": .int(p["hidden"] as! Int), "batch-size": .int(p["batch-size"] as! Int),
                    "lr": .float(p["lr"] as! Double), "dropout": .float(p["dropout"] as! Double),
                    "bidirectional": .bool(p["bidirectional"] as! Bool)])
                t.state = h["state"] as! String == "pruned" ? .pruned : .completed
                t.metrics = h["metrics"] as! [Double]
                return t
            }
            return (s["name"] as! String, trials, s)
        }
    }

    /// The space of the fixture, in its order (hidden, batch-size, lr, dropout, bidirectional).
    static let fixtureSpace = try! SearchSpace.parse("""
        hidden: {int: [32, 512], log: true}
        batch-size: {int: [16, 1024]}
        lr: {float: [1.0e-4, 1.0e-2], log: true}
        dropout: {float: [0, 0.5]}
        bidirectional: {choice: [false, true]}
        """, source: "fixture")

    /// `trials` with every metric negated (a metric better lower, with the same ranking).
    static func negated(_ trials: [Trial]) -> [Trial] {
        trials.map { t in
            var t = t
            t.metrics = t.metrics.map { -$0 }
            return t
        }
    }

    @Test func tpeMatchesOptuna() throws {
        for (name, trials, ref) in try Self.fixtureScenarios() {
            let n = TPESampler.gamma(trials.count)
            #expect(n == ref["n_below"] as! Int, "\(name)")
            let (below, above) = TPESampler.split(trials, count: n, higherIsBetter: true)
            #expect(below.map(\.number) == ref["below"] as! [Int], "\(name)")
            #expect(above.map(\.number) == ref["above"] as! [Int], "\(name)")
            // A metric that is better lower, negated: the same split.
            let (lowBelow, lowAbove) = TPESampler.split(Self.negated(trials), count: n, higherIsBetter: false)
            #expect(lowBelow.map(\.number) == below.map(\.number) && lowAbove.map(\.number) == above.map(\.number))
            let good = ParzenEstimator(space: Self.fixtureSpace,
                                       observations: below.map { TPESampler.point(Self.fixtureSpace, $0.params)! })
            let bad = ParzenEstimator(space: Self.fixtureSpace,
                                      observations: above.map { TPESampler.point(Self.fixtureSpace, $0.params)! })
            let probes = ref["probes"] as! [String: [Double]]
            let names = ["hidden", "batch-size", "lr", "dropout", "bidirectional"]
            for (i, (l, g)) in zip(ref["log_l"] as! [Double], ref["log_g"] as! [Double]).enumerated() {
                let x = names.map { probes[$0]![i] }
                #expect(abs(good.logPDF(x) - l) < 1e-9, "\(name) probe \(i): log l \(good.logPDF(x)) vs Optuna's \(l)")
                #expect(abs(bad.logPDF(x) - g) < 1e-9, "\(name) probe \(i): log g \(bad.logPDF(x)) vs Optuna's \(g)")
            }
        }
    }

    @Test func tpeIsSeededAndFollowsTheGoodTrials() throws {
        let trials = try Self.fixtureScenarios()[0].trials
        let tpe = TPESampler(seed: 5)
        let a = tpe.sample(Self.fixtureSpace, number: 30, trials: trials, higherIsBetter: true)
        #expect(a == tpe.sample(Self.fixtureSpace, number: 30, trials: trials, higherIsBetter: true))
        #expect(a == TPESamplerExpected.trial30)
        // Minimising the negated metric draws the same.
        #expect(tpe.sample(Self.fixtureSpace, number: 30, trials: Self.negated(trials), higherIsBetter: false) == a)
        // Before ten trials have finished it draws at random, as the random sampler does.
        #expect(tpe.sample(Self.fixtureSpace, number: 9, trials: Array(trials.prefix(9)), higherIsBetter: true)
                == RandomSampler(seed: 5).sample(Self.fixtureSpace, number: 9, trials: [], higherIsBetter: true))
        // On a made-up objective TPE ends nearer its optimum than random draws, over several seeds.
        func objective(_ v: [String: ParameterValue]) -> Double {
            let lr = log10(v["lr"]!.number!) + 2.5, h = log2(v["hidden"]!.number! / 128)
            return 1 - lr * lr - 0.1 * h * h - (v["bidirectional"] == .bool(true) ? 0 : 0.2)
        }
        func search(_ sampler: any Sampler) -> Double {
            var done: [Trial] = []
            for n in 0..<30 {
                var t = Trial(number: n, params: sampler.sample(Self.fixtureSpace, number: n, trials: done,
                                                                higherIsBetter: true))
                t.metrics = [objective(t.params)]
                t.state = .completed
                done.append(t)
            }
            return done.map { $0.metrics[0] }.max()!
        }
        let seeds: [UInt64] = [1, 2, 3, 4]
        let tpeMean = seeds.map { search(TPESampler(seed: $0)) }.reduce(0, +) / 4
        let randomMean = seeds.map { search(RandomSampler(seed: $0)) }.reduce(0, +) / 4
        #expect(tpeMean > randomMean, "TPE \(tpeMean), random \(randomMean)")
    }

    /// The hyperparameter pictures' scatter chart: points in their group's colour where the axes put them (320×200:
    /// plot area x 64…304, y 164…34; log10 x from 0 to 2, y from 0 to 1); a non-finite point is left out.
    @Test func scatterChartPlacesPoints() {
        let chart = Plot.scatterChart(groups: [("a", [(x: 1, y: 0), (x: 100, y: 1), (x: .nan, y: 0.5)]),
                                               ("b", [(x: 10, y: 0.5)])],
                                      title: "t", xLabel: "x", logX: true, width: 320, height: 200)
        func colour(_ x: Int, _ y: Int) -> Colour {
            let i = (y * 320 + x) * 3
            return Colour(chart.pixels[i], chart.pixels[i + 1], chart.pixels[i + 2])
        }
        #expect(colour(64, 164) == Colour.palette[0])
        #expect(colour(304, 34) == Colour.palette[0])
        #expect(colour(184, 99) == Colour.palette[1])
        #expect(colour(124, 99) == .white)
    }

    // MARK: the tuner loop

    /// Trial i's metric per epoch (nil: it crashes before its first epoch).
    static let curves: [[Double]?] = [
        [0.50, 0.60, 0.70, 0.80],   // rung 1: first, on; rung 2: first, on; completes
        [0.40, 0.50, 0.60, 0.70],   // rung 1: 0.40 below 0.50 (top 1 of 2): stopped after epoch 1
        [0.55, 0.58, 0.70, 0.90],   // rung 1: best of 3, on; rung 2: 0.58 below 0.60 (top 1 of 2): stopped after 2
        [0.45, 0.50, 0.55, 0.60],   // rung 1: top 2 of 4 are 0.55, 0.50: stopped after epoch 1
        [0.52, 0.65, 0.66, 0.67],   // rung 1: top 2 of 5 are 0.55, 0.52: on; rung 2: best of 3: on; completes
        [.nan],                     // a non-finite validation metric: failed
        nil,                        // crashes: failed with its message
    ]
    static let expectedStates: [Trial.State] = [.completed, .pruned, .pruned, .pruned, .completed, .failed, .failed]

    static func settings() throws -> StudySettings {
        StudySettings(task: "classification", metric: "val_accuracy", higherIsBetter: true, space: space,
                      sampler: "random", seed: 9, trainArguments: ["--limit", "100"], epochs: 4,
                      halving: try SuccessiveHalving(minEpochs: 1, eta: 2, maxEpochs: 4))
    }

    static func temporaryStudy(_ name: String) -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tuning-\(getpid())-\(name)").path
        try? FileManager.default.removeItem(atPath: dir)
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return Study.path(in: dir)
    }

    @Test func tunerPrunesRecordsFailuresAndKeepsTheStudy() throws {
        let path = Self.temporaryStudy("loop"), launcher = ScriptedLauncher(curves: Self.curves)
        let tuner = try Tuner(study: Study(settings: try Self.settings()), path: path, launcher: launcher,
                              maxTrials: 7)
        tuner.log = { _ in }
        let study = try tuner.run()
        #expect(study.trials.map(\.state) == Self.expectedStates)
        #expect(study.trials.map(\.metrics.count) == [4, 1, 2, 1, 4, 0, 0])
        #expect(study.trials[5].message == "non-finite val_accuracy (nan) after epoch 1")
        #expect(study.trials[6].message == "out of memory (exit status 1)")
        #expect(study.trials[1].message == "stopped at epoch 1: val_accuracy 0.4000 not in the top 1 of 2 at that rung")
        #expect(study.trials[2].message == "stopped at epoch 2: val_accuracy 0.5800 not in the top 1 of 2 at that rung")
        #expect(study.rungs.map { $0.map(\.trial) } == [[0, 1, 2, 3, 4], [0, 2, 4]])
        #expect(study.bestTrial?.number == 0)
        #expect(study.epochsRun == 12)
        #expect(launcher.stopped == [1, 2, 3])
        #expect(try Study.read(path) == study)
        // The table.
        let csv = TuningReport.csv(study).split(separator: "\n")
        #expect(csv[0] == "trial,state,hidden,layers,bidirectional,lr,batch-size,dropout,epochs,best_val_accuracy,"
                + "best_epoch,last_val_accuracy,seconds,message")
        #expect(csv[1].hasPrefix("0,completed,") && csv[1].hasSuffix(",4,0.8,4,0.8,0.0,"))
        #expect(csv[2].hasSuffix(",1,0.4,1,0.4,0.0,stopped at epoch 1: val_accuracy 0.4000 not in the top 1 of 2 at"
                                 + " that rung"))
        // Best so far against compute: nothing completed before epoch 4, trial 0's 0.8 after.
        let curve = TuningReport.bestSoFar(study)
        #expect(curve.count == 12 && curve[2].isNaN && curve[3] == 0.8 && curve[11] == 0.8)
    }

    /// Three workers: three trials run at once; the failures are still failures and every trial ends.
    @Test func workersRunTrialsTogether() throws {
        let launcher = ScriptedLauncher(curves: Self.curves)
        let tuner = try Tuner(study: Study(settings: try Self.settings()), path: Self.temporaryStudy("workers"),
                              launcher: launcher, maxTrials: 7, workers: 3)
        tuner.log = { _ in }
        let study = try tuner.run()
        #expect(launcher.mostRunning == 3)
        #expect(study.trials.count == 7 && study.trials.allSatisfy(\.isFinished))
        #expect(study.trials[5].state == .failed && study.trials[6].state == .failed)
        #expect(study.trials[0].state == .completed)
    }

    @Test func budgetStopsNewTrials() throws {
        let tuner = try Tuner(study: Study(settings: try Self.settings()), path: Self.temporaryStudy("budget"),
                              launcher: ScriptedLauncher(curves: Self.curves), maxTrials: 7, budgetEpochs: 6)
        tuner.log = { _ in }
        // Trials 0 (4 epochs) and 1 (1) leave 5 < 6: trial 2 starts; after its 2 epochs no more.
        #expect(try tuner.run().trials.count == 3)
    }

    /// A search killed after two trials ended, while trial 2 ran (process 4242) and had logged epoch 1 (0.55, recorded
    /// at the first rung): its study file at `path`.
    static func interruptedStudy(_ path: String) throws {
        struct Killed: Error {}
        let first = ScriptedLauncher(curves: Self.curves)
        let tuner = try Tuner(study: Study(settings: try Self.settings()), path: path, launcher: first, maxTrials: 7)
        tuner.log = { _ in }
        var ended = 0
        tuner.trialEnded = { _ in ended += 1; if ended == 2 { throw Killed() } }
        #expect(throws: Killed.self) { try tuner.run() }
        // What the killed search left: trials 0 and 1 ended (a search killed while trial 2 ran would leave it running).
        var left = try Study.read(path)
        #expect(left.trials.map(\.state) == [.completed, .pruned])
        left.trials.append(Trial(number: 2, params: RandomSampler(seed: 9).sample(Self.space, number: 2,
                                                                                 trials: left.trials,
                                                                                 higherIsBetter: true)))
        left.trials[2].pid = 4242
        left.trials[2].starts = 1
        left.trials[2].metrics = [0.55]
        left.rungs[0].append(RungEntry(trial: 2, value: 0.55))
        try left.write(to: path)
    }

    /// The trials of an uninterrupted search with `launcher`'s curves.
    static func straightSearch(_ name: String) throws -> Study {
        let straight = try Tuner(study: Study(settings: try Self.settings()), path: Self.temporaryStudy(name),
                                 launcher: ScriptedLauncher(curves: Self.curves), maxTrials: 7)
        straight.log = { _ in }
        return try straight.run()
    }

    /// Without a checkpoint, the resumed search keeps the two ended trials, starts the third again from scratch
    /// (ending the old process, forgetting its epoch and rung value, saying so), and ends with the same trials as an
    /// uninterrupted search.
    @Test func resumesAfterTheSearchWasKilled() throws {
        let path = Self.temporaryStudy("resume")
        try Self.interruptedStudy(path)
        let second = ScriptedLauncher(curves: Self.curves)
        let resumed = try Tuner(study: try Study.read(path), path: path, launcher: second, maxTrials: 7)
        resumed.log = { _ in }
        let study = try resumed.run()
        #expect(second.staleStops == [StaleStop(pid: 4242, trial: 2)])
        #expect(second.started == [2, 3, 4, 5, 6] && second.resumed.isEmpty)
        #expect(study.trials.map(\.starts) == [1, 1, 2, 1, 1, 1, 1])
        #expect(study.trials.map(\.state) == Self.expectedStates)
        #expect(study.rungs.map { $0.map(\.trial) } == [[0, 1, 2, 3, 4], [0, 2, 4]])
        #expect(study.trials[2].restarts == ["started again from scratch: no checkpoint"])
        #expect(study.trials[2].message == "stopped at epoch 2: val_accuracy 0.5800 not in the top 1 of 2 at that rung;"
                + " started again from scratch: no checkpoint")
        // The same values and results as the uninterrupted search.
        let reference = try Self.straightSearch("straight-resume")
        #expect(study.trials.map(\.params) == reference.trials.map(\.params))
        #expect(study.trials.map(\.metrics) == reference.trials.map(\.metrics))
    }

    /// With a checkpoint after epoch 1, the interrupted trial goes on from it: its logged epoch and its rung value
    /// are kept (not recorded twice), it trains epochs 2… only, and the search ends as an uninterrupted one.
    @Test func resumesAnInterruptedTrialFromItsCheckpoint() throws {
        let path = Self.temporaryStudy("resume-checkpoint")
        try Self.interruptedStudy(path)
        let second = ScriptedLauncher(curves: Self.curves)
        second.checkpoints = [2: 1]
        let resumed = try Tuner(study: try Study.read(path), path: path, launcher: second, maxTrials: 7)
        resumed.log = { _ in }
        let study = try resumed.run()
        #expect(second.started == [2, 3, 4, 5, 6] && second.resumed == [2])
        #expect(study.trials.map(\.state) == Self.expectedStates)
        #expect(study.rungs.map { $0.map(\.trial) } == [[0, 1, 2, 3, 4], [0, 2, 4]])
        #expect(study.rungs[0][2] == RungEntry(trial: 2, value: 0.55))
        #expect(study.trials[2].metrics == [0.55, 0.58])
        #expect(study.trials[2].restarts == ["resumed from its checkpoint (epochs recorded: 1)"])
        #expect(study.trials[2].message?.hasSuffix("; resumed from its checkpoint (epochs recorded: 1)") == true)
        // Trial 2 trained one epoch after resuming: the scripted clock started it at epoch 2.
        #expect(second.runs.first { $0.number == 2 }?.already == 1)
        let reference = try Self.straightSearch("straight-checkpoint")
        #expect(study.trials.map(\.params) == reference.trials.map(\.params))
        #expect(study.trials.map(\.metrics) == reference.trials.map(\.metrics))
        #expect(study.epochsRun == reference.epochsRun)
    }

    /// A checkpoint that train refuses (it fails before resuming): the trial starts again from scratch at once, its
    /// epoch and rung value forgotten, and the message says why.
    @Test func startsAgainFromScratchWhenTheCheckpointIsRefused() throws {
        let path = Self.temporaryStudy("resume-refused")
        try Self.interruptedStudy(path)
        let second = ScriptedLauncher(curves: Self.curves)
        second.checkpoints = [2: 1]
        second.refused = [2]
        let resumed = try Tuner(study: try Study.read(path), path: path, launcher: second, maxTrials: 7)
        resumed.log = { _ in }
        let study = try resumed.run()
        #expect(second.started == [2, 2, 3, 4, 5, 6] && second.resumed == [2])
        #expect(study.trials.map(\.starts) == [1, 1, 3, 1, 1, 1, 1])
        #expect(study.trials.map(\.state) == Self.expectedStates)
        #expect(study.rungs.map { $0.map(\.trial) } == [[0, 1, 2, 3, 4], [0, 2, 4]])
        #expect(study.trials[2].restarts == ["resumed from its checkpoint (epochs recorded: 1)",
                                             "started again from scratch: checkpoint refused (bad state)"])
        #expect(study.trials[2].metrics == [0.55, 0.58])
    }

    /// A metric that is better lower (an MSE): the curves mirrored (1 − x) give the same decisions, the same best
    /// trial, and rung values recorded negated.
    @Test func lowerIsBetterMirrorsHigherIsBetter() throws {
        var settings = try Self.settings()
        (settings.metric, settings.higherIsBetter) = ("val_mse_per_frame", false)
        let mirrored = Self.curves.map { $0?.map { $0.isNaN ? $0 : 1 - $0 } }
        let tuner = try Tuner(study: Study(settings: settings), path: Self.temporaryStudy("lower"),
                              launcher: ScriptedLauncher(curves: mirrored), maxTrials: 7)
        tuner.log = { _ in }
        let study = try tuner.run()
        let reference = try Self.straightSearch("straight-lower")
        #expect(study.trials.map(\.state) == Self.expectedStates)
        #expect(study.trials.map(\.metrics.count) == reference.trials.map(\.metrics.count))
        #expect(study.rungs.map { $0.map(\.trial) } == reference.rungs.map { $0.map(\.trial) })
        #expect(study.rungs[0].map(\.value) == reference.rungs[0].map { $0.value - 1 })
        #expect(study.bestTrial?.number == 0 && study.trials[0].best(higherIsBetter: false)?.value == 1 - 0.8)
        #expect(study.trials[1].message == "stopped at epoch 1: val_mse_per_frame 0.6000 not in the top 1 of 2 at"
                + " that rung")
    }
}

/// Fixed draws of the seeded samplers (regression values: a change to the samplers shows here).
enum RandomSamplerExpected {
    /// Seed 42, trial 0, the issue's space.
    static let trial0: [String: ParameterValue] = [
        "hidden": .int(250), "layers": .int(3), "bidirectional": .bool(true), "lr": .float(0.0003736345627124854),
        "batch-size": .int(35), "dropout": .float(0.10186100519658936)]
}

enum TPESamplerExpected {
    /// Seed 5, trial 30 after the Optuna fixture's first history.
    static let trial30: [String: ParameterValue] = [
        "hidden": .int(356), "batch-size": .int(44), "lr": .float(0.003013663451628074),
        "dropout": .float(0.11333021258140152), "bidirectional": .bool(false)]
}

struct StaleStop: Equatable {
    let pid: Int32
    let trial: Int
}

/// Trials that follow scripted curves: each pause of the tuner reveals one more epoch of every running trial.
final class ScriptedLauncher: TrialLauncher {
    let curves: [[Double]?]
    var clock = 0
    var started: [Int] = []
    var stopped: [Int] = []
    var staleStops: [StaleStop] = []
    var runs: [ScriptedRun] = []
    var mostRunning = 0
    /// The epochs in each trial's checkpoint; trials resumed (started from it); trials whose checkpoint is refused.
    var checkpoints: [Int: Int] = [:]
    var resumed: [Int] = []
    var refused: Set<Int> = []

    init(curves: [[Double]?]) { self.curves = curves }

    func start(_ trial: Trial, arguments: [String], resuming: Bool) throws -> any TrialRun {
        started.append(trial.number)
        #expect(arguments.suffix(2) == ["--epochs", "4"] && arguments.prefix(2) == ["--limit", "100"])
        let already = resuming ? checkpoints[trial.number] ?? 0 : 0
        if resuming { resumed.append(trial.number) }
        if !resuming { checkpoints[trial.number] = nil }
        let run = ScriptedRun(launcher: self, number: trial.number, curve: curves[trial.number], from: clock,
                              already: already, refused: resuming && refused.contains(trial.number))
        runs.append(run)
        mostRunning = max(mostRunning, runs.filter { !$0.done }.count)
        return run
    }

    func hasCheckpoint(trial number: Int) -> Bool { checkpoints[number] != nil }

    func stopStale(pid: Int32, trial: Int) { staleStops.append(StaleStop(pid: pid, trial: trial)) }

    func pause() { clock += 1 }
}

/// A scripted trial: from its checkpoint after `already` epochs (shown at once, as a resumed run's log has them),
/// one more epoch per pause; `refused`: a checkpoint train refuses (it ends at once, its old log unchanged).
final class ScriptedRun: TrialRun {
    unowned let launcher: ScriptedLauncher
    let number: Int, curve: [Double]?, from: Int, already: Int, refused: Bool
    var pid: Int32 { Int32(1000 + number) }

    init(launcher: ScriptedLauncher, number: Int, curve: [Double]?, from: Int, already: Int = 0,
         refused: Bool = false) {
        (self.launcher, self.number, self.curve, self.from) = (launcher, number, curve, from)
        (self.already, self.refused) = (already, refused)
    }

    var shown: Int { min(already + (refused ? 0 : launcher.clock - from), curve?.count ?? 0) }

    func metrics() -> [Double] { Array((curve ?? []).prefix(shown)) }

    func exit() -> TrialExit? {
        if refused { done = true; return .refused("bad state") }
        guard let curve else { done = true; return .failed("out of memory (exit status 1)") }
        if shown >= curve.count { done = true }
        return shown >= curve.count ? .finished : nil
    }

    var done = false

    func stop() {
        launcher.stopped.append(number)
        done = true
    }
}
