import Foundation
import Testing
@testable import LSTMVision
@testable import LSTMVisionCore

/// A training process killed with SIGKILL at a random moment after its first checkpoint leaves loadable
/// checkpoints, and `train --resume` (without the data options, which the checkpoint holds) then ends with
/// exactly (bit for bit) the weights and optimiser state of an uninterrupted run of the same command.
@Suite(.serialized) struct CrashSafetyTests {
    static let root = FileFormatTests.repoRoot

    /// The `lstmvision` executable next to the test bundle (`swift build --build-tests` builds it too).
    static var executable: String {
        Bundle.module.bundleURL.deletingLastPathComponent().appendingPathComponent("lstmvision").path
    }

    /// 640 images, 576 after the 10% validation split, batch 64: 9 steps an epoch, 27 in all, a checkpoint every 3.
    static let command = ["train", "--limit", "640", "--epochs", "3", "--checkpoint-every", "3", "--hidden", "16"]

    /// Starts `lstmvision args`, its output going to `log` (a pipe could fill up and stall it).
    func start(_ args: [String], log: String) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.executable)
        p.arguments = args
        p.currentDirectoryURL = URL(fileURLWithPath: Self.root)
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        p.standardOutput = out
        p.standardError = out
        try p.run()
        return p
    }

    func runToEnd(_ args: [String], log: String) throws -> Int32 {
        let p = try start(args, log: log)
        p.waitUntilExit()
        return p.terminationStatus
    }

    func tail(_ log: String) -> String {
        ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").suffix(5)
            .joined(separator: "\n")
    }

    /// The tensors of a safetensors file whose names pass `keep`, with their bit patterns.
    func bits(_ path: String, _ keep: (String) -> Bool = { _ in true }) throws -> [String: [UInt32]] {
        try SafeTensors.read(path).tensors.filter { keep($0.key) }.mapValues { $0.scalars.map(\.bitPattern) }
    }

    @Test func killedTrainingResumesToTheSameWeights() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("lstmvision-crash-\(getpid())").path
        try? FileManager.default.removeItem(atPath: base)
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: base) }
        let whole = base + "/whole", killed = base + "/killed"

        // The uninterrupted run of the same command, alongside (its result does not depend on timing).
        let reference = try start(Self.command + ["--out", whole], log: base + "/whole.log")
        defer { if reference.isRunning { reference.terminate(); reference.waitUntilExit() } }

        // The run to be killed: SIGKILL a short random time after its first checkpoint file appears.
        let victim = try start(Self.command + ["--out", killed], log: base + "/killed.log")
        defer { if victim.isRunning { victim.terminate(); victim.waitUntilExit() } }
        let state = killed + "/last.state.safetensors"
        let deadline = Date().addingTimeInterval(120)
        while !FileManager.default.fileExists(atPath: state) && victim.isRunning && Date() < deadline { usleep(2_000) }
        let delay = UInt32.random(in: 0..<600_000)
        usleep(delay)
        let wasRunning = victim.isRunning
        if wasRunning { kill(victim.processIdentifier, SIGKILL) }
        victim.waitUntilExit()
        try #require(FileManager.default.fileExists(atPath: state),
                     "no checkpoint appeared: \(tail(base + "/killed.log"))")
        print("killed \(String(format: "%.0f", Double(delay) / 1000)) ms after the first checkpoint "
              + "(still running: \(wasRunning))")
        if wasRunning {
            #expect(victim.terminationReason == .uncaughtSignal && victim.terminationStatus == SIGKILL)
        }

        // What the killed process left loads: the resumable state and the latest model.
        let (tensors, meta) = try SafeTensors.read(state)
        #expect(tensors.keys.contains { $0.hasPrefix("optimizer.") }
                && tensors.keys.contains { $0.hasPrefix("model.") })
        let step = try #require(meta["step"].flatMap(Int.init), "no step in \(meta)")
        print("checkpoint at epoch \(meta["epoch"] ?? "?"), batch \(meta["batch"] ?? "?"), step \(step)")
        if wasRunning { #expect(step < 27, "the process was killed, yet its checkpoint is at the last step") }
        let last = try ModelFile.load(killed + "/last.safetensors")
        #expect(last.parameters.allSatisfy { $0.value.isFinite })

        // Resumed to completion; the checkpoint holds the data options, so --limit need not be given again.
        let resumed = try runToEnd(["train", "--resume", "--out", killed], log: base + "/resumed.log")
        try #require(resumed == 0, "resume failed: \(tail(base + "/resumed.log"))")

        reference.waitUntilExit()
        try #require(reference.terminationStatus == 0, "training failed: \(tail(base + "/whole.log"))")

        let a = try bits(whole + "/last.safetensors"), b = try bits(killed + "/last.safetensors")
        #expect(a.keys.sorted() == b.keys.sorted())
        for name in a.keys.sorted() {
            let same = a[name] == b[name]
            #expect(same, "\(name) differs between the uninterrupted and the killed-and-resumed run")
        }
        // The optimiser state and the weights inside the resumable state are equal too.
        let isWeightsOrOptimizer = { (k: String) in k.hasPrefix("model.") || k.hasPrefix("optimizer.") }
        let sa = try bits(whole + "/last.state.safetensors", isWeightsOrOptimizer)
        let sb = try bits(killed + "/last.state.safetensors", isWeightsOrOptimizer)
        #expect(sa.keys.sorted() == sb.keys.sorted())
        for name in sa.keys.sorted() where sa[name] != sb[name] {
            Issue.record("\(name) in last.state.safetensors differs between the two runs")
        }
        let metaA = try SafeTensors.read(whole + "/last.state.safetensors").metadata
        let metaB = try SafeTensors.read(killed + "/last.state.safetensors").metadata
        #expect(metaA["step"] == "27" && metaB["step"] == "27" && metaA["epoch"] == "3" && metaB["epoch"] == "3")

        // Resuming with other data options is refused in one line, before anything is trained.
        let other = try runToEnd(["train", "--resume", "--limit", "320", "--epochs", "4", "--out", killed],
                                 log: base + "/other.log")
        #expect(other != 0)
        #expect(tail(base + "/other.log") == "lstmvision: error: \(killed)/last.state.safetensors: "
                + "the run was trained with --limit 640, not 320:"
                + " a resumed run must read the same data (leave the data options out to reuse the checkpoint's)")
    }
}
