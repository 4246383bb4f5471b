import Foundation

/// Runs each trial as a child process of the `lstmvision` executable: `EXE train TASK ARGS --out OUT/trials/NNN
/// --threads T --no-tensorboard` (and `--no-test-score` for classification and detection, which score their test
/// split), its output in the run folder (stdout.txt, stderr.txt), its metric read from the run folder's log.csv after
/// each epoch. The child ends itself when the search's process dies (`ParentWatch`). A trial started again from its
/// checkpoint runs `train … --resume` in its folder (output appended); from scratch, it begins in an emptied folder.
public final class ProcessTrialLauncher: TrialLauncher {
    public let executable: String
    public let task: String
    public let out: String
    public let threads: Int
    public let metric: String
    /// Seconds between looks at the running trials.
    public var interval: Double = 0.25

    public init(executable: String, task: String, out: String, threads: Int, metric: String) {
        (self.executable, self.task, self.out, self.threads, self.metric) = (executable, task, out, threads, metric)
    }

    /// The run folder of trial `number`.
    public static func folder(out: String, number: Int) -> String {
        out + "/trials/" + String(format: "%03d", number)
    }

    /// The words after the executable for `trial` with `arguments` (`--resume` when `resuming`).
    public func commandLine(_ trial: Trial, arguments: [String], resuming: Bool = false) -> [String] {
        ["train", task] + arguments + ["--out", Self.folder(out: out, number: trial.number), "--threads",
                                       String(threads), "--no-tensorboard"]
            + (task == "frames" ? [] : ["--no-test-score"]) + (resuming ? ["--resume"] : [])
    }

    public func start(_ trial: Trial, arguments: [String], resuming: Bool) throws -> any TrialRun {
        try Self.launch(executable: executable, words: commandLine(trial, arguments: arguments, resuming: resuming),
                        folder: Self.folder(out: out, number: trial.number), metric: metric, resuming: resuming)
    }

    /// Starts `executable` with `words` as a trial training into `folder` (emptied first unless `resuming`; then
    /// its output is appended), its metric read from column `metric` of its log.csv.
    static func launch(executable: String, words: [String], folder dir: String, metric: String,
                       resuming: Bool) throws -> ChildTrial {
        if !resuming { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        // A resumed trial's output is appended: where this start's output begins.
        let stdout = dir + "/stdout.txt"
        let offset = resuming ? ((try? FileManager.default.attributesOfItem(atPath: stdout)[.size] as? Int) ?? 0) : 0
        let pid = try spawn([executable] + words, stdout: stdout, stderr: dir + "/stderr.txt",
                            environment: [ParentWatch.variable + "=\(getpid())"], append: resuming)
        return ChildTrial(pid: pid, folder: RunFolder(dir), metric: metric, stderr: dir + "/stderr.txt",
                          resumedFrom: resuming ? (stdout, offset) : nil)
    }

    /// The trials under `out` whose run folder holds a checkpoint.
    static func checkpointed(out: String) -> [Int] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: out + "/trials")) ?? []
        return names.compactMap { name in
            guard let n = Int(name), n >= 0, String(format: "%03d", n) == name,
                  FileManager.default.fileExists(atPath: RunFolder(folder(out: out, number: n)).state) else {
                return nil
            }
            return n
        }.sorted()
    }

    public func hasCheckpoint(trial number: Int) -> Bool {
        FileManager.default.fileExists(atPath: RunFolder(Self.folder(out: out, number: number)).state)
    }

    public func stopStale(pid: Int32, trial: Int) {
        Self.stopStale(pid: pid, folder: Self.folder(out: out, number: trial))
    }

    /// Ends process `pid` if it is alive and its command line still names `folder` (a trial's), and waits for it.
    static func stopStale(pid: Int32, folder: String) {
        guard pid > 0, kill(pid, 0) == 0,
              let cmdline = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline")),
              String(decoding: cmdline, as: UTF8.self).split(separator: "\0").contains(Substring(folder)) else {
            return
        }
        kill(pid, SIGKILL)
        for _ in 0..<200 where kill(pid, 0) == 0 { usleep(50_000) }
    }

    public func pause() throws { usleep(UInt32(interval * 1e6)) }

    /// Starts `words[0]` with the rest as arguments, stdin from /dev/null, stdout and stderr into files (emptied, or
    /// appended to when `append`), the environment with `environment` added; returns its process id.
    public static func spawn(_ words: [String], stdout: String, stderr: String, environment: [String],
                             append: Bool = false) throws -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        let mode = O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC)
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, mode, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderr, mode, 0o644)
        // Not this process's MPI job (a trial under `mpirun` runs alone), nor its search's watch.
        let env = ProcessInfo.processInfo.environment
            .filter { $0.key != ParentWatch.variable && !$0.key.hasPrefix("OMPI_") && !$0.key.hasPrefix("PMIX_") }
            .map { "\($0.key)=\($0.value)" } + environment
        var argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
        var envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup($0) } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        // No blocked signals and default handlers in the child, whatever this process inherited (so SIGTERM and
        // SIGINT end a trial as they end any program).
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        sigdelset(&all, SIGKILL)
        sigdelset(&all, SIGSTOP)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        let status = posix_spawn(&pid, words[0], &actions, &attributes, &argv, &envp)
        guard status == 0 else {
            throw TuningError("cannot start \(words[0]): \(String(cString: strerror(status)))")
        }
        return pid
    }
}

/// A trial's child process.
final class ChildTrial: TrialRun {
    let pid: Int32
    let folder: RunFolder
    let metric: String
    let stderr: String
    /// For `train --resume`: its stdout file and where this start's output begins there.
    let resumedFrom: (stdout: String, offset: Int)?
    var ended: TrialExit?

    /// What `train --resume` prints once it has read its checkpoint (`Trainer.resume`).
    static let resumedLine = "resumed from "

    init(pid: Int32, folder: RunFolder, metric: String, stderr: String, resumedFrom: (String, Int)? = nil) {
        (self.pid, self.folder, self.metric, self.stderr, self.resumedFrom) =
            (pid, folder, metric, stderr, resumedFrom)
    }

    func metrics() -> [Double] { (try? LogCSV.column(metric, of: folder.log)) ?? [] }

    func exit() -> TrialExit? {
        if let ended { return ended }
        var status: Int32 = 0
        let r = waitpid(pid, &status, WNOHANG)
        guard r == pid else { return r < 0 ? record(.failed("lost the trial's process")) : nil }
        let signal = status & 0x7F, code = (status >> 8) & 0xFF
        if signal == 0 && code == 0 { return record(.finished) }
        let last = lastErrorLine()
        let how = signal != 0 ? "killed by signal \(signal)" : "exit status \(code)"
        let message = last.map { "\($0) (\(how))" } ?? how
        return record(resumedFrom != nil && !resumed() ? .refused(message) : .failed(message))
    }

    /// Whether a `train --resume` child printed that it read its checkpoint.
    func resumed() -> Bool {
        guard let (stdout, offset) = resumedFrom, let data = try? InputLimits.default.readFile(stdout) else {
            return false
        }
        return String(decoding: data.dropFirst(offset), as: UTF8.self).contains(Self.resumedLine)
    }

    func stop() {
        guard ended == nil else { return }
        kill(pid, SIGKILL)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        ended = .failed("stopped")
    }

    func record(_ e: TrialExit) -> TrialExit {
        ended = e
        return e
    }

    /// The child's last non-empty stderr line, without the "lstmvision: error: " prefix.
    func lastErrorLine() -> String? {
        guard let data = try? InputLimits.default.readFile(stderr) else { return nil }
        let lines = String(decoding: data.suffix(4096), as: UTF8.self).split(whereSeparator: \.isNewline)
        guard var line = lines.last(where: { !$0.trimmingCharacters(in: .whitespaces).isEmpty }).map(String.init) else {
            return nil
        }
        if line.hasPrefix("lstmvision: error: ") { line.removeFirst("lstmvision: error: ".count) }
        return line
    }
}

/// A training run's log.csv, read back.
enum LogCSV {
    /// The values of column `name`, one per epoch row.
    static func column(_ name: String, of path: String) throws -> [Double] {
        guard FileManager.default.fileExists(atPath: path) else { return [] }
        let text = String(decoding: try InputLimits.default.readFile(path), as: UTF8.self)
        let rows = text.split(whereSeparator: \.isNewline)
            .map { $0.split(separator: ",", omittingEmptySubsequences: false) }
        guard let header = rows.first, let c = header.firstIndex(where: { $0 == name }) else {
            throw TuningError("\(path): no column \(name)")
        }
        return rows.dropFirst().map { $0.count > c ? Double($0[c]) ?? .nan : .nan }
    }
}

/// Ends a trial's process when the search that started it dies (kill -9 included), so that a resumed search never
/// finds an orphan writing into a trial folder: the search sets `LSTMVISION_TUNE_PARENT` to its process id, and the
/// child checks once a second that it is still its parent.
public enum ParentWatch {
    public static let variable = "LSTMVISION_TUNE_PARENT"

    /// Starts the watch when the variable is set (called first thing by the CLI).
    public static func startIfAsked() {
        guard let text = ProcessInfo.processInfo.environment[variable], let parent = Int32(text) else { return }
        guard getppid() == parent else { _exit(137) }
        Thread.detachNewThread {
            while true {
                sleep(1)
                if getppid() != parent { _exit(137) }
            }
        }
    }
}
