import ArgumentParser
import Foundation
import LSTMVision

/// `lstmvision tune`: a hyperparameter search over `train classification`, `train detection` or `train frames`, each
/// trial a child process.
struct Tune: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Search hyperparameters: TPE or random sampling, ASHA early stopping, parallel and resumable.",
        discussion: "Options tune does not know are train options, fixed for every trial (e.g. --limit 6000"
            + " --model row). The space file maps train options to {choice: [...]}, {int: [lo, hi]} or"
            + " {float: [lo, hi]}, ranges with an optional log: true (docs/tuning.md). Trials are scored on the"
            + " validation split (accuracy, higher is better; detection: COCO AP of training images held out by"
            + " --validation-split, 0.1 unless given; frames: MSE per frame, lower is better); the best one's model"
            + " is scored once on the test split at the end.")

    @Option(help: ArgumentHelp("Search space file (YAML or JSON; default on --resume: the study's).",
                               valueName: "file"))
    var space: String?
    @Option(help: ArgumentHelp("Trials to draw in all (a resumed search may raise it).", valueName: "n"))
    var trials: Int = 20
    @Option(help: ArgumentHelp("Output folder: study.json, trials.csv, pictures, trials/NNN run folders.",
                               valueName: "dir"))
    var out: String = "runs/tune"
    @Option(help: ArgumentHelp("What the trials train: classification (default), detection or frames.",
                               valueName: "task"))
    var task: TrainTask?
    @Option(help: ArgumentHelp("Sampler: tpe (default) or random.", valueName: "name")) var sampler: TuneSampler?
    @Option(help: ArgumentHelp("Sampler seed (default 0).", valueName: "n")) var seed: UInt64?
    @Option(help: ArgumentHelp("Epochs of a trial that is not stopped (default: train's, 10).", valueName: "n"))
    var epochs: Int?
    @Option(help: ArgumentHelp("ASHA: epochs at the first rung (default 1).", valueName: "n")) var minEpochs: Int?
    @Option(help: ArgumentHelp("ASHA: reduction factor η, the top 1/η go on at each rung (default 3).",
                               valueName: "n"))
    var eta: Int?
    @Flag(help: "Stop no trial early (no ASHA).") var noPruning = false
    @Option(help: ArgumentHelp("Start no new trial once the trials have run this many epochs in all.",
                               valueName: "epochs"))
    var budget: Int?
    @Option(help: ArgumentHelp("Trials run at once, as separate processes (on each rank, under mpirun).",
                               valueName: "n"))
    var workers: Int = 1
    @Option(help: ArgumentHelp("Threads per trial (default: the cores divided by --workers).", valueName: "n"))
    var threads: Int?
    @Flag(help: "Continue the search in --out (finished trials kept, interrupted ones go on from their checkpoint).")
    var resume = false
    @Flag(help: "Skip the test-split score of the best model at the end.") var noTest = false
    @Flag(help: "Print the table of trials and the best trial as one JSON object (progress goes to stderr).")
    var json = false
    @Argument(parsing: .allUnrecognized, help: .hidden) var trainArguments: [String] = []

    /// Options tune sets for every trial itself.
    static let reserved: Set<String> = ["out", "resume", "epochs", "threads", "tensorboard", "no-tensorboard",
                                        "no-test-score", "task", "help", "help-hidden"]

    func validate() throws {
        guard trials >= 1 else { throw ValidationError("--trials must be ≥ 1, got \(trials)") }
        guard (1...256).contains(workers) else { throw ValidationError("--workers must be in 1...256, got \(workers)") }
        if let threads, !(1...256).contains(threads) {
            throw ValidationError("--threads must be in 1...256, got \(threads)")
        }
        if let epochs, !(1...1_000_000).contains(epochs) {
            throw ValidationError("--epochs must be in 1...1000000, got \(epochs)")
        }
        if let budget, budget < 1 { throw ValidationError("--budget must be ≥ 1 epoch, got \(budget)") }
        if noPruning && (minEpochs != nil || eta != nil) {
            throw ValidationError("--no-pruning excludes --min-epochs and --eta")
        }
        if !resume && space == nil { throw ValidationError("--space is required (except with --resume)") }
    }

    func run() throws {
        // Under mpirun, rank 0 owns the search; every rank runs up to --workers trials on its own machine.
        let world = Distributed.current
        if world.size > 1 {
            world.collectiveTimeout = RunOptions.defaultCollectiveTimeout
            if !world.isRoot {
                try RankTrials(world: world, executable: try Self.executable(), out: out, slots: workers).follow()
                return
            }
        }
        let say: (String) -> Void = json ? { FileHandle.standardError.write(Data(($0 + "\n").utf8)) } : { print($0) }
        let studyPath = Study.path(in: out)
        let stored: Study? = resume ? try Study.read(studyPath) : nil
        if !resume && FileManager.default.fileExists(atPath: studyPath) {
            throw CLIError("\(studyPath) exists: continue it with --resume, or give another --out")
        }
        let settings = try makeSettings(stored: stored?.settings)
        if let stored, stored.settings != settings {
            throw CLIError("\(studyPath): the search was started with other settings"
                           + " (\(Self.difference(stored.settings, settings))); give the same, or leave them out")
        }
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let perTrial = threads ?? max(1, ProcessInfo.processInfo.activeProcessorCount / workers)
        let ranks = world.size > 1
            ? try RankTrialLauncher(ranks: RankTrials(world: world, executable: try Self.executable(), out: out,
                                                      slots: workers),
                                    task: settings.task, threads: perTrial, metric: settings.metric) : nil
        let launcher: any TrialLauncher = try ranks ?? ProcessTrialLauncher(
            executable: try Self.executable(), task: settings.task, out: out, threads: perTrial,
            metric: settings.metric)
        let tuner = try Tuner(study: stored ?? Study(settings: settings), path: studyPath, launcher: launcher,
                              maxTrials: trials, workers: ranks?.totalSlots ?? workers, budgetEpochs: budget)
        tuner.log = say
        tuner.trialEnded = { try TuningReport.write($0, to: out) }
        let rungs = settings.halving.map { h in
            "ASHA rungs at epochs \(h.rungs.map(String.init).joined(separator: ", ")) (η \(h.eta))"
        } ?? "no early stopping"
        say("search: \(trials) trials\(budget.map { " or \($0) epochs" } ?? ""), \(settings.sampler) sampler (seed"
            + " \(settings.seed)), up to \(settings.epochs) epochs each, \(rungs); \(workers) at once"
            + (world.size > 1 ? " on each of \(world.size) ranks" : "") + ", \(perTrial) threads each; study"
            + " \(studyPath)")
        let study = try tuner.run()
        try TuningReport.write(study, to: out)
        let best = try study.bestTrial.map { try finish(study, $0, ranks: ranks, say: say) }
        if best == nil { say("no trial completed") }
        try ranks?.close()
        if json {
            try printJSON(TuneResult(trials: TuningReport.rows(study), best: best))
        }
    }

    /// The settings of this command line, completed from a resumed study's where not given.
    func makeSettings(stored: StudySettings?) throws -> StudySettings {
        let kind = task ?? stored.map { TrainTask(rawValue: $0.task) ?? .classification } ?? .classification
        let searchSpace: SearchSpace
        if let space {
            searchSpace = try SearchSpace.read(space)
        } else {
            searchSpace = stored!.space
        }
        var fixed = trainArguments.isEmpty && stored != nil ? stored!.trainArguments : trainArguments
        // Detection validates on its test split unless training images are held out: hold out 10% by default.
        if kind == .detection, stored == nil, !fixed.contains(where: { $0.hasPrefix("--validation-split") }),
           !searchSpace.parameters.contains(where: { $0.name == "validation-split" }) {
            fixed += ["--validation-split", "0.1"]
        }
        for word in fixed where word.hasPrefix("--") {
            let name = String(word.dropFirst(2).split(separator: "=", maxSplits: 1).first ?? "")
            if Self.reserved.contains(name) {
                throw CLIError("--\(name) is set by tune for each trial; give tune's own option instead"
                               + (name == "threads" ? " (--threads is per trial)" : ""))
            }
        }
        let recipe = switch kind {
        case .frames: FramesTask.recipe
        case .detection: Recipes.detection
        case .classification: Recipes.classification
        }
        let maxEpochs = epochs ?? stored?.epochs ?? recipe.epochs
        // The fixed options alone, then each searched value (every choice, both bounds) with them.
        try Self.checkTrain(kind, fixed + ["--epochs", String(maxEpochs)], what: "the fixed train options")
        try searchSpace.validate(source: space ?? Study.path(in: out), fixed: fixed + ["--epochs", String(maxEpochs)],
                                 reserved: Self.reserved) { try Self.checkTrain(kind, $0, what: nil) }
        var halving: SuccessiveHalving?
        if !noPruning && (stored == nil || stored!.halving != nil || minEpochs != nil || eta != nil) {
            do {
                halving = try SuccessiveHalving(minEpochs: minEpochs ?? stored?.halving?.minEpochs ?? 1,
                                                eta: eta ?? stored?.halving?.eta ?? 3, maxEpochs: maxEpochs)
            } catch let e as TuningError { throw CLIError(e.description) }
        }
        // Classification: validation accuracy, detection: validation AP, both higher is better; frames: validation
        // MSE per frame, lower is better.
        let (metric, higherIsBetter) = switch kind {
        case .frames: ("val_mse_per_frame", false)
        case .detection: ("val_AP", true)
        case .classification: ("val_accuracy", true)
        }
        return StudySettings(task: kind.rawValue, metric: metric, higherIsBetter: higherIsBetter, space: searchSpace,
                             sampler: sampler?.rawValue ?? stored?.sampler ?? TuneSampler.tpe.rawValue,
                             seed: seed ?? stored?.seed ?? 0,
                             trainArguments: fixed, epochs: maxEpochs, halving: halving)
    }

    /// Parses `words` as `train TASK` would (its own checks included); its message on failure.
    static func checkTrain(_ task: TrainTask, _ words: [String], what: String?) throws {
        let command: any ParsableCommand.Type = switch task {
        case .frames: TrainFrames.self
        case .detection: TrainDetection.self
        case .classification: TrainClassification.self
        }
        do {
            _ = try command.parse(words)
        } catch {
            let message = command.message(for: error)
            let m = message.split(whereSeparator: \.isNewline).first.map(String.init)
            guard let what else { throw CLIError(m ?? "refused") }
            throw CLIError("train refuses \(what) (\(words.joined(separator: " "))): \(m ?? "refused")")
        }
    }

    /// The first setting that differs, as "name A, not B".
    static func difference(_ a: StudySettings, _ b: StudySettings) -> String {
        func text<T: Encodable>(_ v: T) -> String {
            let e = JSONEncoder()
            e.outputFormatting = [.sortedKeys]
            return String(decoding: (try? e.encode(v)) ?? Data(), as: UTF8.self)
        }
        let pairs: [(String, String, String)] = [
            ("task", a.task, b.task), ("space", text(a.space), text(b.space)), ("sampler", a.sampler, b.sampler),
            ("seed", String(a.seed), String(b.seed)),
            ("train options", a.trainArguments.joined(separator: " "), b.trainArguments.joined(separator: " ")),
            ("epochs", String(a.epochs), String(b.epochs)), ("early stopping", text(a.halving), text(b.halving)),
        ]
        return pairs.first { $0.1 != $0.2 }.map { "\($0.0) \($0.1), not \($0.2)" } ?? "metric"
    }

    /// This executable's path (the trials run it).
    static func executable() throws -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return CommandLine.arguments[0] }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Prints the best trial, its `train` command line, and scores its model once on the test split (kept in
    /// OUT/best.json, so that a resumed, finished search does not score it again).
    func finish(_ study: Study, _ trial: Trial, ranks: RankTrialLauncher?, say: (String) -> Void) throws -> BestTrial {
        let s = study.settings, b = trial.best(higherIsBetter: s.higherIsBetter)!
        let folder = ProcessTrialLauncher.folder(out: out, number: trial.number)
        let words = ["lstmvision", "train", s.task] + s.trainArguments + s.space.arguments(trial.params)
            + ["--epochs", String(s.epochs), "--out", out + "/best"]
        var best = BestTrial(trial: trial.number, params: trial.params, metric: s.metric, validation: b.value,
                             epoch: b.epoch, model: folder + "/model.safetensors",
                             command: words.map(Self.shellQuoted).joined(separator: " "))
        let path = out + "/best.json"
        if let data = try? Data(contentsOf: URL(fileURLWithPath: path)),
           let old = try? JSONDecoder().decode(BestTrial.self, from: data), old.trial == best.trial {
            best.test = old.test
        } else if !noTest {
            let trialWords = s.trainArguments + s.space.arguments(trial.params)
            // On the rank whose machine holds the model, under mpirun.
            let place = (trial: trial, ranks: ranks)
            best.test = switch TrainTask(rawValue: s.task) {
            case .frames: try scoreFramesOnTest(best.model, trialWords, on: place)
            case .detection: try scoreDetectionOnTest(best.model, trialWords, on: place)
            default: try scoreOnTest(best.model, fixed: s.trainArguments, on: place)
            }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        try AtomicFile.write(try encoder.encode(best), to: path)
        say(String(format: "best: trial %d, validation %@ %.4f (epoch %d of %d); model %@", trial.number, s.metric,
                   b.value, b.epoch, trial.metrics.count, best.model))
        if let acc = best.test.accuracy, let n = best.test.images {
            say(String(format: "test accuracy %.2f%% on %d test images, scored once with that model (not used to"
                       + " select)", acc * 100, n))
        }
        if let ap = best.test.ap, let ap50 = best.test.ap50, let n = best.test.images {
            say(String(format: "test AP %.4f, AP50 %.4f on %d test images, scored once with that model (not used to"
                       + " select)", ap, ap50, n))
        }
        if let mse = best.test.msePerFrame, let ssim = best.test.ssim, let n = best.test.sequences {
            say(String(format: "test MSE/frame %.2f, SSIM %.4f on %d test sequences, scored once with that model (not"
                       + " used to select)", mse, ssim, n))
        }
        say("train it again with: \(best.command)")
        say("table \(out)/trials.csv, pictures \(out)/progress.png and \(out)/param-*.png")
        return best
    }

    /// The accuracy of `model` on the test split of the fixed options' data, from `lstmvision eval --json`.
    func scoreOnTest(_ model: String, fixed: [String], on at: ScoringPlace) throws -> TestResult {
        let train = try TrainClassification.parse(fixed)
        let d = train.dataOptions
        var words = ["eval", "--model", model, "--json"]
        if let data = d.data { words += ["--data", data] }
        if let images = d.images { words += ["--images", images] }
        if let limit = d.limit { words += ["--limit", String(limit)] }
        let object = try runScoring(words, model: model, on: at)
        guard let accuracy = object["accuracy"] as? Double else {
            throw CLIError("scoring \(model) on the test split failed: no accuracy in eval's output")
        }
        return TestResult(accuracy: accuracy, images: object["count"] as? Int)
    }

    /// The COCO AP of the detector `model` on the test split of the trial's data options, from `lstmvision evaluate
    /// --model --json`.
    func scoreDetectionOnTest(_ model: String, _ trialWords: [String], on at: ScoringPlace) throws -> TestResult {
        let d = try TrainDetection.parse(trialWords).data
        var words = ["evaluate", "--model", model, "--json"]
        for (name, value) in [("--data", d.data), ("--images", d.images), ("--validation", d.validation),
                              ("--limit", d.limit.map(String.init)), ("--test-count", d.testCount.map(String.init))] {
            if let value { words += [name, value] }
        }
        let object = try runScoring(words, model: model, on: at)
        guard let ap = object["AP"] as? Double else {
            throw CLIError("scoring \(model) on the test split failed: no AP in evaluate's output")
        }
        return TestResult(images: object["images"] as? Int, ap: ap, ap50: object["AP50"] as? Double)
    }

    /// The MSE, MAE and SSIM per frame of the frame predictor `model` on DATA/test.npy (DATA: the trial's `--data`),
    /// with the trial's context, from `lstmvision evaluate-frames --json`.
    func scoreFramesOnTest(_ model: String, _ trialWords: [String], on at: ScoringPlace) throws -> TestResult {
        let train = try TrainFrames.parse(trialWords)
        let test = (train.data as NSString).appendingPathComponent("test.npy")
        let object = try runScoring(["evaluate-frames", "--model", model, "--data", test, "--context",
                                     String(train.context), "--json"], model: model, on: at)
        guard let mse = object["mse"] as? Double else {
            throw CLIError("scoring \(model) on \(test) failed: no mse in evaluate-frames' output")
        }
        return TestResult(msePerFrame: mse, maePerFrame: object["mae"] as? Double, ssim: object["ssim"] as? Double,
                          sequences: object["sequences"] as? Int)
    }

    /// The trial scored and, under mpirun, rank 0's launcher (the score then runs on the trial's rank).
    typealias ScoringPlace = (trial: Trial, ranks: RankTrialLauncher?)

    /// Runs this executable with `words` (its JSON into OUT/test-eval.json, on the trial's rank under mpirun) and
    /// returns the JSON object it printed.
    func runScoring(_ words: [String], model: String, on at: ScoringPlace) throws -> [String: Any] {
        let file = out + "/test-eval.json", errors = out + "/test-eval.stderr.txt"
        var status: Int32 = 0, data: Data, why: String?
        if let ranks = at.ranks, let rank = at.trial.rank {
            let e = try ranks.score(trial: at.trial.number, rank: rank, words: words, output: file, errors: errors)
            (status, data, why) = (e.status, Data(e.output.utf8), e.error)
        } else {
            let pid = try ProcessTrialLauncher.spawn([try Self.executable()] + words, stdout: file, stderr: errors,
                                                     environment: [])
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            data = (try? Data(contentsOf: URL(fileURLWithPath: file))) ?? Data()
            why = (try? String(contentsOfFile: errors, encoding: .utf8))?.split(whereSeparator: \.isNewline).last
                .map(String.init)
        }
        guard status == 0, let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw CLIError("scoring \(model) on the test split failed: \(why ?? "no result")")
        }
        return object
    }

    static func shellQuoted(_ word: String) -> String {
        word.allSatisfy({ $0.isLetter || $0.isNumber || "-_./=:,+".contains($0) }) && !word.isEmpty
            ? word : "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}

/// The best trial as `tune` reports it (OUT/best.json; the `best` of --json), its test score flat in the object.
struct BestTrial: Codable {
    var trial: Int
    var params: [String: ParameterValue]
    var metric: String
    var validation: Double
    var epoch: Int
    var model: String
    var command: String
    var test = TestResult()

    enum CodingKeys: String, CodingKey { case trial, params, metric, validation, epoch, model, command }

    init(trial: Int, params: [String: ParameterValue], metric: String, validation: Double, epoch: Int, model: String,
         command: String) {
        (self.trial, self.params, self.metric, self.validation) = (trial, params, metric, validation)
        (self.epoch, self.model, self.command) = (epoch, model, command)
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        trial = try c.decode(Int.self, forKey: .trial)
        params = try c.decode([String: ParameterValue].self, forKey: .params)
        metric = try c.decode(String.self, forKey: .metric)
        validation = try c.decode(Double.self, forKey: .validation)
        epoch = try c.decode(Int.self, forKey: .epoch)
        model = try c.decode(String.self, forKey: .model)
        command = try c.decode(String.self, forKey: .command)
        test = try TestResult(from: decoder)
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(trial, forKey: .trial)
        try c.encode(params, forKey: .params)
        try c.encode(metric, forKey: .metric)
        try c.encode(validation, forKey: .validation)
        try c.encode(epoch, forKey: .epoch)
        try c.encode(model, forKey: .model)
        try c.encode(command, forKey: .command)
        try test.encode(to: encoder)
    }
}

/// The best model's score on the test split, scored once: accuracy for a classifier; COCO AP and AP50 for a
/// detector; MSE, MAE and SSIM per frame for a frame predictor (nil: not scored).
struct TestResult: Codable, Equatable {
    var accuracy: Double?
    var images: Int?
    var ap: Double?
    var ap50: Double?
    var msePerFrame: Double?
    var maePerFrame: Double?
    var ssim: Double?
    var sequences: Int?

    enum CodingKeys: String, CodingKey {
        case accuracy = "test_accuracy", images = "test_images", ap = "test_AP", ap50 = "test_AP50",
             msePerFrame = "test_mse_per_frame",
             maePerFrame = "test_mae_per_frame", ssim = "test_ssim", sequences = "test_sequences"
    }
}

/// `tune --sampler`: the tree-structured Parzen estimator (`TPESampler`) or uniform draws (`RandomSampler`).
enum TuneSampler: String, CaseIterable, ExpressibleByArgument {
    case tpe, random
}

/// `tune --json`'s object.
struct TuneResult: Encodable {
    let trials: [TuningReport.Row]
    let best: BestTrial?
}
