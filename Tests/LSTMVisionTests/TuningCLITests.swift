import Foundation
import Testing
@testable import LSTMVision
@testable import LSTMVisionCore

/// `lstmvision tune` itself: bad input refused in one line before any trial; tiny real searches (trials of 200
/// MNIST images) killed with SIGKILL mid-way, resumed (a trial killed mid-way from its checkpoint), run to the end
/// and scored once on the test split; tiny searches of `train detection` (on held-out training canvases) and of
/// `train frames` (lower MSE is better).
@Suite(.serialized) struct TuningCLITests {
    static func folder(_ name: String) -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tune-cli-\(getpid())-\(name)").path
        try? FileManager.default.removeItem(atPath: dir)
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    static func write(_ text: String, _ path: String) -> String {
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        return path
    }

    /// Starts the executable with `args`, its output into files in `dir`.
    static func start(_ args: [String], dir: String, name: String) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CLITests.executable)
        p.arguments = args
        p.currentDirectoryURL = URL(fileURLWithPath: CLITests.root)
        _ = FileManager.default.createFile(atPath: dir + "/\(name).out", contents: nil)
        _ = FileManager.default.createFile(atPath: dir + "/\(name).err", contents: nil)
        p.standardOutput = FileHandle(forWritingAtPath: dir + "/\(name).out")
        p.standardError = FileHandle(forWritingAtPath: dir + "/\(name).err")
        try p.run()
        return p
    }

    static func run(_ args: [String], dir: String, name: String) throws -> (code: Int32, out: String, err: String) {
        let p = try start(args, dir: dir, name: name)
        p.waitUntilExit()
        func read(_ s: String) -> String { (try? String(contentsOfFile: dir + "/\(name).\(s)", encoding: .utf8)) ?? "" }
        return (p.terminationStatus, read("out"), read("err"))
    }

    @Test(arguments: [
        ("hiddn: {int: [8, 16]}", [String](), "line 1: 'hiddn': train refuses --hiddn 8: Unknown option '--hiddn'"),
        ("hidden: {int: [0, 16]}", [],
         "line 1: 'hidden': train refuses --hidden 0: --hidden must be in 1...8192, got 0"),
        ("lr: {float: [0, 0.1], log: true}", [], "line 1: 'lr': a log range must be above zero, got [0.0, 0.1]"),
        ("hidden: {int: [16, 8]}", [], "line 1: 'hidden': empty range [16, 8] (low above high)"),
        ("hidden: {int: [1, 2]}\nmodel: {choice: [row, lstm9]}", [],
         "line 2: 'model': train refuses --model lstm9: The value 'lstm9' is invalid for '--model <kind>'"),
        ("epochs: {int: [1, 3]}", [], "line 1: 'epochs' is set by tune itself and cannot be searched"),
        ("hidden: {int: [8, 16]}", ["--no-tensorboard"], "--no-tensorboard is set by tune for each trial"),
        ("hidden: {int: [8, 16]}", ["--limit", "0"], "train refuses the fixed train options (--limit 0 --epochs 2):"
            + " --limit must be positive, got 0"),
        ("hidden: {int: [8, 16]}", ["--eta", "1"], "--eta must be ≥ 2, got 1"),
        ("hidden: {int: [8, 16]}", ["--sampler", "grid"], "The value 'grid' is invalid for '--sampler <name>'"),
        ("max-boxes: {int: [0, 3]}", ["--task", "detection"], "line 1: 'max-boxes': train refuses --max-boxes 0:"
            + " --max-boxes must be in 1...64, got 0"),
        ("hidden: {choice: [0, 2]}", ["--task", "frames"], "line 1: 'hidden': train refuses --hidden 0: --hidden must"
            + " be 1 to 16 comma-separated sizes in 1...4096, got '0'"),
        ("kernel: {int: [2, 5]}", ["--task", "frames"], "line 1: 'kernel': train refuses --kernel 2: --kernel must be"
            + " odd and in 1...31, got 2"),
    ])
    func refusesBadInputBeforeAnyTrial(space: String, extra: [String], message: String) throws {
        let dir = Self.folder("bad"), out = dir + "/out"
        let file = Self.write(space, dir + "/space.yaml")
        let r = try Self.run(["tune", "--space", file, "--out", out, "--epochs", "2", "--trials", "2"] + extra,
                             dir: dir, name: "tune")
        #expect(r.code != 0)
        let lines = r.err.split(separator: "\n")
        #expect(lines.count == 1 && r.err.contains(message), "\(r.err)")
        #expect(!FileManager.default.fileExists(atPath: out + "/trials"))
        #expect(!FileManager.default.fileExists(atPath: out + "/study.json"))
    }

    /// The first `train` training and `test` test images of the embedded MNIST as plain IDX files in `dir` (a
    /// trial then reads 200 images, not 70 000).
    static func miniMNIST(_ dir: String, train: Int = 200, test: Int = 100) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (split, prefix, n) in [(MNIST.Split.train, "train", train), (.test, "t10k", test)] {
            let set = try MNIST.load(directory: CLITests.root + "/data/mnist", split: split).prefix(n)
            func header(_ magic: UInt8, _ dims: [Int]) -> [UInt8] {
                [0, 0, 8, magic] + dims.flatMap { d in (0..<4).map { UInt8((d >> (8 * (3 - $0))) & 0xFF) } }
            }
            let pixels = set.pixels.map { UInt8(($0 * 255).rounded()) }
            try Data(header(3, [n, 28, 28]) + pixels)
                .write(to: URL(fileURLWithPath: dir + "/\(prefix)-images-idx3-ubyte"))
            try Data(header(1, [n]) + set.labels.map(UInt8.init))
                .write(to: URL(fileURLWithPath: dir + "/\(prefix)-labels-idx1-ubyte"))
        }
    }

    /// A real search of three trials: killed with SIGKILL once a trial has completed (a trial's process then ends by
    /// itself), resumed (the completed trial is not run again), run to the end, its best model scored once.
    @Test func tinySearchSurvivesKillAndResumes() throws {
        let dir = Self.folder("real"), out = dir + "/out"
        let space = Self.write("hidden: {choice: [4, 8]}\nlr: {float: [1.0e-3, 1.0e-2], log: true}\n",
                               dir + "/space.yaml")
        try Self.miniMNIST(dir + "/mnist")
        let args = ["tune", "--space", space, "--out", out, "--trials", "3", "--epochs", "2", "--eta", "2",
                    "--sampler", "random", "--seed", "3", "--threads", "1", "--data", dir + "/mnist"]
        let first = try Self.start(args, dir: dir, name: "first")
        // Wait for a completed trial and a second one running.
        var study: Study?
        for _ in 0..<600 {
            usleep(100_000)
            if let s = try? Study.read(Study.path(in: out)), s.trials.contains(where: { $0.state == .completed }),
               s.trials.contains(where: { $0.state == .running && $0.pid != nil }) {
                study = s
                break
            }
        }
        let killed = try #require(study, "no trial completed: \(first.isRunning)")
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        let orphan = killed.trials.first { $0.state == .running }!.pid!
        // The orphaned trial notices within about a second that its search is gone.
        var alive = true
        for _ in 0..<50 where alive {
            usleep(100_000)
            alive = kill(orphan, 0) == 0
                && !((try? String(contentsOfFile: "/proc/\(orphan)/stat", encoding: .utf8))?.contains(") Z ") ?? true)
        }
        #expect(!alive, "trial process \(orphan) outlived its search")
        let done = killed.trials.filter(\.isFinished).map(\.number)

        let r = try Self.run(args + ["--resume", "--json"], dir: dir, name: "second")
        #expect(r.code == 0, "\(r.err)")
        let final = try Study.read(Study.path(in: out))
        #expect(final.trials.count == 3)
        #expect(final.trials.allSatisfy { $0.isFinished })
        for n in done { #expect(final.trials[n] == killed.trials[n], "finished trial \(n) changed on resume") }
        #expect(final.trials.contains { $0.starts == 2 })
        // The JSON table and the best trial, scored once on the test split of the same --limit.
        let object = try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as! [String: Any]
        #expect((object["trials"] as! [Any]).count == 3)
        let best = object["best"] as! [String: Any]
        #expect(best["trial"] as? Int == final.bestTrial?.number)
        #expect(best["test_images"] as? Int == 100)
        let accuracy = try #require(best["test_accuracy"] as? Double)
        #expect((0...1).contains(accuracy))
        #expect((best["command"] as! String).hasPrefix("lstmvision train classification --data \(dir)/mnist --hidden "))
        // The scored model is the best trial's own best model: eval agrees.
        let eval = try Self.run(["eval", "--model", best["model"] as! String, "--data", dir + "/mnist", "--json"],
                                dir: dir, name: "eval")
        let evalObject = try JSONSerialization.jsonObject(with: Data(eval.out.utf8)) as! [String: Any]
        #expect(evalObject["accuracy"] as? Double == accuracy)
        for file in ["trials.csv", "progress.png", "param-hidden.png", "param-lr.png", "best.json"] {
            #expect(FileManager.default.fileExists(atPath: out + "/" + file), "\(file)")
        }
        #expect(try String(contentsOfFile: out + "/trials.csv", encoding: .utf8).split(separator: "\n").count == 4)
        // Trials never score the test split themselves.
        #expect(!FileManager.default.fileExists(atPath: out + "/trials/000/test.json"))
        // A finished search resumed again runs nothing and scores nothing again.
        let again = try Self.run(args + ["--resume"], dir: dir, name: "third")
        #expect(again.code == 0 && !again.out.contains("started"), "\(again.out)")
        // And a new search into the same folder is refused.
        let fresh = try Self.run(args, dir: dir, name: "fourth")
        #expect(fresh.code != 0 && fresh.err.contains("study.json exists: continue it with --resume"))
    }

    /// The search killed with SIGKILL while its trial is mid-way (an epoch logged, more to come): the resumed search
    /// starts that trial with `train --resume` from its checkpoint: its log.csv goes on (epochs 1, 2, 3, none twice),
    /// the epochs it had recorded are kept, and the search completes.
    @Test func killedTrialResumesFromItsCheckpoint() throws {
        let dir = Self.folder("checkpoint"), out = dir + "/out"
        let space = Self.write("hidden: {choice: [4, 8]}\n", dir + "/space.yaml")
        try Self.miniMNIST(dir + "/mnist", train: 600)
        let args = ["tune", "--space", space, "--out", out, "--trials", "2", "--epochs", "3", "--no-pruning",
                    "--sampler", "random", "--threads", "1", "--no-test", "--data", dir + "/mnist"]
        let first = try Self.start(args, dir: dir, name: "first")
        // Wait until trial 0 has logged its first epoch (recorded in the study) and has epochs to go.
        var study: Study?
        for _ in 0..<1200 {
            usleep(25_000)
            if let s = try? Study.read(Study.path(in: out)), let t = s.trials.first, t.state == .running,
               (1..<3).contains(t.metrics.count) {
                study = s
                break
            }
        }
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        let killed = try #require(study, "trial 0 never logged an epoch mid-way")
        let recorded = killed.trials[0].metrics
        let trial = out + "/trials/000"
        #expect(FileManager.default.fileExists(atPath: trial + "/last.state.safetensors"))
        // Its process ends by itself within about a second (ParentWatch); then the search is resumed.
        let orphan = killed.trials[0].pid!
        for _ in 0..<50 where kill(orphan, 0) == 0 { usleep(100_000) }
        let r = try Self.run(args + ["--resume"], dir: dir, name: "second")
        #expect(r.code == 0, "\(r.err)")
        #expect(r.out.contains("trial 0 started again from its checkpoint"), "\(r.out)")
        let final = try Study.read(Study.path(in: out))
        #expect(final.trials.map(\.state) == [.completed, .completed])
        let t = final.trials[0]
        #expect(t.starts == 2 && t.metrics.count == 3)
        #expect(Array(t.metrics.prefix(recorded.count)) == recorded)
        let note = try #require(t.restarts?.first)
        #expect(note.hasPrefix("resumed from its checkpoint (epochs recorded: "), "\(note)")
        #expect(t.message?.contains("resumed from its checkpoint") == true)
        // log.csv continued: epochs 1, 2, 3 once each, the values the study holds.
        let log = try String(contentsOfFile: trial + "/log.csv", encoding: .utf8).split(separator: "\n")
        #expect(log.dropFirst().map { $0.split(separator: ",")[0] } == ["1", "2", "3"], "\(log)")
        #expect(try LogCSV.column("val_accuracy", of: trial + "/log.csv") == t.metrics)
        // The child ran train --resume (its output appended to the first start's).
        let stdout = try String(contentsOfFile: trial + "/stdout.txt", encoding: .utf8)
        #expect(stdout.contains("resumed from \(trial)/last.state.safetensors at epoch "), "\(stdout)")
        #expect(stdout.components(separatedBy: "model row hidden").count == 3, "\(stdout)")
    }

    /// A checkpoint train refuses (a damaged state file): the trial starts again from scratch and says so.
    @Test func refusedCheckpointStartsTheTrialAgainFromScratch() throws {
        let dir = Self.folder("refused"), out = dir + "/out"
        let space = Self.write("hidden: {choice: [4]}\n", dir + "/space.yaml")
        try Self.miniMNIST(dir + "/mnist")
        let args = ["tune", "--space", space, "--out", out, "--trials", "1", "--epochs", "2", "--no-pruning",
                    "--threads", "1", "--no-test", "--data", dir + "/mnist"]
        // A search whose trial 0 ran (killed, its study says running) and whose checkpoint is damaged.
        var r = try Self.run(args, dir: dir, name: "first")
        #expect(r.code == 0, "\(r.err)")
        var study = try Study.read(Study.path(in: out))
        study.trials[0].state = .running
        study.trials[0].metrics = [study.trials[0].metrics[0]]
        try study.write(to: Study.path(in: out))
        let state = out + "/trials/000/last.state.safetensors"
        try Data("not a checkpoint".utf8).write(to: URL(fileURLWithPath: state))
        r = try Self.run(args + ["--resume"], dir: dir, name: "second")
        #expect(r.code == 0, "\(r.err)")
        #expect(r.out.contains("trial 0: checkpoint refused ("), "\(r.out)")
        let t = try Study.read(Study.path(in: out)).trials[0]
        #expect(t.state == .completed && t.starts == 3 && t.metrics.count == 2)
        #expect(t.restarts?.count == 2 && t.restarts?[1].hasPrefix("started again from scratch: checkpoint refused (")
                == true, "\(t.restarts ?? [])")
        let log = try String(contentsOfFile: out + "/trials/000/log.csv", encoding: .utf8).split(separator: "\n")
        #expect(log.dropFirst().map { $0.split(separator: ",")[0] } == ["1", "2"], "\(log)")
    }

    /// `tune --task detection`: a tiny search of detectors on synthetic canvases, scored by the COCO AP of held-out
    /// training canvases (--validation-split 0.1 added), its best model scored once on the test canvases.
    @Test func tinyDetectionSearch() throws {
        let dir = Self.folder("detection"), out = dir + "/out"
        let space = Self.write("hidden: {choice: [4, 8]}\n", dir + "/space.yaml")
        let r = try Self.run(["tune", "--task", "detection", "--space", space, "--out", out, "--trials", "2",
                              "--epochs", "1", "--sampler", "random", "--seed", "1", "--threads", "1", "--json",
                              "--train-count", "20", "--test-count", "4", "--conv-widths", "4,4,4", "--batch-size",
                              "4"], dir: dir, name: "tune")
        #expect(r.code == 0, "\(r.err)")
        let study = try Study.read(Study.path(in: out))
        #expect(study.settings.task == "detection" && study.settings.metric == "val_AP")
        #expect(study.settings.higherIsBetter && study.trials.map(\.state) == [.completed, .completed])
        #expect(study.settings.trainArguments.suffix(2) == ["--validation-split", "0.1"])
        for t in study.trials {
            let folder = out + "/trials/00\(t.number)"
            #expect(t.metrics == (try LogCSV.column("val_AP", of: folder + "/log.csv")))
            let said = try String(contentsOfFile: folder + "/stdout.txt", encoding: .utf8)
            #expect(said.contains("20 training, 2 validation (canvases of the 10% of MNIST's training digits held"
                                  + " out), 4 test images") && !said.contains("test AP"), "\(said)")
            #expect(!FileManager.default.fileExists(atPath: folder + "/test.json"))
        }
        let best = (try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as! [String: Any])["best"]
            as! [String: Any]
        let higher = study.trials.max { $0.metrics[0] < $1.metrics[0] }!
        #expect(best["validation"] as? Double == higher.metrics[0] && best["metric"] as? String == "val_AP")
        #expect((best["command"] as! String).contains("--validation-split 0.1"), "\(best)")
        // The test score is evaluate --model's on the test canvases, scored once.
        let e = try Self.run(["evaluate", "--model", best["model"] as! String, "--test-count", "4", "--json"],
                             dir: dir, name: "eval")
        let scored = try JSONSerialization.jsonObject(with: Data(e.out.utf8)) as! [String: Any]
        #expect(best["test_AP"] as? Double == scored["AP"] as? Double && best["test_images"] as? Int == 4, "\(best)")
        #expect(best["test_AP50"] as? Double == scored["AP50"] as? Double && scored["AP"] as? Double != nil)
    }

    /// `tune --task frames`: a tiny search of ConvLSTM frame predictors on Moving MNIST, scored by validation MSE per
    /// frame (lower is better: the best is the smallest), its best model scored once on DATA/test.npy.
    @Test func tinyFramesSearch() throws {
        let dir = Self.folder("frames"), out = dir + "/out", data = dir + "/mm"
        var r = try Self.run(["moving-mnist", "--out", data, "--train", "20", "--test", "3", "--frames", "6"],
                             dir: dir, name: "data")
        #expect(r.code == 0, "\(r.err)")
        let space = Self.write("hidden: {choice: [2, 4]}\n", dir + "/space.yaml")
        r = try Self.run(["tune", "--task", "frames", "--space", space, "--out", out, "--trials", "2", "--epochs",
                          "1", "--sampler", "random", "--seed", "1", "--threads", "1", "--json", "--data", data,
                          "--validation", "4", "--context", "3", "--kernel", "3", "--batch-size", "8"],
                         dir: dir, name: "tune")
        #expect(r.code == 0, "\(r.err)")
        let study = try Study.read(Study.path(in: out))
        #expect(study.settings.task == "frames" && study.settings.metric == "val_mse_per_frame")
        #expect(!study.settings.higherIsBetter && study.settings.halving?.rungs == [])
        #expect(study.trials.map(\.state) == [.completed, .completed])
        // Each trial's metric is its log.csv's val_mse_per_frame; the best is the lower one.
        for t in study.trials {
            let logged = try LogCSV.column("val_mse_per_frame", of: out + "/trials/00\(t.number)/log.csv")
            #expect(t.metrics == logged && logged.count == 1 && logged[0] > 0)
        }
        let lower = study.trials.min { $0.metrics[0] < $1.metrics[0] }!
        #expect(study.bestTrial?.number == lower.number)
        let object = try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as! [String: Any]
        let best = object["best"] as! [String: Any]
        #expect(best["trial"] as? Int == lower.number && best["metric"] as? String == "val_mse_per_frame")
        #expect(best["validation"] as? Double == lower.metrics[0])
        #expect((best["command"] as! String).hasPrefix("lstmvision train frames --data \(data) --validation 4"))
        #expect(best["test_accuracy"] == nil && best["test_sequences"] as? Int == 3)
        // The test score is evaluate-frames' on DATA/test.npy with that model, scored once.
        let eval = try Self.run(["evaluate-frames", "--model", best["model"] as! String, "--data", data + "/test.npy",
                                 "--context", "3", "--json"], dir: dir, name: "eval")
        let e = try JSONSerialization.jsonObject(with: Data(eval.out.utf8)) as! [String: Any]
        #expect(best["test_mse_per_frame"] as? Double == e["mse"] as? Double)
        #expect(best["test_ssim"] as? Double == e["ssim"] as? Double)
        #expect(best["test_mse_per_frame"] as? Double != nil)
        let csv = try String(contentsOfFile: out + "/trials.csv", encoding: .utf8).split(separator: "\n")
        #expect(csv.count == 3 && csv[0].contains("best_val_mse_per_frame"), "\(csv)")
    }
}
