import Foundation
import Testing
@testable import LSTMVision
@testable import LSTMVisionCore

/// `lstmvision tune` itself: bad input refused in one line before any trial, and a tiny real search (trials of 200
/// MNIST images) killed with SIGKILL mid-way, resumed, run to the end and scored once on the test split.
@Suite(.serialized) struct TuningCLITests {
    static func folder(_ name: String) -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tune-cli-\(getpid())-\(name)").path
        try? FileManager.default.removeItem(atPath: dir)
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    static func write(_ text: String, _ path: String) -> String {
        FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        return path
    }

    /// Starts the executable with `args`, its output into files in `dir`.
    static func start(_ args: [String], dir: String, name: String) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CLITests.executable)
        p.arguments = args
        p.currentDirectoryURL = URL(fileURLWithPath: CLITests.root)
        FileManager.default.createFile(atPath: dir + "/\(name).out", contents: nil)
        FileManager.default.createFile(atPath: dir + "/\(name).err", contents: nil)
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
}
